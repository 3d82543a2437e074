"""Grades a student's submission: their package under the staff's checks, in a throwaway folder.

The submission (a folder, or the course's zip) is untrusted: a zip entry that would land outside its folder, a
symlink, or a file far over the expected size is refused with one line naming it. Only the student's `cv_helpers/`
Python files are taken; the staff's `checks/` (and hidden tests, if given) are laid over them, so the student's code
is what is graded and nothing of theirs can replace a check. Each check has a time limit (an endless loop fails its
own task, not the run); nothing is deducted for output on stderr. Then each of the course's notebooks, as the student
handed it in, is executed top to bottom in smoke mode with the student's package ("Restart & Run All", which the course
requires): the result is reported per notebook beside the points, and a TA reads the executed copies.
"""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
import stat
import zipfile
from pathlib import Path

import nbformat
from nbclient.exceptions import CellExecutionError, CellTimeoutError

from ..config import REPO_ROOT
from ..errors import ConfigError
from ..files import write_text
from .grading import run_checks, score_table, task_scores
from .notebooks import PollingNotebookClient, notebook_paths
from .tasks import TASKS

MAX_FILE_BYTES = 5_000_000          # far above any module or notebook of the assignment
CHECK_SECONDS = 120                 # per check
CELL_SECONDS = 900                  # per notebook cell, in smoke mode


def grade_submission(submission: Path, work: Path, hidden: Path | None = None, check_seconds: int = CHECK_SECONDS,
                     notebooks: list[str] | None = None, cell_seconds: int = CELL_SECONDS) -> dict:
    """Grades `submission` (a folder or a .zip) in the new folder `work`: the checks, then the course's notebooks
    (all of them, or the file names in `notebooks`; [] runs none). Writes work/grades.json and work/grades.md and
    returns {"tasks": task scores (see `grading.task_scores`), "notebooks": see `run_student_notebooks`}."""
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
    names = [path.name for path in notebook_paths()] if notebooks is None else notebooks
    grades = {"tasks": task_scores(run_checks(grading, check_seconds=check_seconds)),
              "notebooks": run_student_notebooks(received, grading, names, cell_seconds)}
    write_text(work / "grades.json", json.dumps(grades, indent=1) + "\n")
    write_text(work / "grades.md", grades_table(grades) + "\n")
    return grades


def run_student_notebooks(received: Path, grading: Path, names: list[str],
                          cell_seconds: int = CELL_SECONDS) -> list[dict]:
    """Executes the submission's notebooks `names` (file names; found anywhere in `received`) in grading/notebooks/,
    top to bottom in smoke mode, with the package in `grading` and runs written under grading/smoke/; keeps the
    executed copies there. Returns per notebook {"notebook", "ran", "why"} ("why": the first error, one line)."""
    handed_in = {path.name: path for path in sorted(received.rglob("*.ipynb"))
                 if ".ipynb_checkpoints" not in path.parts}
    env = {**os.environ, "PYTHONPATH": str(grading), "CV_HELPERS_SMOKE": "1",
           "CV_HELPERS_RUNS": str(grading / "smoke" / "runs"), "CV_HELPERS_REPORT": str(grading / "smoke" / "report")}
    results = []
    for name in names:
        why = "not in the submission" if name not in handed_in else _execute(handed_in[name],
                                                                           grading / "notebooks", env, cell_seconds)
        results.append({"notebook": name, "ran": not why, "why": why})
    return results


def _execute(source: Path, folder: Path, env: dict[str, str], cell_seconds: int) -> str:
    """Executes a copy of the notebook `source` in `folder`; returns '' or the first error in one line."""
    try:
        notebook = nbformat.read(source, as_version=4)
    except (ValueError, nbformat.ValidationError) as err:
        return f"not a readable notebook ({type(err).__name__})"
    client = PollingNotebookClient(notebook, timeout=cell_seconds, kernel_name="python3",
                                   resources={"metadata": {"path": str(folder)}})
    folder.mkdir(parents=True, exist_ok=True)
    try:
        client.execute(env=env, cwd=str(folder))
        return ""
    except CellTimeoutError:
        return f"{_failed_cell(notebook)}ran over its {cell_seconds} s limit"
    except CellExecutionError as err:
        return f"{_failed_cell(notebook)}{err.ename}: {err.evalue}".splitlines()[0][:200]
    finally:
        write_text(folder / source.name, nbformat.writes(notebook))


def _failed_cell(notebook: nbformat.NotebookNode) -> str:
    """Returns 'cell N: ' for the code cell that stopped the run (the last one executed), or ''."""
    run = [number for number, cell in enumerate(notebook.cells, 1)
           if cell.cell_type == "code" and cell.get("execution_count") is not None]
    return f"cell {run[-1]}: " if run else ""


def grades_table(grades: dict) -> str:
    """Returns grades.md: the points per task, then whether each notebook ran top to bottom."""
    lines = [score_table(grades["tasks"]), "", "| notebook (Restart & Run All, smoke mode) | ran |", "|---|---|"]
    lines += [f"| {result['notebook']} | {'yes' if result['ran'] else 'no: ' + result['why']} |"
              for result in grades["notebooks"]]
    return "\n".join(lines)


def grade_many(submissions: Path, work: Path, hidden: Path | None = None, check_seconds: int = CHECK_SECONDS,
               notebooks: list[str] | None = None, cell_seconds: int = CELL_SECONDS) -> Path:
    """Grades every submission in the folder `submissions` (sub-folders and .zip files, in name order), each in
    work/NAME/, and writes work/grades.csv: one row per submission, its points per auto-graded task and in total, and
    how many notebooks ran. A submission refused or failing to grade gets its one-line reason in the row instead.
    Returns the CSV's path."""
    entries = sorted(p for p in Path(submissions).iterdir() if p.is_dir() or p.suffix == ".zip")
    if not entries:
        raise ConfigError(f"{submissions} holds no submission folders or .zip files")
    graded = [task for task in TASKS if not task.by_hand]
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(["submission", *(f"{task.id} ({task.points:g})" for task in graded), "total", "notebooks run",
                     "note"])
    for entry in entries:
        try:
            grades = grade_submission(entry, Path(work) / entry.stem, hidden, check_seconds, notebooks, cell_seconds)
            earned = {score["task"]: score["earned"] for score in grades["tasks"]}
            ran = [result["ran"] for result in grades["notebooks"]]
            writer.writerow([entry.name, *(f"{earned[task.id]:.1f}" for task in graded),
                             f"{sum(earned[task.id] for task in graded):.1f}", f"{sum(ran)} of {len(ran)}", ""])
        except ConfigError as err:
            writer.writerow([entry.name, *([""] * len(graded)), "", "", str(err)])
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
