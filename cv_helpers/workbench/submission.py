"""The course's hand-in: one zip named ID1_ID2_ID3_part2.zip with the five notebooks (clean), `cv_helpers/`, the
conda environment and report.pdf, whose body ends with the group's contribution table.

The group writes its members once, in a small CSV file (`group.csv`: name, student_id and the research,
programming and writing shares in %, each column summing to 100); a missing or malformed file is a one-line error
naming the file and what to write. The report in report/ stays the workbook's: the submission's PDF is built in a
copy of it.
"""
from __future__ import annotations

import csv
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..config import REPO_ROOT, report_dir
from ..errors import WorkbookError
from ..files import write_atomically

GROUP_HEADER = ["name", "student_id", "research", "programming", "writing"]
SHARES = GROUP_HEADER[2:]
ZIPPED = ("notebooks", "cv_helpers", "environment.yml", "pyproject.toml")     # beside report.pdf


@dataclass(frozen=True)
class Member:
    """One group member and their share (%) of each kind of work."""

    name: str
    student_id: str
    shares: tuple[float, float, float]     # research, programming, writing


def read_group(path: Path) -> list[Member]:
    """Returns the members in `path` (see the module's docstring); a one-line WorkbookError says what is wrong."""
    hint = (f"write it as CSV: the line `{','.join(GROUP_HEADER)}`, then one line per member, e.g. "
            "`Ada Lovelace,12345678,50,40,30` (each share column summing to 100)")
    if not path.is_file():
        raise WorkbookError(f"{path} does not exist: {hint}")
    rows = list(csv.reader(path.read_text().splitlines()))
    if not rows or [cell.strip() for cell in rows[0]] != GROUP_HEADER:
        raise WorkbookError(f"{path}: the first line must be `{','.join(GROUP_HEADER)}`; {hint}")
    members = []
    for number, row in enumerate(rows[1:], 2):
        if len(row) != len(GROUP_HEADER) or not row[0].strip():
            raise WorkbookError(f"{path}, line {number}: {len(GROUP_HEADER)} fields expected "
                                f"({','.join(GROUP_HEADER)}), got {len(row)}")
        student_id = row[1].strip()
        if not student_id.isdigit():
            raise WorkbookError(f"{path}, line {number}: student_id must be digits, got {student_id!r}")
        try:
            shares = tuple(float(cell) for cell in row[2:])
        except ValueError:
            raise WorkbookError(f"{path}, line {number}: the shares must be numbers (percent), got "
                                f"{', '.join(row[2:])}") from None
        if any(not 0 <= share <= 100 for share in shares):
            raise WorkbookError(f"{path}, line {number}: each share is a percentage from 0 to 100")
        members.append(Member(row[0].strip(), student_id, shares))
    if not members:
        raise WorkbookError(f"{path} names no member: {hint}")
    for column, kind in enumerate(SHARES):
        total = sum(member.shares[column] for member in members)
        if abs(total - 100) > 0.5:
            raise WorkbookError(f"{path}: the {kind} shares add up to {total:g} %, not 100 %")
    return members


def contribution_rows(members: list[Member]) -> list[list]:
    """Returns the contribution table's rows: name, student ID and the three shares (%)."""
    return [[member.name, member.student_id, *(f"{share:g}" for share in member.shares)] for member in members]


def zip_name(members: list[Member]) -> str:
    """Returns the course's name for the hand-in: the student IDs joined by '_', then '_part2.zip'."""
    return "_".join(member.student_id for member in members) + "_part2.zip"


def build_submission(group: Path, out_dir: Path, report: Path | None = None) -> Path:
    """Writes the hand-in zip into `out_dir` and returns its path: the report in `report` (default: report/)
    rebuilt in a copy with the group's contribution table, the notebooks (committed clean), `cv_helpers/`, and the
    environment files."""
    from .report import build_report

    members, report = read_group(group), report or report_dir()
    with tempfile.TemporaryDirectory() as work:
        copy = Path(work) / "report"
        shutil.copytree(report, copy, ignore=shutil.ignore_patterns("report.pdf"))
        pdf = build_report(copy, contributions=contribution_rows(members))
        files = [(pdf, "report.pdf")]
        for name in ZIPPED:
            path = REPO_ROOT / name
            paths = [path] if path.is_file() else sorted(
                p for p in path.rglob("*") if p.is_file() and not any(part.startswith((".", "__pycache__"))
                                                                      for part in p.relative_to(path).parts))
            files += [(p, str(p.relative_to(REPO_ROOT))) for p in paths]
        out = out_dir / zip_name(members)
        write_atomically(out, lambda handle: _write_zip(handle, files))
    return out


def _write_zip(handle, files: list[tuple[Path, str]]) -> None:
    with zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, name in files:
            archive.write(path, name)
