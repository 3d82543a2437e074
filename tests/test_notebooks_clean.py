"""Notebooks are committed clean: no outputs, no execution counts, the python3 kernel."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def test_the_five_notebooks_exist():
    assert [p.name.split("_")[0] + "_" + p.name.split("_")[1] for p in NOTEBOOKS] == [
        "Q1_1", "Q1_2-3", "Q1_4", "Q2_stl10", "Q3_best"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path):
    cells = json.loads(path.read_text())["cells"]
    dirty = [i for i, c in enumerate(cells) if c["cell_type"] == "code" and (c["outputs"] or c["execution_count"])]
    assert not dirty, f"{path.name}: cells {dirty} have outputs; clear them before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_uses_the_python3_kernel(path):
    assert json.loads(path.read_text())["metadata"]["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_first_cell_prints_the_mode(path):
    first = "".join(json.loads(path.read_text())["cells"][0]["source"])
    assert "print(mode_banner())" in first
