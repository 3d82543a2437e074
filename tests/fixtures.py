"""Generated stand-ins for the official archives, written in their exact on-disk formats, for the tests only
(which never download): truncated and malformed archives, a missing class, and CIFAR-100 where the data pack is
absent. Images are learnable: each class has its own colour and stripe pattern, plus noise and a random shift,
so short runs show learning.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from cv_helpers.data import STL10_ALL_CLASSES
from cv_helpers.prepare import STL10_SIDE, convert_cifar100, convert_stl10


def class_images(label: np.ndarray, side: int, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    """Returns uint8 (N, side, side, 3) images whose colour and stripes depend on `label` (N,)."""
    n = len(label)
    hue = label / num_classes
    colour = np.stack([np.abs(np.sin(np.pi * (hue + k / 3))) for k in range(3)], axis=1)        # (N, 3)
    frequency = 1 + label % 4                                                                    # stripes per image
    angle = (label // 4 % 4) * np.pi / 4
    shift = rng.uniform(0, 2 * np.pi, n)
    grid = np.arange(side) / side * 2 * np.pi
    yy, xx = np.meshgrid(grid, grid, indexing="ij")
    phase = (np.cos(angle)[:, None, None] * xx + np.sin(angle)[:, None, None] * yy) * frequency[:, None, None]
    stripes = 0.5 + 0.5 * np.sin(phase + shift[:, None, None])                                   # (N, H, W)
    image = 40 + 180 * colour[:, None, None, :] * (0.4 + 0.6 * stripes[..., None])
    image += rng.normal(0, 18, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def write_cifar100_python(folder: Path, per_class_train: int = 5, per_class_test: int = 2, seed: int = 0) -> Path:
    """Writes folder/cifar-100-python/{train,test,meta} in the official pickle format; returns `folder`."""
    rng = np.random.default_rng(seed)
    base = Path(folder) / "cifar-100-python"
    base.mkdir(parents=True, exist_ok=True)
    fine_to_coarse = np.arange(100) // 5
    for split, per_class in (("train", per_class_train), ("test", per_class_test)):
        fine = rng.permutation(np.repeat(np.arange(100), per_class))
        images = class_images(fine, 32, 100, rng)
        entry = {"filenames": [f"img_{i}.png" for i in range(len(fine))], "batch_label": f"{split} batch",
                 "fine_labels": fine.tolist(), "coarse_labels": fine_to_coarse[fine].tolist(),
                 "data": images.transpose(0, 3, 1, 2).reshape(len(fine), -1)}
        with (base / split).open("wb") as handle:
            pickle.dump(entry, handle)
    meta = {"fine_label_names": [f"fine_{i:02d}" for i in range(100)],
            "coarse_label_names": [f"coarse_{i:02d}" for i in range(20)]}
    with (base / "meta").open("wb") as handle:
        pickle.dump(meta, handle)
    return Path(folder)


def write_stl10_binary(folder: Path, per_class_train: int = 40, per_class_test: int = 30, seed: int = 1) -> Path:
    """Writes folder/stl10_binary/{train,test}_{X,y}.bin (column-major planes, labels 1..10); returns `folder`."""
    rng = np.random.default_rng(seed)
    base = Path(folder) / "stl10_binary"
    base.mkdir(parents=True, exist_ok=True)
    for split, per_class in (("train", per_class_train), ("test", per_class_test)):
        labels = rng.permutation(np.repeat(np.arange(10), per_class))
        images = class_images(labels, STL10_SIDE, 10, rng)                  # (N, H, W, C)
        images.transpose(0, 3, 2, 1).tofile(base / f"{split}_X.bin")        # (N, C, W, H): column-major planes
        (labels + 1).astype(np.uint8).tofile(base / f"{split}_y.bin")
    (base / "class_names.txt").write_text("\n".join(STL10_ALL_CLASSES) + "\n")
    return Path(folder)


def make_fixture_data(out: Path, datasets: tuple[str, ...] = ("cifar100", "stl10"), cifar_per_class: int = 5) -> Path:
    """Writes generated official archives of `datasets` (`cifar_per_class` CIFAR-100 training images per class)
    under out/downloads and converts them to prepared arrays in `out`."""
    downloads = Path(out) / "downloads"
    if "stl10" in datasets:
        write_stl10_binary(downloads)
        convert_stl10(downloads, Path(out), source="generated")
    if "cifar100" in datasets:
        write_cifar100_python(downloads, per_class_train=cifar_per_class)
        convert_cifar100(downloads, Path(out))
    return Path(out)
