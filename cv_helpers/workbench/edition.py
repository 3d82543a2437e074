"""The student edition, generated from the solution: every solution region becomes a stub, never edited by hand.

Regions are marked as nbgrader and otter both accept: a line `# BEGIN SOLUTION` and a line `# END SOLUTION`, each on
its own and indented like the code they enclose, directly under a comment line `# TODO(Q1.3): what to do` that
names the task and stays in the edition. In Python modules and notebook code cells the region becomes
`raise NotImplementedError("TODO(Q1.3): ...")` (the TODO comment above it says the message); in markdown cells,
where a `#` line would be a heading, the markers are HTML comments (`<!-- BEGIN SOLUTION -->`, invisible when
rendered) and the region becomes "YOUR ANSWER HERE".
The same input gives the same bytes (sorted files, no timestamps).
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import nbformat

from ..config import REPO_ROOT
from ..errors import ConfigError
from ..files import write_text
from .tasks import TASKS, Stub, grading_map

BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"
MARKDOWN_BEGIN, MARKDOWN_END = "<!-- BEGIN SOLUTION -->", "<!-- END SOLUTION -->"
TODO = re.compile(r"^\s*# TODO\((?P<task>Q[\w.]+)\): (?P<what>.+)$")
DEFINITION = re.compile(r"^(?P<indent>\s*)(?:async )?(?:def|class) (?P<name>\w+)")
ANSWER_STUB = "YOUR ANSWER HERE"
# What the edition holds, relative to the repository: the package, the self-check, the notebooks, what installs them.
SHIPPED = ("cv_helpers", "checks", "notebooks", "Makefile", "pyproject.toml", "environment.yml")
LEFT_OUT = ("__pycache__", ".ipynb_checkpoints")


def strip_python(text: str, where: str) -> tuple[str, list[Stub]]:
    """Returns `text` with every solution region replaced by `raise NotImplementedError(...)`, and the regions'
    stubs in order. A region must follow its TODO comment and end before the next begins; otherwise a ConfigError
    names `where` and the line."""
    out, stubs, lines = [], [], text.split("\n")
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.strip() == END:
            raise ConfigError(f"{where}:{index + 1}: '{END}' without '{BEGIN}' above it")
        if line.strip() != BEGIN:
            out.append(line)
            index += 1
            continue
        todo = TODO.match(lines[index - 1]) if index else None
        if todo is None:
            raise ConfigError(f"{where}:{index + 1}: a solution region needs a '# TODO(Qx): what to do' line above it")
        end = _region_end(lines, index, BEGIN, END, where)
        indent = line[:len(line) - len(line.lstrip())]
        message = f"TODO({todo['task']}): {todo['what']}"
        out.append(f"{indent}raise NotImplementedError({json.dumps(message)})")
        function = _enclosing(lines, index, len(indent))
        stubs.append(Stub(todo["task"], f"{where}: {function}" if function else where, todo["what"]))
        index = end + 1
    return "\n".join(out), stubs


def _enclosing(lines: list[str], index: int, indent: int) -> str:
    """Returns the dotted name of the class and function that enclose line `index` (e.g. 'TwoLayerNet.__init__')."""
    names = []
    for line in reversed(lines[:index]):
        found = DEFINITION.match(line)
        if found and len(found["indent"]) < indent:
            names.insert(0, found["name"])
            indent = len(found["indent"])
    return ".".join(names)


def strip_markdown(text: str, where: str) -> tuple[str, int]:
    """Returns markdown `text` with every answer region replaced by "YOUR ANSWER HERE", and the number of regions."""
    out, lines, regions, index = [], text.split("\n"), 0, 0
    while index < len(lines):
        if lines[index].strip() == MARKDOWN_BEGIN:
            index = _region_end(lines, index, MARKDOWN_BEGIN, MARKDOWN_END, where) + 1
            out.append(ANSWER_STUB)
            regions += 1
        else:
            out.append(lines[index])
            index += 1
    return "\n".join(out), regions


def _region_end(lines: list[str], begin: int, begin_marker: str, end_marker: str, where: str) -> int:
    """Returns the index of the line that closes the region opened at `begin`."""
    for index in range(begin + 1, len(lines)):
        if lines[index].strip() == begin_marker:
            raise ConfigError(f"{where}:{index + 1}: a solution region opens inside the one of line {begin + 1}")
        if lines[index].strip() == end_marker:
            return index
    raise ConfigError(f"{where}:{begin + 1}: '{begin_marker}' is never closed by '{end_marker}'")


def strip_notebook(notebook: nbformat.NotebookNode, where: str) -> tuple[nbformat.NotebookNode, list[Stub]]:
    """Returns a copy of `notebook` with its regions stubbed, outputs and execution counts cleared, and the stubs of
    its code regions in order."""
    copy = nbformat.from_dict(json.loads(json.dumps(notebook)))
    stubs: list[Stub] = []
    for number, cell in enumerate(copy.cells):
        place = f"{where}: cell {number + 1}"
        if cell.cell_type == "code":
            cell.source, found = strip_python(cell.source, place)
            stubs += found
            cell.outputs, cell.execution_count = [], None
        elif cell.cell_type == "markdown":
            cell.source, _ = strip_markdown(cell.source, place)
    return copy, stubs


def write_student_edition(out: Path, root: Path = REPO_ROOT) -> list[Stub]:
    """Writes the student edition of the repository at `root` into `out` (which must not exist yet): the package
    and the notebooks with their regions stubbed, `manifest.json` (tasks, points, where each is stubbed) and a
    README for students with the grading map. Returns the stubs."""
    out = Path(out)
    if out.exists():
        raise ConfigError(f"{out} already exists; choose a new folder for the student edition")
    stubs: list[Stub] = []
    for source in shipped_files(root):
        relative = source.relative_to(root).as_posix()
        text, found = edition_text(source, relative)
        if text is None:
            (out / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, out / relative)
        else:
            write_text(out / relative, text)
        stubs += found
    write_text(out / "manifest.json", json.dumps(manifest(stubs), indent=1) + "\n")
    write_text(out / "README.md", student_readme(stubs, root / "notebooks"))
    return stubs


def edition_text(source: Path, relative: str) -> tuple[str | None, list[Stub]]:
    """Returns the edition's text of one shipped file (None: copied as it is) and its stubs."""
    if source.suffix == ".py":
        return strip_python(source.read_text(), relative)
    if source.suffix == ".ipynb":
        notebook, found = strip_notebook(nbformat.read(source, as_version=4), relative)
        return nbformat.writes(notebook) + "\n", found
    return None, []


