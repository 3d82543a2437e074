"""The published results can be trusted: tests never touch them, every run is a preset's protocol, and the
results tables are exactly what `report-tables` builds from the committed run files."""
from __future__ import annotations

import csv
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
from dataclasses import asdict, replace
from pathlib import Path

import pytest
from conftest import digest

from cv_helpers.config import run_name_for
from cv_helpers.train import TrainConfig
from cv_helpers.workbench.experiment import preset_of
from cv_helpers.workbench.presets import PRESETS
from cv_helpers.workbench.report import build_report
from cv_helpers.workbench.results import ON_TEST, WHAT_WORKED, on_test, what_worked, write_results_table
from cv_helpers.workbench.sweep import REPORT_SWEEPS

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("notebook", ["Q1_1_cifar100_visualisation.ipynb"])
def test_running_a_notebook_test_by_hand_leaves_the_repository_results_unchanged(notebook):
    # As a TA would, from the repository root, with none of the variables the test session set. (Every test
    # session, this one included, is also checked as a whole by the root conftest's guard on report/ and runs/.)
    env = {k: v for k, v in os.environ.items() if k not in ("CV_HELPERS_SMOKE", "CV_HELPERS_RUNS",
                                                               "CV_HELPERS_REPORT")}
    before = digest()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"notebooks/{notebook}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:]
    assert digest() == before


@pytest.fixture(scope="module")
def committed_runs(tmp_path_factory) -> Path:
    """runs/ as the last commit has it: what the README publishes, whatever `make report` retrained since in this
    clone (on another CPU kind, other numbers)."""
    folder = tmp_path_factory.mktemp("committed")
    archive = subprocess.run(["git", "archive", "HEAD", "runs"], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder / "runs"


def _committed_runs() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "runs/*/config.json"], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout.split()
    return [ROOT / Path(path).parent for path in listed]


def test_the_ladder_decides_on_validation_runs_only_and_the_test_table_reads_no_validation_run():
    for step in WHAT_WORKED:
        for reference in (step.before, step.after):
            assert PRESETS[reference.partition(":")[0]].validation, f"{reference} would choose on the test split"
    for step in ON_TEST:
        for reference in (step.before, step.after):
            assert not PRESETS[reference.partition(":")[0]].validation, reference


def test_every_ladder_rung_names_runs_of_presets():
    for step in WHAT_WORKED + ON_TEST:
        for reference in (step.before, step.after):
            assert reference.partition(":")[0] in PRESETS, reference


def test_every_ladder_decision_agrees_with_what_its_committed_runs_read():
    rows = what_worked(ROOT / "runs")
    assert len(rows) == len(WHAT_WORKED), "every rung of the ladder has its runs and its seed spread committed"
    for change, *_, read, decision, why, _, _ in rows:
        if read == "gain beyond the seed spread":
            assert decision.startswith("kept"), change
        elif read == "loss beyond the seed spread":
            assert decision.startswith("dropped") or "for time" in decision, change
        else:                                                 # no effect shown: kept only for a stated reason
            assert decision.startswith("dropped") or ":" in decision, change


def test_the_test_split_table_chooses_nothing_and_its_runs_are_committed():
    assert len(on_test(ROOT / "runs")) == len(ON_TEST)
    for step in ON_TEST:
        assert not step.before.endswith("-val") and not step.after.endswith("-val") and not step.spread


def test_every_committed_run_was_trained_with_exactly_its_presets_settings():
    sweep = {name: config for sweep in REPORT_SWEEPS for name, config in sweep.configs().items()}
    for run_dir in _committed_runs():
        saved = TrainConfig.from_dict(json.loads((run_dir / "config.json").read_text()))   # absent keys: defaults
        preset = preset_of(run_dir.name)
        expected = replace(PRESETS[preset], seed=saved.seed) if preset in PRESETS else sweep.get(run_dir.name)
        assert expected is not None, f"{run_dir.name} is neither a preset (or a seed of one) nor a sweep run"
        assert replace(saved, model_kwargs={}) == replace(expected, model_kwargs={}), run_dir.name
        assert expected.model_kwargs.items() <= saved.model_kwargs.items(), run_dir.name


REPORT_FILES = ("tables/results.md", "tables/results.csv", "tables/what_worked.md", "tables/what_worked.csv",
                "tables/what_worked_on_test.md", "tables/what_worked_on_test.csv", "tables/results_on_test.md",
                "tables/results_on_test.csv", "tables/results_on_validation.md", "tables/results_on_validation.csv",
                "report.md", "report.typ", "report.pdf")


