"""Result tables: Markdown for the notebooks and the report, CSV for everything else."""
from __future__ import annotations

import csv
import io
import math
import statistics
from pathlib import Path
from typing import Sequence

from .config import report_dir
from .files import write_text


def _cell(value) -> str:
    if isinstance(value, float):  # small values (learning rates, weight decay) keep three significant digits
        return f"{value:.2f}" if value == 0 or abs(value) >= 0.1 or math.isnan(value) else f"{value:.3g}"
    return str(value)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence]) -> str:
    """Returns a GitHub-flavoured Markdown table; floats with two decimals."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def save_table(name: str, headers: Sequence[str], rows: Sequence[Sequence], folder: Path | str | None = None,
               note: str = "") -> str:
    """Writes report/tables/name.md (with `note` as a paragraph above the table) and name.csv; returns the
    Markdown."""
    folder = Path(folder) if folder is not None else report_dir() / "tables"
    markdown = (f"{note}\n\n" if note else "") + markdown_table(headers, rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(headers)
    writer.writerows([[_cell(v) for v in row] for row in rows])
    write_text(folder / f"{name}.md", markdown)
    write_text(folder / f"{name}.csv", buffer.getvalue())
    return markdown


def mean_and_spread(values: list[float]) -> str:
    """Returns 'mean ± std' of accuracies in %, two decimals (std 0.00 for a single value)."""
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.2f} ± {spread:.2f}"