def edition_stubs(root: Path = REPO_ROOT) -> list[Stub]:
    """Returns the stubs the student edition of `root` would have, writing nothing."""
    return [stub for source in shipped_files(root)
            for stub in edition_text(source, source.relative_to(root).as_posix())[1]]


def shipped_files(root: Path = REPO_ROOT) -> list[Path]:
    """Returns the files of the edition, in a fixed order."""
    files = []
    for name in SHIPPED:
        path = root / name
        candidates = sorted(path.rglob("*")) if path.is_dir() else [path]
        files += [p for p in candidates if p.is_file() and not any(part in LEFT_OUT for part in p.parts)]
    return files


def copy_solution(folder: Path, root: Path = REPO_ROOT) -> Path:
    """Copies the files the edition is made from (the solution as shipped: package, checks, notebooks, what installs
    them) into `folder` and returns it: a solution to edit, or a submission to grade."""
    for source in shipped_files(root):
        target = Path(folder) / source.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return Path(folder)


def manifest(stubs: list[Stub]) -> dict:
    """Returns the edition's manifest: every task with its points and the places where it is stubbed."""
    return {"tasks": [{"id": task.id, "points": task.points, "title": task.title, "graded_by_hand": task.by_hand,
                       "stubs": [{"place": stub.place, "what": stub.what} for stub in stubs if stub.task == task.id]}
                      for task in TASKS],
            "total_points": sum(task.points for task in TASKS)}


def student_readme(stubs: list[Stub], notebooks: Path) -> str:
    """Returns the edition's README: setup, the grading map (what to implement where, its points, where the notebooks
    show it), how to check."""
    return "\n".join([
        "# CV1 final project, part 2: the student edition",
        "",
        "Generated from the course's solution by `python -m cv_helpers.workbench edition student OUT`; do not edit",
        "this README, edit the code.",
        "",
        "## Setup",
        "",
        "`make lab` creates `.venv/`, installs the package and opens the notebooks in JupyterLab; `make data` prepares",
        "CIFAR-100 and STL-10 (it downloads them where the course's copy is absent).",
        "",
        "## What to implement, where, and how it is graded",
        "",
        "Every place in the package column raises `NotImplementedError` with its task until you write it; the comment",
        "above it says what to do. The notebooks call these functions: a notebook stops at the first task it needs.",
        "Written answers go where a notebook's markdown cell says YOUR ANSWER HERE.",
        "The figures and tables are saved by the notebooks under `report/figures/` and `report/tables/`.",
        "",
        grading_map(stubs, notebooks),
        "",
        "## How to check your work",
        "",
        "`make check` runs the checks in `checks/` (small data, a few minutes on a laptop) and prints a table: each",
        "task's points earned, its checks passed, and one line for every failed check saying what was expected. Tasks",
        "graded by hand (the written answers, Q1.4's tuning, the report) are listed with their points, never scored.",
        "Before you hand in, restart each notebook and run all its cells: the grader runs every notebook top to bottom",
        "(in smoke mode, on small data) and reports the ones that stop with an error.",
        "",
    ])
