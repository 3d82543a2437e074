"""Scores the course's auto-graded tasks from the checks in checks/: a task earns its points times the share of its
checks that pass; tasks graded by hand are listed, never scored. Used by the student's self-check (`make check`)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from ..errors import ConfigError
from .tasks import TASKS

Checks = dict[str, list[dict]]      # task -> [{"check": name, "passed": bool, "why": one line}]


def task_scores(checks: Checks) -> list[dict]:
    """Returns, per task in the course's order: id, points, earned, passed and total checks, failures."""
    scores = []
    for task in TASKS:
        results = checks.get(task.id, [])
        passed = sum(result["passed"] for result in results)
        earned = task.points * passed / len(results) if results and not task.by_hand else 0.0
        scores.append({"task": task.id, "points": task.points, "earned": earned, "passed": passed,
                       "checks": len(results), "by_hand": task.by_hand,
                       "failures": [f"{r['check']}: {r['why']}" for r in results if not r["passed"]]})
    return scores


def score_table(scores: list[dict]) -> str:
    """Returns the Markdown table of `task_scores`, then one line per failed check."""
    lines = ["| task | points | checks passed |", "|---|---|---|"]
    for score in scores:
        if score["by_hand"]:
            lines.append(f"| {score['task']} | graded by hand ({score['points']:g}) | - |")
        else:
            lines.append(f"| {score['task']} | {score['earned']:.1f} / {score['points']:g} | "
                         f"{score['passed']} / {score['checks']} |")
    auto = [score for score in scores if not score["by_hand"]]
    lines.append(f"| total | {sum(s['earned'] for s in auto):.1f} / {sum(s['points'] for s in auto):g} | |")
    failures = [f"- {score['task']} {failure}" for score in scores for failure in score["failures"]]
    return "\n".join(lines + (["", "What failed:", *failures] if failures else []))


def run_checks(folder: Path, check_seconds: int = 120, timeout_s: float = 1800) -> Checks:
    """Runs the checks of `folder` (an edition, a submission being graded or the solution: its checks/ against its
    cv_helpers/) in a fresh interpreter, each check stopped after `check_seconds`, and returns their results per
    task."""
    folder = Path(folder).resolve()
    if not (folder / "checks").is_dir():
        raise ConfigError(f"{folder} has no checks/ folder; run the self-check from the edition's folder")
    with tempfile.TemporaryDirectory() as scratch:
        results = Path(scratch) / "checks.json"
        env = {**os.environ, "PYTHONPATH": str(folder), "CV_HELPERS_CHECK_RESULTS": str(results),
               "CV_HELPERS_CHECK_SECONDS": str(check_seconds)}
        subprocess.run([sys.executable, "-m", "pytest", "checks", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
                        "--no-header", "-rN"], cwd=folder, env=env, timeout=timeout_s, capture_output=True)
        if not results.is_file():
            raise ConfigError(f"the checks in {folder / 'checks'} did not run; run `python -m pytest checks` there "
                              "to see why")
        return json.loads(results.read_text())
