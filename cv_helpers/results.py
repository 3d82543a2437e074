"""The results registry: every run folder's config.json and metrics.json, summarised per protocol.

A protocol is a preset's name; its runs are named after it, with an optional seed suffix: q1.3-convnet,
q1.3-convnet-seed1 and q1.3-convnet-seed2 are three seeds of q1.3-convnet. Smoke runs (smoke-*) never enter the
table, and accuracies on generated data are not reported.
"""
from __future__ import annotations

import json
import re
import statistics
from dataclasses import dataclass
from pathlib import Path

from .config import runs_dir
from .presets import PRESETS
from .tables import save_table

# The seed report's numbers (test accuracy in %), by protocol.
SEED_RESULTS = {"q1.3-mlp": 11.0, "q1.3-convnet": 22.0, "q1.4-mlp": 22.0, "q1.4-convnet": 56.0,
                "q2-finetune": 82.58}


@dataclass
class RunRecord:
    """One finished run as saved on disk."""

    name: str
    config: dict
    metrics: dict

    @property
    def protocol(self) -> str:
        return re.sub(r"-seed\d+$", "", self.name)

    @property
    def test_acc(self) -> float:
        return float(self.metrics["final_test_acc"])


def load_runs(folder: Path | None = None) -> list[RunRecord]:
    """Returns every finished, non-smoke run under runs/ (those with a final accuracy), sorted by name."""
    folder, records = folder or runs_dir(), []
    for run_dir in sorted(folder.iterdir()) if folder.is_dir() else []:
        config_path, metrics_path = run_dir / "config.json", run_dir / "metrics.json"
        if run_dir.name.startswith("smoke-") or not (config_path.is_file() and metrics_path.is_file()):
            continue
        metrics = json.loads(metrics_path.read_text())
        if "final_test_acc" in metrics:
            records.append(RunRecord(run_dir.name, json.loads(config_path.read_text()), metrics))
    return records


def summarise(records: list[RunRecord]) -> list[list]:
    """Returns one row per protocol: seed's number, ours (mean, spread, seeds), epochs, time, device, data."""
    rows = []
    for protocol in [name for name in PRESETS if any(r.protocol == name for r in records)]:
        group = [r for r in records if r.protocol == protocol]
        real = [r for r in group if r.metrics.get("data_source", "cifar100") != "generated fixture"]
        accuracies = [r.test_acc for r in real]
        mean = f"{statistics.mean(accuracies):.2f}" if accuracies else "n/a (generated fixture only)"
        spread = f"± {statistics.stdev(accuracies):.2f}" if len(accuracies) > 1 else ""
        seed_number = SEED_RESULTS.get(protocol)
        rows.append([protocol, f"{seed_number:.2f}" if seed_number is not None else "", mean, spread,
                     len(accuracies), group[0].config["epochs"],
                     f"{statistics.mean(r.metrics['train_seconds'] for r in group) / 60:.1f}",
                     group[0].metrics.get("device", ""), group[0].metrics.get("data_source", "cifar100")])
    return rows


HEADERS = ["protocol", "seed report (%)", "ours (%)", "spread", "seeds", "epochs", "minutes per run", "device",
           "data"]


def write_results_table(folder: Path | None = None) -> str:
    """Writes report/tables/results.md and .csv from the run folders; returns the Markdown."""
    return save_table("results", HEADERS, summarise(load_runs(folder)))
