"""Grades a student's submission: their package under the staff's checks, in a throwaway folder.

The submission (a folder, or the course's zip) is untrusted: a zip entry that would land outside its folder, a
symlink, or a file far over the expected size is refused with one line naming it. Only the student's `cv_helpers/`
Python files are taken; the staff's `checks/` (and hidden tests, if given) are laid over them, so the student's code
is what is graded and nothing of theirs can replace a check. Each check has a time limit (an endless loop fails its
own task, not the run); nothing is deducted for output on stderr.
"""
from __future__ import annotations

import csv
import io
import json
import shutil
import stat
import zipfile
from pathlib import Path

from ..config import REPO_ROOT
from ..errors import ConfigError
from ..files import write_text
from .edition import TASKS
from .grading import run_checks, score_table, task_scores

MAX_FILE_BYTES = 5_000_000          # far above any module or notebook of the assignment
CHECK_SECONDS = 120                 # per check


def grade_submission(submission: Path, work: Path, hidden: Path | None = None,
                     check_seconds: int = CHECK_SECONDS) -> list[dict]:
    """Grades `submission` (a folder or a .zip) in the new folder `work`; writes work/grades.json and
    work/grades.md and returns the task scores (see `grading.task_scores`)."""
    work = Path(work)
    if work.exists():
        raise ConfigError(f"{work} already exists; grade into a new folder")
    received = work / "received"
    if Path(submission).suffix == ".zip":
        unpack_safely(Path(submission), received)
    else:
        copy_safely(Path(submission), received)
    package = _find_package(received)
    grading = work / "grading"
    shutil.copytree(package, grading / "cv_helpers", ignore=_only_python)
    shutil.copytree(REPO_ROOT / "checks", grading / "checks", ignore=shutil.ignore_patterns("__pycache__"))
    if hidden is not None:
        shutil.copytree(hidden, grading / "checks" / "hidden", ignore=shutil.ignore_patterns("__pycache__"))
    scores = task_scores(run_checks(grading, check_seconds=check_seconds))
    write_text(work / "grades.json", json.dumps(scores, indent=1) + "\n")
    write_text(work / "grades.md", score_table(scores) + "\n")
    return scores


def grade_many(submissions: Path, work: Path, hidden: Path | None = None,
               check_seconds: int = CHECK_SECONDS) -> Path:
    """Grades every submission in the folder `submissions` (sub-folders and .zip files, in name order), each in
    work/NAME/, and writes work/grades.csv: one row per submission, its points per auto-graded task and in total.
    A submission refused or failing to grade gets its one-line reason in the row instead. Returns the CSV's path."""
    entries = sorted(p for p in Path(submissions).iterdir() if p.is_dir() or p.suffix == ".zip")
    if not entries:
        raise ConfigError(f"{submissions} holds no submission folders or .zip files")
    graded = [task for task in TASKS if not task.by_hand]
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(["submission", *(f"{task.id} ({task.points:g})" for task in graded), "total", "note"])
    for entry in entries:
        try:
            earned = {s["task"]: s["earned"] for s in grade_submission(entry, Path(work) / entry.stem, hidden,
                                                                         check_seconds)}
            writer.writerow([entry.name, *(f"{earned[task.id]:.1f}" for task in graded),
                             f"{sum(earned[task.id] for task in graded):.1f}", ""])
        except ConfigError as err:
            writer.writerow([entry.name, *([""] * len(graded)), "", str(err)])
    out = Path(work) / "grades.csv"
    write_text(out, table.getvalue())
    return out


def unpack_safely(archive: Path, out: Path) -> None:
    """Extracts `archive` into `out`, refusing (one line, nothing written) entries outside `out`, symlinks and
    files over MAX_FILE_BYTES."""
    try:
        with zipfile.ZipFile(archive) as zipped:
            entries = zipped.infolist()
            for entry in entries:
                _check_entry(archive, entry, out)
            zipped.extractall(out)
    except zipfile.BadZipFile:
        raise ConfigError(f"{archive} is not a zip archive; submit the course's zip") from None


def _check_entry(archive: Path, entry: zipfile.ZipInfo, out: Path) -> None:
    target = (out / entry.filename).resolve()
    if entry.filename.startswith("/") or not target.is_relative_to(out.resolve()):
        raise ConfigError(f"{archive}: entry {entry.filename!r} would be written outside the submission's folder; "
                          "refused")
    if stat.S_ISLNK(entry.external_attr >> 16):
        raise ConfigError(f"{archive}: entry {entry.filename!r} is a symbolic link; refused")
    if entry.file_size > MAX_FILE_BYTES:
        raise ConfigError(f"{archive}: entry {entry.filename!r} has {entry.file_size:,} bytes, over the "
                          f"{MAX_FILE_BYTES:,} allowed; refused")


def copy_safely(folder: Path, out: Path) -> None:
    """Copies the submission folder, refusing symlinks and oversized files (one line naming them)."""
    if not folder.is_dir():
        raise ConfigError(f"{folder} is neither a folder nor a .zip; give the submission's folder or zip")
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            raise ConfigError(f"{path} is a symbolic link; refused")
        if path.is_file() and path.stat().st_size > MAX_FILE_BYTES:
            raise ConfigError(f"{path} has {path.stat().st_size:,} bytes, over the {MAX_FILE_BYTES:,} allowed; refused")
    shutil.copytree(folder, out)


def _find_package(received: Path) -> Path:
    """Returns the submission's cv_helpers/ folder (at its top or one folder down, as a zip of a folder has it)."""
    found = sorted(received.glob("cv_helpers")) + sorted(received.glob("*/cv_helpers"))
    if not found:
        raise ConfigError(f"the submission has no cv_helpers/ folder (looked in {received.name}/ and one level "
                          "down); submit the whole project folder")
    return found[0]


def _only_python(folder: str, names: list[str]) -> list[str]:
    """shutil.copytree's ignore: keeps sub-folders and .py files, drops everything else (caches, data, binaries)."""
    kept = [name for name in names if name.endswith(".py") or (Path(folder, name).is_dir() and name != "__pycache__")]
    return [name for name in names if name not in kept]
