"""Atomic file writes: every file the package writes goes through here, so a crash, Ctrl-C or full disk mid-write
leaves the previous file intact, and the error names the path."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import IO, Callable

from .errors import WorkbookError


def write_atomically(path: Path | str, write: Callable[[IO[bytes]], object]) -> None:
    """Calls `write(file_object)` on a temporary file beside `path`, then renames it over `path`."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".tmp")
    except OSError as err:
        raise WorkbookError(f"cannot write {path}: {err.strerror}; choose a writable folder") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except OSError as err:
        Path(tmp_name).unlink(missing_ok=True)
        raise WorkbookError(f"cannot write {path}: {err.strerror}; free disk space or choose another folder; "
                            "the previous file is unchanged") from None
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def write_bytes(path: Path | str, data: bytes) -> None:
    """Writes `data` to `path`, atomically."""
    write_atomically(path, lambda handle: handle.write(data))


def write_text(path: Path | str, text: str) -> None:
    """Writes `text` (UTF-8) to `path`, atomically."""
    write_bytes(path, text.encode())


def write_json(path: Path | str, values: dict) -> None:
    """Writes `values` as indented JSON, atomically."""
    write_text(path, json.dumps(values, indent=1))


def read_json(path: Path | str) -> dict:
    """Returns the JSON object in `path`; a missing or damaged file is an empty dict (nothing recorded yet)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return {}
