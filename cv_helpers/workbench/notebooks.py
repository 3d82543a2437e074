"""The main job: execute the five notebooks in order, headless, and keep the executed copies in report/."""
from __future__ import annotations

import asyncio
import csv
import re
import time
from dataclasses import replace
from pathlib import Path
from queue import Empty
from typing import Callable, Iterator

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError

from ..config import mode_name, report_dir, run_name_for, runs_dir
from ..errors import CheckpointError, ConfigError
from ..files import read_json, write_text
from ..tables import save_table
from ..train_config import TrainConfig
from .contents import NOTEBOOK_DIR, expand, notebook_contents, q2_strategies
from .experiment import expected_time, preset_of, state_of
from .presets import PRESETS, get_preset
from .runs import LOCKS, training_holder
from .strategies import FULL_FINE_TUNING, pretrained_runs
from .sweep import REPORT_SWEEPS

CELL_TIMEOUT_SECONDS = 6 * 3600


class TrainingProgress:
    """What the runs under `runs` being trained now have done: one line per run each time it finishes an epoch
    (read from the run locks, which the training process updates after every epoch), and one when it is done (read
    from its metrics.json: the lock is gone by then, often before the last epoch was seen)."""

    def __init__(self, runs: Path) -> None:
        self.runs, self.seen = runs, {}

    def new_lines(self) -> list[str]:
        """Returns a line for every run that finished an epoch, or its training, since the last call."""
        lines, training = [], set()
        for lock in sorted((self.runs / LOCKS).glob("*.lock")) if (self.runs / LOCKS).is_dir() else []:
            holder = training_holder(self.runs, lock.stem)
            if not holder or holder.get("action") != "trained" or not holder.get("epoch"):
                continue
            training.add(lock.stem)
            done = (holder["epoch"], holder["epochs"], holder.get("accuracy"))
            if self.seen.get(lock.stem) != done:
                self.seen[lock.stem] = done
                accuracy = "" if done[2] is None else f", {holder.get('split', 'test')} accuracy {done[2]:.2f} %"
                lines.append(f"  {lock.stem}: epoch {done[0]} of {done[1]}{accuracy}")
        for name in sorted(set(self.seen) - training):
            del self.seen[name]
            metrics = read_json(self.runs / name / "metrics.json")
            if metrics.get("epochs_done"):
                lines.append(f"  {name}: done, {metrics['epochs_done']} epochs in "
                             f"{metrics['train_seconds'] / 60:.1f} min, {metrics.get('evaluated_on', 'test')} accuracy "
                             f"{metrics['final_test_acc']:.2f} %")
        return lines


class PollingNotebookClient(NotebookClient):
    """nbclient, but it waits for a cell's reply in 1 s slices, calling `on_poll` after each.

    nbclient blocks in `shell_channel.get_msg(timeout=None)` and can miss the reply of a cell that drives a widget
    (jupyter/nbclient#312): the Q1.1 class browser then hangs until the cell timeout. Polling sees the reply.
    """

    on_poll: Callable[[], None] = staticmethod(lambda: None)

    async def _async_poll_for_reply(self, msg_id, cell, timeout, task_poll_output_msg, task_poll_kernel_alive):
        deadline = time.monotonic() + (timeout or CELL_TIMEOUT_SECONDS)
        while time.monotonic() < deadline:
            try:
                msg = await self.kc.shell_channel.get_msg(timeout=1)
            except Empty:
                await self._async_check_alive()
                self.on_poll()
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


def weight_runs() -> set[str]:
    """Returns the runs whose trained weights the notebooks use: reused only with their checkpoint, trained
    again without it. Every other finished run is read from its files."""
    strategies = q2_strategies()
    pretrained = {name for name, needed in pretrained_runs(strategies).items() if needed}
    declared = {name for contents in notebook_contents() for entry in contents.weights for name in expand(entry)}
    return {*declared, strategies[FULL_FINE_TUNING], *pretrained}


