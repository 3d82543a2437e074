"""One-at-a-time sweeps: their configurations, the verdict of each change, and the report's claims judged."""
from __future__ import annotations

import math

from cv_helpers.workbench.presets import PRESETS
import pytest

from cv_helpers.errors import ConfigError
from cv_helpers.train import TrainConfig
from cv_helpers.workbench.sweep import (MLP_SWEEP, REPORT_SWEEPS, Claim, Sweep, add_verdicts, judge_claims,
                                        one_at_a_time, run_sweep, sweep_table)


def test_sweep_verdicts_weigh_each_change_against_the_spread_of_the_base_seeds():
    rows = [{"change": c, "test_acc": a, "status": s} for c, a, s in [
        ("base", 14.0, "ok"), ("base-seed1", 14.4, "ok"), ("base-seed2", 13.6, "ok"), ("batch_size=64", 18.2, "ok"),
        ("lr=0.1", 13.5, "ok"), ("optimizer=adam", 11.0, "ok"), ("lr=0.5", 1.0, "at chance")]]
    verdicts = {r["change"]: r["verdict"] for r in add_verdicts(rows)}
    assert verdicts == {"base": "base", "base-seed1": "base", "base-seed2": "base", "batch_size=64": "better",
                        "lr=0.1": "within the seed spread", "optimizer=adam": "worse", "lr=0.5": "at chance"}


def test_a_model_setting_such_as_the_hidden_size_changes_only_that_keyword():
    configs = dict(one_at_a_time(MLP_SWEEP.base, MLP_SWEEP.changes))
    assert configs["hidden_size=512"].model_kwargs == {**PRESETS["q1.4-mlp"].model_kwargs, "hidden_size": 512}
    assert configs["epochs=50"].epochs == 50 and configs["epochs=50"].model_kwargs["hidden_size"] == 128
    assert list(configs)[:3] == ["base", "base-seed1", "base-seed2"]
    assert MLP_SWEEP.run_names()[3] == "q1.4-val-mlp-batch_size=64"


def test_a_change_of_two_settings_changes_both_and_names_its_run_with_both():
    label, name, config = next(run for run in MLP_SWEEP.runs() if run[0].startswith("optimizer="))
    assert (label, name) == ("optimizer=sgd, lr=0.01", "q1.4-val-mlp-optimizer=sgd+lr=0.01")
    assert (config.optimizer, config.lr) == ("sgd", 0.01) and config.batch_size == MLP_SWEEP.base.batch_size


def test_every_claim_names_changes_its_sweep_runs():
    for sweep in REPORT_SWEEPS:
        labels = {label for label, _, _ in sweep.runs()}
        for claim in sweep.claims:
            assert set(claim.changes) <= labels and claim.expected in ("worse", "no better"), claim


def test_every_sweep_run_chooses_on_the_validation_split_and_one_on_the_test_split_is_refused():
    assert all(config.validation for sweep in REPORT_SWEEPS for config in sweep.configs().values())
    on_test = Sweep("on-test", TrainConfig(model="mlp", epochs=1), ({"lr": 0.01},), ())
    with pytest.raises(ConfigError, match="sweep on-test chooses settings, so each of its runs measures on the "
                                          "validation split"):
        run_sweep(on_test)


def _row(change, accuracy, verdict):
    return {"change": change, "test_acc": accuracy, "vs_base": accuracy - 14.0, "train_loss": 3.0, "seconds": 20.0,
            "status": "ok", "verdict": verdict}


def test_claims_are_confirmed_contradicted_or_inconclusive_from_the_verdicts():
    rows = [_row("base", 14.0, "base"), _row("optimizer=adam", 11.0, "worse"), _row("lr=0.5", math.nan, "diverged"),
            _row("batch_size=64", 18.2, "better"), _row("lr=0.1", 13.8, "within the seed spread"),
            _row("epochs=50", 14.2, "within the seed spread")]
    claims = (Claim("adam is worse", ("optimizer=adam", "lr=0.5")), Claim("128 beats 64", ("batch_size=64",)),
              Claim("0.1 is too high", ("lr=0.1",)), Claim("more epochs do not help", ("epochs=50",), "no better"))
    judged = judge_claims(rows, Sweep("s", TrainConfig(epochs=3, validation=True), (), claims))
    assert [verdict for _, _, verdict in judged] == ["confirmed at 3 epochs", "contradicted at 3 epochs",
                                                     "inconclusive (within the seed spread) at 3 epochs",
                                                     "confirmed at 3 epochs"]
    assert judged[0][1] == "optimizer=adam: 11.00 % (-3.00, worse); lr=0.5: diverged"
    assert [row[0] for row in sweep_table(rows)] == ["batch_size=64", "epochs=50", "base", "lr=0.1",
                                                     "optimizer=adam", "lr=0.5"]


def test_a_claim_its_budget_cannot_test_shows_its_runs_and_gets_no_verdict():
    rows = [_row("base", 14.0, "base"), _row("augmentation=none", 16.0, "better")]
    claims = (Claim("augmentation beats none", ("augmentation=none",), untested_below=(15, "it regularises")),)
    short, long = (judge_claims(rows, Sweep("s", TrainConfig(epochs=epochs, validation=True), (), claims))[0]
                   for epochs in (3, 15))
    assert short[1:] == ("augmentation=none: 16.00 % (+2.00, better)", "not tested: it regularises; no verdict")
    assert long[2] == "contradicted at 15 epochs"
