"""The command line as a student uses it: real child processes, one-line errors (argparse's too), SIGTERM, --resume."""
from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from cv_helpers.config import run_name_for, runs_dir
from cv_helpers.models import MODELS
from cv_helpers.train_config import OPTIMIZERS, TrainConfig
from cv_helpers.transforms import AUGMENTATIONS
from cv_helpers.workbench.cli import TRAIN_FLAGS, build_parser, main
from cv_helpers.workbench.presets import PRESETS


@pytest.fixture()
def child_env_here(child_env, monkeypatch) -> dict:
    """`child_env`'s data, runs folder and mode, set in this process for commands run here."""
    for name in ("CV_HELPERS_DATA", "CV_HELPERS_RUNS", "CV_HELPERS_SMOKE"):
        monkeypatch.setenv(name, child_env[name])
    return child_env


def _main_in_this_process(capsys, args: list[str]) -> tuple[int, str, str]:
    """Runs the command line in this process (as `python -m cv_helpers.workbench` does, without a new interpreter's
    seconds of imports); returns its exit status, stdout and stderr."""
    sigterm = signal.getsignal(signal.SIGTERM)
    try:
        status = main(args)
    except SystemExit as exit:
        status = exit.code
    finally:
        signal.signal(signal.SIGTERM, sigterm)
    out, err = capsys.readouterr()
    return status, out, err


def _cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cv_helpers.workbench", *args], env=env, capture_output=True,
                          text=True, timeout=300)