def planned_config(run_name: str) -> TrainConfig:
    """Returns the settings a notebook asks for the run `run_name` with: a sweep's run, or a preset's (seed N for
    NAME-seedN)."""
    sweeps = {name: config for sweep in REPORT_SWEEPS for name, config in sweep.configs().items()}
    if run_name in sweeps:
        return sweeps[run_name]
    seed = re.search(r"-seed(\d+)$", run_name)
    return replace(get_preset(preset_of(run_name)), seed=int(seed.group(1)) if seed else 0)


def training_plan(stems: list[str]) -> str:
    """Returns what running these notebooks will train and reuse, as `run_state` decides it for each run (the
    notebooks' calls ask the same function), with the time each training took when its metrics.json was made."""
    planned = list(dict.fromkeys(name for contents in notebook_contents() if contents.stem in stems
                                 for name in contents.run_names()))
    weights = weight_runs()
    lines, total, reused, to_train = [], 0.0, 0, set()
    for name in planned:
        try:
            plan = state_of(name, planned_config(name), name in weights)
        except CheckpointError as err:
            lines.append(f"  refused {name}: {err}")
            continue
        if plan.action == "reuse":
            reused += 1
            continue
        to_train.add(name)
        run_dir = runs_dir() / run_name_for(name)
        total += read_json(run_dir / "metrics.json").get("train_seconds", 0) / 60
        lines.append(f"  {plan.action} {name} ({plan.reason}): {expected_time(run_dir)}")
    head = (f"{len(planned) - reused} runs to train, about {total:.0f} min from the committed run times; "
            f"{reused} finished runs are reused")
    starts = {_start_of(name) for name in planned} & to_train
    if starts:
        lines.append(f"  then, if {', '.join(sorted(starts))} comes out different from its committed run (another CPU "
                     "kind, changed code), the runs fine-tuned from it train again")
    return "\n".join([head, *lines])


def _start_of(run_name: str) -> str:
    """Returns the run that the preset of `run_name` (NAME or NAME-seedN) fine-tunes, or ''."""
    preset = PRESETS.get(preset_of(run_name))
    return preset.init_from if preset is not None else ""


def notebook_paths(names: list[str] | None = None, folder: Path = NOTEBOOK_DIR) -> list[Path]:
    """Returns the notebooks of `folder` to run: all, in name order, or those named (file names or stems); a name
    that is none of them is a ConfigError listing them."""
    paths = sorted(folder.glob("*.ipynb"))
    known = {p.name for p in paths} | {p.stem for p in paths}
    unknown = [name for name in names or [] if name not in known]
    if unknown:
        raise ConfigError(f"no notebook named {', '.join(map(repr, unknown))} in {folder.name}/; choose from "
                          f"{', '.join(p.stem for p in paths)}")
    return [p for p in paths if p.name in names or p.stem in names] if names else paths


def run_notebooks(names: list[str] | None = None, folder: Path = NOTEBOOK_DIR,
                  progress: Callable[[str], None] | None = None) -> Iterator[tuple[str, float]]:
    """Executes notebooks of `folder` (all, in name order, or those named) and writes report/notebooks/<name>;
    yields (name, seconds) as each finishes, and gives `progress` a line each time a run that a notebook trains
    finishes an epoch. A failing cell raises nbclient's CellExecutionError after saving the copy with the outputs
    so far. The kernels log errors only (not ipykernel's notice about its local TCP transport)."""
    paths = notebook_paths(names, folder)
    out_dir = report_dir() / "notebooks"
    training = TrainingProgress(runs_dir())

    def report_epochs() -> None:
        for line in training.new_lines():
            progress(line)

    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        client = PollingNotebookClient(notebook, timeout=CELL_TIMEOUT_SECONDS, kernel_name="python3",
                                       resources={"metadata": {"path": str(folder)}},
                                       extra_arguments=["--IPKernelApp.log_level=ERROR"])
        if progress is not None:
            client.on_poll = report_epochs
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
