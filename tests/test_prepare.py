"""Conversion from the official on-disk formats (generated here) to the prepared arrays."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from cv_helpers.data import CIFAR100, STL10, STL10_Dataset, load_split, select_stl10_classes, stl10_source
from cv_helpers.errors import DataError
from cv_helpers.prepare import (check_stl10_classes, convert_cifar100, convert_stl10, prepare_data,
                                read_stl10_binary)
from tests.fixtures import write_cifar100_python, write_stl10_binary


def test_stl10_reader_undoes_column_major_planes(tmp_path):
    base = tmp_path / "stl10_binary"
    base.mkdir()
    image = np.arange(96 * 96 * 3, dtype=np.uint32).reshape(96, 96, 3) % 251      # (H, W, C), asymmetric
    # The official layout: per channel, pixel (row h, column w) sits at offset w * 96 + h.
    stored = np.stack([image[:, :, c].T.reshape(-1) for c in range(3)]).astype(np.uint8)
    stored.tofile(base / "train_X.bin")
    np.array([3], np.uint8).tofile(base / "train_y.bin")
    images, labels = read_stl10_binary(tmp_path, "train")
    assert images.shape == (1, 96, 96, 3)
    assert np.array_equal(images[0], image.astype(np.uint8))
    assert labels.tolist() == [3]


def test_stl10_label_map_is_one_based_car_deer_horse_monkey_truck():
    official = np.arange(1, 11, dtype=np.int64)        # airplane=1 ... truck=10
    images = np.arange(10)[:, None, None, None] * np.ones((10, 2, 2, 3), np.uint8)
    kept_images, labels = select_stl10_classes(images, official)
    assert labels.tolist() == [0, 1, 2, 3, 4]
    assert kept_images[:, 0, 0, 0].tolist() == [2, 4, 6, 7, 9]   # rows of car, deer, horse, monkey, truck


def test_stl10_conversion_keeps_the_archive_and_the_dataset_keeps_exactly_the_five_classes(tmp_path):
    write_stl10_binary(tmp_path / "dl", per_class_train=3, per_class_test=2)
    convert_stl10(tmp_path / "dl", tmp_path / "out")
    raw = np.fromfile(tmp_path / "dl" / "stl10_binary" / "train_X.bin", np.uint8).reshape(-1, 3, 96, 96)
    raw_labels = np.fromfile(tmp_path / "dl" / "stl10_binary" / "train_y.bin", np.uint8)
    prepared = load_split(STL10, "train", tmp_path / "out")
    assert prepared.labels["labels"].tolist() == raw_labels.tolist() and len(prepared) == 30   # all ten, 1..10
    dataset = STL10_Dataset(tmp_path / "out", train=True)
    assert len(dataset) == 15 and sorted(set(dataset.targets.tolist())) == [0, 1, 2, 3, 4]
    assert dataset.classes == ["car", "deer", "horse", "monkey", "truck"]
    source_rows = np.flatnonzero(np.isin(raw_labels, [3, 5, 7, 8, 10]))
    for kept, row in enumerate(source_rows):
        assert np.array_equal(dataset.images[kept], raw[row].transpose(2, 1, 0))   # (C, W, H) -> (H, W, C)
        assert dataset.targets[kept] == {3: 0, 5: 1, 7: 2, 8: 3, 10: 4}[raw_labels[row]]


def test_stl10_archive_without_a_needed_class_is_refused():
    labels = np.array([1, 2, 3, 5, 7, 8], np.int64)       # no truck (10)
    with pytest.raises(DataError, match="no images of truck"):
        check_stl10_classes(labels)


def test_truncated_stl10_archive_is_reported(tmp_path):
    write_stl10_binary(tmp_path, per_class_train=1, per_class_test=1)
    path = tmp_path / "stl10_binary" / "train_X.bin"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match="truncated download"):
        read_stl10_binary(tmp_path, "train")


def test_cifar100_conversion_matches_the_pickled_source(tmp_path):
    write_cifar100_python(tmp_path / "dl", per_class_train=2, per_class_test=1)
    convert_cifar100(tmp_path / "dl", tmp_path / "out")
    with (tmp_path / "dl" / "cifar-100-python" / "train").open("rb") as handle:
        source = pickle.load(handle, encoding="latin1")
    split = load_split(CIFAR100, "train", tmp_path / "out")
    # Official rows are R plane, G plane, B plane (1024 values each, row-major).
    first = np.asarray(source["data"][0]).reshape(3, 32, 32).transpose(1, 2, 0)
    assert np.array_equal(split.images[0], first)
    assert split.labels["fine_labels"].tolist() == source["fine_labels"]
    assert split.labels["coarse_labels"].tolist() == source["coarse_labels"]
    assert split.meta["coarse_label_names"][0] == "coarse_00"


def test_prepare_data_without_download_converts_both(tmp_path):
    write_cifar100_python(tmp_path / "dl", per_class_train=1, per_class_test=1)
    write_stl10_binary(tmp_path / "dl", per_class_train=1, per_class_test=1)
    lines = list(prepare_data(tmp_path / "out", tmp_path / "dl", ["cifar100", "stl10"], download_first=False))
    assert lines[0].startswith("cifar100: wrote 100 train, 100 test")
    assert lines[1].startswith("stl10: wrote 10 train, 10 test")


def test_truncated_cifar_pickle_is_reported(tmp_path):
    write_cifar100_python(tmp_path, per_class_train=1, per_class_test=1)
    path = tmp_path / "cifar-100-python" / "train"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DataError, match="truncated or corrupt"):
        convert_cifar100(tmp_path, tmp_path / "out")


SAMPLE = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "stl10_sample"


def test_the_real_stl10_sample_converts_through_the_archive_code_with_its_source(tmp_path, full_mode):
    assert SAMPLE.is_dir(), f"the real STL-10 sample is missing at {SAMPLE} (it ships with the course data)"
    lines = list(prepare_data(tmp_path, tmp_path / "unused", ["stl10"], stl10_sample=SAMPLE))
    train_count, test_count = ((SAMPLE / f"{split}_y.bin").stat().st_size for split in ("train", "test"))
    assert lines[0].startswith(f"stl10: wrote {train_count} train, {test_count} test images (real sample)")
    for split in ("train", "test"):
        raw = np.fromfile(SAMPLE / f"{split}_X.bin", np.uint8).reshape(-1, 3, 96, 96)
        raw_labels = np.fromfile(SAMPLE / f"{split}_y.bin", np.uint8)
        prepared = STL10_Dataset(tmp_path, train=split == "train")
        rows = np.flatnonzero(np.isin(raw_labels, [3, 5, 7, 8, 10]))
        assert len(prepared) == len(rows)
        for kept, row in enumerate(rows):
            assert np.array_equal(prepared.images[kept], raw[row].transpose(2, 1, 0))
            assert prepared.targets[kept] == {3: 0, 5: 1, 7: 2, 8: 3, 10: 4}[raw_labels[row]]
    assert stl10_source(tmp_path) == "real sample"