def _stale_report_files(runs: Path, report: Path, work: Path, monkeypatch) -> list[str]:
    """Returns the files of `report` that differ from what `report-tables` builds from `runs` (in a copy in `work`)."""
    rebuilt = work / "rebuilt"
    shutil.copytree(report, rebuilt)
    monkeypatch.setenv("CV_HELPERS_REPORT", str(rebuilt))
    monkeypatch.setenv("CV_HELPERS_SMOKE", "0")
    write_results_table(runs)
    build_report(rebuilt)
    return [name for name in REPORT_FILES if (rebuilt / name).read_bytes() != (report / name).read_bytes()]


def test_results_tables_and_report_are_what_report_tables_builds_from_the_committed_runs(tmp_path, monkeypatch):
    stale = _stale_report_files(ROOT / "runs", ROOT / "report", tmp_path, monkeypatch)
    assert not stale, f"stale in report/: {stale}; run `python -m cv_helpers.workbench report-tables`"


def test_after_make_report_retrained_a_run_with_other_numbers_the_report_and_readme_checks_still_hold(
        tmp_path, monkeypatch, committed_runs):
    # A student's clone on another CPU kind: `make report` retrains q1.3-convnet (its weights are used) and gets
    # other numbers, then rebuilds the report from them. The report matches its runs; the README, the commit's.
    runs, report = tmp_path / "runs", tmp_path / "report"
    shutil.copytree(ROOT / "runs", runs)
    shutil.copytree(ROOT / "report", report)
    metrics = json.loads((runs / "q1.3-convnet" / "metrics.json").read_text())
    metrics["final_test_acc"] += 0.38
    metrics["history"]["test_acc"][-1] += 0.38
    (runs / "q1.3-convnet" / "metrics.json").write_text(json.dumps(metrics))
    assert _stale_report_files(runs, report, tmp_path / "first", monkeypatch)      # report/ is now out of date
    monkeypatch.setenv("CV_HELPERS_REPORT", str(report))
    write_results_table(runs)
    build_report(report)                                                         # as `make report` ends
    assert _stale_report_files(runs, report, tmp_path / "second", monkeypatch) == []
    _check_readme_results(committed_runs)


def _finished(runs: Path, name: str, seconds: float = 1.0, **metrics) -> Path:
    """Writes a complete run folder `name` (smoke-prefixed in smoke mode) under `runs`, with the settings its
    notebook asks for."""
    from cv_helpers.workbench.experiment import recorded_config
    from cv_helpers.workbench.notebooks import planned_config

    config = recorded_config(planned_config(name))
    folder = runs / run_name_for(name)
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(asdict(config)))
    (folder / "metrics.json").write_text(json.dumps({"history": {"test_acc": [20.0] * config.epochs},
                                                     "train_seconds": seconds, "device": "cpu (x)", **metrics}))
    return folder


def test_the_main_job_first_says_which_runs_it_will_train_and_for_how_long(tmp_path, monkeypatch):
    from cv_helpers.workbench.notebooks import training_plan

    monkeypatch.setenv("CV_HELPERS_RUNS", str(tmp_path))
    for name, seconds in (("q1.3-mlp", 30.0), ("q1.3-convnet", 84.0), ("q1.3-mlp-seed1", 31.0)):
        _finished(tmp_path, name, seconds)
    (tmp_path / run_name_for("q1.3-convnet") / "checkpoint.pt").write_bytes(b"finished")
    plan = training_plan(["Q1_2-3_baseline_training"]).splitlines()
    # q1.3-mlp is finished, but the notebook uses its weights and its checkpoint is missing; q1.3-mlp-seed1 is
    # finished and only its numbers are used; q1.3-convnet is finished with its checkpoint
    assert plan[:2] == ["4 runs to train, about 0 min from the committed run times; 2 finished runs are reused",
                        "  retrain q1.3-mlp (its weights are used and its checkpoint is missing): about 0.5 min the "
                        "last time (on cpu (x))"]
    assert "  train q1.3-convnet-seed1 (no run yet): time unknown (never trained here)" in plan and len(plan) == 5
    assert not any("q1.3-mlp-seed1" in line for line in plan)


