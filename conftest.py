"""Test setup for every way of running the tests from the repository root (`make test`, `pytest`, `pytest
notebooks/`, one notebook with nbval): smoke mode, a data folder (real CIFAR-100 when present; STL-10 converted
from the real 219-image sample in ../shared/data, generated only where the sample is absent),
and private runs/ and report/ folders, so that tests never touch the repository's results. Notebook kernels
inherit all of it. It sits at the root so that pytest loads it for `tests/` and `notebooks/` alike."""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("CV_HELPERS_SMOKE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ["CUDA_VISIBLE_DEVICES"] = ""   # tests run on the CPU on every machine, GPU or not (numbers, messages)

from cv_helpers.config import REPO_ROOT, data_dir  # noqa: E402  (after the environment is set)
from cv_helpers.prepare import convert_stl10  # noqa: E402
from tests.fixtures import make_fixture_data  # noqa: E402

REAL_DATA = data_dir()
HAS_REAL_CIFAR = (REAL_DATA / "cifar100" / "train_images.npy").is_file()
STL10_SAMPLE = REPO_ROOT.parent / "shared" / "data" / "stl10_sample"
_WORK = Path(tempfile.mkdtemp(prefix="cv-workbook-tests-"))


def _build_data_folder() -> Path:
    """Returns a data folder: real CIFAR-100 linked in and STL-10 converted from the real sample by the archive
    code; generated archives (converted by the same code) only for what is absent."""
    folder = _WORK / "data"
    absent = [name for name, present in (("cifar100", HAS_REAL_CIFAR), ("stl10", STL10_SAMPLE.is_dir())) if not present]
    make_fixture_data(folder, datasets=tuple(absent))
    if STL10_SAMPLE.is_dir():
        convert_stl10(STL10_SAMPLE, folder, source="real sample")
    if HAS_REAL_CIFAR:
        (folder / "cifar100").symlink_to(REAL_DATA / "cifar100", target_is_directory=True)
    return folder


DATA = _build_data_folder()
os.environ["CV_HELPERS_DATA"] = str(DATA)
os.environ["CV_HELPERS_RUNS"] = str(_WORK / "runs")
os.environ["CV_HELPERS_REPORT"] = str(_WORK / "report")


GUARDED = (REPO_ROOT / "report", REPO_ROOT / "runs")   # what tests must never change, however they are started
# Set by .ci/run: a test whose resource (PostgreSQL, the real CIFAR-100, Chromium) is missing fails instead of skipping.
REQUIRE_RESOURCES = os.environ.get("CV_HELPERS_REQUIRE_RESOURCES") == "1"


def digest(folders: tuple[Path, ...] = GUARDED) -> dict[str, str]:
    """Returns {path: sha256 of its bytes} of every file under `folders` (git-ignored ones too)."""
    return {str(path): hashlib.sha256(path.read_bytes()).hexdigest()
            for folder in folders for path in sorted(folder.rglob("*")) if path.is_file()}


def changed_files(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Returns the paths added, removed or changed between two digests."""
    return sorted(path for path in before.keys() | after.keys() if before.get(path) != after.get(path))


def pytest_sessionstart(session):
    session.config.guarded_digest = digest()


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_WORK, ignore_errors=True)
    changed = changed_files(session.config.guarded_digest, digest())
    if changed:
        writer = session.config.get_terminal_writer()
        writer.line()
        writer.line(
            f"FAILED: the test session changed {len(changed)} file(s) under report/ or runs/, which tests must never "
            f"touch: {', '.join(changed[:10])}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def need(missing: str, hint: str) -> None:
    """Skips the calling test when `missing` names an absent resource (with `hint`: how to get it), or fails it
    where CV_HELPERS_REQUIRE_RESOURCES=1 (CI); does nothing when `missing` is empty."""
    if missing and REQUIRE_RESOURCES:
        pytest.fail(f"{missing}, and CV_HELPERS_REQUIRE_RESOURCES=1 says every resource must be here; {hint}")
    if missing:
        pytest.skip(f"{missing}; {hint}")


def pytest_runtest_setup(item):
    for mark in item.iter_markers("needs"):
        need(*mark.args)


def pytest_configure(config):
    config.addinivalue_line("markers", "needs(missing, hint): the test needs a resource; see conftest.need")


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The test data folder (cifar100/ and stl10/ in the prepared format)."""
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


requires_real_cifar = pytest.mark.needs("" if HAS_REAL_CIFAR else "the real CIFAR-100 is not present",
                                        "set CV_HELPERS_DATA to the folder `unpack.py --out` wrote (CI does)")
