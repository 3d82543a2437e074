"""The prepared-array format (see DESIGN.md) and the assignment's dataset classes.

Layout under the data folder:
    cifar100/{train,test}_images.npy        uint8 (N, 32, 32, 3) RGB
    cifar100/{train,test}_fine_labels.npy   int64 (N,) 0..99
    cifar100/{train,test}_coarse_labels.npy int64 (N,) 0..19
    cifar100/meta.json                      fine_label_names, coarse_label_names
    stl10_5class/{train,test}_images.npy    uint8 (N, 96, 96, 3) RGB
    stl10_5class/{train,test}_labels.npy    int64 (N,) 0..4 = car, deer, horse, monkey, truck
    stl10_5class/meta.json                  label_names
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from .config import by_mode, data_dir
from .errors import DataError

FIX_HINT = (
    "run `python ../shared/data/unpack.py --out DIR` (course machines) or "
    "`python -m cv_helpers prepare-data --out DIR` (downloads), then set CV_HELPERS_DATA=DIR"
)
STL10_CLASSES = ("car", "deer", "horse", "monkey", "truck")


@dataclass(frozen=True)
class DatasetSpec:
    """What one prepared dataset looks like on disk."""

    folder: str
    image_hw: int
    label_files: dict[str, int]  # label name -> number of classes
    meta_keys: tuple[str, ...]


CIFAR100 = DatasetSpec("cifar100", 32, {"fine_labels": 100, "coarse_labels": 20},
                       ("fine_label_names", "coarse_label_names"))
STL10_5CLASS = DatasetSpec("stl10_5class", 96, {"labels": 5}, ("label_names",))


@dataclass
class ArraySplit:
    """One split of a prepared dataset: images (N, H, W, 3) uint8 and label arrays (N,) int64."""

    images: np.ndarray
    labels: dict[str, np.ndarray]
    meta: dict[str, list[str]]

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, indices: np.ndarray) -> "ArraySplit":
        """Returns the split restricted to `indices` (same order)."""
        return ArraySplit(self.images[indices], {k: v[indices] for k, v in self.labels.items()}, self.meta)


def _load_npy(path: Path) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"missing file {path}; {FIX_HINT}")
    try:
        return np.load(path, mmap_mode=None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise DataError(f"corrupt or truncated file {path} ({err}); delete it and {FIX_HINT}") from None


def load_split(spec: DatasetSpec, split: str, root: Path | str | None = None) -> ArraySplit:
    """Returns the checked arrays of one split ('train' or 'test') of a prepared dataset."""
    if split not in ("train", "test"):
        raise DataError(f"split must be 'train' or 'test', got {split!r}")
    folder = Path(root if root is not None else data_dir()) / spec.folder
    if not folder.is_dir():
        raise DataError(f"data folder {folder} does not exist; {FIX_HINT}")
    images = _load_npy(folder / f"{split}_images.npy")
    expected = (spec.image_hw, spec.image_hw, 3)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != expected:
        raise DataError(f"{folder / f'{split}_images.npy'} has dtype {images.dtype} and shape {images.shape}, "
                        f"expected uint8 (N, {', '.join(map(str, expected))}); {FIX_HINT}")
    labels = {}
    for name, num_classes in spec.label_files.items():
        path = folder / f"{split}_{name}.npy"
        values = _load_npy(path)
        if values.dtype != np.int64 or values.shape != (len(images),):
            raise DataError(f"{path} has dtype {values.dtype} and shape {values.shape}, expected int64 "
                            f"({len(images)},); {FIX_HINT}")
        if len(values) and (values.min() < 0 or values.max() >= num_classes):
            raise DataError(f"{path} has labels in {values.min()}..{values.max()}, expected 0..{num_classes - 1}; "
                            f"{FIX_HINT}")
        labels[name] = values
    meta = read_meta(folder, spec)
    return ArraySplit(images, labels, meta)


def read_meta(folder: Path, spec: DatasetSpec) -> dict[str, list[str]]:
    """Returns the class-name lists of meta.json, checked against the label counts."""
    path = folder / "meta.json"
    if not path.is_file():
        raise DataError(f"missing file {path}; {FIX_HINT}")
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise DataError(f"corrupt file {path} ({err}); {FIX_HINT}") from None
    for key, num_classes in zip(spec.meta_keys, spec.label_files.values()):
        if len(meta.get(key, [])) != num_classes:
            raise DataError(f"{path} must list {num_classes} names under {key!r}; {FIX_HINT}")
    return {key: list(meta[key]) for key in spec.meta_keys}


def smoke_subset(split: ArraySplit, label: str, size: int) -> ArraySplit:
    """Returns `size` items spread evenly over the split (every class kept when sorted by class)."""
    if size >= len(split):
        return split
    order = np.argsort(split.labels[label], kind="stable")
    return split.subset(np.sort(order[np.linspace(0, len(order) - 1, size).round().astype(int)]))


def load_cifar100(train: bool = True, root: Path | str | None = None) -> ArraySplit:
    """Returns CIFAR-100's train or test split, shrunk to a few hundred images in smoke mode."""
    split = load_split(CIFAR100, "train" if train else "test", root)
    return smoke_subset(split, "fine_labels", by_mode(len(split), 1000 if train else 500))


