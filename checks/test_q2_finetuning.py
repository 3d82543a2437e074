"""Q2: the five STL-10 classes and the fine-tuning surgery."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from cv_helpers.data import STL10_Dataset, select_stl10_classes
from cv_helpers.finetune import adapt_for_finetuning
from cv_helpers.models import ConvNetBN


@pytest.mark.task("Q2.1")
def test_the_five_classes_are_kept_and_relabelled_0_to_4():
    labels = np.array([1, 3, 5, 7, 8, 10, 2, 10, 3], dtype=np.int64)        # the archive's labels, 1-based
    images = np.arange(len(labels))[:, None, None, None] * np.ones((1, 2, 2, 3), np.uint8)
    kept, relabelled = select_stl10_classes(images, labels)
    assert relabelled.tolist() == [0, 1, 2, 3, 4, 4, 0]
    assert kept[:, 0, 0, 0].tolist() == [1, 2, 3, 4, 5, 7, 8]               # the same images, in order


@pytest.mark.task("Q2.1")
def test_the_dataset_holds_only_the_five_classes():
    data = STL10_Dataset(train=True)
    assert data.classes == ["car", "deer", "horse", "monkey", "truck"]
    assert len(data) > 0 and set(np.unique(data.targets)) <= {0, 1, 2, 3, 4}
    assert data.images.shape[1:] == (96, 96, 3)


@pytest.mark.task("Q2.2a")
def test_the_surgery_gives_a_five_way_head_and_an_fc1_for_96x96_images():
    torch.manual_seed(0)
    net = ConvNetBN()
    conv1 = net.conv1.weight.detach().clone()
    adapt_for_finetuning(net, num_classes=5, image_size=96)
    assert (net.fc1.in_features, net.fc2.out_features) == (128 * 24 * 24, 5)
    torch.testing.assert_close(net.conv1.weight, conv1)                  # the pretrained convolutions are kept
    assert net.eval()(torch.zeros(2, 3, 96, 96)).shape == (2, 5)
