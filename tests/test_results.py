"""The results registry reads run folders and summarises each protocol over seeds."""
from __future__ import annotations

import json

import pytest
import torch

from cv_helpers.workbench.results import (MIN_SPREAD, ON_TEST, TIME_TO_ACCURACY_HEADERS, WHAT_WORKED, load_runs,
                                          measured_accuracy, reading, reproduce_command, seed_spread,
                                          summarise, time_to_accuracy, what_worked, write_results_table)


def _run(folder, name, accuracy, source="cifar100", epochs=10, seconds=120.0, seed=0, sizes=(50_000, 10_000)):
    run_dir = folder / name
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps({"epochs": epochs, "seed": seed}))
    history = {"test_acc": [accuracy] * epochs}
    (run_dir / "metrics.json").write_text(json.dumps({"history": history, "final_test_acc": accuracy,
                                                      "train_seconds": seconds, "device": "cpu (2 threads)",
                                                      "data_source": source, "train_size": sizes[0],
                                                      "test_size": sizes[1]}))


def test_protocol_rows_average_over_seeds_next_to_the_seed_report(tmp_path):
    for name, accuracy in [("q1.3-convnet", 22.0), ("q1.3-convnet-seed1", 23.0), ("q1.3-convnet-seed2", 24.0)]:
        _run(tmp_path, name, accuracy)
    _run(tmp_path, "smoke-q1.3-convnet", 5.0)
    _run(tmp_path, "q1.4-val-figure6-base", 14.0)            # not a protocol: left out
    rows = summarise(load_runs(tmp_path))
    assert len(rows) == 1
    protocol, seed_number, mean, spread, seeds, epochs, minutes, device, data, split, status, command = rows[0]
    assert (protocol, seed_number, mean, spread, seeds) == ("q1.3-convnet", "22.00", "23.00", "± 1.00", 3)
    assert (epochs, minutes, data, split) == (10, "2.0", "CIFAR-100 (50,000 / 10,000 images)", "test")


def test_a_run_that_chooses_says_it_is_measured_on_the_validation_split(tmp_path):
    _run(tmp_path, "q1.3-convnet-val", 19.0, sizes=(45_000, 5_000))
    metrics = json.loads((tmp_path / "q1.3-convnet-val" / "metrics.json").read_text())
    (tmp_path / "q1.3-convnet-val" / "metrics.json").write_text(json.dumps({**metrics, "evaluated_on": "validation"}))
    row = summarise(load_runs(tmp_path))[0]
    assert (row[0], row[8], row[9]) == ("q1.3-convnet-val", "CIFAR-100 (45,000 / 5,000 images)", "validation")


def test_runs_on_the_real_stl10_sample_say_so_with_their_image_counts(tmp_path):
    _run(tmp_path, "q2-sample-finetune", 62.5, source="stl10 real sample", sizes=(46, 48))
    assert summarise(load_runs(tmp_path))[0][8] == "real STL-10 sample (46 / 48 images)"


def test_runs_on_generated_stl10_publish_no_accuracy(tmp_path):
    _run(tmp_path, "q2-finetune", 99.0, source="stl10 generated", sizes=(250, 200))
    row = summarise(load_runs(tmp_path))[0]
    assert row[2] == "n/a (generated data only)" and row[8] == "generated STL-10 (250 / 200 images)"


def test_unfinished_runs_are_not_results(tmp_path):
    (tmp_path / "q1.3-mlp").mkdir()
    (tmp_path / "q1.3-mlp" / "config.json").write_text("{}")
    (tmp_path / "q1.3-mlp" / "metrics.json").write_text(json.dumps({"history": {}}))
    assert load_runs(tmp_path) == []


def test_a_ladder_rung_reads_its_validation_difference_against_its_segments_seed_spread(tmp_path):
    first = WHAT_WORKED[0]
    for suffix, accuracy in [("", 22.0), ("-seed1", 22.5), ("-seed2", 23.0)]:
        _run(tmp_path, first.spread + suffix, accuracy)                # stdev 0.5: spread 1.00
    _run(tmp_path, first.before, 22.35, seconds=90.0)
    _run(tmp_path, first.after, 25.10, seconds=123.0)
    rows = what_worked(tmp_path)
    assert len(rows) == 1                                     # the other rungs have no runs here
    change, before, after, delta, spread, read, decision, why, minutes, commands = rows[0]
    assert (change, before, after, delta, spread) == (first.change, "22.35", "25.10", "+2.75", "1.00")
    assert (read, decision, why, minutes) == ("gain beyond the seed spread", first.decision, first.why, "1.5 -> 2.0")
    assert commands == (f"`python -m cv_helpers.workbench train --preset {first.before}` and "
                        f"`python -m cv_helpers.workbench train --preset {first.after}`")
    (tmp_path / first.after / "metrics.json").write_text(
        (tmp_path / first.after / "metrics.json").read_text().replace("25.1", "22.9"))
    _, _, _, delta, _, read, _, why, _, _ = what_worked(tmp_path)[0]
    assert (delta, read, why) == ("+0.55", "within the seed spread: no effect shown", "")   # no mechanism
    (tmp_path / f"{first.spread}-seed2").joinpath("metrics.json").unlink()
    assert what_worked(tmp_path) == []                        # no spread, no reading


