"""Shows that a refactor kept the numerics: each run's metrics.json now against the one committed at a revision.

Every per-epoch number but the seconds (losses, accuracies, learning rates) and the per-class accuracies must be
identical; the seconds are measurements of the machine, not of the code. Retrain the runs first (on the CPU kind
their committed files name), then:

    python benchmarks/same_numbers.py [--rev main] q1.3-mlp q1.3-convnet ...
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def compare(run: str, rev: str) -> tuple[bool, str]:
    """Returns (identical, one line) for the run's metrics.json at `rev` and in the working tree."""
    committed = subprocess.run(["git", "show", f"{rev}:runs/{run}/metrics.json"], cwd=ROOT, capture_output=True,
                               text=True)
    if committed.returncode:
        return False, f"{run}: no metrics.json at {rev}"
    old, new = json.loads(committed.stdout), json.loads((ROOT / "runs" / run / "metrics.json").read_text())
    differing = [key for key in old["history"] if key != "seconds" and old["history"][key] != new["history"].get(key)]
    if old.get("per_class_acc") != new.get("per_class_acc"):
        differing.append("per_class_acc")
    line = (f"{run}: {'identical' if not differing else 'DIFFERENT (' + ', '.join(differing) + ')'}; test accuracy "
            f"{old['final_test_acc']:.2f} -> {new['final_test_acc']:.2f} %, {old['train_seconds']:.0f} -> "
            f"{new['train_seconds']:.0f} s on {new.get('device', '?')}")
    return not differing, line


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--rev", default="HEAD", help="the revision whose metrics.json count (default HEAD)")
    args = parser.parse_args()
    results = [compare(run, args.rev) for run in args.runs]
    for _, line in results:
        print(line)
    return 0 if all(same for same, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
