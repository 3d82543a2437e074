"""Test setup for every way of running the tests from the repository root (`make test`, `pytest`, `pytest
notebooks/`, one notebook with nbval): smoke mode, a data folder (real CIFAR-100 when present, generated STL-10),
and private runs/ and report/ folders, so that tests never touch the repository's results. Notebook kernels
inherit all of it. It sits at the root so that pytest loads it for `tests/` and `notebooks/` alike."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("CV_HELPERS_SMOKE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

from cv_helpers.config import data_dir  # noqa: E402  (after the environment is set)
from cv_helpers.fixtures import make_fixture_data  # noqa: E402

REAL_DATA = data_dir()
HAS_REAL_CIFAR = (REAL_DATA / "cifar100" / "train_images.npy").is_file()
_WORK = Path(tempfile.mkdtemp(prefix="cv-workbook-tests-"))


def _build_data_folder() -> Path:
    """Returns a data folder: generated archives converted by the real prepare code, real CIFAR-100 linked in."""
    folder = make_fixture_data(_WORK / "data", stl10_only=HAS_REAL_CIFAR)
    if HAS_REAL_CIFAR:
        (folder / "cifar100").symlink_to(REAL_DATA / "cifar100", target_is_directory=True)
    return folder


DATA = _build_data_folder()
os.environ["CV_HELPERS_DATA"] = str(DATA)
os.environ["CV_HELPERS_RUNS"] = str(_WORK / "runs")
os.environ["CV_HELPERS_REPORT"] = str(_WORK / "report")


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_WORK, ignore_errors=True)


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The test data folder (cifar100/ and stl10_5class/ in the prepared format)."""
    return DATA


@pytest.fixture(scope="module")
def child_env(tmp_path_factory) -> dict:
    """Environment for a child process: generated data (500 CIFAR images), full mode, a private runs folder."""
    root = tmp_path_factory.mktemp("child")
    make_fixture_data(root / "data")
    return {**os.environ, "CV_HELPERS_DATA": str(root / "data"), "CV_HELPERS_RUNS": str(root / "runs"),
            "CV_HELPERS_SMOKE": "0", "OMP_NUM_THREADS": "1"}


@pytest.fixture()
def full_mode(monkeypatch):
    """Turns smoke mode off for one test (full-size datasets)."""
    monkeypatch.setenv("CV_HELPERS_SMOKE", "0")


requires_real_cifar = pytest.mark.skipif(not HAS_REAL_CIFAR, reason="real CIFAR-100 not present: set "
                                         "CV_HELPERS_DATA to the folder `unpack.py --out` wrote (CI does)")
