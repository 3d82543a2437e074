"""What each notebook trains and exports, declared once in the notebook's own metadata (`cv_workbook`).

The main job's plan reads the runs, `report.md` the section, its figures (with captions) and tables; a test checks
the declaration against the notebook's cells. Runs are named as presets ("q1.4-mlp"), a preset for every seed of
`experiment.SEEDS` ("q1.3-mlp@seeds"), a sweep's runs ("sweep:q1.4-val-mlp"), or Q2's fine-tuning runs for the
STL-10 that is prepared ("q2-strategies": each strategy and the 60-epoch pair, every seed).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from ..config import REPO_ROOT
from ..errors import DataError
from .experiment import SEEDS, seed_run_name
from .strategies import FULL_FINE_TUNING, TRAINING_STRATEGIES, training_strategies
from .sweep import REPORT_SWEEPS

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
_SAVED = re.compile(r'save_(?:figure|table)\((?:fig, )?"([\w.-]+)"')


@dataclass(frozen=True)
class NotebookContents:
    """One notebook's declaration: its report section and what it trains and exports."""

    stem: str
    section: str                 # the report's section title
    summary: str                 # the report's text under it
    runs: tuple[str, ...]        # as declared (see the module's docstring)
    weights: tuple[str, ...]     # runs whose trained weights the notebook uses (not only their files)
    figures: dict[str, str]      # figure name -> caption
    tables: dict[str, str]       # table name -> title

    def run_names(self) -> list[str]:
        """Returns the run names the notebook trains or reuses, in order."""
        return [name for entry in self.runs for name in expand(entry)]


def notebook_contents(folder: Path = NOTEBOOK_DIR) -> list[NotebookContents]:
    """Returns the declarations of the notebooks in `folder` that have one, in name order."""
    contents = []
    for path in sorted(folder.glob("*.ipynb")):
        declared = json.loads(path.read_text())["metadata"].get("cv_workbook")
        if declared is not None:
            contents.append(NotebookContents(path.stem, declared["section"], declared["summary"],
                                             tuple(declared.get("runs", ())), tuple(declared.get("weights", ())),
                                             dict(declared.get("figures", {})), dict(declared.get("tables", {}))))
    return contents


def saved_exports(source: str) -> list[str]:
    """Returns the names of the figures and tables a cell's source saves (`save_figure(fig, "name")`,
    `save_table("name", ...)`), in order."""
    return _SAVED.findall(source)


def expand(entry: str) -> list[str]:
    """Returns the run names one declared entry stands for."""
    if entry.startswith("sweep:"):
        sweeps = {sweep.prefix: sweep for sweep in REPORT_SWEEPS}
        return sweeps[entry.removeprefix("sweep:")].run_names()
    if entry == "q2-strategies":
        strategies = q2_strategies()
        return [name for preset in [*strategies.values(), f"{strategies[FULL_FINE_TUNING]}-e60"]
                for name in expand(f"{preset}@seeds")]
    if entry.endswith("@seeds"):
        return [seed_run_name(entry.removesuffix("@seeds"), seed) for seed in SEEDS]
    return [entry]


def q2_strategies() -> dict[str, str]:
    """Returns the Q2 notebook's strategy presets for the STL-10 data prepared (the sample's before `make data`)."""
    try:
        return training_strategies()
    except DataError:                    # STL-10 not prepared yet: `make data` prepares the sample
        return TRAINING_STRATEGIES["real sample"]
