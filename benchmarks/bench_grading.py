"""How long the grader takes for one submission: the checks alone, and the checks with the five notebooks in smoke
mode (the course's "Restart & Run All"). The submission is the solution as shipped, so every check runs to its end
(a blank edition fails fast and would flatter the grader). The machine's fp32 matmul rate is recorded beside the
minutes, since this machine's speed drifts from day to day. Results: benchmarks/results/grading-cpu-N-threads.json.

    python benchmarks/bench_grading.py [--out PATH]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from bench_training import matmul_gflops
from cv_helpers.config import describe_device
from cv_helpers.workbench.edition import copy_solution
from cv_helpers.workbench.grader import grade_submission

TARGET_MINUTES = {"checks only": 3, "checks and notebooks": 10}      # the course's limits per submission


def time_grading(notebooks: list[str] | None) -> dict:
    """Grades a fresh copy of the solution; returns its minutes, points and notebooks run."""
    with tempfile.TemporaryDirectory() as scratch:
        submission = copy_solution(Path(scratch) / "submission")
        started = time.perf_counter()
        grades = grade_submission(submission, Path(scratch) / "work", notebooks=notebooks)
        minutes = (time.perf_counter() - started) / 60
    auto = [score for score in grades["tasks"] if not score["by_hand"]]
    return {"minutes": round(minutes, 2),
            "points": f"{sum(s['earned'] for s in auto):g} of {sum(s['points'] for s in auto):g}",
            "notebooks_run": f"{sum(r['ran'] for r in grades['notebooks'])} of {len(grades['notebooks'])}",
            "failed": [r["why"] for r in grades["notebooks"] if not r["ran"]]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None, help="the JSON to write (default: results/grading-...)")
    args = parser.parse_args()
    cpu = torch.device("cpu")
    result = {"device": describe_device(cpu), "threads": torch.get_num_threads(),
              "matmul_fp32_gflops": round(matmul_gflops(cpu)), "target_minutes": TARGET_MINUTES,
              "checks only": time_grading([]), "checks and notebooks": time_grading(None)}
    out = args.out or Path(__file__).parent / "results" / f"grading-cpu-{torch.get_num_threads()}-threads.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
