"""`fit` against a training loop written out by hand: the proof that a change to the loop kept its numerics.

The reference below uses no code of cv_helpers: label-smoothed cross-entropy, the warm-up + cosine learning rate of
every step and SGD with momentum and weight decay are written out from their definitions. Batches of unequal size
(8, 8, 6) make a per-batch mean differ from the epoch's mean over images.
"""
from __future__ import annotations

import copy
import math
from dataclasses import replace

import pytest
import torch
from torch import nn

from cv_helpers.errors import CheckpointError
from cv_helpers.models import TwoLayerNet
from cv_helpers.train import TrainConfig, fit

CLASSES, SMOOTHING, BASE_LR, MOMENTUM, WEIGHT_DECAY = 4, 0.2, 0.05, 0.9, 1e-3
EPOCHS, WARMUP_EPOCHS = 3, 1.5
CONFIG = TrainConfig(model="mlp", optimizer="sgd", lr=BASE_LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY,
                     batch_size=8, epochs=EPOCHS, schedule="cosine", warmup_epochs=WARMUP_EPOCHS,
                     label_smoothing=SMOOTHING, augmentation="none")


def _batches(seed: int, sizes: tuple[int, ...]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    return [(torch.randn(n, 3, 8, 8, generator=generator), torch.randint(0, CLASSES, (n,), generator=generator))
            for n in sizes]


TRAIN, TEST = _batches(1, (8, 8, 6)), _batches(2, (10,))


def _network() -> nn.Module:
    torch.manual_seed(0)
    return TwoLayerNet(3 * 8 * 8, 16, CLASSES)


def _reference_lr(step: int, total_steps: int, warmup_steps: int) -> float:
    """Linear warm-up over the first `warmup_steps` steps (step 0 at 1/warmup), then a cosine from 1 to 0."""
    if step < warmup_steps:
        return BASE_LR * (step + 1) / warmup_steps
    return BASE_LR * 0.5 * (1 + math.cos(math.pi * (step - warmup_steps) / (total_steps - warmup_steps)))


def _smoothed_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of -sum_k q_k log p_k with q = (1 - e) one_hot + e / K."""
    target = torch.full_like(logits, SMOOTHING / CLASSES)
    target[torch.arange(len(labels)), labels] += 1 - SMOOTHING
    return -(target * logits.log_softmax(1)).sum(1).mean()


def _reference_fit(net: nn.Module) -> dict[str, list[float]]:
    """Trains `net` in place as the definitions say; returns the per-epoch numbers `fit` records."""
    params = list(net.parameters())
    velocity = [torch.zeros_like(p) for p in params]
    total_steps, warmup_steps = EPOCHS * len(TRAIN), int(WARMUP_EPOCHS * len(TRAIN))
    step, history = 0, {"lr": [], "train_loss": [], "train_acc": [], "test_loss": [], "test_acc": []}
    for _ in range(EPOCHS):
        loss_sum, correct, seen = 0.0, 0, 0
        for images, labels in TRAIN:
            lr = _reference_lr(step, total_steps, warmup_steps)
            logits = net(images)
            loss = _smoothed_cross_entropy(logits, labels)
            gradients = torch.autograd.grad(loss, params)
            with torch.no_grad():
                for p, g, v in zip(params, gradients, velocity):
                    v.mul_(MOMENTUM).add_(g + WEIGHT_DECAY * p)
                    p.sub_(lr * v)
            loss_sum += loss.item() * len(labels)
            correct += int((logits.argmax(1) == labels).sum())
            seen += len(labels)
            step += 1
        with torch.no_grad():
            images, labels = TEST[0]
            logits = net(images)
            history["test_loss"].append(nn.functional.cross_entropy(logits, labels).item())
            history["test_acc"].append(100.0 * float((logits.argmax(1) == labels).float().mean()))
        history["lr"].append(lr)
        history["train_loss"].append(loss_sum / seen)
        history["train_acc"].append(100.0 * correct / seen)
    return history


def test_fit_trains_exactly_like_the_loop_written_out_from_the_definitions():
    net = _network()
    reference = copy.deepcopy(net)
    expected = _reference_fit(reference)
    history = fit(net, TRAIN, TEST, CONFIG.validate(), progress=False).history
    for name, value in reference.state_dict().items():
        torch.testing.assert_close(net.state_dict()[name], value, rtol=1e-5, atol=1e-6, msg=name)
    for metric, values in expected.items():
        assert getattr(history, metric) == pytest.approx(values, rel=1e-5, abs=1e-6), metric
    assert len(set(expected["lr"])) == EPOCHS and len(set(expected["train_acc"])) > 1   # the numbers move


@pytest.mark.parametrize("changed", [{"lr": 0.01}, {"label_smoothing": 0.0}, {"schedule": "onecycle"}])
def test_resuming_with_other_settings_is_refused_and_keeps_the_checkpoint(tmp_path, changed):
    one_epoch = replace(CONFIG, epochs=1)
    fit(_network(), TRAIN, TEST, one_epoch, run_dir=tmp_path, progress=False)
    saved = (tmp_path / "checkpoint.pt").read_bytes()
    name = next(iter(changed))
    with pytest.raises(CheckpointError, match=rf"its run used different settings \({name}\); use the same settings "
                                              "or a new run name"):
        fit(_network(), TRAIN, TEST, replace(one_epoch, **changed), run_dir=tmp_path, resume=True, progress=False)
    assert (tmp_path / "checkpoint.pt").read_bytes() == saved
