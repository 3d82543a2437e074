"""Training loop, evaluation arithmetic, optimizer factory, divergence stop and exact resume."""
from __future__ import annotations

import functools
import logging

import math
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch

from cv_helpers.checkpoint import load_checkpoint
from cv_helpers.errors import ConfigError, TrainingDiverged
from cv_helpers.fast_loader import FastLoader
from cv_helpers.models import ConvNet, ConvNetBN, TwoLayerNet
from cv_helpers.train import (TrainConfig, confusion_matrix, fit, initialize_optimizer, lr_factor,
                              per_class_accuracy, predict, train, valid, valid_class)
from cv_helpers.transforms import get_augmentation
from tests.fixtures import class_images


def _loaders(num_classes: int = 4, per_class: int = 40, seed: int = 0, recipe: str = "none"):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(num_classes), per_class)
    images = class_images(labels, 32, num_classes, rng)
    test_labels = np.repeat(np.arange(num_classes), 10)
    test_images = class_images(test_labels, 32, num_classes, rng)
    return (FastLoader(images, labels, 16, shuffle=True, seed=seed, augmentation=get_augmentation(recipe)),
            FastLoader(test_images, test_labels, 100))


def test_per_class_accuracy_arithmetic():
    true = np.array([0, 0, 0, 1, 1, 2])
    predicted = np.array([0, 1, 0, 1, 1, 0])
    accuracy = per_class_accuracy(predicted, true, num_classes=4)
    assert accuracy[:3].tolist() == pytest.approx([200 / 3, 100.0, 0.0])
    assert math.isnan(accuracy[3])                     # class 3 never occurs


def test_confusion_matrix_rows_are_true_classes():
    matrix = confusion_matrix(np.array([0, 1, 0, 2]), np.array([0, 0, 1, 2]), 3)
    assert matrix.tolist() == [[1, 1, 0], [1, 0, 0], [0, 0, 1]]


def test_fit_learns_a_separable_problem_and_valid_agrees():
    train_loader, test_loader = _loaders()
    torch.manual_seed(0)
    net = ConvNet(num_classes=4)
    history = fit(net, train_loader, test_loader, TrainConfig(epochs=4, lr=3e-3, batch_size=16), progress=False).history
    assert history.epochs == 4 and history.train_loss[-1] < history.train_loss[0]
    assert history.test_acc[-1] >= 90.0
    assert valid(net, test_loader) == pytest.approx(history.test_acc[-1])


def test_skeleton_train_and_valid_class(capsys):
    train_loader, test_loader = _loaders()
    torch.manual_seed(0)
    net = TwoLayerNet(3 * 32 * 32, 32, 4)
    losses = train(net, train_loader, epochs=3)
    assert len(losses) == 3 and losses[-1] < losses[0]
    accuracy = valid_class(net, test_loader, ["a", "b", "c", "d"])
    assert list(accuracy) == ["a", "b", "c", "d"]
    assert "Accuracy of               a" in capsys.readouterr().out
    assert np.mean(list(accuracy.values())) == pytest.approx(valid(net, test_loader))


class _NaNInSecondEpoch:
    """A loader whose images turn NaN in its second pass (divergence without a slow high-lr run)."""

    def __init__(self, loader):
        self.loader, self.passes = loader, 0

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        self.passes += 1
        for step, (images, labels) in enumerate(self.loader):
            yield (images * float("nan") if self.passes == 2 and step == 2 else images), labels


def test_divergence_stops_with_epoch_step_and_lr_and_keeps_last_checkpoint(tmp_path):
    train_loader, test_loader = _loaders()
    net = ConvNet(num_classes=4)
    with pytest.raises(TrainingDiverged, match=r"loss became nan at epoch 2, step 3 with learning rate 0\.002"):
        fit(net, _NaNInSecondEpoch(train_loader), test_loader, TrainConfig(epochs=3, lr=2e-3), run_dir=tmp_path,
            progress=False)
    checkpoint = load_checkpoint(tmp_path / "checkpoint.pt")
    assert checkpoint["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in checkpoint["model_state"].values())


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path):
    config = TrainConfig(epochs=3, lr=2e-3, augmentation="q1.3", optimizer="sgd", schedule="cosine")

    def run(run_dir, stop_after=None):
        torch.manual_seed(1)
        net = ConvNet(num_classes=4)
        train_loader, test_loader = _loaders(seed=3, recipe="q1.3")

        def interrupt(progress):
            if progress.history.epochs == stop_after:
                raise KeyboardInterrupt

        try:
            fit(net, train_loader, test_loader, config, run_dir=run_dir, resume=True, on_epoch_end=interrupt,
                progress=False)
        except KeyboardInterrupt:
            return None
        return net

    straight = run(tmp_path / "straight")
    assert run(tmp_path / "resumed", stop_after=2) is None
    assert load_checkpoint(tmp_path / "resumed" / "checkpoint.pt")["epoch"] == 2
    resumed = run(tmp_path / "resumed")
    for name, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[name]), name
    resumed_history = load_checkpoint(tmp_path / "resumed" / "checkpoint.pt")["history"]
    straight_history = load_checkpoint(tmp_path / "straight" / "checkpoint.pt")["history"]
    for metric in ("train_loss", "train_acc", "test_loss", "test_acc", "lr"):
        assert resumed_history[metric] == straight_history[metric], metric


