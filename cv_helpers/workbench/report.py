"""The hand-in report: report/report.pdf (Typst) and report/report.md (its web view), from one source.

The words come from the notebooks: a cell tagged `report` puts its Markdown (a markdown cell), or the figures and
tables it exports and the text it prints (a code cell, read from the executed copy in report/notebooks/), into the
report's body, in the notebooks' order. A figure's caption and a table's title are the notebook's declarations
(`contents.py`); every declared export that no tagged cell places goes to the appendix, after the body's ten pages.
Figures carry their mode in their metadata (see `viz.save_figure`): a full-mode report refuses smoke figures and
missing ones; a smoke-mode report (its own folder, never report/) says on every page that it shows no results.
"""
from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from ..config import REPO_ROOT, is_smoke, report_dir
from ..errors import WorkbookError
from ..files import write_bytes, write_text
from ..tables import save_table
from .contents import NOTEBOOK_DIR, notebook_contents, saved_exports
from .typst_markup import (column_widths, escape, inline_to_typst, markdown_to_typst, string, table_height_pt,
                           table_markup)

REPORT_TAG = "report"                      # a notebook cell that belongs in the report's body
EXPORTS_KEY = "report_exports"             # a tagged code cell's metadata: the exports it shows, if not all it saves
TITLE = "CV1 final project, part 2: CIFAR-100 and STL-10"
RESULTS = ("results_on_test", "Results: the 2023 reference report's test accuracies beside ours, each by the preset "
                              "that reproduces it")
ALL_RUNS = ("results_on_validation", "The runs that choose: each protocol trained on 45,000 training images and "
                                    "measured on the 5,000 held out")
CONTRIBUTIONS = ("contributions", "Each group member's contribution to the research, the programming and the writing")
CONTRIBUTION_HEADERS = ["name", "student ID", "research (%)", "programming (%)", "writing (%)"]
SMOKE_NOTE = "SMOKE BUILD: tiny runs, no results"     # on every page of a smoke-mode report
PDF_LEFT_OUT = ("reproduce", "status", "device")    # table columns for the web view only (commands, processors)
BODY_PAGES = 10                            # the course's limit; the appendix follows
ONE_PAGE_TABLE_PT = 600                    # a taller table may break across pages (the page's text is 717 pt)
PT_PER_CM = 72 / 2.54
TEXT_WIDTH_CM = 16.0
MAX_FIGURE_HEIGHT_CM = {"body": 6.0, "appendix": 15.0}       # the body is short of pages, the appendix is not


@dataclass(frozen=True)
class Block:
    """One piece of the report: Markdown prose, printed text, or an export (a figure or table by its name)."""

    kind: str          # "prose", "output", "figure" or "table"
    content: str       # the Markdown or text, or the export's name
    title: str = ""    # a figure's caption or a table's title


def report_blocks(folder: Path = NOTEBOOK_DIR, executed: Path | None = None) -> tuple[list[Block], list[Block]]:
    """Returns (body, appendix): the tagged cells of each declared notebook in order, after the results table;
    then every declared export that no tagged cell placed. Printed text is read from the executed notebooks in
    `executed` (default: report/notebooks), where they exist."""
    executed = executed or report_dir() / "notebooks"
    body, appendix = [Block("table", *RESULTS)], []
    for contents in notebook_contents(folder):
        kinds = {"figure": contents.figures, "table": contents.tables}
        cells = json.loads((folder / f"{contents.stem}.ipynb").read_text())["cells"]
        outputs = _executed_outputs(executed / f"{contents.stem}.ipynb")
        placed = set()
        for cell in cells:
            if REPORT_TAG not in cell.get("metadata", {}).get("tags", []):
                continue
            source = "".join(cell["source"])
            if cell["cell_type"] == "markdown":
                body.append(Block("prose", source))
                continue
            names = list(dict.fromkeys(cell["metadata"].get(EXPORTS_KEY) or saved_exports(source)))
            body += [Block("output", text) for text in outputs.get(cell.get("id"), []) if not names]
            for name in names:
                if not any(name in declared for declared in kinds.values()):
                    raise WorkbookError(f"{contents.stem}: cell {cell.get('id')} shows {name!r}, which the notebook "
                                        "does not declare (metadata cv_workbook: figures or tables)")
                body += [Block(kind, name, declared[name]) for kind, declared in kinds.items() if name in declared]
                placed.add(name)
        appendix += [Block(kind, name, title) for kind, declared in kinds.items()
                     for name, title in declared.items() if name not in placed]
    return body, [*appendix, Block("table", *ALL_RUNS)]


