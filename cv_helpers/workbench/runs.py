"""Run folders: one safe name each, one training at a time, results replaced only by complete results.

runs/<name>/            config.json, metrics.json (see `write_metrics`), checkpoint.pt, evaluation-*.json
runs/.<name>.retrain/   a retrain from scratch of a finished run, moved over runs/<name>/ once it completes, so
                        the old numbers stay readable until the new ones are whole
runs/.locks/<name>.lock who trains <name> now: {pid, host, started, epoch, epochs}; held with flock, so a lock
                        whose process died (kill -9, crashed kernel, reboot) is free again and is taken over
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import time
from dataclasses import asdict
from pathlib import Path

from ..config import run_name_for, runs_dir
from ..errors import WorkbookError
from ..files import read_json, write_json
from ..history import FitResult
from ..train import per_class_accuracy
from ..train_config import TrainConfig
from ..validation import check_name

LOCKS = ".locks"


class RunBusy(WorkbookError):
    """Another process trains (or evaluates) this run now."""


def _holder_text(name: str, holder: dict) -> str:
    where = "on this machine" if holder.get("host") == socket.gethostname() else f"on host {holder.get('host')}"
    started = time.strftime("%H:%M", time.localtime(holder.get("started", 0)))
    progress = f" (epoch {holder['epoch']} of {holder['epochs']})" if holder.get("epochs") else ""
    action = holder.get("action", "trained")
    return f"runs/{name} is being {action} by process {holder.get('pid')} {where} since {started}{progress}"


class RunLock:
    """Holds runs/.locks/<name>.lock while one process trains or evaluates (`action`) a run; a second one fails
    fast. Use as a context manager; `update(epoch)` records progress for the message the next process sees.
    """

    def __init__(self, runs: Path, name: str, epochs: int = 0, action: str = "trained") -> None:
        self.path, self.name, self.epochs, self.action = runs / LOCKS / f"{name}.lock", name, epochs, action
        self.fd, self.started = None, time.time()

    def __enter__(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_lock(fd)
            os.close(fd)
            raise RunBusy(f"{_holder_text(self.name, holder)}; wait for it, or use another run name "
                          "(--run-name)") from None
        previous = _read_lock(fd)
        if previous and previous.get("host") != socket.gethostname():
            os.close(fd)    # flock may not reach across hosts on a shared file system: never break such a lock
            raise RunBusy(f"{_holder_text(self.name, previous)}; wait for it, or, if that process is gone, delete "
                          f"{self.path}")
        if previous:
            print(f"note: took over runs/{self.name} from process {previous.get('pid')}, which is no longer running")
        self.fd = fd
        self.update(0)
        return self

    def update(self, epoch: int, accuracy: float | None = None, split: str = "test") -> None:
        """Records that `epoch` epochs are complete, and the accuracy (%) on `split` after the last of them."""
        record = {"pid": os.getpid(), "host": socket.gethostname(), "started": self.started, "epoch": epoch,
                  "epochs": self.epochs, "action": self.action, "accuracy": accuracy, "split": split}
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, json.dumps(record).encode(), 0)

    def __exit__(self, *exc_info) -> None:
        os.ftruncate(self.fd, 0)            # an empty lock file is a free run; the file itself stays
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None


def _read_lock(fd: int) -> dict:
    try:
        return json.loads(os.pread(fd, 4096, 0) or b"{}")
    except json.JSONDecodeError:
        return {}


def training_holder(runs: Path, name: str) -> dict | None:
    """Returns the lock record of the process that trains `name` now, or None; reads only (never waits, never
    writes). A record of a process that is gone from this machine is None."""
    holder = read_json(runs / LOCKS / f"{name}.lock")
    if not holder:
        return None
    if holder.get("host") != socket.gethostname():
        return holder
    try:
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return holder


def in_progress_text(runs: Path, name: str) -> str | None:
    """Returns e.g. 'in progress (epoch 3 of 15)' when `name` is being trained now, else None."""
    holder = training_holder(runs, name)
    if holder is None:
        return None
    return f"in progress (epoch {holder.get('epoch', 0)} of {holder.get('epochs', '?')})"


def run_folder(run_name: str) -> Path:
    """Returns runs/<folder> of a run name (smoke-prefixed in smoke mode) after checking that the name is one safe
    folder name and no existing run differs from it only in letter case."""
    return runs_dir() / check_name(run_name_for(check_name(run_name)), folder=runs_dir())


def retrain_folder(run_dir: Path) -> Path:
    """Returns where a retrain from scratch of the finished run in `run_dir` is trained."""
    return run_dir.parent / f".{run_dir.name}.retrain"


def is_complete(run_dir: Path) -> bool:
    """Returns True when run_dir holds the metrics of all the epochs its config.json asks for."""
    config, metrics = read_json(run_dir / "config.json"), read_json(run_dir / "metrics.json")
    return bool(config) and len(metrics.get("history", {}).get("test_acc", [])) == config.get("epochs")


def publish(folder: Path, run_dir: Path) -> None:
    """Moves a completed retrain folder over the run folder (no-op when training happened in place)."""
    if folder == run_dir:
        return
    old = run_dir.parent / f".{run_dir.name}.old"
    shutil.rmtree(old, ignore_errors=True)
    if run_dir.exists():
        os.replace(run_dir, old)
    os.replace(folder, run_dir)
    shutil.rmtree(old, ignore_errors=True)


def write_config(folder: Path, config: TrainConfig) -> None:
    """Writes folder/config.json: the run's settings."""
    write_json(folder / "config.json", asdict(config))


def write_metrics(folder: Path, config: TrainConfig, fit: FitResult, class_names: list[str],
                  provenance: dict) -> None:
    """Writes folder/metrics.json, the one schema of a run's measurements, after every epoch:
    history (per-epoch lists), epochs_done, final_test_acc and per_class_acc of the last epoch, train_seconds,
    seed, and `provenance` (device, git_revision, train_size, test_size, data_source, and for a fine-tuning the
    start_point it started from)."""
    per_class = per_class_accuracy(fit.predicted, fit.true, len(class_names))
    write_json(folder / "metrics.json", {
        "history": fit.history.as_dict(), "epochs_done": fit.history.epochs,
        "final_test_acc": fit.history.test_acc[-1], "per_class_acc": dict(zip(class_names, per_class.tolist())),
        "train_seconds": sum(fit.history.seconds), "seed": config.seed, **provenance,
    })
