"""report/report.md: the course report rebuilt section by section from the exported figures and tables.

Figures carry their mode in their metadata (see `viz.save_figure`); the report refuses smoke-mode figures and
missing ones, so it can only be built from a full run of the notebooks.
"""
from __future__ import annotations

from pathlib import Path

from PIL import Image

from ..config import report_dir
from ..errors import WorkbookError
from ..files import write_text
from .contents import notebook_contents

RESULTS_SECTION = ("Results", "Every number comes from a saved run (`runs/<name>/config.json`, `metrics.json`).",
                   [], ["results"])


def report_sections() -> list[tuple[str, str, list[tuple[str, str]], list[str]]]:
    """Returns (section title, text, [(figure name, caption)], [table names]) in the order of the course report:
    each notebook's declaration (`contents.notebook_contents`), then the results table."""
    return [*((c.section, c.summary, list(c.figures.items()), list(c.tables)) for c in notebook_contents()),
            RESULTS_SECTION]


def figure_mode(path: Path) -> str:
    """Returns 'full' or 'smoke' from a PNG written by `save_figure` ('unknown' otherwise)."""
    description = Image.open(path).text.get("Description", "")
    return description.rsplit("mode=", 1)[-1] if "mode=" in description else "unknown"


def build_report(folder: Path | None = None) -> Path:
    """Writes report/report.md; refuses missing figures and figures from smoke runs. Returns the path."""
    folder = folder or report_dir()
    lines, number = ["# CV1 final project, part 2: rebuilt from the workbook's runs", ""], 0
    for title, text, figures, tables in report_sections():
        lines += [f"## {title}", "", text, ""]
        for name, caption in figures:
            png = folder / "figures" / f"{name}.png"
            if not png.is_file():
                raise WorkbookError(f"figure {png} is missing; run `make report` first")
            mode = figure_mode(png)
            if mode != "full":
                raise WorkbookError(f"figure {png} comes from a {mode} run; run `make report` "
                                    "(full mode) before building the report")
            number += 1
            lines += [f"![Figure {number}](figures/{name}.png)", "", f"*Figure {number}: {caption}*", ""]
        for table in tables:
            path = folder / "tables" / f"{table}.md"
            if not path.is_file():
                raise WorkbookError(f"table {path} is missing; run `make report` first")
            lines += [path.read_text(), ""]
    out = folder / "report.md"
    write_text(out, "\n".join(lines))
    return out
