"""Optuna tuning: the search space, pruning, seeded proposals, storages, and two workers on one study."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import optuna
import pytest
from conftest import need
from matplotlib import pyplot as plt

from cv_helpers.errors import ConfigError
from cv_helpers.train import TrainConfig
from cv_helpers.viz import plot_importances, plot_trial_history
from cv_helpers.workbench.tune import (SearchSpace, create_or_load_study, describe_best_trials, open_storage,
                                       parameter_importances, run_study, suggest_config, trial_curves,
                                       write_study_report)
from tests.fixtures import make_fixture_data

BASE = TrainConfig(model="convnet", epochs=2, validation=True)   # a study chooses: on validation


@pytest.fixture()
def fixture_data(tmp_path, monkeypatch):
    """Generated CIFAR-100 archive (500 images) as the data folder; private runs and report folders."""
    make_fixture_data(tmp_path / "data")
    monkeypatch.setenv("CV_HELPERS_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("CV_HELPERS_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("CV_HELPERS_REPORT", str(tmp_path / "report"))
    return tmp_path


def test_tiny_study_runs_three_trials_and_writes_the_table_and_plots(fixture_data):
    study = run_study("tiny", 3, BASE, SearchSpace(epochs=(2,)), seed=0)
    assert len(study.trials) == 3
    assert all(len(t.intermediate_values) >= 1 for t in study.trials)      # accuracy reported every epoch
    style_before = plt.rcParams["axes.facecolor"]
    table = write_study_report(study)
    assert plt.rcParams["axes.facecolor"] == style_before               # Optuna's ggplot style does not leak
    assert table.count("\n") == 2 + 3 + 2 and "validation accuracy (%)" in table
    assert re.search(r"No importances: [0-3] complete trials, fewer than the 10 that make them stable", table)
    report = fixture_data / "report"
    assert (report / "tables" / "tune_tiny.csv").is_file()
    for figure in ("history", "epochs"):
        assert (report / "figures" / f"tune_tiny_{figure}.png").is_file()
    assert (report / "figures" / "tune_tiny_importances.pdf").is_file() == bool(parameter_importances(study))


def _finished_trials(study):
    distributions = {"lr": optuna.distributions.FloatDistribution(1e-4, 0.5, log=True),
                     "epochs": optuna.distributions.CategoricalDistribution((3,))}
    for lr, curve, state in [(0.01, {1: 10.0, 2: 15.0, 3: 18.0}, "COMPLETE"), (0.3, {1: 2.0, 2: 3.0}, "PRUNED"),
                             (0.001, {1: 5.0, 2: 9.0, 3: 12.0}, "COMPLETE")]:
        study.add_trial(optuna.trial.create_trial(
            params={"lr": lr, "epochs": 3}, distributions=distributions, intermediate_values=curve,
            value=curve[3] if state == "COMPLETE" else None, state=optuna.trial.TrialState[state]))


def test_the_study_figures_mark_stopped_trials_and_rank_only_the_parameters_that_varied():
    study = optuna.create_study(direction="maximize")
    _finished_trials(study)
    curves, stopped = trial_curves(study)
    assert curves == {0: [10.0, 15.0, 18.0], 1: [2.0, 3.0], 2: [5.0, 9.0, 12.0]} and stopped == {1}
    assert parameter_importances(study) == {}                       # 2 complete trials: too few to rank anything
    for number in range(8):                                         # 10 complete trials
        study.add_trial(optuna.trial.create_trial(
            params={"lr": 0.002 * (number + 1), "epochs": 3}, value=10.0 + number, intermediate_values={3: 1.0},
            distributions={"lr": optuna.distributions.FloatDistribution(1e-4, 0.5, log=True),
                           "epochs": optuna.distributions.CategoricalDistribution((3,))}))
    assert list(parameter_importances(study)) == ["lr"]              # epochs had one value: nothing to rank
    study.add_trial(optuna.trial.create_trial(                      # a parameter only some trials have
        params={"lr": 0.05, "epochs": 3, "momentum": 0.9}, value=14.0, intermediate_values={1: 14.0},
        distributions={"lr": optuna.distributions.FloatDistribution(1e-4, 0.5, log=True),
                       "epochs": optuna.distributions.CategoricalDistribution((3,)),
                       "momentum": optuna.distributions.FloatDistribution(0.5, 0.99)}))
    assert list(parameter_importances(study)) == ["lr"]
    level = optuna.create_study(direction="maximize")
    for lr in (0.01, 0.1):                                          # equal accuracies: no variance to explain
        level.add_trial(optuna.trial.create_trial(params={"lr": lr}, value=1.0, distributions={
            "lr": optuna.distributions.FloatDistribution(1e-4, 0.5, log=True)}))
    assert parameter_importances(level) == {}
    legend = [t.get_text() for t in plot_trial_history(curves, stopped, "t").axes[0].get_legend().get_texts()]
    assert legend == ["complete (2)", "best so far", "pruned or diverged (1): last epoch"]
    assert plot_importances({"lr": 1.0}, 2).axes[0].get_title() == "What mattered, from 2 complete trials"
    plt.close("all")


def test_a_study_with_enough_trials_is_reused_with_one_plain_line(tmp_path, capsys):
    journal = str(tmp_path / "journal.log")
    _finished_trials(create_or_load_study("done", journal))
    before = (tmp_path / "journal.log").read_bytes()
    study = run_study("done", 3, BASE, SearchSpace(epochs=(3,)), storage=journal, total=True)
    assert len(study.trials) == 3 and capsys.readouterr().out == "reused study done: 3 finished trials\n"
    assert (tmp_path / "journal.log").read_bytes() == before          # reusing a study writes nothing


def test_a_trial_behind_the_median_is_pruned(tmp_path, monkeypatch):
    make_fixture_data(tmp_path / "data", ("cifar100",), cifar_per_class=60)   # 1,000 left beside 5,000 held out
    for name in ("DATA", "RUNS", "REPORT"):
        monkeypatch.setenv(f"CV_HELPERS_{name}", str(tmp_path / name.lower()))
    monkeypatch.setenv("CV_HELPERS_SMOKE", "0")                     # 3 real epochs
    study = create_or_load_study("pruning", seed=0)
    for _ in range(2):   # two finished trials far ahead of anything 2 epochs on 1,000 images can reach
        study.add_trial(optuna.trial.create_trial(
            params={"lr": 0.01}, distributions={"lr": optuna.distributions.FloatDistribution(1e-4, 0.5, log=True)},
            value=99.0, intermediate_values={1: 99.0, 2: 99.0, 3: 99.0}))
    run_study("pruning", 1, BASE, SearchSpace(epochs=(3,)), seed=0)
    last = create_or_load_study("pruning").trials[-1]
    assert last.state == optuna.trial.TrialState.PRUNED
    assert len(last.intermediate_values) == 2                       # judged after epoch 2, not trained to 3


def test_same_seed_proposes_the_same_parameters(tmp_path):
    def proposals(journal):
        study = create_or_load_study("repeat", str(journal), seed=7)
        return [suggest_config(study.ask(), SearchSpace(), BASE) for _ in range(4)]

    first, second = proposals(tmp_path / "a.log"), proposals(tmp_path / "b.log")
    assert first == second
    assert len({(c.optimizer, c.lr) for c in first}) == 4          # and they do differ from trial to trial


def test_mlp_trials_also_choose_a_hidden_size(tmp_path):
    study = create_or_load_study("mlp", str(tmp_path / "j.log"), seed=1)
    config = suggest_config(study.ask(), SearchSpace(models=("mlp",)), BASE)
    assert config.model_kwargs["hidden_size"] in (64, 512)


def test_a_study_on_the_test_split_is_refused_before_training():
    with pytest.raises(ConfigError, match="a study chooses settings, so it measures on the validation split"):
        run_study("never", 1, TrainConfig(model="convnet"), SearchSpace(), storage="sqlite:///:memory:")


@pytest.mark.parametrize("space, message", [
    (SearchSpace(optimizers=()), "optimizers is empty"),
    (SearchSpace(optimizers=("sgd", "lion")), "search space: unknown optimizers 'lion'"),
    (SearchSpace(lr=(0.1, 0.01)), r"lr range \(0.1, 0.01\) needs low <= high"),
    (SearchSpace(lr=(0.0, 0.1)), "must start above 0"),
    (SearchSpace(batch_sizes=()), "batch_sizes must be a non-empty list"),
    (SearchSpace(momentum=(0.5, 1.0)), r"momentum range .* must lie in \[0, 1\)"),
    (SearchSpace(models=("resnet",)), "search space: unknown models 'resnet'"),
])
def test_invalid_search_settings_are_refused_before_training(space, message):
    with pytest.raises(ConfigError, match=message):
        run_study("never", 1, BASE, space, storage="sqlite:///:memory:")


@pytest.mark.parametrize("url", ["postgresql://nobody@127.0.0.1:1/none", "nosuchdb://x/y"])
def test_broken_storage_url_is_a_clear_error(url):
    with pytest.raises(ConfigError, match="cannot open study storage .*check the URL"):
        open_storage(url)


@pytest.mark.parametrize("url", ["postgresql://student:s3cret-Pw@127.0.0.1:1/none",
                                 "postgresql+nodriver://student:s3cret-Pw@localhost/db"])
def test_a_storage_error_never_shows_the_password(url):
    with pytest.raises(ConfigError) as refused:
        open_storage(url)
    assert "s3cret-Pw" not in str(refused.value) and "'postgresql" in str(refused.value)
    assert "student:***@" in str(refused.value)


def test_sqlite_storage_works_for_a_student(tmp_path):
    study = create_or_load_study("sqlite", f"sqlite:///{tmp_path}/studies.db")
    assert study.study_name == "sqlite" and (tmp_path / "studies.db").is_file()


def test_two_workers_share_one_postgresql_study(tmp_path):
    url = os.environ.get("CV_HELPERS_TEST_POSTGRES")
    need("" if url else "no PostgreSQL server", "set CV_HELPERS_TEST_POSTGRES=postgresql://... (.ci/run starts "
         "one on 127.0.0.1 and sets it)")
    make_fixture_data(tmp_path / "data")
    env = {**os.environ, "CV_HELPERS_DATA": str(tmp_path / "data"), "CV_HELPERS_RUNS": str(tmp_path / "runs"),
           "OMP_NUM_THREADS": "1"}
    study_name = f"distributed-{os.getpid()}"
    command = [sys.executable, "-m", "cv_helpers.workbench", "tune", "--study", study_name, "--trials", "3",
               "--epochs", "1", "--storage", url]
    workers = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    for worker in workers:
        _, stderr = worker.communicate(timeout=600)
        assert worker.returncode == 0, stderr
    trials = create_or_load_study(study_name, url).trials
    assert len(trials) == 6
    assert sorted(t.number for t in trials) == list(range(6))
    assert len({t.user_attrs["worker"] for t in trials}) == 2
    assert all(t.state.is_finished() for t in trials)


def test_the_best_trials_are_read_out_with_their_settings_and_what_they_share():
    study = optuna.create_study(direction="maximize")
    distributions = {"optimizer": optuna.distributions.CategoricalDistribution(("sgd", "adam")),
                     "lr": optuna.distributions.FloatDistribution(1e-4, 0.5, log=True)}
    for optimizer, lr, value in (("sgd", 0.05, 20.0), ("adam", 0.001, 18.0), ("sgd", 0.3, 3.0)):
        study.add_trial(optuna.trial.create_trial(params={"optimizer": optimizer, "lr": lr}, value=value,
                                                  distributions=distributions, intermediate_values={1: value}))
    study.add_trial(optuna.trial.create_trial(params={"optimizer": "adam", "lr": 0.3}, distributions=distributions,
                                              intermediate_values={1: 1.0}, state=optuna.trial.TrialState.PRUNED))
    assert describe_best_trials(study, 2).splitlines() == [
        "4 trials: 3 COMPLETE, 1 pruned", "  trial 0: 20.00 % (lr 0.05, optimizer sgd)",
        "  trial 1: 18.00 % (lr 0.001, optimizer adam)", "optimizer among the 2 best: adam 1, sgd 1"]
