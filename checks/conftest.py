"""The student's self-check: each test is one check of one task (`@pytest.mark.task("Q1.2")`); at the end a table
gives every task's points earned (its points times the share of its checks passed) and one line per failed check.

Run it with `make check` (or `python -m pytest checks`). Checks run on small data in smoke mode, on the CPU.
"""
from __future__ import annotations

import json
import os
import signal
from collections import defaultdict
from pathlib import Path

import pytest

os.environ.setdefault("CV_HELPERS_SMOKE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ["CUDA_VISIBLE_DEVICES"] = ""

from cv_helpers.workbench.grading import score_table, task_scores  # noqa: E402  (after the environment is set)

RESULTS: dict[str, list[dict]] = defaultdict(list)   # task -> [{"check", "passed", "why"}]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "task(id): the course task this check grades")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    marker = item.get_closest_marker("task")
    if marker is None or not (report.when == "call" or report.failed):
        return
    why = ""
    if report.failed and "hidden" in Path(str(item.path)).parts:
        why = "failed (a hidden check: its name and result only)"
    elif report.failed:
        error = call.excinfo.value if call.excinfo else None
        why = f"{type(error).__name__}: {error}".splitlines()[0][:160] if error else "failed"
    RESULTS[marker.args[0]].append({"check": item.name, "passed": report.passed, "why": why})


@pytest.fixture(autouse=True)
def _time_limit():
    """Stops a check that runs over CV_HELPERS_CHECK_SECONDS (an endless loop fails its own task, not the run)."""
    seconds = int(os.environ.get("CV_HELPERS_CHECK_SECONDS", "0"))

    def stop(signum, frame):
        raise TimeoutError(f"the check ran over its {seconds} s limit (an endless loop?)")

    if seconds:
        signal.signal(signal.SIGALRM, stop)
        signal.alarm(seconds)
    yield
    signal.alarm(0)


def pytest_terminal_summary(terminalreporter) -> None:
    terminalreporter.write_line("")
    for line in score_table(task_scores(RESULTS)).splitlines():
        terminalreporter.write_line(line)
    if os.environ.get("CV_HELPERS_CHECK_RESULTS"):
        Path(os.environ["CV_HELPERS_CHECK_RESULTS"]).write_text(json.dumps(RESULTS))
