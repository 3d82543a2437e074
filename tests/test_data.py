"""The prepared-array reader and the assignment's dataset classes."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from conftest import REQUIRE_RESOURCES, STL10_SAMPLE, requires_real_cifar

from cv_helpers.data import (CIFAR100, SMOKE_IMAGES, VALIDATION_IMAGES, ArraySplit, CIFAR100_loader, STL10_Dataset,
                             hold_out, load_cifar100, load_cifar100_validation, load_split, smoke_subset, stl10_source)
from cv_helpers.errors import DataError
from cv_helpers.transforms import make_test_transform


@requires_real_cifar
def test_real_cifar100_has_official_sizes_and_names(data_root, full_mode):
    train, test = CIFAR100_loader(data_root, train=True), CIFAR100_loader(data_root, train=False)
    assert (len(train), len(test)) == (50_000, 10_000)
    assert len(train.classes) == 100 and len(train.superclasses) == 20
    assert train.classes[0] == "apple" and train.classes[99] == "worm"
    assert np.bincount(test.fine_labels).tolist() == [100] * 100
    assert np.bincount(train.coarse_labels).tolist() == [2500] * 20


def test_cifar100_item_is_normalised_tensor_and_fine_label(data_root):
    dataset = CIFAR100_loader(data_root, train=False, transform=make_test_transform())
    image, label = dataset[3]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32
    assert -1.0 <= image.min() and image.max() <= 1.0
    assert label == dataset.fine_labels[3]
    expected = torch.from_numpy(dataset.images[3]).permute(2, 0, 1).float() / 255 * 2 - 1
    assert torch.allclose(image, expected, atol=1e-6)


def test_item_without_transform_is_pil_image_like_torchvision(data_root):
    image, _ = CIFAR100_loader(data_root, train=False)[0]
    assert image.size == (32, 32) and image.mode == "RGB"


def test_smoke_mode_keeps_every_class(data_root):
    for train, size in ((True, SMOKE_IMAGES["train"]), (False, SMOKE_IMAGES["test"])):
        split = load_cifar100(train, data_root)
        assert len(split) == size
        assert set(np.unique(split.labels["fine_labels"])) == set(range(100))


def test_smoke_subset_is_spread_over_sorted_classes():
    labels = np.repeat(np.arange(10), 50)
    split = ArraySplit(np.zeros((500, 2, 2, 3), np.uint8), {"y": labels}, {})
    subset = smoke_subset(split, "y", 20)
    assert np.bincount(subset.labels["y"]).tolist() == [2] * 10


def test_stl10_dataset_has_five_classes_and_96px_images(data_root):
    dataset = STL10_Dataset(data_root, train=True, transform=make_test_transform())
    assert dataset.classes == ["car", "deer", "horse", "monkey", "truck"]
    assert set(np.unique(dataset.targets)) == {0, 1, 2, 3, 4}
    assert dataset[0][0].shape == (3, 96, 96)


def test_missing_folder_names_folder_and_fix(tmp_path):
    with pytest.raises(DataError, match=r"does not exist.*unpack.py.*prepare-data") as info:
        CIFAR100_loader(tmp_path)
    assert str(tmp_path / "cifar100") in str(info.value) and "\n" not in str(info.value)


@pytest.fixture()
def cifar_copy(data_root, tmp_path):
    """A writable copy of the smoke-sized test split (enough to corrupt)."""
    target = tmp_path / "cifar100"
    target.mkdir()
    source = data_root / "cifar100"
    for name in ("test_images.npy", "test_fine_labels.npy", "test_coarse_labels.npy", "meta.json"):
        shutil.copy(source / name, target / name)
    return tmp_path


def test_truncated_npy_is_reported_with_its_path(cifar_copy):
    path = cifar_copy / "cifar100" / "test_images.npy"
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(DataError, match="corrupt or truncated file .*test_images.npy"):
        load_split(CIFAR100, "test", cifar_copy)


def test_missing_label_file_is_reported(cifar_copy):
    (cifar_copy / "cifar100" / "test_fine_labels.npy").unlink()
    with pytest.raises(DataError, match="missing file .*test_fine_labels.npy"):
        load_split(CIFAR100, "test", cifar_copy)


def test_wrong_dtype_is_reported(cifar_copy):
    path = cifar_copy / "cifar100" / "test_fine_labels.npy"
    np.save(path, np.load(path).astype(np.int32))
    with pytest.raises(DataError, match="dtype int32"):
        load_split(CIFAR100, "test", cifar_copy)


def test_label_out_of_range_is_reported(cifar_copy):
    path = cifar_copy / "cifar100" / "test_coarse_labels.npy"
    labels = np.load(path)
    labels[0] = 20
    np.save(path, labels)
    with pytest.raises(DataError, match=r"labels in 0\.\.20, expected 0\.\.19"):
        load_split(CIFAR100, "test", cifar_copy)


def test_meta_with_wrong_class_count_is_reported(cifar_copy):
    path = cifar_copy / "cifar100" / "meta.json"
    meta = json.loads(path.read_text())
    meta["fine_label_names"] = meta["fine_label_names"][:99]
    path.write_text(json.dumps(meta))
    with pytest.raises(DataError, match="must list 100 names"):
        load_split(CIFAR100, "test", cifar_copy)


def test_the_tests_use_the_real_stl10_sample_where_it_ships(data_root, full_mode):
    # In CI (and on every course machine) ../shared/data/stl10_sample exists: generated STL-10 there is a failure.
    source = stl10_source(data_root)
    if REQUIRE_RESOURCES or STL10_SAMPLE.is_dir():
        assert source == "real sample", f"STL-10 in the tests is {source!r}, expected the real sample"
    if source == "real sample":
        assert (len(STL10_Dataset(data_root, train=True)), len(STL10_Dataset(data_root, train=False))) == (46, 48)


def test_missing_stl10_says_how_to_prepare_stl10(tmp_path):
    with pytest.raises(DataError, match=r"stl10 does not exist; run `make data` \(the course machines' real "
                                        r"STL-10 sample\) or `python -m cv_helpers.workbench prepare-data "
                                        r"--datasets stl10`"):
        STL10_Dataset(tmp_path)


def _numbered_split(labels: list[int]) -> ArraySplit:
    """A split whose image i is filled with the value i, so that each item can be told apart."""
    images = np.arange(len(labels), dtype=np.uint8)[:, None, None, None] * np.ones((1, 2, 2, 3), np.uint8)
    return ArraySplit(images, {"labels": np.array(labels, dtype=np.int64)}, {})


def test_hold_out_takes_the_same_number_from_each_class_and_keeps_the_rest_apart_in_order():
    split = _numbered_split([0, 1, 2] * 6 + [0, 1, 2])                  # 7 items of each of 3 classes
    rest, held = hold_out(split, "labels", 6)
    assert np.bincount(held.labels["labels"]).tolist() == [2, 2, 2]
    ids = lambda part: part.images[:, 0, 0, 0].tolist()                 # noqa: E731
    assert sorted(ids(rest) + ids(held)) == list(range(21)) and ids(rest) == sorted(ids(rest))
    assert ids(held) == ids(hold_out(split, "labels", 6)[1])            # the same items every time
    assert ids(held) != ids(hold_out(split, "labels", 6, seed=1)[1])    # chosen by the seed, not by position


@pytest.mark.parametrize("size", [5, 21])
def test_a_hold_out_that_cannot_be_class_balanced_is_one_line(size):
    with pytest.raises(DataError, match=f"cannot hold out {size} items in equal parts from 3 classes"):
        hold_out(_numbered_split([0, 1, 2] * 7), "labels", size)


def test_the_validation_split_comes_out_of_the_training_split_never_the_test_split(data_root):
    train, test = load_cifar100(True, data_root), load_cifar100(False, data_root)
    rest, held = load_cifar100_validation(data_root)
    assert (len(rest), len(held)) == (len(train) - VALIDATION_IMAGES["smoke"], VALIDATION_IMAGES["smoke"])
    assert set(np.unique(held.labels["fine_labels"])) == set(range(100))
    images = lambda part: {image.tobytes() for image in part.images}   # noqa: E731
    assert images(held) <= images(train) and not images(held) & images(rest)
    assert not images(held) & images(test)


@requires_real_cifar
def test_the_full_validation_split_is_5000_training_images_50_per_class(data_root, full_mode):
    rest, held = load_cifar100_validation(data_root)
    assert (len(rest), len(held)) == (45_000, 5_000) == (50_000 - VALIDATION_IMAGES["full"], VALIDATION_IMAGES["full"])
    assert np.bincount(held.labels["fine_labels"]).tolist() == [50] * 100
