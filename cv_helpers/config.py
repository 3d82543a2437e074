"""Paths, smoke mode, device choice and seeding: the settings every other module reads."""
from __future__ import annotations

import os
import platform
import random
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from .errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent
SMOKE_ROOT = REPO_ROOT / "smoke"   # smoke mode's runs/ and report/ (ignored by git)
T = TypeVar("T")


def data_dir() -> Path:
    """Returns the prepared-data folder: `$CV_HELPERS_DATA`, else `data/` in the repository."""
    return Path(os.environ.get("CV_HELPERS_DATA") or REPO_ROOT / "data")


def runs_dir() -> Path:
    """Returns the folder that holds one sub-folder per run: `$CV_HELPERS_RUNS`, else `runs/` (in smoke mode
    `smoke/runs/`, so that smoke output can never be mistaken for results)."""
    return Path(os.environ.get("CV_HELPERS_RUNS") or by_mode(REPO_ROOT / "runs", SMOKE_ROOT / "runs"))


def report_dir() -> Path:
    """Returns the report folder (figures/, tables/): `$CV_HELPERS_REPORT`, else `report/` (in smoke mode
    `smoke/report/`)."""
    return Path(os.environ.get("CV_HELPERS_REPORT") or by_mode(REPO_ROOT / "report", SMOKE_ROOT / "report"))


def is_smoke() -> bool:
    """Returns True when `CV_HELPERS_SMOKE` is set to a true value (1, true, yes)."""
    return os.environ.get("CV_HELPERS_SMOKE", "0").strip().lower() in {"1", "true", "yes", "on"}


def mode_name() -> str:
    """Returns 'smoke' or 'full': the mode as it is recorded in figures and table names."""
    return by_mode("full", "smoke")


def by_mode(full: T, smoke: T) -> T:
    """Returns `smoke` in smoke mode and `full` otherwise: the one switch that shrinks every run."""
    return smoke if is_smoke() else full


def run_name_for(name: str) -> str:
    """Returns the run folder name: `name`, prefixed 'smoke-' in smoke mode so smoke runs never overwrite results."""
    return by_mode(name, f"smoke-{name}")


def mode_banner() -> str:
    """Returns the line each notebook prints first: the mode and the data folder."""
    mode = (f"SMOKE mode (tiny subsets, 1-2 epochs: figures are NOT results; runs and figures go to "
            f"{shown_path(runs_dir())} and {shown_path(report_dir())})" if is_smoke() else "FULL mode")
    return f"cv-workbook running in {mode}; data folder: {shown_path(data_dir())}"


def shown_path(path: Path) -> str:
    """Returns `path` relative to the repository when it lies inside it, so that no machine's absolute path ends up
    in an executed notebook; else as it is."""
    try:
        return str(Path(path).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def default_device() -> torch.device:
    """Returns CUDA when available, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(name: str | torch.device | None) -> torch.device:
    """Returns the device called `name` (cpu, cuda or cuda:N; None: `default_device()`); a name torch does not know,
    or a GPU this machine does not have, is a one-line ConfigError."""
    if name is None:
        return default_device()
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ConfigError(f"unknown device {str(name)!r}; use cpu or cuda (cuda:N for the N-th GPU)") from None
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"device {str(name)!r} is not supported; use cpu or cuda (cuda:N for the N-th GPU)")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ConfigError(f"device {str(name)!r} asked for, but torch sees {torch.cuda.device_count()} GPU(s) here; "
                          "use cpu (or leave the device out: a GPU is used when there is one)")
    return device


def memory_layout(device: torch.device) -> torch.memory_format:
    """Returns the layout for 4-D tensors and conv weights on `device`: channels_last on CUDA (faster convolutions
    there), unchanged on the CPU (measured: no gain)."""
    return torch.channels_last if device.type == "cuda" else torch.preserve_format


def model_device(net: torch.nn.Module) -> torch.device:
    """Returns the device a network's parameters are on."""
    return next(net.parameters()).device


def to_device(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Moves a batch (N, 3, H, W) to `device`, in that device's memory layout."""
    return images.to(device, non_blocking=True, memory_format=memory_layout(device))


def autocast(device: torch.device) -> torch.autocast:
    """bf16 autocast on CUDA only: on the course CPUs it was 5-15x slower."""
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")


def describe_device(device: torch.device) -> str:
    """Returns e.g. 'cpu (2 threads, x86_64, AMD EPYC, AVX2)' or the CUDA device's name.

    The processor model and the vector instructions torch's kernels use are part of it because they change the
    floating-point results: the same seed gives the same numbers only on the same CPU kind."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return (f"cpu ({torch.get_num_threads()} threads, {platform.machine()}, {cpu_model()}, "
            f"{torch.backends.cpu.get_cpu_capability()})")


def cpu_model() -> str:
    """Returns the processor's model name (from /proc/cpuinfo on Linux), or platform.processor() elsewhere."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown processor"


def epoch_seed(seed: int, epoch: int) -> int:
    """Returns the RNG seed of one epoch's shuffling and augmentation: the same whether or not a run resumed."""
    return seed * 1_000_003 + epoch


def seed_everything(seed: int) -> None:
    """Seeds Python, NumPy and torch (CPU and CUDA) so a run is repeatable."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