@pytest.mark.parametrize("settings, message", [
    ({"lr": 0}, "learning rate must be a finite number > 0"),
    ({"lr": -0.1}, "learning rate must be"),
    ({"lr": float("nan")}, "learning rate must be"),
    ({"lr": float("inf")}, "learning rate must be"),
    ({"momentum": 1.0}, r"momentum must be in \[0, 1\)"),
    ({"weight_decay": -1e-4}, "weight decay must be >= 0"),
    ({"epochs": 0}, "epochs must be a whole number >= 1"),
    ({"batch_size": 0}, "batch size must be a whole number >= 1"),
    ({"optimizer": "adamax"}, "unknown optimizer 'adamax'; choose one of sgd, adam, adamw, rmsprop, adagrad"),
    ({"model": "vgg"}, "unknown model 'vgg'"),
    ({"augmentation": "q9"}, "unknown augmentation 'q9'; choose one of none, q1.3"),
])
def test_invalid_settings_are_refused_before_training(settings, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**settings).validate()


def test_batch_larger_than_the_dataset_is_refused():
    with pytest.raises(ConfigError, match="larger than the training set"):
        TrainConfig(batch_size=500).validate(dataset_size=100)


@pytest.mark.parametrize("name, cls", [("sgd", torch.optim.SGD), ("adam", torch.optim.Adam),
                                       ("adamw", torch.optim.AdamW), ("rmsprop", torch.optim.RMSprop),
                                       ("adagrad", torch.optim.Adagrad)])
def test_initialize_optimizer_builds_each_kind_with_its_settings(name, cls):
    optimizer = initialize_optimizer(ConvNet(), name, lr=0.02, momentum=0.8, weight_decay=1e-4)
    assert isinstance(optimizer, cls)
    group = optimizer.param_groups[0]
    assert group["lr"] == 0.02 and group["weight_decay"] == 1e-4
    if name in ("sgd", "rmsprop"):
        assert group["momentum"] == 0.8


def test_learning_rate_schedules():
    assert [lr_factor(s, 100, "constant", 0) for s in (0, 99)] == [1.0, 1.0]
    assert lr_factor(0, 100, "constant", 10) == pytest.approx(0.1)
    assert lr_factor(24, 100, "onecycle", 0) == pytest.approx(1.0)
    assert lr_factor(99, 100, "onecycle", 0) == pytest.approx(1 / 75)
    assert lr_factor(0, 100, "cosine", 0) == pytest.approx(1.0)
    assert lr_factor(50, 100, "cosine", 0) == pytest.approx(0.5)


def test_flip_tta_averages_the_probabilities_of_each_image_and_its_mirror():
    torch.manual_seed(0)
    net, images, labels = TwoLayerNet(3 * 8 * 8, 16, 5), torch.randn(20, 3, 8, 8), torch.randint(0, 5, (20,))
    predicted, _, loss = predict(net, [(images, labels)], tta_flip=True)
    with torch.no_grad():
        mean_probs = (net(images).softmax(1) + net(images.flip(-1)).softmax(1)) / 2
    assert np.array_equal(predicted, mean_probs.argmax(1).numpy())
    assert loss == pytest.approx(torch.nn.functional.nll_loss(mean_probs.log(), labels).item(), rel=1e-5)
    mirrored, _, _ = predict(net, [(images.flip(-1), labels)], tta_flip=True)
    assert np.array_equal(predicted, mirrored)                        # invariant to mirroring the test set
    plain, _, _ = predict(net, [(images, labels)])
    assert not np.array_equal(plain, predict(net, [(images.flip(-1), labels)])[0])   # plain evaluation is not


