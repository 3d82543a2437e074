"""The hand-in report: Markdown as Typst, the body from the notebooks' tagged cells, and the PDF read back."""
from __future__ import annotations

import json
import re
import shutil

import pypdf
import pytest
from matplotlib import pyplot as plt

from cv_helpers.config import REPO_ROOT
from cv_helpers.errors import WorkbookError
from cv_helpers.tables import save_table
from cv_helpers.viz import save_figure
from cv_helpers.workbench import report
from cv_helpers.workbench.report import ALL_RUNS, BODY_PAGES, RESULTS, build_report, report_blocks, report_pages
from cv_helpers.workbench.typst_markup import (column_widths, escape, inline_to_typst, markdown_to_typst,
                                               table_height_pt)

QUESTIONS = ("Q1.1", "Q1.2", "Q1.3", "Q1.4", "Q2.1", "Q2.2", "Q3")


def test_markdown_becomes_typst_with_every_special_character_shown_literally():
    typst = markdown_to_typst("# Q1 *a* and **b**, `x_y` at 1e-3 // #5 $ @ref\n\n"
                              "<!-- BEGIN SOLUTION -->\nAn answer.\n<!-- END SOLUTION -->\n\n- one\n- two\n")
    assert typst.startswith("= Q1 #emph[a]; and #strong[b];, #raw(\"x_y\"); at 1e\\-3 \\/\\/ \\#5 \\$ \\@ref\n")
    assert "An answer." in typst and "SOLUTION" not in typst and "- one\n- two\n" in typst
    assert escape("[a]*") == "\\[a\\]\\*" and inline_to_typst("`cmd --x`") == '#raw("cmd --x");'


def test_table_columns_share_the_line_by_their_content():
    header = ["change", "before (%)", "seed spread (points)", "why"]
    rows = [["a long description of the change that must wrap", "50.88", "0.99", "why " * 30]]
    # prose columns share the line, capped; a number column is as wide as its longest cell or header word
    assert column_widths(header, rows) == ["4.0fr", "29pt", "36pt", "4.0fr"]


def test_a_table_keeps_to_one_page_with_its_title_unless_it_is_taller_than_a_page(tmp_path):
    # A short table never leaves its title at the foot of a page; a tall one may continue, its header repeated.
    prose = "a reading long enough to wrap over several lines of a narrow column " * 3
    short, tall = [["a", "1.00", prose]], [["a", "1.00", prose]] * 30
    header = ["change", "delta (points)", "why"]
    line = report.TEXT_WIDTH_CM * report.PT_PER_CM
    assert table_height_pt(header, short, line) < 100
    assert table_height_pt(header, tall, line) > report.ONE_PAGE_TABLE_PT
    blocks = {}
    for name, rows in (("short", short), ("tall", tall)):
        save_table(name, header, rows, tmp_path / "tables")
        blocks[name] = report._typst_block(tmp_path, report.Block("table", name, name), 6.0)
    assert "breakable: true" in blocks["tall"] and "breakable" not in blocks["short"]


def _pages(pdf) -> list[str]:
    return [page.extract_text() for page in pypdf.PdfReader(pdf).pages]


def _exports(folder, figure_mode_name="smoke"):
    """Writes a labelled figure for every declared figure and a small table for every table the report shows."""
    body, appendix = report_blocks()
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1], [0, 1])
    ax.set(xlabel="epoch", ylabel="accuracy (%)")
    for block in body + appendix:
        if block.kind == "figure":
            save_figure(fig, block.content, folder / "figures")
        elif block.kind == "table":
            save_table(block.content, ["preset", "accuracy (%)"], [["a-preset", 1.0]], folder / "tables",
                       note="A note.")
    plt.close(fig)
    return body, appendix


