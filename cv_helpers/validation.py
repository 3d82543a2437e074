"""Checks at the boundary: a value is one of the allowed choices; a run or study name is one safe folder name."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable

from .errors import ConfigError

NAME_RULE = ("letters, digits and . - _ = +, not starting with a dot, at most 100 characters "
             "(one folder name inside the runs folder)")
_NAME = re.compile(r"[A-Za-z0-9_=+\-][A-Za-z0-9._=+\-]{0,99}")


def check_choice(kind: str, value: object, allowed: Iterable[str], context: str = "") -> None:
    """Raises ConfigError unless `value` is one of `allowed`; the message (after `context`) lists them."""
    allowed = list(allowed)
    if value not in allowed:
        raise ConfigError(f"{context}unknown {kind} {value!r}; choose one of {', '.join(allowed)}")


def check_name(name: object, kind: str = "run name", folder: Path | None = None) -> str:
    """Returns `name` if it is a safe folder name (see NAME_RULE) that differs from every existing entry of
    `folder` in more than letter case (on a case-insensitive disk those would be one folder); else ConfigError."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigError(f"{kind} {name!r} is not allowed; use {NAME_RULE}")
    if folder is not None and folder.is_dir():
        twins = [entry.name for entry in folder.iterdir() if entry.name.lower() == name.lower() and entry.name != name]
        if twins:
            raise ConfigError(f"{kind} {name!r} differs only in letter case from the existing {twins[0]!r}; use "
                              f"{twins[0]!r} or a clearly different name")
    return name
