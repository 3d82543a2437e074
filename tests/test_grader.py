"""The grader: the student's package under the staff's checks, a time limit per check, untrusted zips refused."""
from __future__ import annotations

import re
import shutil
import stat
import zipfile
from pathlib import Path

import nbformat
import pytest

from cv_helpers.errors import ConfigError
from cv_helpers.workbench.tasks import TASKS
from cv_helpers.workbench.edition import copy_solution, write_student_edition
from cv_helpers.workbench.grader import grade_many, grade_submission, run_student_notebooks, unpack_safely


def _zip(path: Path, name: str, data: bytes = b"x", mode: int | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        entry = zipfile.ZipInfo(name)
        if mode is not None:
            entry.external_attr = mode << 16
        archive.writestr(entry, data)
    return path


def _hanging_submission(folder: Path) -> Path:
    """The solution, but its `train` loops forever, and with checks of its own that pass whatever it does."""
    submission = copy_solution(folder)
    train = submission / "cv_helpers" / "train.py"
    source = train.read_text()
    step = "            # BEGIN SOLUTION\n            with autocast(device):"
    assert source.count(step) == 1
    endless = step.replace("SOLUTION\n", "SOLUTION\n            while True:\n                pass\n")
    train.write_text(source.replace(step, endless))
    (submission / "checks" / "test_q1_networks.py").write_text("def test_student_check():\n    pass\n")
    return submission


def _hidden_checks(folder: Path) -> Path:
    folder.mkdir()
    (folder / "test_secret.py").write_text(
        "import pytest\n\n\n@pytest.mark.task('Q2.1')\ndef test_secret_property():\n"
        "    assert 'SECRET-EXPECTATION' == 'the student gets this wrong'\n")
    return folder


def test_one_call_grades_a_folder_of_submissions_each_under_the_staffs_checks_and_time_limit(tmp_path):
    submissions = tmp_path / "submissions"
    submissions.mkdir()
    hanging = _hanging_submission(tmp_path / "hanging")
    with zipfile.ZipFile(submissions / "11_22_33_part2.zip", "w") as archive:      # the course's zip of a folder
        for path in sorted(hanging.rglob("*.py")):
            archive.write(path, f"project/{path.relative_to(hanging).as_posix()}")
    _zip(submissions / "44_55_66_part2.zip", "../outside.txt")
    rows = grade_many(submissions, tmp_path / "work", _hidden_checks(tmp_path / "hidden"), check_seconds=5,
                      notebooks=["Q1_1_cifar100_visualisation.ipynb"])
    rows = rows.read_text().splitlines()
    assert rows[0].startswith("submission,Q1.1 (3),Q1.2 (4),") and rows[0].endswith(",total,notebooks run,note")
    # The endless train loses Q1.3c only (each check stopped after 5 s), the student's own checks count for
    # nothing (Q1.2 is graded by the staff's), and the failed hidden check costs a third of Q2.1.
    earned = dict(zip(rows[0].split(",")[1:-3], rows[1].split(",")[1:-3]))
    expected = {f"{task.id} ({task.points:g})": f"{task.points:.1f}" for task in TASKS if not task.by_hand}
    expected.update({"Q1.3c (4)": "0.0", "Q2.1 (5)": f"{5 * 2 / 3:.1f}"})
    assert earned == expected
    grades = (tmp_path / "work" / "11_22_33_part2" / "grades.md").read_text()
    assert "ran over its 5 s limit" in grades
    assert "test_secret_property: failed (a hidden check: its name and result only)" in grades
    assert "SECRET-EXPECTATION" not in grades
    assert "| Q1_1_cifar100_visualisation.ipynb | no: not in the submission |" in grades     # only .py were zipped
    assert rows[1].split(",")[-2] == "0 of 1"
    assert rows[1].startswith("11_22_33_part2.zip,") and rows[2].startswith("44_55_66_part2.zip,")
    assert rows[2].split(",")[-1].endswith("would be written outside the submission's folder; refused")
    assert not (tmp_path / "outside.txt").exists()


@pytest.mark.parametrize("name, mode, message", [
    ("../outside.txt", None, "would be written outside the submission's folder"),
    ("/etc/outside.txt", None, "would be written outside the submission's folder"),
    ("link", stat.S_IFLNK | 0o777, "is a symbolic link"),
])
def test_an_unsafe_zip_is_refused_with_one_line_and_nothing_is_written(tmp_path, name, mode, message):
    archive = _zip(tmp_path / "submission.zip", name, b"../../outside.txt" if mode else b"x", mode)
    with pytest.raises(ConfigError, match=message):
        unpack_safely(archive, tmp_path / "work" / "received")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["submission.zip"]


def test_a_submission_without_the_package_is_one_line(tmp_path):
    (tmp_path / "submission").mkdir()
    with pytest.raises(ConfigError, match="has no cv_helpers/ folder"):
        grade_submission(tmp_path / "submission", tmp_path / "work")


def test_the_students_notebooks_run_top_to_bottom_in_smoke_mode_with_the_students_package(tmp_path):
    """The solution's Q1.1 notebook runs; the same notebook over the blank edition's package stops at that
    package's first stub (so the kernel imports the student's code, not the staff's); a missing notebook is named."""
    names = ["Q1_1_cifar100_visualisation.ipynb", "Q9_missing.ipynb"]
    solution = copy_solution(tmp_path / "solution")
    shutil.copytree(solution / "cv_helpers", tmp_path / "grading" / "cv_helpers")
    assert run_student_notebooks(solution, tmp_path / "grading", names) == [
        {"notebook": names[0], "ran": True, "why": ""},
        {"notebook": names[1], "ran": False, "why": "not in the submission"}]
    executed = nbformat.read(tmp_path / "grading" / "notebooks" / names[0], as_version=4)
    assert all(cell.execution_count for cell in executed.cells if cell.cell_type == "code")

    write_student_edition(tmp_path / "blank")
    shutil.copytree(tmp_path / "blank" / "cv_helpers", tmp_path / "blank-grading" / "cv_helpers")
    (result,) = run_student_notebooks(tmp_path / "blank", tmp_path / "blank-grading", names[:1])
    assert not result["ran"] and re.fullmatch(r"cell \d+: NotImplementedError: TODO\(Q1\.\w+\): .+", result["why"])