def test_translate_tta_weighs_the_mirror_pair_by_half_and_each_diagonally_shifted_pair_by_a_quarter():
    images = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    seen = []

    class OneClassPerView(torch.nn.Module):         # view k (in the order seen) is certain of class k
        def __init__(self):
            super().__init__()
            self.unused = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            seen.append(x.clone())
            return torch.nn.functional.one_hot(torch.full((len(x),), len(seen) - 1), 6).float() * 100

    predicted, _, loss = predict(OneClassPerView(), [(images, torch.tensor([0, 2]))], tta_flip=True,
                                 tta_translate=1)
    assert len(seen) == 6 and torch.equal(seen[0], images) and torch.equal(seen[1], images.flip(-1))
    assert torch.equal(seen[2][..., 1:, 1:], images[..., :-1, :-1])          # moved 1 px down and right
    assert torch.equal(seen[4][..., :-1, :-1], images[..., 1:, 1:])          # moved 1 px up and left
    assert torch.equal(seen[3], seen[2].flip(-1)) and torch.equal(seen[5], seen[4].flip(-1))
    assert predicted.tolist() == [0, 0]                # probabilities 1/4, 1/4, then 1/8 for each shifted view
    assert loss == pytest.approx((math.log(4) + math.log(8)) / 2, rel=1e-5)


def test_compiling_on_a_machine_without_a_gpu_logs_no_cuda_warning(child_env):
    env = {**child_env, "CUDA_HOME": "/usr", "CUDA_VISIBLE_DEVICES": ""}       # a toolkit path, no GPU
    code = "import cv_helpers.train, torch.utils.cpp_extension"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "No CUDA runtime" not in done.stderr, done.stderr[-2000:]


def test_progressive_resizing_trains_the_first_epochs_on_smaller_images_then_on_full_size():
    from cv_helpers.models import ResConvNet5

    train_loader, test_loader = _loaders()
    torch.manual_seed(0)
    net = ResConvNet5(num_classes=4, widths=(8, 16, 16))
    seen = []
    net.conv1.register_forward_hook(lambda module, inputs, output: seen.append((net.training, inputs[0].shape[-1])))
    config = TrainConfig(model="resconvnet5", epochs=3, batch_size=16, augmentation="none", low_res=16,
                         low_res_epochs=2)
    fit(net, train_loader, test_loader, config.validate(), progress=False)
    batches = len(train_loader)                                                  # 160 images / 16 per epoch
    assert [side for training, side in seen if training] == [16] * 2 * batches + [32] * batches
    assert {side for training, side in seen if not training} == {32}           # evaluation at full size


def test_tta_on_the_last_epoch_only_evaluates_the_epochs_before_it_on_the_test_images_alone():
    train_loader, test_loader = _loaders()                                       # 40 test images
    torch.manual_seed(0)
    net = ConvNet(num_classes=4)
    evaluated = []
    net.conv1.register_forward_hook(lambda module, inputs, output: None if net.training
                                    else evaluated.append(len(inputs[0])))
    config = TrainConfig(epochs=3, batch_size=16, augmentation="none", tta_flip=True, tta_final_only=True,
                         tta_translate=2)
    fit(net, train_loader, test_loader, config.validate(), progress=False)
    assert evaluated == [40] * 8          # one pass after epochs 1 and 2; six after epoch 3 (3 shifts x mirror)
    for changes in ({"tta_final_only": True}, {"tta_translate": 1}):
        with pytest.raises(ConfigError, match="set tta_flip too"):
            TrainConfig(**changes).validate()
    with pytest.raises(ConfigError, match="0 .off. to 4 pixels"):
        TrainConfig(tta_flip=True, tta_translate=5).validate()


@pytest.mark.parametrize("changes, message", [
    ({"model": "convnet"}, "global pooling"), ({"low_res": 32}, "8 <= low_res < 32"),
    ({"low_res_epochs": 3}, "0 < low_res_epochs < epochs"), ({"loader": "pil"}, "fast loader only")])
def test_progressive_resizing_is_refused_where_it_cannot_work(changes, message):
    settings = {"model": "resconvnet5", "epochs": 3, "low_res": 24, "low_res_epochs": 1, **changes}
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**settings).validate()


