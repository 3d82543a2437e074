"""Q1.3: the loader, the transforms, the optimizer and the training loop, on small real data (smoke mode).

Each check uses only the task it grades: the networks and transforms it needs besides are written out here."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torchvision import transforms as T

from cv_helpers.data import CIFAR100_loader
from cv_helpers.train import EpochStats, initialize_optimizer, train
from cv_helpers.transforms import make_test_transform, make_train_transform


def _small_net() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 16), nn.ReLU(), nn.Linear(16, 4))


@pytest.mark.task("Q1.3a")
def test_the_loader_serves_each_image_through_its_transform_with_its_fine_label():
    plain = CIFAR100_loader(train=False)
    loaded = CIFAR100_loader(train=False, transform=T.Compose([T.ToTensor(), T.Normalize((0.5,) * 3, (0.5,) * 3)]))
    assert len(loaded) == len(plain.images) > 0 and len(loaded.classes) == 100
    image, label = loaded[3]
    expected = torch.from_numpy(plain.images[3]).permute(2, 0, 1).float() / 255 * 2 - 1
    torch.testing.assert_close(image, expected)
    assert isinstance(label, int) and label == int(plain.fine_labels[3])


@pytest.mark.task("Q1.3a")
def test_the_loader_keeps_both_label_sets_and_the_class_names():
    data = CIFAR100_loader(train=True)
    assert data.fine_labels.shape == data.coarse_labels.shape == (len(data),)
    assert len(data.superclasses) == 20 and len(data.classes) == 100
    assert np.array_equal(data.targets, data.fine_labels)


@pytest.mark.task("Q1.3b")
def test_the_test_transform_only_normalises():
    steps = [type(step) for step in make_test_transform().transforms]
    assert steps == [T.ToTensor, T.Normalize]


@pytest.mark.task("Q1.3b")
def test_the_q13_training_transform_flips_rotates_sharpens_crops_and_normalises():
    steps = [type(step) for step in make_train_transform("q1.3").transforms]
    assert steps == [T.RandomHorizontalFlip, T.RandomVerticalFlip, T.RandomRotation, T.RandomAdjustSharpness,
                     T.RandomCrop, T.ToTensor, T.Normalize]


@pytest.mark.task("Q1.3b")
@pytest.mark.parametrize("name, kind", [("sgd", torch.optim.SGD), ("adam", torch.optim.Adam)])
def test_the_optimizer_is_the_named_one_over_the_nets_parameters(name, kind):
    net = _small_net()
    optimizer = initialize_optimizer(net, name, lr=0.05)
    assert type(optimizer) is kind and optimizer.defaults["lr"] == 0.05
    assert [p for group in optimizer.param_groups for p in group["params"]] == list(net.parameters())


def _fixed_batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(32, 3, 4, 4, generator=generator)
    labels = torch.arange(32) % 4
    images[torch.arange(32), labels % 3] += 2.0            # learnable: the label shows in one channel
    return [(images[:16], labels[:16]), (images[16:], labels[16:])]


@pytest.mark.task("Q1.3c")
def test_a_few_epochs_of_train_lower_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    net = _small_net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    stats = train(net, _fixed_batches(), epochs=5, optimizer=optimizer, criterion=nn.CrossEntropyLoss(),
                  verbose=False)
    assert len(stats) == 5 and all(isinstance(epoch, EpochStats) for epoch in stats)
    assert stats[-1].loss < 0.8 * stats[0].loss


@pytest.mark.task("Q1.3c")
def test_one_epoch_of_train_is_one_sgd_step_per_batch():
    torch.manual_seed(0)
    net, reference = _small_net(), _small_net()
    reference.load_state_dict(net.state_dict())
    train(net, _fixed_batches(), epochs=1, optimizer=torch.optim.SGD(net.parameters(), lr=0.1),
          criterion=nn.CrossEntropyLoss(), verbose=False)
    by_hand = torch.optim.SGD(reference.parameters(), lr=0.1)
    for images, labels in _fixed_batches():
        by_hand.zero_grad()
        nn.functional.cross_entropy(reference(images), labels).backward()
        by_hand.step()
    for ours, theirs in zip(net.parameters(), reference.parameters()):
        torch.testing.assert_close(ours, theirs)