def test_a_smoke_report_numbers_every_figure_and_table_in_order_and_says_it_shows_no_results(tmp_path):
    body, appendix = _exports(tmp_path)
    pdf = build_report(tmp_path)
    pages = [page.replace("\xa0", " ") for page in _pages(pdf)]
    text = "\n".join(pages)
    figures = sum(block.kind == "figure" for block in body + appendix)
    tables = sum(block.kind == "table" for block in body + appendix)
    assert [int(n) for n in re.findall(r"^Figure\s(\d+):", text, re.M)] == list(range(1, figures + 1))
    assert [int(n) for n in re.findall(r"^Table\s(\d+):", text, re.M)] == list(range(1, tables + 1))
    assert all("SMOKE BUILD" in page for page in pages)
    body_text = "\n".join(pages[:report_pages(pdf)[1]])
    for question in QUESTIONS:
        assert re.search(rf"^{re.escape(question)} ", body_text, re.M), question
    assert "Table 1: Results" in pages[0]
    assert f"Table {tables}: {ALL_RUNS[1][:14]}" in text.replace("\n", " ")
    markdown = (tmp_path / "report.md").read_text()
    assert markdown.count("![Figure") == figures and f"**Table 1: {RESULTS[1]}**" in markdown


def test_the_same_runs_give_the_same_bytes(tmp_path):
    _exports(tmp_path)
    first = build_report(tmp_path).read_bytes()
    assert build_report(tmp_path).read_bytes() == first


def test_a_full_report_refuses_smoke_figures_and_a_smoke_report_never_goes_to_report(tmp_path, monkeypatch):
    _exports(tmp_path)
    with pytest.raises(WorkbookError, match="a smoke-mode report never goes to report/"):
        build_report(REPO_ROOT / "report")
    (tmp_path / "figures" / "q1_1_unnormalise.pdf").unlink()
    with pytest.raises(WorkbookError, match=r"q1_1_unnormalise.\{pdf,png\} is missing; run `make report` first"):
        build_report(tmp_path)
    _exports(tmp_path)
    monkeypatch.setenv("CV_HELPERS_SMOKE", "0")
    with pytest.raises(WorkbookError, match="comes from a smoke run; run `make report`"):
        build_report(tmp_path)


def test_a_tagged_cell_that_shows_an_undeclared_export_is_a_clear_error(tmp_path):
    for notebook in (REPO_ROOT / "notebooks").glob("*.ipynb"):
        shutil.copy(notebook, tmp_path)
    path = tmp_path / "Q3_best_recipe.ipynb"
    notebook = json.loads(path.read_text())
    cell = next(c for c in notebook["cells"] if c["cell_type"] == "code" and "report" in c["metadata"].get("tags", []))
    cell["metadata"][report.EXPORTS_KEY] = ["no_such_table"]
    path.write_text(json.dumps(notebook))
    with pytest.raises(WorkbookError, match="shows 'no_such_table', which the notebook does not declare"):
        report_blocks(tmp_path)


def test_every_declared_export_is_in_the_body_or_the_appendix_once():
    body, appendix = report_blocks()
    shown = [(block.kind, block.content) for block in body + appendix if block.kind in ("figure", "table")]
    assert len(shown) == len(set(shown))
    from cv_helpers.workbench.contents import notebook_contents
    declared = {(kind, name) for c in notebook_contents() for kind, names in (("figure", c.figures),
                                                                              ("table", c.tables)) for name in names}
    assert declared | {("table", RESULTS[0]), ("table", ALL_RUNS[0])} == set(shown)


NOTEBOOK_MECHANICS = re.compile(r"\b(the|this|next|each) cells?\b|\bcell (below|above)\b|\bre-?run(ning)? the\b|"
                               r"\bpress(es)? \*\*|\buntick|\bslider", re.I)


def test_the_report_prose_never_speaks_of_the_notebook_mechanics():
    # A report is read on paper: "the cell below" or "press Train" belong to the notebook's untagged cells.
    body, _ = report_blocks()
    prose = "\n".join(block.content for block in body if block.kind == "prose")
    mechanics = [match.group(0) for match in NOTEBOOK_MECHANICS.finditer(prose)]
    assert "Comparison" in prose and not mechanics, mechanics


def test_the_committed_report_has_at_most_ten_pages_of_body_every_question_and_no_smoke():
    pdf = REPO_ROOT / "report" / "report.pdf"
    pages, body = _pages(pdf), report_pages(pdf)[1]
    assert body <= BODY_PAGES, "the body is longer than the course's 10 pages: move exports to the appendix"
    body_text = "\n".join(pages[:body])
    for question in QUESTIONS:
        assert re.search(rf"^{re.escape(question)} ", body_text, re.M), question
    assert "smoke" not in "\n".join(pages).lower()
