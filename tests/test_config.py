"""Where output goes in each mode, and the device choice at the boundary."""
from __future__ import annotations

import pytest
import torch

from cv_helpers.config import REPO_ROOT, report_dir, resolve_device, run_name_for, runs_dir
from cv_helpers.errors import ConfigError


def test_smoke_output_goes_under_smoke_and_full_output_to_runs_and_report_when_no_folder_is_set(monkeypatch):
    monkeypatch.delenv("CV_HELPERS_RUNS")
    monkeypatch.delenv("CV_HELPERS_REPORT")
    monkeypatch.setenv("CV_HELPERS_SMOKE", "1")
    assert (runs_dir(), report_dir()) == (REPO_ROOT / "smoke" / "runs", REPO_ROOT / "smoke" / "report")
    assert run_name_for("q1.3-mlp") == "smoke-q1.3-mlp"
    monkeypatch.setenv("CV_HELPERS_SMOKE", "0")
    assert (runs_dir(), report_dir()) == (REPO_ROOT / "runs", REPO_ROOT / "report")
    assert run_name_for("q1.3-mlp") == "q1.3-mlp"


def test_folders_set_in_the_environment_win_in_either_mode(monkeypatch, tmp_path):
    monkeypatch.setenv("CV_HELPERS_RUNS", str(tmp_path / "r"))
    monkeypatch.setenv("CV_HELPERS_REPORT", str(tmp_path / "p"))
    for smoke in ("0", "1"):
        monkeypatch.setenv("CV_HELPERS_SMOKE", smoke)
        assert (runs_dir(), report_dir()) == (tmp_path / "r", tmp_path / "p")


def test_the_tests_run_on_the_cpu_whatever_the_machine_has():
    assert not torch.cuda.is_available() and resolve_device(None) == torch.device("cpu")


@pytest.mark.parametrize("name, message", [
    ("bogus", "unknown device 'bogus'; use cpu or cuda"), ("meta", "device 'meta' is not supported"),
    ("cuda", "device 'cuda' asked for, but torch sees 0 GPU"), ("cuda:1", "device 'cuda:1' asked for")])
def test_a_device_this_machine_cannot_use_is_one_line(name, message):
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match=message):
        resolve_device(name)
