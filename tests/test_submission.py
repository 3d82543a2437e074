"""`make submission`: the course's zip, named from the student IDs, with the contribution table in its PDF."""
from __future__ import annotations

import io
import zipfile

import pypdf
import pytest

from cv_helpers.errors import WorkbookError
from cv_helpers.workbench.cli import main
from cv_helpers.workbench.submission import build_submission, read_group
from tests.test_report_pdf import _exports

GROUP = "name,student_id,research,programming,writing\nAda Lovelace,11111111,50,40,30\nAlan Turing,22222222,50,60,70\n"


def test_the_zip_is_named_from_the_ids_and_holds_what_the_course_asks(tmp_path):
    _exports(tmp_path / "report")
    (tmp_path / "group.csv").write_text(GROUP)
    out = build_submission(tmp_path / "group.csv", tmp_path, report=tmp_path / "report")
    assert out.name == "11111111_22222222_part2.zip"
    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
        pdf = pypdf.PdfReader(io.BytesIO(archive.read("report.pdf")))
    notebooks = sorted(name for name in names if name.startswith("notebooks/"))
    assert len(notebooks) == 5 and all(name.endswith(".ipynb") for name in notebooks)
    assert {"report.pdf", "environment.yml", "pyproject.toml", "cv_helpers/train.py",
            "cv_helpers/workbench/report.py"} <= set(names)
    assert not any("__pycache__" in name or "/." in name for name in names)
    text = "\n".join(page.extract_text() for page in pdf.pages).replace("\xa0", " ")
    assert "contribution to the research, the programming and the writing" in text
    assert "Ada Lovelace 11111111 50 40 30" in text and "Alan Turing 22222222 50 60 70" in text
    assert not (tmp_path / "report" / "report.pdf").exists()          # the report folder itself is left as it was


@pytest.mark.parametrize("text, message", [
    ("name,id\nAda,1,2\n", "the first line must be `name,student_id,research,programming,writing`"),
    ("name,student_id,research,programming,writing\nAda,12ab,100,100,100\n", "student_id must be digits"),
    ("name,student_id,research,programming,writing\nAda,1,100,x,100\n", "the shares must be numbers"),
    ("name,student_id,research,programming,writing\nAda,1,100,90,100\n", "the programming shares add up to 90 %"),
    ("name,student_id,research,programming,writing\n", "names no member"),
])
def test_a_malformed_group_file_is_a_one_line_error_naming_the_file(tmp_path, text, message):
    (tmp_path / "group.csv").write_text(text)
    with pytest.raises(WorkbookError, match=message) as raised:
        read_group(tmp_path / "group.csv")
    assert str(tmp_path / "group.csv") in str(raised.value)


def test_a_missing_group_file_says_what_to_write(tmp_path, capsys):
    assert main(["submission", "--group", str(tmp_path / "group.csv"), "--out", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert "group.csv does not exist: write it as CSV" in error and "name,student_id,research" in error
    assert error.count("\n") == 1
    assert list(tmp_path.iterdir()) == []
