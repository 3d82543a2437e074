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
from dataclasses import dataclass
from pathlib import Path

import nbformat

from ..config import REPO_ROOT
from ..errors import ConfigError
from ..files import write_text

BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"
MARKDOWN_BEGIN, MARKDOWN_END = "<!-- BEGIN SOLUTION -->", "<!-- END SOLUTION -->"
TODO = re.compile(r"^\s*# TODO\((?P<task>Q[\w.]+)\): (?P<what>.+)$")
DEFINITION = re.compile(r"^(?P<indent>\s*)(?:async )?(?:def|class) (?P<name>\w+)")
ANSWER_STUB = "YOUR ANSWER HERE"
# What the edition holds, relative to the repository: the package, the self-check, the notebooks, what installs them.
SHIPPED = ("cv_helpers", "checks", "notebooks", "Makefile", "pyproject.toml", "environment.yml")
LEFT_OUT = ("__pycache__", ".ipynb_checkpoints")


@dataclass(frozen=True)
class Stub:
    """One solution region as the edition has it: its task, where it is and what the student is to do."""

    task: str
    place: str     # e.g. "cv_helpers/train.py: train" or "notebooks/Q1_1....ipynb: cell 4"
    what: str


@dataclass(frozen=True)
class Task:
    """One graded task of the course (UvA CV1 2023, part 2)."""

    id: str
    points: float
    title: str
    by_hand: bool = False    # graded by a person (written answers, tuning, the report), never auto-scored


TASKS = (
    Task("Q1.1", 3, "load CIFAR-100, un-normalise and show classes 0-4"),
    Task("Q1.2", 4, "TwoLayerNet and the LeNet-5 ConvNet"),
    Task("Q1.3a", 2, "CIFAR100_loader: __init__ and __getitem__"),
    Task("Q1.3b", 2, "the training and test transforms and the optimizer"),
    Task("Q1.3c", 4, "the training loop in train(), training and comparing both networks"),
    Task("Q1.4", 10, "hyperparameters and the improved networks", by_hand=True),
    Task("Q2.1", 5, "STL10_Dataset: the five classes, relabelled 0-4"),
    Task("Q2.2a", 5, "load the CIFAR-100 ConvNet and give it a new head for 96x96 images"),
    Task("Q2.2b", 5, "fine-tune, report the curves and the t-SNE of the features", by_hand=True),
    Task("Q3", 0, "a stronger recipe (bonus)", by_hand=True),
)


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
    README for students. Returns the stubs."""
    out = Path(out)
    if out.exists():
        raise ConfigError(f"{out} already exists; choose a new folder for the student edition")
    stubs: list[Stub] = []
    for source in shipped_files(root):
        relative = source.relative_to(root).as_posix()
        target = out / relative
        if source.suffix == ".py":
            text, found = strip_python(source.read_text(), relative)
            write_text(target, text)
        elif source.suffix == ".ipynb":
            notebook, found = strip_notebook(nbformat.read(source, as_version=4), relative)
            write_text(target, nbformat.writes(notebook) + "\n")
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            found = []
        stubs += found
    write_text(out / "manifest.json", json.dumps(manifest(stubs), indent=1) + "\n")
    write_text(out / "README.md", student_readme(stubs))
    return stubs


def shipped_files(root: Path = REPO_ROOT) -> list[Path]:
    """Returns the files of the edition, in a fixed order."""
    files = []
    for name in SHIPPED:
        path = root / name
        candidates = sorted(path.rglob("*")) if path.is_dir() else [path]
        files += [p for p in candidates if p.is_file() and not any(part in LEFT_OUT for part in p.parts)]
    return files


def manifest(stubs: list[Stub]) -> dict:
    """Returns the edition's manifest: every task with its points and the places where it is stubbed."""
    return {"tasks": [{"id": task.id, "points": task.points, "title": task.title, "graded_by_hand": task.by_hand,
                       "stubs": [{"place": stub.place, "what": stub.what} for stub in stubs if stub.task == task.id]}
                      for task in TASKS],
            "total_points": sum(task.points for task in TASKS)}


def student_readme(stubs: list[Stub]) -> str:
    """Returns the edition's README: setup, what to implement where (task, points, place), how to check."""
    rows = [f"| {task.id} | {task.title} | {task.points:g}{' (by hand)' if task.by_hand else ''} | "
            f"{'<br>'.join(f'`{stub.place}`: {stub.what}' for stub in stubs if stub.task == task.id) or '-'} |"
            for task in TASKS]
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
        "## What to implement, and where",
        "",
        "Every place below raises `NotImplementedError` with its task until you write it; the comment above it says",
        "what to do. The notebooks call these functions: a notebook stops at the first task it needs.",
        "",
        "| task | what | points | where |",
        "|---|---|---|---|",
        *rows,
        "",
        "## How to check your work",
        "",
        "`make check` runs the checks in `checks/` (small data, a few minutes on a laptop) and prints a table: each",
        "task's points earned, its checks passed, and one line for every failed check saying what was expected. Tasks",
        "graded by hand (the written answers, Q1.4's tuning, the report) are listed with their points, never scored.",
        "",
    ])