def load_stl10(train: bool = True, root: Path | str | None = None) -> ArraySplit:
    """Returns the 5-class STL-10 train or test split, shrunk in smoke mode."""
    split = load_split(STL10_5CLASS, "train" if train else "test", root)
    return smoke_subset(split, "labels", by_mode(len(split), 250 if train else 200))


class _ArrayImageDataset(Dataset):
    """Serves (transform(PIL image), label) pairs from uint8 arrays, like torchvision's datasets."""

    def __init__(self, images: np.ndarray, targets: np.ndarray, classes: list[str],
                 transform: Callable | None) -> None:
        self.images, self.targets, self.classes, self.transform = images, targets, classes, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        image = Image.fromarray(self.images[index])
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.targets[index])


class CIFAR100_loader(_ArrayImageDataset):  # noqa: N801 - the assignment's name
    """CIFAR-100 from prepared arrays: items are (transform(image), fine label).

    Attributes: `images` (N, 32, 32, 3) uint8, `fine_labels` and `coarse_labels` (N,) int64,
    `classes` (100 fine names), `superclasses` (20 coarse names); `targets` is `fine_labels`.
    """

    def __init__(self, root: Path | str | None = None, train: bool = True,
                 transform: Callable | None = None) -> None:
        split = load_cifar100(train, root)
        self.fine_labels = split.labels["fine_labels"]
        self.coarse_labels = split.labels["coarse_labels"]
        self.superclasses = split.meta["coarse_label_names"]
        super().__init__(split.images, self.fine_labels, split.meta["fine_label_names"], transform)

    def superclass_table(self) -> list[tuple[str, str]]:
        """Returns (superclass name, its fine class names joined by ', ') for each of the 20 superclasses."""
        pairs = set(zip(self.coarse_labels.tolist(), self.fine_labels.tolist()))
        return [(name, ", ".join(self.classes[f] for c, f in sorted(pairs) if c == coarse))
                for coarse, name in enumerate(self.superclasses)]


class STL10_Dataset(_ArrayImageDataset):  # noqa: N801 - the assignment's name
    """The 5-class STL-10 subset (car, deer, horse, monkey, truck -> 0..4) from prepared arrays.

    Items are (transform(image), label); `images` is (N, 96, 96, 3) uint8.
    """

    def __init__(self, root: Path | str | None = None, train: bool = True,
                 transform: Callable | None = None) -> None:
        split = load_stl10(train, root)
        super().__init__(split.images, split.labels["labels"], split.meta["label_names"], transform)
