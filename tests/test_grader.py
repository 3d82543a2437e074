"""The grader: the student's package under the staff's checks, a time limit per check, untrusted zips refused."""
from __future__ import annotations

import stat
import zipfile
from pathlib import Path

import pytest

from cv_helpers.errors import ConfigError
from cv_helpers.workbench.edition import TASKS
from cv_helpers.workbench.grader import grade_many, grade_submission, unpack_safely
from tests.fixtures import copy_shipped


def test_a_submission_that_hangs_in_train_loses_that_task_only_within_the_time_limit(tmp_path):
    submission = copy_shipped(tmp_path / "submission")
    train = submission / "cv_helpers" / "train.py"
    source = train.read_text()
    step = "            # BEGIN SOLUTION\n            with autocast(device):"
    assert source.count(step) == 1
    endless = step.replace("SOLUTION\n", "SOLUTION\n            while True:\n                pass\n")
    train.write_text(source.replace(step, endless))
    # A student's own checks/ never replace the staff's:
    (submission / "checks" / "test_q1_networks.py").write_text("def test_student_check():\n    pass\n")
    scores = {score["task"]: score for score in grade_submission(submission, tmp_path / "work", check_seconds=5)}
    assert scores["Q1.3c"]["earned"] == 0 and "ran over its 5 s limit" in scores["Q1.3c"]["failures"][0]
    graded = {task.id: task.points for task in TASKS if not task.by_hand and task.id != "Q1.3c"}
    assert {task: scores[task]["earned"] for task in graded} == graded          # the staff's checks, all of them
    assert "| Q1.3c | 0.0 / 4 | 0 / 2 |" in (tmp_path / "work" / "grades.md").read_text()


def _zip(path: Path, name: str, data: bytes = b"x", mode: int | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        entry = zipfile.ZipInfo(name)
        if mode is not None:
            entry.external_attr = mode << 16
        archive.writestr(entry, data)
    return path


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


def test_a_hidden_check_shows_its_name_and_result_never_its_code(tmp_path):
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    (hidden / "test_secret.py").write_text(
        "import pytest\n\n\n@pytest.mark.task('Q2.1')\ndef test_secret_property():\n"
        "    assert 'SECRET-EXPECTATION' == 'the student gets this wrong'\n")
    submission = copy_shipped(tmp_path / "submission")
    scores = {score["task"]: score for score in grade_submission(submission, tmp_path / "work", hidden=hidden)}
    assert scores["Q2.1"]["failures"] == ["test_secret_property: failed (a hidden check: its name and result only)"]
    assert "SECRET-EXPECTATION" not in (tmp_path / "work" / "grades.md").read_text()
    assert scores["Q2.1"]["passed"] == 2 and scores["Q2.1"]["checks"] == 3


def test_a_folder_of_submissions_gives_one_csv_row_each_and_a_refused_zip_its_reason(tmp_path):
    submissions = tmp_path / "submissions"
    solution = copy_shipped(tmp_path / "solution")
    submissions.mkdir()
    with zipfile.ZipFile(submissions / "11_22_33_part2.zip", "w") as archive:
        for path in sorted((solution / "cv_helpers").rglob("*.py")):
            archive.write(path, f"project/{path.relative_to(solution).as_posix()}")
    _zip(submissions / "44_55_66_part2.zip", "../outside.txt")
    rows = (grade_many(submissions, tmp_path / "work")).read_text().splitlines()
    full = sum(task.points for task in TASKS if not task.by_hand)
    assert rows[0].startswith("submission,Q1.1 (3),Q1.2 (4),") and rows[0].endswith(",total,note")
    assert rows[1].startswith("11_22_33_part2.zip,3.0,4.0,") and rows[1].endswith(f",{full:.1f},")
    assert rows[2].startswith("44_55_66_part2.zip,") and "would be written outside" in rows[2]
    assert not (tmp_path / "outside.txt").exists()