def test_the_seed_spread_is_twice_the_standard_deviation_of_three_seeds_and_at_least_half_a_point(tmp_path):
    for suffix, accuracy in [("", 40.0), ("-seed1", 41.0), ("-seed2", 42.0)]:
        _run(tmp_path, "wide" + suffix, accuracy)
        _run(tmp_path, "narrow" + suffix, 40.0 + accuracy / 1000)
    assert seed_spread("wide", tmp_path) == pytest.approx(2.0)
    assert seed_spread("narrow", tmp_path) == MIN_SPREAD
    assert seed_spread("absent", tmp_path) is None
    assert reading(-0.49, 0.5).startswith("within") and reading(-0.5, 0.5) == "loss beyond the seed spread"


def test_measured_accuracy_reads_a_run_or_its_re_evaluation(tmp_path):
    _run(tmp_path, "some-run", 55.0)
    (tmp_path / "some-run" / "evaluation-plain.json").write_text(json.dumps({"test_acc": 54.2}))
    assert measured_accuracy("some-run", tmp_path) == 55.0
    assert measured_accuracy("some-run:plain", tmp_path) == 54.2
    assert measured_accuracy("some-run:tta-flip", tmp_path) is None
    assert measured_accuracy("other-run", tmp_path) is None


def test_a_shifted_view_measurement_is_remade_by_its_evaluate_command():
    assert reproduce_command("q3-e4-narrow-val:tta-flip-shift1") == (
        "python -m cv_helpers.workbench train --preset q3-e4-narrow-val; "
        "python -m cv_helpers.workbench evaluate q3-e4-narrow-val --tta-flip --tta-translate 1")


def test_every_change_names_runs_of_the_registry():
    for step in WHAT_WORKED + ON_TEST:
        for reference in (step.before, step.after):
            run_name, _, evaluation = reference.partition(":")
            assert evaluation in ("", "plain", "tta-flip", "tta-flip-shift1") and run_name


def test_results_table_is_written_as_markdown_and_csv(tmp_path, monkeypatch):
    monkeypatch.setenv("CV_HELPERS_REPORT", str(tmp_path / "report"))
    _run(tmp_path / "runs", "q1.4-mlp", 25.5)
    markdown = write_results_table(tmp_path / "runs")
    assert "| q1.4-mlp | 22.00 | 25.50 |" in markdown
    assert (tmp_path / "report" / "tables" / "results.csv").read_text().startswith("protocol,2023 reference report (%)")


def test_notebook_times_keep_the_rows_of_notebooks_not_run_this_time(tmp_path, monkeypatch, full_mode):
    from cv_helpers.config import cpu_model, default_device, describe_device
    from cv_helpers.workbench.notebooks import record_times

    monkeypatch.setenv("CV_HELPERS_REPORT", str(tmp_path))
    description = describe_device(default_device())                    # what `run-notebooks` records here
    assert description.startswith("cpu (") and cpu_model() in description
    assert torch.backends.cpu.get_cpu_capability() in description     # the kernels' instruction set
    record_times([("Q1_1.ipynb", 60.0), ("Q2.ipynb", 120.0)], "2 CPU cores")
    markdown = record_times([("Q2.ipynb", 180.0), ("Q3.ipynb", 30.0)], "2 CPU cores")
    assert markdown.splitlines()[2:] == ["| Q1_1.ipynb | 1.00 | 2 CPU cores |", "| Q2.ipynb | 3.00 | 2 CPU cores |",
                                         "| Q3.ipynb | 0.50 | 2 CPU cores |"]
    assert (tmp_path / "tables" / "notebook_times_full.csv").read_text().count("\n") == 4


def test_time_to_accuracy_counts_wall_minutes_until_each_target(tmp_path, monkeypatch, full_mode):
    for name, history in [("fast", {"test_acc": [40.0, 57.0, 69.0, 71.5], "seconds": [120.0, 60.0, 60.0, 90.0]}),
                          ("slow", {"test_acc": [30.0, 50.0], "seconds": [60.0, 60.0]}),
                          ("smoke-fast", {"test_acc": [1.0, 2.0], "seconds": [6.0, 6.0]})]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text(json.dumps({"history": history, "device": "cpu x"}))
    rows = time_to_accuracy(["fast", "slow"], tmp_path)
    assert rows == [["fast", 4, "5.5", "71.50", "3.0", "5.5", "cpu x"],
                    ["slow", 2, "2.0", "50.00", "not reached", "not reached", "cpu x"]]
    assert TIME_TO_ACCURACY_HEADERS[-3:-1] == ["minutes to 56 %", "minutes to 70 %"]
    monkeypatch.setenv("CV_HELPERS_SMOKE", "1")                 # a notebook in smoke mode reads its smoke runs
    assert time_to_accuracy(["fast"], tmp_path) == [["fast", 2, "0.2", "2.00", "not reached", "not reached", "cpu x"]]