def _executed_outputs(path: Path) -> dict[str, list[str]]:
    """Returns cell id -> the text its executed copy printed (stdout), if that copy exists."""
    if not path.is_file():
        return {}
    return {cell.get("id"): ["".join(out["text"]) for out in cell.get("outputs", [])
                             if out.get("output_type") == "stream" and out.get("name") == "stdout"]
            for cell in json.loads(path.read_text())["cells"] if cell["cell_type"] == "code"}


def figure_mode(path: Path) -> str:
    """Returns 'full' or 'smoke' from a PNG written by `save_figure` ('unknown' otherwise)."""
    description = Image.open(path).text.get("Description", "")
    return description.rsplit("mode=", 1)[-1] if "mode=" in description else "unknown"


def _check_exports(folder: Path, blocks: list[Block]) -> None:
    """Refuses, before anything is written, a figure or table of `blocks` missing from `folder`, and a smoke-mode
    figure in a full-mode report."""
    for block in blocks:
        if block.kind == "table" and not (folder / "tables" / f"{block.content}.csv").is_file():
            raise WorkbookError(f"table {folder / 'tables' / block.content}.csv is missing; run `make report` first")
        if block.kind != "figure":
            continue
        png = folder / "figures" / f"{block.content}.png"
        if not png.is_file() or not png.with_suffix(".pdf").is_file():
            raise WorkbookError(f"figure {png.with_suffix('')}.{{pdf,png}} is missing; run `make report` first")
        mode = figure_mode(png)
        if mode != "full" and not is_smoke():
            raise WorkbookError(f"figure {png} comes from a {mode} run; run `make report` (full mode) before "
                                "building the report")


def _table(folder: Path, name: str) -> tuple[str, list[str], list[list[str]]]:
    """Returns (the note above it, headers, rows) of a saved table."""
    path = folder / "tables" / f"{name}.csv"
    header, *rows = list(csv.reader(path.read_text().splitlines()))
    markdown = path.with_suffix(".md").read_text() if path.with_suffix(".md").is_file() else ""
    note = markdown.split("\n| ", 1)[0].strip() if not markdown.startswith("|") else ""
    return note, header, rows


def build_report(folder: Path | None = None, contributions: list[list] | None = None) -> Path:
    """Writes report.md and report.pdf (Typst) into `folder` (default: report/) from the notebooks' tagged cells
    and the saved figures and tables, with the group's contribution table (rows of CONTRIBUTION_HEADERS) at the end
    of the body if given; returns the PDF's path. Refuses a smoke-mode build into report/."""
    folder = folder or report_dir()
    if is_smoke() and folder.resolve() == (REPO_ROOT / "report").resolve():
        raise WorkbookError("a smoke-mode report never goes to report/; unset CV_HELPERS_SMOKE or pick another folder")
    body, appendix = report_blocks(executed=folder / "notebooks")
    if contributions is not None:
        save_table(CONTRIBUTIONS[0], CONTRIBUTION_HEADERS, contributions, folder / "tables")
        body.append(Block("table", *CONTRIBUTIONS))
    _check_exports(folder, body + appendix)
    markdown, typst = _markdown(folder, body, appendix), _typst(folder, body, appendix)
    write_text(folder / "report.md", markdown)
    write_text(folder / "report.typ", typst)
    write_bytes(folder / "report.pdf", compile_typst(folder / "report.typ"))
    return folder / "report.pdf"


def report_pages(pdf: Path) -> tuple[int, int]:
    """Returns (pages, pages of body): the body ends where the page titled Appendix starts."""
    import pypdf

    texts = [page.extract_text() for page in pypdf.PdfReader(pdf).pages]
    body = next((i for i, text in enumerate(texts) if "Appendix" in text.splitlines()[:3]), len(texts))
    return len(texts), body


def compile_typst(source: Path) -> bytes:
    """Returns the PDF of a Typst file, with the fonts the typst wheel embeds only and a fixed timestamp, so the
    same source gives the same bytes on every machine."""
    import typst

    try:
        return typst.Compiler(root=source.parent, ignore_system_fonts=True).compile(source, format="pdf",
                                                                                     timestamp=0)
    except typst.TypstError as err:
        raise WorkbookError(f"Typst could not build {source}: {err.message}") from None


