"""The main job: execute the four notebooks in order, headless, and keep the executed copies in report/."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Iterator

import nbformat
from nbclient import NotebookClient

from .checkpoint import write_atomically
from .config import REPO_ROOT, is_smoke, report_dir
from .tables import save_table

NOTEBOOK_DIR = REPO_ROOT / "notebooks"


def run_notebooks(names: list[str] | None = None) -> Iterator[tuple[str, float]]:
    """Executes notebooks (all, in name order, or those named) and writes report/notebooks/<name>; yields
    (name, seconds) as each finishes. A failing cell raises nbclient's CellExecutionError after saving the copy."""
    paths = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
    if names:
        paths = [p for p in paths if p.name in names or p.stem in names]
    out_dir = report_dir() / "notebooks"
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        client = NotebookClient(notebook, timeout=None, kernel_name="python3",
                                resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
        started = time.perf_counter()
        try:
            client.execute()
        finally:
            write_atomically(out_dir / path.name, lambda handle: handle.write(nbformat.writes(notebook).encode()))
        yield path.name, time.perf_counter() - started


def record_times(times: list[tuple[str, float]], machine: str) -> str:
    """Writes report/tables/notebook_times_<mode>.md/.csv and returns the Markdown."""
    mode = "smoke" if is_smoke() else "full"
    rows = [(name, seconds / 60, machine) for name, seconds in times]
    return save_table(f"notebook_times_{mode}", ["notebook", "minutes", "machine"], rows)


def machine_description() -> str:
    """Returns e.g. '2 CPU cores' or the GPU's name."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"{os.cpu_count()} CPU cores"


