"""One run end to end: both data paths, fine-tuning from a saved CIFAR-100 checkpoint, the run folder."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from cv_helpers.checkpoint import save_checkpoint
from cv_helpers.errors import CheckpointError, ConfigError
from cv_helpers.models import ConvNetBN
from cv_helpers.train import TrainConfig
import cv_helpers.data
from cv_helpers.data import VALIDATION_IMAGES
from cv_helpers.workbench import experiment
from cv_helpers.workbench.experiment import (build_network, evaluate_run, evaluation_file, evaluation_views,
                                             load_or_train, run_experiment)
from cv_helpers.workbench.presets import PRESETS, get_preset


def test_pil_path_trains_through_the_torchvision_transforms(data_root):
    result = run_experiment(TrainConfig(model="convnet", loader="pil", epochs=1, augmentation="q1.3"), progress=False)
    assert result.history.epochs == 1 and 0.0 <= result.test_acc <= 100.0
    assert result.per_class.shape == (100,)


def test_run_folder_records_config_metrics_and_provenance(data_root):
    result = run_experiment(TrainConfig(model="mlp", epochs=3, batch_size=128), "provenance", progress=False)
    assert result.run_dir.name == "smoke-provenance"                  # smoke runs never overwrite results
    config = json.loads((result.run_dir / "config.json").read_text())
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    assert config["epochs"] == 2                                      # smoke mode: at most 2 epochs
    assert config["model_kwargs"] == {"num_classes": 100, "input_size": 3072}
    assert {"final_test_acc", "per_class_acc", "train_seconds", "device", "seed", "git_revision",
            "data_source"} <= set(metrics)


def test_reusing_a_finished_run_keeps_the_revision_it_was_trained_at_and_retraining_does_not(data_root):
    config = TrainConfig(model="mlp", epochs=1, batch_size=128)
    run_dir = run_experiment(config, "reused", progress=False).run_dir
    metrics = json.loads((run_dir / "metrics.json").read_text())
    (run_dir / "metrics.json").write_text(json.dumps({**metrics, "git_revision": "abc123", "device": "gpu x"}))
    run_experiment(config, "reused", resume=True, progress=False)             # finished: trains nothing
    reused = json.loads((run_dir / "metrics.json").read_text())
    assert (reused["git_revision"], reused["device"]) == ("abc123", "gpu x")
    assert reused["history"] == metrics["history"]
    run_experiment(config, "reused", progress=False)                          # trained again from scratch
    retrained = json.loads((run_dir / "metrics.json").read_text())
    assert retrained["git_revision"] == metrics["git_revision"] and retrained["device"].startswith("cpu")


def test_finetuning_loads_the_cifar_checkpoint_and_adapts_it_to_stl10(tmp_path):
    cifar_net = ConvNetBN()
    save_checkpoint(tmp_path / "cifar.pt", {"model_name": "convnet-bn", "model_kwargs": {}, "class_names": None,
                                            "epoch": 50, "model_state": cifar_net.state_dict()})
    config = TrainConfig(model="convnet-bn", dataset="stl10", init_from=str(tmp_path / "cifar.pt"))
    model, kwargs = build_network(config, num_classes=5, image_size=96)
    assert torch.equal(model.conv2.weight, cifar_net.conv2.weight)
    assert torch.equal(model.bn1.running_mean, cifar_net.bn1.running_mean)
    assert model.fc1.in_features == 73_728 and model.fc2.out_features == 5
    assert kwargs == {"num_classes": 5, "image_size": 96}
    assert ConvNetBN(**kwargs).load_state_dict(model.state_dict())   # the fine-tuned checkpoint rebuilds


def test_finetuning_run_on_the_stl10_sample(data_root, tmp_path):
    save_checkpoint(tmp_path / "cifar.pt", {"model_name": "convnet-bn", "model_kwargs": {}, "class_names": None,
                                            "epoch": 1, "model_state": ConvNetBN().state_dict()})
    config = TrainConfig(model="convnet-bn", dataset="stl10", init_from=str(tmp_path / "cifar.pt"), epochs=1,
                         optimizer="sgd", lr=0.01, batch_size=16, augmentation="q2")
    result = run_experiment(config, progress=False)
    assert result.class_names == ["car", "deer", "horse", "monkey", "truck"]
    assert result.per_class.shape == (5,)


def test_evaluate_run_measures_the_same_weights_with_and_without_flip_tta(data_root):
    result = run_experiment(TrainConfig(model="convnet", epochs=1, batch_size=64, tta_flip=True), "evaluated",
                            progress=False)
    with_tta, plain = evaluate_run("evaluated", tta_flip=True), evaluate_run("evaluated", tta_flip=False)
    assert with_tta["test_acc"] == pytest.approx(result.test_acc)     # the run itself evaluated with TTA
    assert with_tta["test_loss"] == pytest.approx(result.history.test_loss[-1], rel=1e-5)
    assert plain["test_loss"] != with_tta["test_loss"]                 # the mirror images were used
    saved = json.loads((result.run_dir / "evaluation-plain.json").read_text())
    assert saved["test_acc"] == plain["test_acc"] and saved["checkpoint_epoch"] == 1 and not saved["tta_flip"]
    assert len(saved["per_class_acc"]) == 100 and saved["data_source"] == "cifar100"
    with pytest.raises(CheckpointError, match="does not exist; train it first"):
        evaluate_run("never-trained", tta_flip=True)


def test_evaluate_run_with_shifted_copies_measures_what_a_run_with_tta_translate_measures(data_root):
    config = TrainConfig(model="convnet", epochs=1, batch_size=64, tta_flip=True, tta_translate=1)
    result = run_experiment(config, "evaluated-shifted", progress=False)
    shifted = evaluate_run("evaluated-shifted", tta_flip=True, tta_translate=1)
    assert shifted["test_loss"] == pytest.approx(result.history.test_loss[-1], rel=1e-5)
    assert shifted["test_loss"] != evaluate_run("evaluated-shifted", tta_flip=True)["test_loss"]
    saved = json.loads((result.run_dir / "evaluation-tta-flip-shift1.json").read_text())
    assert saved["tta_translate"] == 1 and saved["test_acc"] == shifted["test_acc"]
    with pytest.raises(ConfigError, match="add --tta-flip"):
        evaluate_run("evaluated-shifted", tta_flip=False, tta_translate=1)


def test_improved_q2_recipe_fine_tunes_the_q3_net_on_the_stl10_sample(data_root, tmp_path, monkeypatch):
    monkeypatch.setenv("CV_HELPERS_RUNS", str(tmp_path / "runs"))     # no q3-best from another test
    missing = get_preset("q2-sample-plus")
    with pytest.raises(CheckpointError, match=r"train the CIFAR-100 network first: "
                                              r"`python -m cv_helpers.workbench train --preset q3-best`"):
        run_experiment(missing, progress=False)
    # The session's runs folder, where the Q3 and Q2 notebooks' tests train (or reuse) the same two smoke runs.
    monkeypatch.undo()
    cifar = load_or_train("q3-best")
    model, kwargs = build_network(get_preset("q2-sample-plus"), num_classes=5, image_size=96)
    assert torch.equal(model.res5.block[0].weight, cifar.model.res5.block[0].weight)
    assert model.fc.out_features == 5 and kwargs["widths"] == [64, 192, 384]
    result = load_or_train("q2-sample-plus")
    assert result.class_names == ["car", "deer", "horse", "monkey", "truck"] and result.history.epochs == 2
    assert result.per_class.shape == (5,)


def test_only_the_new_layers_learn_when_the_pretrained_ones_are_frozen(data_root, tmp_path):
    pretrained = ConvNetBN()
    save_checkpoint(tmp_path / "cifar.pt", {"model_name": "convnet-bn", "model_kwargs": {}, "epoch": 1,
                                            "model_state": pretrained.state_dict()})
    config = TrainConfig(model="convnet-bn", dataset="stl10", init_from=str(tmp_path / "cifar.pt"), epochs=1,
                         optimizer="sgd", lr=0.01, batch_size=16, augmentation="q2", freeze_pretrained=True)
    result = run_experiment(config, progress=False)
    assert torch.equal(result.model.conv1.weight, pretrained.conv1.weight)          # frozen
    assert torch.equal(result.model.bn2.weight, pretrained.bn2.weight)
    assert {n for n, p in result.model.named_parameters() if p.requires_grad} == {
        "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}
    with pytest.raises(ConfigError, match="freeze_pretrained needs init_from"):
        TrainConfig(freeze_pretrained=True).validate()


def test_a_finished_run_is_read_from_its_files_without_its_checkpoint_when_no_weights_are_needed(data_root):
    config = TrainConfig(model="mlp", epochs=2, batch_size=128)
    trained = run_experiment(config, "from-files", progress=False)
    (trained.run_dir / "checkpoint.pt").unlink()
    before = (trained.run_dir / "metrics.json").read_text()
    read = run_experiment(config, "from-files", resume=True, progress=False, weights=False)
    assert read.model is None and read.predicted is None and read.epochs_trained == 0
    assert read.history.as_dict() == trained.history.as_dict() and read.test_acc == trained.test_acc
    assert read.per_class.tolist() == pytest.approx(trained.per_class.tolist(), nan_ok=True)
    assert read.parameters == trained.parameters == 3072 * 64 + 64 + 64 * 100 + 100
    assert (trained.run_dir / "metrics.json").read_text() == before       # nothing trained, nothing written
    assert not (trained.run_dir / "checkpoint.pt").exists()
    again = run_experiment(config, "from-files", resume=True, progress=False)   # weights wanted: trained again
    assert again.epochs_trained == 2 and again.history.test_acc == trained.history.test_acc
    (trained.run_dir / "checkpoint.pt").unlink()
    other = run_experiment(replace(config, lr=0.01), "from-files", resume=True, progress=False, weights=False)
    assert other.model is not None and other.epochs_trained == 2          # other settings: trained again


def test_a_saved_evaluation_stands_in_for_a_missing_checkpoint_of_a_finished_run(data_root):
    result = run_experiment(TrainConfig(model="mlp", epochs=1, batch_size=128), "evaluated-once", progress=False)
    plain = evaluate_run("evaluated-once", tta_flip=False)
    (result.run_dir / "checkpoint.pt").unlink()
    assert evaluate_run("evaluated-once", tta_flip=False) == plain
    with pytest.raises(CheckpointError, match="does not exist; train it first"):
        evaluate_run("evaluated-once", tta_flip=True)                   # never measured: needs the weights


def test_a_fine_tuned_run_is_reused_only_while_its_start_point_has_the_weights_it_started_from(data_root):
    run_experiment(TrainConfig(model="convnet-bn", epochs=1, batch_size=128), "start", progress=False)
    config = TrainConfig(model="convnet-bn", dataset="stl10", init_from="start", epochs=1, optimizer="sgd",
                         lr=0.01, batch_size=16, augmentation="q2")
    tuned = run_experiment(config, "tuned", progress=False)
    assert json.loads((tuned.run_dir / "metrics.json").read_text())["start_point"]["run"] == "start"
    (tuned.run_dir / "checkpoint.pt").unlink()
    assert run_experiment(config, "tuned", resume=True, progress=False, weights=False).model is None
    run_experiment(TrainConfig(model="convnet-bn", epochs=1, batch_size=128, lr=0.05), "start",
                   progress=False)                                            # the start point, trained anew
    again = run_experiment(config, "tuned", resume=True, progress=False, weights=False)
    assert again.model is not None and again.epochs_trained == 1              # fine-tuned again from the new weights


def test_after_a_preset_is_edited_the_plan_and_the_notebooks_call_agree_to_train_it_again(tmp_path, monkeypatch):
    from cv_helpers.workbench.notebooks import training_plan

    monkeypatch.setenv("CV_HELPERS_RUNS", str(tmp_path))

    def planned() -> list[str]:
        return [line for line in training_plan(["Q1_2-3_baseline_training"]).splitlines() if " q1.3-mlp (" in line]

    assert planned() == ["  train q1.3-mlp (no run yet): time unknown (never trained here)"]
    first = load_or_train("q1.3-mlp")                                            # the notebook's call
    assert first.epochs_trained > 0 and planned() == []                          # finished: the plan reuses it
    assert load_or_train("q1.3-mlp").epochs_trained == 0
    monkeypatch.setitem(PRESETS, "q1.3-mlp", replace(PRESETS["q1.3-mlp"], lr=2e-3))      # the preset is edited
    assert planned()[0].startswith("  retrain q1.3-mlp (finished with other settings (lr)): about ")
    again = load_or_train("q1.3-mlp")
    assert again.epochs_trained > 0 and again.config.lr == 2e-3
    assert json.loads((first.run_dir / "config.json").read_text())["lr"] == 2e-3 and planned() == []


def test_a_validation_run_trains_without_the_held_out_images_and_never_reads_the_test_split(data_root, monkeypatch):
    read = cv_helpers.data.load_cifar100

    def training_split_only(train: bool = True, root=None):
        assert train, "a run measured on the validation split read the test split"
        return read(train, root)

    monkeypatch.setattr(cv_helpers.data, "load_cifar100", training_split_only)
    monkeypatch.setattr(experiment, "load_cifar100", training_split_only)
    result = run_experiment(TrainConfig(model="mlp", epochs=1, batch_size=64, validation=True), "chooses",
                            progress=False)
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    held = VALIDATION_IMAGES["smoke"]
    assert (metrics["train_size"], metrics["test_size"]) == (len(read(True, data_root)) - held, held)
    assert metrics["evaluated_on"] == result.evaluated_on == "validation"
    assert json.loads((result.run_dir / "config.json").read_text())["validation"] is True


@pytest.mark.parametrize("settings", [{"dataset": "stl10"}, {"loader": "pil"}])
def test_the_validation_split_is_refused_where_it_does_not_exist_with_one_line(settings):
    with pytest.raises(ConfigError, match="the validation split is CIFAR-100's, on the fast loader"):
        TrainConfig(validation=True, **settings).validate()


@pytest.mark.parametrize("tta_flip, tta_translate", [(False, 0), (True, 0), (True, 1)])
def test_a_re_evaluation_is_named_by_its_file_and_its_name_gives_back_its_views(tmp_path, tta_flip, tta_translate):
    name = evaluation_file(tmp_path, tta_flip, tta_translate).name.removeprefix("evaluation-").removesuffix(".json")
    assert evaluation_views(name) == (tta_flip, tta_translate)


@pytest.mark.parametrize("name", ["flip", "tta-flip-shiftx", "plain-shift"])
def test_an_unknown_re_evaluation_name_is_a_one_line_error(name):
    with pytest.raises(ConfigError, match="use plain, tta-flip or tta-flip-shiftN"):
        evaluation_views(name)
