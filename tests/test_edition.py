"""The student edition: generated from the solution, stubs where the course's tasks are, no solution left in it."""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from cv_helpers.errors import ConfigError
from cv_helpers.workbench.contents import notebook_contents
from cv_helpers.workbench.edition import (BEGIN, END, MARKDOWN_BEGIN, MARKDOWN_END, copy_solution, edition_stubs,
                                          strip_markdown, strip_notebook, strip_python, write_student_edition)
from cv_helpers.workbench.grading import run_checks, task_scores
from cv_helpers.workbench.tasks import TASKS, grading_map, notebook_places

ROOT = Path(__file__).resolve().parent.parent


def _solution_copy(folder: Path) -> Path:
    """Copies what the edition is made from into `folder`, with a canary line inside every solution region (of the
    modules, the notebooks' code cells and their written answers)."""
    copy_solution(folder)
    regions = 0

    def with_canaries(text: str) -> str:
        nonlocal regions
        lines = []
        for line in text.split("\n"):
            lines.append(line)
            if line.strip() in (BEGIN, MARKDOWN_BEGIN):
                regions += 1
                lines.append(f"{line[:len(line) - len(line.lstrip())]}x = 'CANARY-{regions}'")
        return "\n".join(lines)

    for path in sorted((folder / "cv_helpers").rglob("*.py")):
        path.write_text(with_canaries(path.read_text()))
    python_regions = regions
    for path in sorted((folder / "notebooks").glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            cell.source = with_canaries(cell.source)
        nbformat.write(notebook, path)
    assert python_regions >= 10 and regions - python_regions >= 5
    return folder


def _digests(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_edition_keeps_no_solution_line_and_no_marker(tmp_path):
    solution = _solution_copy(tmp_path / "solution")
    stubs = write_student_edition(tmp_path / "edition", root=solution)
    texts = {name: (tmp_path / "edition" / name).read_text() for name in _digests(tmp_path / "edition")}
    assert not [name for name, text in texts.items() if "CANARY-" in text]
    markers = (BEGIN, END, MARKDOWN_BEGIN, MARKDOWN_END)
    assert not [name for name, text in texts.items() if any(line.strip() in markers for line in text.split("\n"))]
    assert not [name for name, text in texts.items() if name.endswith(".ipynb") and any(m in text for m in markers)]
    assert sum(text.count("YOUR ANSWER HERE") for name, text in texts.items() if name.endswith(".ipynb")) >= 5
    sources = [text for name, text in texts.items() if name.endswith(".py")] + [
        cell.source for name, text in texts.items() if name.endswith(".ipynb") for cell in nbformat.reads(text, 4).cells]
    stubs_written = [line for text in sources for line in text.split("\n")
                     if line.strip().startswith('raise NotImplementedError("TODO(')]
    assert len(stubs) == len(stubs_written)
    assert not {"runs", "report", "tests", "docs"} & {name.split("/")[0] for name in texts}


def test_two_generations_give_the_same_bytes_and_a_manifest_of_every_task(tmp_path):
    write_student_edition(tmp_path / "first")
    write_student_edition(tmp_path / "second")
    assert _digests(tmp_path / "first") == _digests(tmp_path / "second")
    manifest = json.loads((tmp_path / "first" / "manifest.json").read_text())
    assert [task["id"] for task in manifest["tasks"]] == [task.id for task in TASKS]
    assert manifest["total_points"] == 3 + 4 + 8 + 10 + 5 + 10       # Q1.1 ... Q2.2; Q3 is a bonus
    unstubbed = [t["id"] for t in manifest["tasks"] if not t["graded_by_hand"] and not t["stubs"]]
    assert unstubbed == []
    places = {stub["place"] for task in manifest["tasks"] for stub in task["stubs"]}
    assert {"cv_helpers/models.py: TwoLayerNet.__init__", "cv_helpers/train.py: train",
            "cv_helpers/data.py: select_stl10_classes"} <= places
    readme = (tmp_path / "first" / "README.md").read_text()
    assert "| Q1.3c the training loop in train()" in readme and "`cv_helpers/train.py: train`" in readme
    with pytest.raises(ConfigError, match="already exists"):
        write_student_edition(tmp_path / "first")


def test_the_grading_map_points_at_each_tasks_notebook_and_its_declared_figures_and_the_docs_copy_is_current():
    places = notebook_places()
    declared = {f"{contents.stem}.ipynb": {*contents.figures, *contents.tables} for contents in notebook_contents()}
    for task in TASKS:
        place = places[task.question]
        assert place.heading.startswith(task.question), place
        assert set(task.shows) <= declared[place.notebook], (task.id, set(task.shows) - declared[place.notebook])
    docs = (ROOT / "docs" / "teaching.md").read_text()
    copy = docs.split("<!-- grading map: begin -->\n")[1].split("\n<!-- grading map: end -->")[0]
    assert copy == grading_map(edition_stubs()), \
        "docs/teaching.md's grading map is stale: paste `python -m cv_helpers.workbench edition map` into it"


def test_every_module_of_the_edition_imports_and_each_stub_says_its_task(tmp_path):
    write_student_edition(tmp_path / "edition")
    modules = sorted(".".join(p.relative_to(tmp_path / "edition").with_suffix("").parts)
                     for p in (tmp_path / "edition" / "cv_helpers").rglob("*.py") if p.stem != "__main__")
    code = "".join(f"import {name}\n" for name in modules) + (
        "from cv_helpers.models import TwoLayerNet\n"
        "try:\n    TwoLayerNet()\nexcept NotImplementedError as err:\n    print(err)\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "edition")}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "TODO(Q1.2): create fc1 (input_size -> hidden_size) and fc2 (hidden_size -> " \
                                  "num_classes)"


def test_a_region_becomes_a_stub_indented_like_its_markers():
    source = ("def f(x):\n    # TODO(Q9): double x\n    # BEGIN SOLUTION\n    y = 2 * x\n    return y\n"
              "    # END SOLUTION\n")
    text, tasks = strip_python(source, "f.py")
    assert text == 'def f(x):\n    # TODO(Q9): double x\n    raise NotImplementedError("TODO(Q9): double x")\n'
    assert [(stub.task, stub.place, stub.what) for stub in tasks] == [("Q9", "f.py: f", "double x")]


@pytest.mark.parametrize("source, message", [
    ("    # BEGIN SOLUTION\n    x = 1\n    # END SOLUTION\n", "f.py:1: a solution region needs a '# TODO"),
    ("# TODO(Q1): a\n# BEGIN SOLUTION\nx = 1\n", "f.py:2: '# BEGIN SOLUTION' is never closed"),
    ("# TODO(Q1): a\n# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION\n", "f.py:3: a solution region opens inside"),
    ("x = 1\n# END SOLUTION\n", "f.py:2: '# END SOLUTION' without"),
])
def test_a_malformed_region_is_one_line_naming_the_file_and_line(source, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        strip_python(source, "f.py")


def test_notebooks_lose_their_outputs_and_their_answers():
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("Why?\n<!-- BEGIN SOLUTION -->\nBecause.\n<!-- END SOLUTION -->"),
        nbformat.v4.new_code_cell("# TODO(Q1.1): show\n# BEGIN SOLUTION\nshow()\n# END SOLUTION", execution_count=3,
                                  outputs=[nbformat.v4.new_output("stream", text="shown")])])
    edition, tasks = strip_notebook(notebook, "n.ipynb")
    assert edition.cells[0].source == "Why?\nYOUR ANSWER HERE"
    assert edition.cells[1].source == '# TODO(Q1.1): show\nraise NotImplementedError("TODO(Q1.1): show")'
    assert (edition.cells[1].outputs, edition.cells[1].execution_count) == ([], None)
    assert [(stub.task, stub.place) for stub in tasks] == [("Q1.1", "n.ipynb: cell 2")]
    assert notebook.cells[1].outputs and strip_markdown("no answer", "m")[1] == 0      # the original is untouched


def _edition_with(tmp_path: Path, kept: str | None) -> Path:
    """Writes the edition with the solution of task `kept` pasted back (its markers removed before stubbing)."""
    solution = copy_solution(tmp_path / "solution")
    for path in (solution / "cv_helpers").rglob("*.py"):
        lines, keep, inside = path.read_text().split("\n"), [], False
        for index, line in enumerate(lines):
            opens_kept = line.strip() == BEGIN and lines[index - 1].strip().startswith(f"# TODO({kept}):")
            if opens_kept or (inside and line.strip() == END):
                inside = opens_kept
                continue
            keep.append(line)
        path.write_text("\n".join(keep))
    write_student_edition(tmp_path / "edition", root=solution)
    return tmp_path / "edition"


def _earned(checks: dict) -> dict[str, float]:
    return {score["task"]: score["earned"] for score in task_scores(checks) if not score["by_hand"]}


def test_the_solution_earns_every_point():
    assert _earned(run_checks(ROOT)) == {task.id: task.points for task in TASKS if not task.by_hand}


# Between them the two editions leave every task blank at least once: each blank task must earn nothing.
@pytest.mark.parametrize("task", ["Q1.2", "Q1.3c"])
def test_an_edition_with_one_tasks_solution_pasted_back_earns_exactly_that_tasks_points(tmp_path, task):
    earned = _earned(run_checks(_edition_with(tmp_path, task)))
    assert earned == {other.id: other.points if other.id == task else 0.0 for other in TASKS if not other.by_hand}


def test_each_notebook_of_the_edition_stops_first_at_a_stub_with_its_todo(tmp_path, monkeypatch):
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    write_student_edition(tmp_path / "edition")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "edition"))         # the kernels import the edition's package
    for name in ("RUNS", "REPORT"):                   # as on a fresh clone: no finished run to reuse instead of training
        monkeypatch.setenv(f"CV_HELPERS_{name}", str(tmp_path / name.lower()))
    paths = sorted((tmp_path / "edition" / "notebooks").glob("*.ipynb"))
    clients = [NotebookClient(nbformat.read(path, as_version=4), timeout=600, kernel_name="python3",
                              resources={"metadata": {"path": str(path.parent)}}) for path in paths]

    async def run_all() -> list:                   # the five kernels side by side: they wait on imports, not on us
        return await asyncio.gather(*(client.async_execute() for client in clients), return_exceptions=True)

    for path, stopped in zip(paths, asyncio.run(run_all())):
        assert isinstance(stopped, CellExecutionError), (path.name, stopped)
        assert stopped.ename == "NotImplementedError", (path.name, stopped.ename)
        assert stopped.evalue.startswith("TODO(Q"), (path.name, stopped.evalue)