def test_train_writes_config_metrics_and_checkpoint(child_env):
    result = _cli(child_env, "train", "--model", "convnet", "--epochs", "2", "--optimizer", "adam", "--lr", "1e-3",
                  "--batch-size", "64", "--augmentation", "q1.3", "--run-name", "cli-run", "--no-progress")
    assert result.returncode == 0, result.stderr
    run_dir = Path(child_env["CV_HELPERS_RUNS"]) / "cli-run"
    config = json.loads((run_dir / "config.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert (config["model"], config["epochs"], config["lr"], config["augmentation"]) == ("convnet", 2, 1e-3, "q1.3")
    assert len(metrics["history"]["test_acc"]) == 2 and len(metrics["per_class_acc"]) == 100
    assert metrics["final_test_acc"] == metrics["history"]["test_acc"][-1]
    assert (run_dir / "checkpoint.pt").is_file()
    assert "cli-run: test accuracy" in result.stdout


@pytest.mark.parametrize("args, message", [
    (["--lr", "0"], "error: learning rate must be a finite number > 0, got 0.0"),
    (["--lr", "nan"], "error: learning rate must be a finite number > 0, got nan"),
    (["--batch-size", "100000"], "error: batch size 100000 is larger than the training set (500 images)"),
    (["--momentum", "1.5", "--optimizer", "sgd"], "error: momentum must be in [0, 1), got 1.5"),
    (["--epochs", "0"], "error: epochs must be a whole number >= 1, got 0"),
    (["--augmentation", "fancy"], "error: unknown augmentation 'fancy'; choose one of none, q1.3, q1.4, q2, flip, "
                               "flip-crop, flip-crop-96"),
])
def test_bad_settings_give_one_line_and_exit_2(child_env_here, capsys, args, message):
    child_env = child_env_here
    status, out, err = _main_in_this_process(capsys, ["train", "--run-name", "bad", *args])
    assert status == 2, out + err
    assert err.strip().splitlines() == [err.strip()], err     # one line, no traceback
    assert err.startswith(message), err
    assert not (Path(child_env["CV_HELPERS_RUNS"]) / "bad").exists()


@pytest.mark.parametrize("args, message", [
    (["train", "--preset", "nope"], "error: argument --preset: invalid choice: 'nope' (choose from 'q1.3-mlp', "),
    (["train", "--lr", "abc"], "error: argument --lr: invalid float value: 'abc'; "),
    (["train", "--learning-rate", "0.1"], "error: unrecognized arguments: --learning-rate 0.1; "),
    (["train", "--device", "bogus"], "error: argument --device: unknown device 'bogus'; use cpu or cuda"),
    (["train", "--device", "cuda"], "error: argument --device: device 'cuda' asked for, but torch sees 0 GPU(s) "
                                    "here; use cpu"),
    (["evaluate", "some-run", "--device", "tpu"], "error: argument --device: unknown device 'tpu'"),
    (["run-notebooks", "Q9_nosuch"], "error: no notebook named 'Q9_nosuch' in notebooks/; choose from "
                                     "Q1_1_cifar100_visualisation, "),
    (["fly"], "error: argument command: invalid choice: 'fly'"),
])
def test_a_bad_command_line_is_one_line_and_exit_2_before_any_work(capsys, args, message):
    status, out, err = _main_in_this_process(capsys, args)     # the tests see no GPU, whatever the machine has
    assert status == 2, out + err
    assert err.strip().splitlines() == [err.strip()], err    # one line, no usage block, no traceback
    assert err.startswith(message), err
    assert out == ""


def test_missing_data_folder_is_one_line_naming_the_fix(child_env_here, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("CV_HELPERS_DATA", str(tmp_path / "nothing"))
    status, _, err = _main_in_this_process(capsys, ["train", "--run-name", "x"])
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert "nothing/cifar100 does not exist" in err and "unpack.py" in err


def test_finetuning_without_the_q1_checkpoint_says_what_creates_it(child_env_here, capsys):
    status, _, err = _main_in_this_process(capsys, ["train", "--preset", "q2-finetune", "--run-name", "ft"])
    assert status == 2
    assert "q1.4-convnet/checkpoint.pt does not exist; train the CIFAR-100 network first" in err
    # the 50 epochs' preset
    assert err.rstrip().endswith("`python -m cv_helpers.workbench train --preset q1.4-convnet`")


def test_evaluate_re_measures_a_run_and_names_a_missing_one(child_env_here, capsys):
    child_env = child_env_here
    trained = _cli(child_env, "train", "--model", "mlp", "--epochs", "1", "--run-name", "to-evaluate",
                   "--no-progress")
    assert trained.returncode == 0, trained.stderr
    status, out, err = _main_in_this_process(capsys, ["evaluate", "to-evaluate"])
    metrics = json.loads((Path(child_env["CV_HELPERS_RUNS"]) / "to-evaluate" / "metrics.json").read_text())
    assert status == 0, err
    assert f"test accuracy {metrics['final_test_acc']:.2f} % without flip" in out
    status, _, err = _main_in_this_process(capsys, ["evaluate", "nothing-here", "--tta-flip"])
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert "nothing-here/checkpoint.pt does not exist; train it first" in err


def _final_state(env: dict, run: str) -> tuple[dict, dict]:
    checkpoint = torch.load(Path(env["CV_HELPERS_RUNS"]) / run / "checkpoint.pt", weights_only=False)
    history = {k: v for k, v in checkpoint["history"].items() if k != "seconds"}
    return checkpoint["model_state"], history


def test_sigterm_mid_run_then_resume_ends_like_an_uninterrupted_run(child_env):
    args = ["train", "--model", "convnet", "--epochs", "12", "--optimizer", "sgd", "--lr", "0.01",
            "--augmentation", "q1.3", "--no-progress", "--run-name"]
    assert _cli(child_env, *args, "straight").returncode == 0

    child = subprocess.Popen([sys.executable, "-m", "cv_helpers.workbench", *args, "cut"], env=child_env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    checkpoint = Path(child_env["CV_HELPERS_RUNS"]) / "cut" / "checkpoint.pt"
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    child.send_signal(signal.SIGTERM)                       # somewhere inside epoch 2 (or 3)
    _, stderr = child.communicate(timeout=60)
    assert child.returncode == 130, stderr
    assert "rerun the same command with --resume" in stderr
    saved_epoch = torch.load(checkpoint, weights_only=False)["epoch"]
    assert 1 <= saved_epoch < 12                            # consistent: a completed epoch, not the end

    assert _cli(child_env, *args, "cut", "--resume").returncode == 0
    straight_weights, straight_history = _final_state(child_env, "straight")
    resumed_weights, resumed_history = _final_state(child_env, "cut")
    assert resumed_history == straight_history
    for name, value in straight_weights.items():
        assert torch.equal(value, resumed_weights[name]), name


def test_train_help_explains_every_flag_with_its_choices_and_default_and_lists_every_preset(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())                       # unwrapped
    choices = {"optimizer": OPTIMIZERS, "augmentation": AUGMENTATIONS, "model": MODELS}
    for flag in TRAIN_FLAGS:
        default = f"(default: {getattr(TrainConfig(), flag)!r}, or the preset's)"
        listed = f"one of {', '.join(choices[flag])} " if flag in choices else ""
        assert re.search(rf"--{flag.replace('_', '-')} {flag.upper()}[ ,].*?{re.escape(listed + default)}", text), flag
    presets = text[text.index("presets (--preset NAME"):]
    assert set(PRESETS) <= set(re.split(r"[ ,]+", presets))


def test_a_renamed_flag_keeps_its_old_name():
    args = build_parser().parse_args(["train", "--transform", "none"])
    assert args.augmentation == "none"


def test_train_validation_measures_on_the_validation_split_and_evaluate_re_measures_it_there(capsys):
    status, out, err = _main_in_this_process(capsys, ["train", "--model", "mlp", "--epochs", "1", "--validation",
                                                      "--run-name", "cli-validation", "--no-progress"])
    assert status == 0, err
    run_dir = runs_dir() / run_name_for("cli-validation")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert json.loads((run_dir / "config.json").read_text())["validation"] is True
    assert f"cli-validation: validation accuracy {metrics['final_test_acc']:.2f} %" in out
    status, out, err = _main_in_this_process(capsys, ["evaluate", "cli-validation"])
    assert status == 0, err
    assert f"validation accuracy {metrics['final_test_acc']:.2f} % without flip" in out   # the same images again