def test_the_q2_start_points_are_trained_only_where_their_weights_are_used(tmp_path, monkeypatch):
    from cv_helpers.workbench.experiment import start_point
    from cv_helpers.workbench.strategies import TRAINING_STRATEGIES, pretrained_runs
    from cv_helpers.workbench.notebooks import training_plan

    monkeypatch.setenv("CV_HELPERS_RUNS", str(tmp_path))
    strategies = TRAINING_STRATEGIES["real sample"]
    assert pretrained_runs(strategies) == {"q1.4-convnet": True, "q3-best": True}
    q3 = _finished(tmp_path, "q3-best")
    for seed in ("", "-seed1", "-seed2"):
        _finished(tmp_path, f"q2-sample-plus{seed}", start_point=start_point("q3-best"))
    assert pretrained_runs(strategies) == {"q1.4-convnet": True, "q3-best": False}
    assert not any("q2-sample-plus" in line for line in training_plan(["Q2_stl10_finetuning_tsne"]).splitlines())
    metrics = json.loads((q3 / "metrics.json").read_text())
    retrained = [accuracy + 0.5 for accuracy in metrics["history"]["test_acc"]]
    (q3 / "metrics.json").write_text(json.dumps({**metrics, "history": {"test_acc": retrained}}))   # q3-best retrained
    assert pretrained_runs(strategies) == {"q1.4-convnet": True, "q3-best": True}
    plan = training_plan(["Q2_stl10_finetuning_tsne"]).splitlines()
    assert "  retrain q2-sample-plus-seed2 (finished with other settings (start point)): about 0.0 min the last " \
           "time (on cpu (x))" in plan
    assert plan[-1].startswith("  then, if q1.4-convnet, q3-best comes out different from its committed run")


SWEEP_VARIABLES = ("FIGURE6_SWEEP", "MLP_SWEEP")     # the names the notebook runs REPORT_SWEEPS by


def test_each_notebook_declares_the_runs_it_uses():
    from cv_helpers.workbench.contents import NOTEBOOK_DIR, notebook_contents

    for contents in notebook_contents():
        source = (NOTEBOOK_DIR / f"{contents.stem}.ipynb").read_text()
        for name in contents.run_names():
            named_in_source = name in source or any(name in sweep.run_names() and f"run_sweep({variable}" in source
                                                    for sweep, variable in zip(REPORT_SWEEPS, SWEEP_VARIABLES))
            made_by_run_seeds = preset_of(name) in PRESETS and "run_seeds(" in source
            assert named_in_source or made_by_run_seeds, (contents.stem, name)


EXECUTED = ROOT / "report" / "notebooks"
WARNING_SIGNS = re.compile(r"\x1b\[|Traceback \(most recent call last\)|\w*Warning\b|^[WE]\d{4} ", re.MULTILINE)


def _cells(path: Path) -> list[tuple[str, str]]:
    return [(cell["cell_type"], "".join(cell["source"])) for cell in json.loads(path.read_text())["cells"]]


