"""Optuna tuning: the search space, pruning, seeded proposals, storages, and two workers on one study."""
from __future__ import annotations

import os
import subprocess
import sys

import optuna
import pytest
from matplotlib import pyplot as plt

from cv_helpers.errors import ConfigError
from cv_helpers.fixtures import make_fixture_data
from cv_helpers.train import TrainConfig
from cv_helpers.tune import (SearchSpace, create_or_load_study, open_storage, run_study, suggest_config,
                             write_study_report)

BASE = TrainConfig(model="convnet", epochs=2)


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
    assert table.count("\n") == 2 + 3 and "test accuracy (%)" in table
    report = fixture_data / "report"
    assert (report / "tables" / "tune_tiny.csv").is_file()
    assert (report / "figures" / "tune_tiny_history.png").is_file()
    assert (report / "figures" / "tune_tiny_parallel.pdf").is_file()


def test_a_trial_behind_the_median_is_pruned(fixture_data, monkeypatch):
    monkeypatch.setenv("CV_HELPERS_SMOKE", "0")                     # 3 real epochs on the 500 generated images
    study = create_or_load_study("pruning", seed=0)
    for _ in range(2):   # two finished trials far ahead of anything 2 epochs on 500 images can reach
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


def test_sqlite_storage_works_for_a_student(tmp_path):
    study = create_or_load_study("sqlite", f"sqlite:///{tmp_path}/studies.db")
    assert study.study_name == "sqlite" and (tmp_path / "studies.db").is_file()


def test_two_workers_share_one_postgresql_study(tmp_path):
    url = os.environ.get("CV_HELPERS_TEST_POSTGRES")
    if not url:
        pytest.skip("needs a PostgreSQL server: set CV_HELPERS_TEST_POSTGRES=postgresql://... (.ci/run starts one "
                    "on 127.0.0.1 and sets it)")
    make_fixture_data(tmp_path / "data")
    env = {**os.environ, "CV_HELPERS_DATA": str(tmp_path / "data"), "CV_HELPERS_RUNS": str(tmp_path / "runs"),
           "OMP_NUM_THREADS": "1"}
    study_name = f"distributed-{os.getpid()}"
    command = [sys.executable, "-m", "cv_helpers", "tune", "--study", study_name, "--trials", "3", "--epochs", "1",
               "--storage", url]
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
