"""The main job: execute the five notebooks in order, headless, and keep the executed copies in report/."""
from __future__ import annotations

import asyncio
import csv
import time
from queue import Empty
from typing import Iterator

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError

from .config import REPO_ROOT, mode_name, report_dir
from .files import write_text
from .tables import save_table

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
CELL_TIMEOUT_SECONDS = 6 * 3600


class PollingNotebookClient(NotebookClient):
    """nbclient, but it waits for a cell's reply in 1 s slices.

    nbclient blocks in `shell_channel.get_msg(timeout=None)` and can miss the reply of a cell that drives a widget
    (jupyter/nbclient#312): the Q1.1 class browser then hangs until the cell timeout. Polling sees the reply.
    """

    async def _async_poll_for_reply(self, msg_id, cell, timeout, task_poll_output_msg, task_poll_kernel_alive):
        deadline = time.monotonic() + (timeout or CELL_TIMEOUT_SECONDS)
        while time.monotonic() < deadline:
            try:
                msg = await self.kc.shell_channel.get_msg(timeout=1)
            except Empty:
                await self._async_check_alive()
                continue
            if msg["parent_header"].get("msg_id") == msg_id:
                try:
                    await asyncio.wait_for(task_poll_output_msg, self.iopub_timeout)
                except (asyncio.TimeoutError, Empty):
                    self.log.warning("Timeout waiting for IOPub output")
                task_poll_kernel_alive.cancel()
                return msg
        task_poll_kernel_alive.cancel()
        raise CellTimeoutError.error_from_timeout_and_cell("Cell timed out", timeout, cell)


def run_notebooks(names: list[str] | None = None) -> Iterator[tuple[str, float]]:
    """Executes notebooks (all, in name order, or those named) and writes report/notebooks/<name>; yields
    (name, seconds) as each finishes. A failing cell raises nbclient's CellExecutionError after saving the copy."""
    paths = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
    if names:
        paths = [p for p in paths if p.name in names or p.stem in names]
    out_dir = report_dir() / "notebooks"
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        client = PollingNotebookClient(notebook, timeout=CELL_TIMEOUT_SECONDS, kernel_name="python3",
                                       resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
        started = time.perf_counter()
        try:
            client.execute()
        finally:
            write_text(out_dir / path.name, nbformat.writes(notebook))
        yield path.name, time.perf_counter() - started


def record_times(times: list[tuple[str, float]], machine: str) -> str:
    """Updates report/tables/notebook_times_<mode>.md/.csv with these notebooks' times (rows of notebooks not run
    this time are kept) and returns the Markdown."""
    mode = mode_name()
    path = report_dir() / "tables" / f"notebook_times_{mode}.csv"
    rows = {}
    if path.is_file():
        with path.open(newline="") as handle:
            rows = {row["notebook"]: (row["notebook"], float(row["minutes"]), row["machine"])
                    for row in csv.DictReader(handle)}
    rows.update({name: (name, seconds / 60, machine) for name, seconds in times})
    return save_table(f"notebook_times_{mode}", ["notebook", "minutes", "machine"],
                      [rows[name] for name in sorted(rows)])