@pytest.mark.parametrize("notebook", sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb")))
def test_the_executed_notebooks_in_the_report_have_the_notebooks_cells(notebook):
    assert (EXECUTED / notebook).is_file(), f"report/notebooks/{notebook} is missing: run `make report`"
    assert _cells(EXECUTED / notebook) == _cells(ROOT / "notebooks" / notebook), \
        f"report/notebooks/{notebook} was executed from other cells than notebooks/{notebook}: run `make report`"


def _output_texts(output: dict) -> list[str]:
    texts = [output.get("text", ""), output.get("evalue", ""), *output.get("traceback", [])]
    texts += [data for kind, data in output.get("data", {}).items() if kind.startswith("text/")]
    return ["".join(text) if isinstance(text, list) else text for text in texts]


ABSOLUTE_PATH = re.compile(r"(?<![\w.])/(?:work|root|home|tmp|Users)/[\w./-]+")


@pytest.mark.parametrize("notebook", sorted(p.name for p in EXECUTED.glob("*.ipynb")))
def test_the_executed_notebooks_show_no_absolute_path_of_the_machine_that_ran_them(notebook):
    cells = json.loads((EXECUTED / notebook).read_text())["cells"]
    texts = "\n".join(text for cell in cells for output in cell.get("outputs", []) for text in _output_texts(output))
    found = sorted(set(ABSOLUTE_PATH.findall(texts)) | ({str(ROOT)} if str(ROOT) in texts else set()))
    assert not found, f"report/notebooks/{notebook} shows paths of the machine that executed it: {found}"


@pytest.mark.parametrize("notebook", sorted(p.name for p in EXECUTED.glob("*.ipynb")))
def test_the_executed_notebooks_show_no_warning_ansi_code_or_traceback(notebook):
    cells = json.loads((EXECUTED / notebook).read_text())["cells"]
    found = []
    for index, cell in enumerate(cells):
        for output in cell.get("outputs", []):
            sign = WARNING_SIGNS.search("\n".join(_output_texts(output)))
            if sign or output["output_type"] == "error":
                found.append((index, output["output_type"], sign.group(0) if sign else "error"))
    assert not found, f"report/notebooks/{notebook}: (cell, output, sign) {found}"


@pytest.mark.parametrize("notebook", sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb")))
def test_each_notebook_declares_exactly_the_figures_and_tables_it_saves(notebook):
    from cv_helpers.workbench.contents import notebook_contents, saved_exports

    declared = {c.stem: {*c.figures, *c.tables} for c in notebook_contents()}[notebook.removesuffix(".ipynb")]
    source = "".join(cell for _, cell in _cells(ROOT / "notebooks" / notebook))
    saved = set(saved_exports(source))
    written_by_the_study_or_ladder = {name for name in declared if name.startswith("tune_")} | {"what_worked",
                                                                                           "what_worked_on_test"}
    assert saved == declared - written_by_the_study_or_ladder


def _readme_results_rows() -> list[list[str]]:
    """The rows of the README's results table that name a preset in their first cell."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Results", 1)[1].split("\n## ", 1)[0]
    return [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in section.splitlines()
            if re.match(r"\| `[\w.-]+` \|", line)]


def _check_readme_results(runs: Path) -> None:
    from cv_helpers.workbench.results import load_runs, summarise

    measured = {row[0]: row for row in summarise(load_runs(runs), runs)}
    rows = _readme_results_rows()
    assert len(rows) >= 10
    for preset, _, _, ours, minutes in rows:
        name = preset.strip("`")
        assert name in measured, f"README names {name}, which has no committed run"
        _, _, mean, spread, seeds, _, run_minutes, *_ = measured[name]
        expected = f"{mean} {spread} % ({seeds} seeds)" if seeds > 1 else f"{mean} % (seed 0)"
        assert (ours.replace("*", ""), minutes) == (expected, run_minutes), name


def test_the_readme_results_are_the_committed_runs(committed_runs):
    _check_readme_results(committed_runs)


def test_every_accuracy_and_point_count_in_the_readme_comes_from_the_runs_or_the_report_tables(committed_runs):
    from cv_helpers.workbench.results import REPORT_RESULTS, load_runs, summarise

    runs = load_runs(committed_runs)
    known = {f"{number:g}" for number in REPORT_RESULTS.values()} | {f"{n:.2f}" for n in REPORT_RESULTS.values()}
    for _, _, mean, spread, *_ in summarise(runs, committed_runs):
        known |= {mean, spread.removeprefix("± ")}
    sample = next(run for run in runs if run.protocol == "q2-sample-finetune")
    known.add(f"{100 / sample.metrics['test_size']:.2f}")                      # one STL-10 sample test image
    with open(ROOT / "report" / "tables" / "q2_strategies.csv", newline="") as table:
        probe = next(row for row in csv.reader(table) if row[0].startswith("(a) linear probe"))
    known.add(probe[2].split(" ± ")[0])
    text = (ROOT / "README.md").read_text()
    quoted = re.findall(r"(\d+(?:\.\d+)?)(?: ± (\d+\.\d+))? ?(?:%|points)", text)
    typed = {number for pair in quoted for number in pair if number} - known
    assert len(quoted) > 20 and not typed, f"numbers typed by hand in README.md: {sorted(typed)}"


def test_the_docs_and_the_notebooks_prose_type_no_measured_accuracy_time_or_rate_by_hand():
    # Measurements live in the run files, the report's tables and the benchmarks' JSON; the docs point to them and
    # the notebooks print them. What prose may state: the reference report's own numbers, targets, limits, settings.
    from cv_helpers.workbench.results import REPORT_RESULTS

    allowed = {f"{number:.2f}" for number in REPORT_RESULTS.values()}
    measured = re.compile(r"(\d+\.\d+) ?(?:%|points|min\b|minutes|s\b|x faster|x slower|GFLOP/s|img/s)")
    prose = {path.name: path.read_text() for path in (ROOT / "docs").glob("*.md")}
    prose |= {f"{path.name} cell {number}": text for path in (ROOT / "notebooks").glob("*.ipynb")
              for number, (kind, text) in enumerate(_cells(path)) if kind == "markdown"}
    typed = {f"{name}: {number}" for name, text in prose.items() for number in measured.findall(text)
             if number not in allowed}
    assert len(prose) > 50 and not typed, f"measured numbers typed by hand: {sorted(typed)}"


def test_the_pil_pipeline_run_lands_within_the_fast_paths_seed_spread():
    # The committed q1.3-convnet-pil run trains the q1.3-convnet protocol through the course's per-image torchvision
    # pipeline; the fast path's three seeds of the same protocol give the spread a different loader may move within.
    def read(name: str) -> tuple[dict, dict]:
        return tuple(json.loads((ROOT / "runs" / name / f"{kind}.json").read_text()) for kind in ("config", "metrics"))

    pil_config, pil = read("q1.3-convnet-pil")
    seeds = [read(name) for name in ("q1.3-convnet", "q1.3-convnet-seed1", "q1.3-convnet-seed2")]
    assert pil_config["loader"] == "pil" and {config["loader"] for config, _ in seeds} == {"fast"}
    same_protocol = {key: value for key, value in pil_config.items() if key not in ("loader", "seed")}
    assert all(same_protocol.items() <= config.items() for config, _ in seeds)
    for measure in (lambda m: m["final_test_acc"], lambda m: m["history"]["train_loss"][-1]):
        values = [measure(metrics) for _, metrics in seeds]
        assert abs(measure(pil) - statistics.mean(values)) <= 3 * statistics.stdev(values), (measure(pil), values)


def test_the_tables_the_notebooks_build_from_run_files_alone_are_what_those_files_give(tmp_path, monkeypatch):
    from cv_helpers.workbench.added_layers import ADDED_LAYERS_HEADERS, added_layers
    from cv_helpers.workbench.experiment import run_seeds
    from cv_helpers.workbench.results import TIME_TO_ACCURACY_HEADERS, time_to_accuracy
    from cv_helpers.workbench.sweep import CLAIM_HEADERS, SWEEP_HEADERS, judge_claims, run_sweep, sweep_table
    from cv_helpers.tables import markdown_table, mean_and_spread

    runs = tmp_path / "runs"         # the committed run files only: a stale run would train here, never in runs/
    for run_dir in _committed_runs():
        for name in ("config.json", "metrics.json"):
            (runs / run_dir.name).mkdir(parents=True, exist_ok=True)
            shutil.copy(run_dir / name, runs / run_dir.name / name)
    monkeypatch.setenv("CV_HELPERS_RUNS", str(runs))
    monkeypatch.setenv("CV_HELPERS_SMOKE", "0")
    before = digest((runs,))
    tables = {"q3_time_to_accuracy": (TIME_TO_ACCURACY_HEADERS,
                                      time_to_accuracy(["q3-best", "q3-e4", "q3-fast", "q3-fast-short"]))}
    seeds = {name: run_seeds(preset) for name, preset in (("TwoLayerNet", "q1.3-mlp"), ("ConvNet", "q1.3-convnet"))}
    tables["q1_3_seeds"] = (["network", "test accuracy (%, mean ± std)", "seeds 0, 1, 2"],
                            [(name, mean_and_spread([r.test_acc for r in runs]), ", ".join(f"{r.test_acc:.2f}"
                                                                                           for r in runs))
                             for name, runs in seeds.items()])
    sweep_rows = {}
    for sweep, name, claims in ((REPORT_SWEEPS[0], "q1_4_sweep", "q1_4_sweep_claims"),
                                (REPORT_SWEEPS[1], "q1_4_mlp_sweep", "q1_4_mlp_claims")):
        rows = sweep_rows[sweep.prefix] = run_sweep(sweep)
        tables[name] = (SWEEP_HEADERS, sweep_table(rows))
        tables[claims] = (CLAIM_HEADERS, judge_claims(rows, sweep))
    tables["q1_4_added_layers"] = (ADDED_LAYERS_HEADERS, added_layers(sweep_rows)[0])
    assert digest((runs,)) == before, "a committed run was trained again: its files are stale"
    for name, (headers, rows) in tables.items():
        assert markdown_table(headers, rows) == (ROOT / "report" / "tables" / f"{name}.md").read_text(), \
            f"report/tables/{name}.md is stale: run `make report`"