def _markdown(folder: Path, body: list[Block], appendix: list[Block]) -> str:
    lines, numbers = [f"# {TITLE}", "", _mode_line()], {"figure": 0, "table": 0}
    for part, blocks in (("", body), ("# Appendix", appendix)):
        lines += [part, ""] if part else []
        for block in blocks:
            if block.kind == "prose":
                lines += [re.sub(r"^#", "##", block.content, flags=re.MULTILINE), ""]
            elif block.kind == "output":
                lines += ["```", block.content.rstrip(), "```", ""]
            elif block.kind == "figure":
                numbers["figure"] += 1
                number = numbers["figure"]
                lines += [f"![Figure {number}](figures/{block.content}.png)", "",
                          f"*Figure {number}: {block.title}*", ""]
            else:
                numbers["table"] += 1
                lines += [f"**Table {numbers['table']}: {block.title}**", "",
                          (folder / "tables" / f"{block.content}.md").read_text(), ""]
    return "\n".join(lines).rstrip() + "\n"


def _mode_line() -> str:
    return f"**{SMOKE_NOTE}.**\n" if is_smoke() else ""


PREAMBLE = """#set document(title: {title}, author: "cv-workbook", date: none)
#set page(paper: "a4", margin: (x: 2.5cm, y: 2.2cm), numbering: "1", header: {header})
#set text(size: 10pt, lang: "en")
#set par(justify: true, leading: 0.55em, spacing: 0.9em)
#set heading(numbering: none)
#show heading.where(level: 1): set text(size: 14pt)
#show heading.where(level: 2): set text(size: 12pt)
#show heading.where(level: 3): set text(size: 10.5pt)
#show figure.where(kind: table): set figure.caption(position: top)
#show figure.caption: set text(size: 9pt)
#set table(stroke: 0.4pt + gray, inset: (x: 3pt, y: 2pt), align: left)
#show table: set text(size: 7pt)
#show raw.where(block: true): set text(size: 8pt)
"""


def _typst(folder: Path, body: list[Block], appendix: list[Block]) -> str:
    header = f"[#align(right, text(size: 8pt, fill: red)[{escape(SMOKE_NOTE)}])]" if is_smoke() else "none"
    parts = [PREAMBLE.format(title=string(TITLE), header=header),
             f"#align(center, text(size: 16pt, weight: \"bold\")[{escape(TITLE)}])\n"]
    for blocks, part, start in ((body, "body", ""), (appendix, "appendix", "#pagebreak()\n= Appendix\n")):
        parts.append(start)
        parts += [_typst_block(folder, block, MAX_FIGURE_HEIGHT_CM[part]) for block in blocks]
    return "\n".join(parts)


def _typst_block(folder: Path, block: Block, max_height_cm: float) -> str:
    if block.kind == "prose":
        return markdown_to_typst(block.content)
    if block.kind == "output":
        return f"#raw({string(block.content.rstrip())}, block: true)\n"
    if block.kind == "figure":
        width, height = Image.open(folder / "figures" / f"{block.content}.png").size
        width_cm = min(TEXT_WIDTH_CM, max_height_cm * width / height)
        return (f"#figure(image({string(f'figures/{block.content}.pdf')}, width: {width_cm:.2f}cm), "
                f"caption: [{escape(block.title)}])\n")
    note, header, rows = _table(folder, block.content)
    keep = [i for i, name in enumerate(header) if name not in PDF_LEFT_OUT]
    header, rows = [header[i] for i in keep], [[row[i] for i in keep] for row in rows]
    table = table_markup([inline_to_typst(cell) for cell in header],
                         [[inline_to_typst(cell) for cell in row] for row in rows], column_widths(header, rows))
    caption = escape(block.title) + (f" #text(size: 8pt)[({escape(note)})]" if note else "")
    figure = f"#figure({table.removeprefix('#')}, caption: [{caption}], kind: table)"
    # A table stays on one page with its title; only one taller than a page continues on the next (header repeated).
    long = table_height_pt(header, rows, TEXT_WIDTH_CM * PT_PER_CM) > ONE_PAGE_TABLE_PT
    return f"#[#show figure: set block(breakable: true)\n{figure}]\n" if long else figure + "\n"
