"""Conversion from the official archives to the prepared arrays (DESIGN.md), and the download that feeds it.

Official formats read here:
- CIFAR-100 python: cifar-100-python/{train,test} pickles with 'data' (N, 3072) uint8 (R, G, B planes, row-major),
  'fine_labels', 'coarse_labels'; cifar-100-python/meta with 'fine_label_names', 'coarse_label_names'.
- STL-10 binary: stl10_binary/{train,test}_X.bin uint8 images (3, 96, 96) each, every plane stored column-major;
  {train,test}_y.bin uint8 labels 1..10 (1-based); class_names.txt one name per line.
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Iterator

import numpy as np

from .data import STL10, STL10_ALL_CLASSES, STL10_CLASSES, STL10_KEPT_LABELS
from .errors import DataError
from .files import write_atomically, write_json

STL10_SIDE = 96
DOWNLOAD_HINT = "delete it and run `python -m cv_helpers.workbench prepare-data` again to download a fresh copy"


def read_cifar100_python(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Returns (images (N, 32, 32, 3) uint8, fine labels (N,) int64, coarse labels (N,) int64)."""
    path = Path(folder) / "cifar-100-python" / split
    entry = _unpickle(path)
    try:
        data = np.asarray(entry["data"], dtype=np.uint8)
        images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        fine = np.asarray(entry["fine_labels"], dtype=np.int64)
        coarse = np.asarray(entry["coarse_labels"], dtype=np.int64)
    except (KeyError, ValueError) as err:
        raise DataError(f"{path} is not a CIFAR-100 batch ({err}); {DOWNLOAD_HINT}") from None
    if not len(images) == len(fine) == len(coarse):
        raise DataError(f"{path} has {len(images)} images but {len(fine)} labels; {DOWNLOAD_HINT}")
    return np.ascontiguousarray(images), fine, coarse


def read_cifar100_meta(folder: Path) -> dict[str, list[str]]:
    """Returns {'fine_label_names': 100 names, 'coarse_label_names': 20 names} from the official meta file."""
    entry = _unpickle(Path(folder) / "cifar-100-python" / "meta")
    return {key: list(entry[key]) for key in ("fine_label_names", "coarse_label_names")}


def _unpickle(path: Path) -> dict:
    if not path.is_file():
        raise DataError(f"missing file {path}; run `python -m cv_helpers.workbench prepare-data` to download it")
    try:
        with path.open("rb") as handle:
            return pickle.load(handle, encoding="latin1")
    except (pickle.UnpicklingError, EOFError, ValueError) as err:
        raise DataError(f"{path} is truncated or corrupt ({err}); {DOWNLOAD_HINT}") from None


def read_stl10_binary(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Returns (images (N, 96, 96, 3) uint8 RGB, labels (N,) int64 as stored: 1-based, 1..10).

    `folder` holds the official archive's stl10_binary/, or is a folder of files in its layout (the real sample).
    """
    base = Path(folder) / "stl10_binary" if (Path(folder) / "stl10_binary").is_dir() else Path(folder)
    images_path, labels_path = base / f"{split}_X.bin", base / f"{split}_y.bin"
    for path in (images_path, labels_path):
        if not path.is_file():
            raise DataError(f"missing file {path}; run `python -m cv_helpers.workbench prepare-data` to download "
                            "STL-10")
    raw = np.fromfile(images_path, dtype=np.uint8)
    labels = np.fromfile(labels_path, dtype=np.uint8).astype(np.int64)
    per_image = 3 * STL10_SIDE * STL10_SIDE
    if raw.size % per_image or raw.size // per_image != labels.size:
        raise DataError(f"{images_path} holds {raw.size / per_image:.2f} images for {labels.size} labels "
                        f"(truncated download?); {DOWNLOAD_HINT}")
    # Each plane is column-major: (N, C, W, H) in memory -> (N, H, W, C).
    images = raw.reshape(-1, 3, STL10_SIDE, STL10_SIDE).transpose(0, 3, 2, 1)
    return np.ascontiguousarray(images), labels


def check_stl10_classes(labels: np.ndarray) -> None:
    """Raises DataError if the archive's labels (1..10) lack any of the course's five classes."""
    missing = [name for name, label in zip(STL10_CLASSES, STL10_KEPT_LABELS) if not np.any(labels == label)]
    if missing:
        raise DataError(f"the STL-10 archive has no images of {', '.join(missing)}; {DOWNLOAD_HINT}")


def save_array(path: Path, array: np.ndarray) -> None:
    """Writes one .npy file atomically."""
    write_atomically(path, lambda handle: np.save(handle, array, allow_pickle=False))


def convert_cifar100(downloads: Path, out: Path) -> str:
    """Writes out/cifar100/ from the official python archive under `downloads`; returns a summary line."""
    target = Path(out) / "cifar100"
    counts = []
    for split in ("train", "test"):
        images, fine, coarse = read_cifar100_python(downloads, split)
        save_array(target / f"{split}_images.npy", images)
        save_array(target / f"{split}_fine_labels.npy", fine)
        save_array(target / f"{split}_coarse_labels.npy", coarse)
        counts.append(f"{len(images)} {split}")
    write_json(target / "meta.json", read_cifar100_meta(downloads))
    return f"cifar100: wrote {', '.join(counts)} images to {target}"


def convert_stl10(downloads: Path, out: Path, source: str = "official archive") -> str:
    """Writes out/stl10/ (all ten classes, the archive's labels 1..10) from the official binary files under
    `downloads` (see `read_stl10_binary`), recording `source` (one of STL10_SOURCES); returns a summary line.
    The five classes of the course are chosen by `STL10_Dataset`."""
    target = Path(out) / STL10.folder
    counts = []
    for split in ("train", "test"):
        images, labels = read_stl10_binary(downloads, split)
        check_stl10_classes(labels)
        save_array(target / f"{split}_images.npy", images)
        save_array(target / f"{split}_labels.npy", labels)
        counts.append(f"{len(images)} {split}")
    write_json(target / "meta.json", {"label_names": list(STL10_ALL_CLASSES), "source": source})
    return f"stl10: wrote {', '.join(counts)} images ({source}) to {target}"


def download(dataset: str, downloads: Path) -> None:
    """Downloads and verifies (MD5) one official archive through torchvision; shows progress."""
    from torchvision import datasets

    if dataset == "stl10":
        print("STL-10 is a 2.6 GB download; its labelled images (all ten classes) are kept afterwards.")
        datasets.STL10(str(downloads), split="train", download=True)
    else:
        datasets.CIFAR100(str(downloads), train=True, download=True)


def prepare_data(out: Path, downloads: Path, datasets: list[str], download_first: bool = True,
                 stl10_sample: Path | None = None) -> Iterator[str]:
    """Converts each dataset to the prepared format, downloading it first; yields one line per step.

    With `stl10_sample` (a folder in the official binary layout, such as ../shared/data/stl10_sample), STL-10 is
    converted from it, through the same code as the archive, instead of downloading the archive.
    """
    for dataset in datasets:
        if dataset == "stl10" and stl10_sample is not None:
            yield convert_stl10(Path(stl10_sample), Path(out), source="real sample")
            continue
        if download_first:
            download(dataset, Path(downloads))
        converter = convert_stl10 if dataset == "stl10" else convert_cifar100
        yield converter(Path(downloads), Path(out))
    yield f"done: set CV_HELPERS_DATA={Path(out).resolve()}"
