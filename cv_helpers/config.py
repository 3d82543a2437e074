"""Paths, smoke mode, device choice and seeding: the settings every other module reads."""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def data_dir() -> Path:
    """Returns the prepared-data folder: `$CV_HELPERS_DATA`, else `data/` in the repository."""
    return Path(os.environ.get("CV_HELPERS_DATA") or REPO_ROOT / "data")


def runs_dir() -> Path:
    """Returns the folder that holds one sub-folder per run: `$CV_HELPERS_RUNS`, else `runs/`."""
    return Path(os.environ.get("CV_HELPERS_RUNS") or REPO_ROOT / "runs")


def report_dir() -> Path:
    """Returns the report folder (figures/, tables/): `$CV_HELPERS_REPORT`, else `report/`."""
    return Path(os.environ.get("CV_HELPERS_REPORT") or REPO_ROOT / "report")


def is_smoke() -> bool:
    """Returns True when `CV_HELPERS_SMOKE` is set to a true value (1, true, yes)."""
    return os.environ.get("CV_HELPERS_SMOKE", "0").strip().lower() in {"1", "true", "yes", "on"}


def by_mode(full: T, smoke: T) -> T:
    """Returns `smoke` in smoke mode and `full` otherwise: the one switch that shrinks every run."""
    return smoke if is_smoke() else full


def run_name_for(name: str) -> str:
    """Returns the run folder name: `name`, prefixed 'smoke-' in smoke mode so smoke runs never overwrite results."""
    return by_mode(name, f"smoke-{name}")


def mode_banner() -> str:
    """Returns the line each notebook prints first: the mode and the data folder."""
    mode = "SMOKE mode (tiny subsets, 1-2 epochs: figures are NOT results)" if is_smoke() else "FULL mode"
    return f"cv-workbook running in {mode}; data folder: {data_dir()}"


def default_device() -> torch.device:
    """Returns CUDA when available, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int) -> None:
    """Seeds Python, NumPy and torch (CPU and CUDA) so a run is repeatable."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
