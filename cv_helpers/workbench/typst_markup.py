"""Markdown as Typst markup, for the hand-in PDF: the notebooks' prose and the tables' cells.

Parsed with mistune (installed with nbconvert) into its syntax tree, then written node by node; HTML (the answer
markers `<!-- BEGIN SOLUTION -->`) is left out, and every character that means something to Typst is escaped.
"""
from __future__ import annotations

import json
import math

import mistune

_PARSE = mistune.create_markdown(renderer=None, plugins=["table", "strikethrough"])
_SPECIAL = set("\\/*_`#$<>@[]~=-+")


def escape(text: str) -> str:
    """Returns `text` as Typst markup that shows it literally."""
    return "".join(f"\\{char}" if char in _SPECIAL else char for char in text)


def string(text: str) -> str:
    """Returns `text` as a Typst string literal."""
    return json.dumps(text, ensure_ascii=False)


def markdown_to_typst(markdown: str, heading_offset: int = 0) -> str:
    """Returns Typst markup for a Markdown text; headings move `heading_offset` levels deeper."""
    return "".join(_block(node, heading_offset) for node in _PARSE(markdown)).strip() + "\n"


def inline_to_typst(markdown: str) -> str:
    """Returns Typst markup for one line of Markdown (a table cell): its inline formatting only."""
    nodes = _PARSE(markdown)
    return "".join(_inline(child) for node in nodes for child in node.get("children", [])).strip()


def _block(node: dict, offset: int, depth: int = 0) -> str:
    kind, children = node["type"], node.get("children", [])
    if kind == "heading":
        return f"{'=' * (node['attrs']['level'] + offset)} {_inlines(children)}\n\n"
    if kind in ("paragraph", "block_text"):
        return f"{_inlines(children)}\n\n" if kind == "paragraph" else f"{_inlines(children)}\n"
    if kind == "list":
        marker = "+" if node["attrs"]["ordered"] else "-"
        items = []
        for item in children:
            body = "".join(_block(child, offset, depth + 1) for child in item["children"]).strip()
            items.append(f"{'  ' * depth}{marker} {body}\n")
        return "".join(items) + ("\n" if depth == 0 else "")
    if kind == "block_code":
        fence, language = "`" * max(3, _longest_run(node["raw"], "`") + 1), (node.get("attrs") or {}).get("info")
        return f"{fence}{language or ''}\n{node['raw'].rstrip()}\n{fence}\n\n"
    if kind == "block_quote":
        return f"#quote(block: true)[{''.join(_block(child, offset) for child in children).strip()}]\n\n"
    if kind == "table":
        return table_to_typst(node) + "\n\n"
    if kind == "thematic_break":
        return "#line(length: 100%)\n\n"
    return ""                     # blank lines, HTML (the answer markers)


def table_to_typst(node: dict) -> str:
    """Returns a Typst table for a mistune table node (a Markdown table inside the prose)."""
    head, body = node["children"]
    header = [_inlines(cell["children"]) for cell in head["children"]]
    rows = [[_inlines(cell["children"]) for cell in row["children"]] for row in body["children"]]
    return table_markup(header, rows)


def table_markup(header: list[str], rows: list[list[str]], widths: list[str] | None = None) -> str:
    """Returns `#table(...)` with a bold header row; cells are Typst markup already, `widths` Typst column widths
    (default: each as wide as its content)."""
    cells = ", ".join(f"[{cell}]" for row in rows for cell in row)
    head = ", ".join(f"[*{cell}*]" if cell else "[]" for cell in header)
    columns = f"({', '.join(widths)},)" if widths else str(len(header))
    return f"#table(columns: {columns}, table.header({head}), {cells})"


SHORT_COLUMN = 12            # characters: a column whose cells and header words are no longer never wraps a cell
CHARACTER_PT, INSET_PT = 3.6, 7    # at the tables' 7 pt: an average character, and the cell's padding and rule


def _column_sizes(header: list[str], rows: list[list[str]]) -> list[tuple[float, str]]:
    """Returns each column's (amount, unit): a short column (numbers, names) exactly as wide as its longest cell or
    header word in pt, so that no number wraps; the others a share (`fr`) of the rest of the line in proportion to
    their longest cell (at most 40 characters: longer ones wrap), so that prose gets the room."""
    sizes = []
    for name, *cells in zip(header, *rows):
        longest = max([len(cell) for cell in cells] + [max(len(word) for word in name.split()) if name else 1])
        sizes.append((round(longest * CHARACTER_PT + INSET_PT), "pt") if longest <= SHORT_COLUMN
                     else (round(min(40, longest) / 10, 1), "fr"))
    return sizes


def column_widths(header: list[str], rows: list[list[str]]) -> list[str]:
    """Returns Typst column widths for a table of plain-text cells (see `_column_sizes`)."""
    return [f"{amount:.0f}pt" if unit == "pt" else f"{amount:.1f}fr" for amount, unit in _column_sizes(header, rows)]


LINE_PT, ROW_PT = 8.5, 4.5       # at 7 pt: a wrapped line, and a row's padding and rule


def table_height_pt(header: list[str], rows: list[list[str]], line_width_pt: float) -> float:
    """Returns about how tall a table of plain-text cells is when set with `column_widths` on a line
    `line_width_pt` wide: each row as tall as its cell that wraps to the most lines."""
    sizes = _column_sizes(header, rows)
    fixed = sum(amount for amount, unit in sizes if unit == "pt")
    shares = sum(amount for amount, unit in sizes if unit == "fr") or 1.0
    characters = [float("inf") if unit == "pt" else
                  max(1.0, ((line_width_pt - fixed) * amount / shares - INSET_PT) / CHARACTER_PT)
                  for amount, unit in sizes]
    lines = [max(math.ceil(len(cell) / per_line) or 1 for cell, per_line in zip(row, characters))
             for row in [header, *rows]]
    return sum(count * LINE_PT + ROW_PT for count in lines)


def _inlines(children: list[dict]) -> str:
    return "".join(_inline(child) for child in children)


def _inline(node: dict) -> str:
    kind = node["type"]
    if kind == "text":
        return escape(node["raw"])
    if kind == "codespan":
        return f"#raw({string(node['raw'])});"
    if kind == "strong":
        return f"#strong[{_inlines(node['children'])}];"
    if kind == "emphasis":
        return f"#emph[{_inlines(node['children'])}];"
    if kind == "strikethrough":
        return f"#strike[{_inlines(node['children'])}];"
    if kind == "link":
        return f"#link({string(node['attrs']['url'])})[{_inlines(node['children'])}];"
    if kind == "softbreak":
        return " "
    if kind == "linebreak":
        return " \\\n"
    return ""                     # inline HTML, images


def _longest_run(text: str, char: str) -> int:
    longest = current = 0
    for c in text:
        current = current + 1 if c == char else 0
        longest = max(longest, current)
    return longest
