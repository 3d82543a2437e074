"""Run folders: safe names, one training at a time (real processes), stale locks, complete results only."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from cv_helpers.config import runs_dir
from cv_helpers.errors import ConfigError
from cv_helpers.train import TrainConfig
from cv_helpers.workbench.experiment import run_experiment
from cv_helpers.workbench.results import load_runs, summarise
from cv_helpers.workbench.runs import LOCKS, RunBusy, RunLock, retrain_folder, run_folder
from cv_helpers.workbench.widgets import train_and_plot

TINY = TrainConfig(model="mlp", epochs=1, batch_size=128)


@pytest.mark.parametrize("name", ["..", "../escape", "/tmp/x", "", ".hidden", "a/b", "x" * 101, "tab\tname"])
def test_a_run_name_that_is_not_one_safe_folder_name_is_refused_before_any_work(name):
    before = sorted(runs_dir().iterdir()) if runs_dir().is_dir() else []
    with pytest.raises(ConfigError, match=r"is not allowed; use letters, digits and \. - _ = \+, not starting with "
                                          r"a dot, at most 100 characters"):
        run_experiment(TINY, name, progress=False)
    assert (sorted(runs_dir().iterdir()) if runs_dir().is_dir() else []) == before


def test_a_run_name_differing_only_in_case_from_an_existing_run_is_refused(data_root):
    run_experiment(TINY, "Case-Run", progress=False)
    with pytest.raises(ConfigError, match="differs only in letter case from the existing 'smoke-Case-Run'"):
        run_experiment(TINY, "case-run", progress=False)


def _wait_for_lock(runs: Path, name: str, timeout: float = 120) -> dict:
    path, deadline = runs / LOCKS / f"{name}.lock", time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and path.read_text():
            return json.loads(path.read_text())
        time.sleep(0.05)
    raise AssertionError(f"no lock appeared at {path}")


def _without_times(metrics: dict) -> dict:
    history = {k: v for k, v in metrics["history"].items() if k != "seconds"}
    return {"history": history, "final_test_acc": metrics["final_test_acc"], "per_class_acc": metrics["per_class_acc"]}


def test_a_run_being_trained_is_refused_at_once_with_one_line_and_nothing_written(child_env):
    runs = Path(child_env["CV_HELPERS_RUNS"])
    command = [sys.executable, "-m", "cv_helpers.workbench", "train", "--model", "mlp", "--epochs", "1",
               "--batch-size", "128", "--no-progress", "--run-name", "same"]
    before = set(runs.iterdir()) if runs.is_dir() else set()
    with RunLock(runs, "same", 6) as lock:                              # this process trains "same", at epoch 2 of 6
        lock.update(2)
        refused = subprocess.run(command, env=child_env, capture_output=True, text=True, timeout=120)
        assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
        assert refused.stderr.startswith(f"error: runs/same is being trained by process {os.getpid()} on this "
                                         "machine since "), refused.stderr
        assert "(epoch 2 of 6); wait for it, or use another run name (--run-name)" in refused.stderr
        assert set(runs.iterdir()) - {runs / LOCKS} == before - {runs / LOCKS}      # no run folder, no retrain
    trained = subprocess.run(command, env=child_env, capture_output=True, text=True, timeout=300)
    assert trained.returncode == 0, trained.stderr                      # the same command once the lock is free
    assert json.loads((runs / "same" / "config.json").read_text())["model"] == "mlp"
    assert not (runs / LOCKS / "same.lock").read_text()                     # released


def test_a_lock_left_by_a_killed_process_is_taken_over_with_a_note(tmp_path, capsys):
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from pathlib import Path; "
                               "from cv_helpers.workbench.runs import RunLock\n"
                               "with RunLock(Path(sys.argv[1]), 'crashed', 15):\n    time.sleep(120)",
                               str(tmp_path)])
    record = _wait_for_lock(tmp_path, "crashed")
    with pytest.raises(RunBusy, match=f"being trained by process {holder.pid} on this machine"):
        RunLock(tmp_path, "crashed").__enter__()
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    with RunLock(tmp_path, "crashed", 3):
        assert json.loads((tmp_path / LOCKS / "crashed.lock").read_text())["pid"] == os.getpid()
    assert f"took over runs/crashed from process {record['pid']}, which is no longer running" in \
        capsys.readouterr().out


def test_a_run_being_evaluated_is_reported_as_such(tmp_path):
    with RunLock(tmp_path, "measured", action="evaluated"):
        with pytest.raises(RunBusy, match=f"runs/measured is being evaluated by process {os.getpid()} on this "
                                          r"machine since \d\d:\d\d; wait for it"):
            RunLock(tmp_path, "measured").__enter__()


def test_a_lock_written_by_another_host_is_reported_with_its_name_not_broken(tmp_path):
    (tmp_path / LOCKS).mkdir()
    lock = tmp_path / LOCKS / "shared.lock"
    lock.write_text(json.dumps({"pid": 4242, "host": "other-host", "started": 0, "epoch": 7, "epochs": 15}))
    with pytest.raises(RunBusy, match=r"runs/shared is being trained by process 4242 on host other-host since "
                                      r"\d\d:\d\d \(epoch 7 of 15\); wait for it, or, if that process is gone, delete"):
        RunLock(tmp_path, "shared").__enter__()
    assert json.loads(lock.read_text())["host"] == "other-host"


def test_the_widget_prints_the_one_line_refusal_for_a_run_being_trained(data_root, capsys):
    with RunLock(runs_dir(), "smoke-panel-run", 5):
        history = train_and_plot("mlp", "adam", 1e-3, 128, 1, 0.0, 0.9, "none", run_name="panel-run")
    assert history is None
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(lines) == 1 and re.fullmatch(
        rf"error: runs/smoke-panel-run is being trained by process {os.getpid()} on this machine since \d\d:\d\d "
        r"\(epoch 0 of 5\); wait for it, or use another run name \(--run-name\)", lines[0]), lines


def test_the_results_table_marks_a_run_in_progress_instead_of_waiting(tmp_path):
    run_dir = tmp_path / "q1.3-mlp"
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps({"epochs": 1, "seed": 0}))
    (run_dir / "metrics.json").write_text(json.dumps({"history": {"test_acc": [12.0]}, "final_test_acc": 12.0,
                                                      "train_seconds": 30.0, "train_size": 50_000,
                                                      "test_size": 10_000}))
    with RunLock(tmp_path, "q1.3-mlp", 10) as lock:
        lock.update(3)
        row = summarise(load_runs(tmp_path), tmp_path)[0]
    assert row[2] == "12.00" and row[10] == "retrain in progress (epoch 3 of 10)"
    assert summarise(load_runs(tmp_path), tmp_path)[0][10] == ""


def test_a_retrain_keeps_the_old_complete_numbers_until_it_completes(data_root):
    config = TrainConfig(model="mlp", epochs=2, batch_size=128)
    run_dir = run_experiment(replace(config, seed=0), "kept", progress=False).run_dir
    old = (run_dir / "metrics.json").read_text()

    def interrupt_after_first_epoch(progress):
        assert (run_dir / "metrics.json").read_text() == old          # the old result stays readable meanwhile
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_experiment(replace(config, seed=1), "kept", on_epoch_end=interrupt_after_first_epoch, progress=False)
    assert (run_dir / "metrics.json").read_text() == old
    assert (retrain_folder(run_dir) / "checkpoint.pt").is_file()
    finished = run_experiment(replace(config, seed=1), "kept", resume=True, progress=False)
    new = json.loads((run_dir / "metrics.json").read_text())
    assert new["seed"] == 1 and new["final_test_acc"] == finished.test_acc and len(new["history"]["test_acc"]) == 2
    assert not retrain_folder(run_dir).exists()


def test_a_finished_run_reused_with_its_weights_keeps_its_files_byte_for_byte(data_root):
    run_dir = run_experiment(TINY, "reused", progress=False).run_dir
    config = json.loads((run_dir / "config.json").read_text())
    del config["whitened_init"]                     # as a run written before that setting existed records it
    (run_dir / "config.json").write_text(json.dumps(config))
    before = {path.name: path.read_bytes() for path in run_dir.iterdir()}
    reused = run_experiment(TINY, "reused", resume=True, progress=False)
    assert reused.epochs_trained == 0 and reused.model is not None
    assert {path.name: path.read_bytes() for path in run_dir.iterdir()} == before


def test_a_damaged_config_json_counts_as_no_run_and_is_replaced_when_the_run_trains(data_root):
    run_dir = run_folder("damaged")
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text('{"epochs": ')                     # cut off mid-write by another tool
    result = run_experiment(TINY, "damaged", resume=True, progress=False)
    assert result.epochs_trained == 1 and json.loads((run_dir / "config.json").read_text())["epochs"] == 1


def test_a_preset_trained_twice_in_separate_processes_gives_bit_identical_weights_and_metrics(child_env):
    env = {**child_env, "CV_HELPERS_SMOKE": "1"}
    for name in ("twin-a", "twin-b"):
        done = subprocess.run([sys.executable, "-m", "cv_helpers.workbench", "train", "--preset", "q1.3-convnet",
                               "--run-name", name, "--no-progress"], env=env, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stderr
    runs = Path(env["CV_HELPERS_RUNS"])
    a, b = (torch.load(runs / f"smoke-{n}" / "checkpoint.pt", weights_only=False) for n in ("twin-a", "twin-b"))
    assert a["model_state"].keys() == b["model_state"].keys()
    assert all(torch.equal(a["model_state"][k], b["model_state"][k]) for k in a["model_state"])
    metrics = [json.loads((runs / f"smoke-{n}" / "metrics.json").read_text()) for n in ("twin-a", "twin-b")]
    assert _without_times(metrics[0]) == _without_times(metrics[1])