def test_the_loader_resizes_a_batch_only_when_told():
    loader, _ = _loaders()
    assert next(iter(loader))[0].shape[-2:] == (32, 32)
    loader.resize_to = 20
    images, labels = next(iter(loader))
    assert images.shape == (16, 3, 20, 20) and images.dtype == torch.float32 and labels.shape == (16,)


def test_minutes_to_accuracy_counts_to_the_end_of_the_first_epoch_that_reached_the_target():
    from cv_helpers.history import History, minutes_to_accuracy

    history = History(test_acc=[40.0, 57.0, 55.0, 71.0], seconds=[60.0, 120.0, 60.0, 60.0])
    assert minutes_to_accuracy(history, 56.0) == pytest.approx(3.0)
    assert minutes_to_accuracy(history, 70.0) == pytest.approx(5.0)
    assert minutes_to_accuracy(history, 80.0) is None


def test_a_compiled_run_trains_like_the_eager_one_saves_plain_layer_names_and_resumes_bit_identically(tmp_path):
    # Every Figure 6 and Q3 preset compiles (smoke mode does not). The epoch ends with a partial batch, after which
    # torch.compile runs a dynamic-batch graph: a resumed run must replay that (on two threads, the static graph's
    # sums differ in the last bits, and the resumed weights would drift from the uninterrupted run's).
    generator = torch.Generator().manual_seed(0)
    batches = [(torch.randn(size, 3, 32, 32, generator=generator), torch.randint(0, 100, (size,), generator=generator))
               for size in (128, 128, 80, 64)]
    config = TrainConfig(model="convnet-bn", optimizer="sgd", lr=0.05, momentum=0.9, batch_size=128, epochs=2,
                         augmentation="none", compile=True)

    def network():
        torch.manual_seed(0)
        return ConvNetBN()

    def stop_after_one_epoch(result):
        raise KeyboardInterrupt

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        eager_net, whole_net, resumed_net = network(), network(), network()
        eager = fit(eager_net, batches[:3], batches[3:], replace(config, compile=False), progress=False)
        whole = fit(whole_net, batches[:3], batches[3:], config, progress=False)
        torch._dynamo.reset()                                       # as in a new process
        with pytest.raises(KeyboardInterrupt):
            fit(network(), batches[:3], batches[3:], config, run_dir=tmp_path, on_epoch_end=stop_after_one_epoch,
                progress=False)
        state = load_checkpoint(tmp_path / "checkpoint.pt")
        assert state["epoch"] == 1 and list(state["model_state"]) == list(network().state_dict())  # no _orig_mod.
        torch._dynamo.reset()
        resumed = fit(resumed_net, batches[:3], batches[3:], config, run_dir=tmp_path, resume=True, progress=False)
    finally:
        torch.set_num_threads(threads)
    assert resumed.epochs_trained == 1
    assert {**resumed.history.as_dict(), "seconds": []} == {**whole.history.as_dict(), "seconds": []}
    assert [name for name, value in whole_net.state_dict().items()
            if not torch.equal(resumed_net.state_dict()[name], value)] == []
    for name, value in eager_net.state_dict().items():
        torch.testing.assert_close(whole_net.state_dict()[name], value, rtol=1e-3, atol=1e-4, msg=name)
    assert whole.history.train_loss == pytest.approx(eager.history.train_loss, rel=1e-4)


def test_compiled_runs_in_one_process_each_compile_afresh_and_never_reach_the_recompile_limit(monkeypatch, caplog):
    # A notebook kernel that trains several compiled runs (Q2: two start points and their fine-tunings) must not
    # reach torch.compile's recompile limit; the backend does not matter for that, so the fast "eager" one is used.
    monkeypatch.setattr(torch._dynamo.config, "recompile_limit", 3)   # what one run needs here
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="eager"))
    generator = torch.Generator().manual_seed(0)
    batches = [(torch.randn(size, 3, 32, 32, generator=generator), torch.randint(0, 100, (size,), generator=generator))
               for size in (16, 8, 8)]
    config = TrainConfig(model="convnet-bn", optimizer="sgd", lr=0.05, batch_size=16, epochs=1, augmentation="none",
                         compile=True)
    with caplog.at_level(logging.WARNING, logger="torch._dynamo"):
        for network in (ConvNetBN, ConvNet, TwoLayerNet):           # one forward (Network's), three nets
            fit(network(), batches[:2], batches[2:], config, progress=False)
    assert "recompile_limit" not in caplog.text
