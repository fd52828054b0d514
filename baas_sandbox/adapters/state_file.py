"""The state file of ``baas-sandbox serve --state-file``: read once at start, written atomically.

A write never leaves a half-written file: the document goes to a temporary file in the same
folder, which is flushed to disk and then renamed over the old one (``os.replace``, atomic on
POSIX and Windows), and the folder itself is flushed so that the rename survives a power cut. The
file is created readable by its owner only (it holds verification codes).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


class StateFileError(Exception):
    """The state file cannot be used; the message is one line, naming the file."""


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    document = {}
    for name, value in pairs:
        if name in document:
            raise ValueError(f"the name {name!r} appears twice in one object")
        document[name] = value
    return document


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def read(path: Path) -> Any | None:
    """The file's JSON document; None when there is no file yet. ``StateFileError`` when it cannot be
    read or is not JSON."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateFileError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    try:
        return json.loads(raw.decode("utf-8"), object_pairs_hook=_refuse_duplicates, parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        raise StateFileError(f"{path}: is not a state file: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise StateFileError(f"{path}: is not a state file: not JSON ({exc.msg}, line {exc.lineno} "
                             f"column {exc.colno})") from None
    except ValueError as exc:
        raise StateFileError(f"{path}: is not a state file: {exc}") from None
    except RecursionError:
        raise StateFileError(f"{path}: is not a state file: nested too deep") from None


def write(path: Path, document: Any) -> None:
    """Replace the file with ``document``, atomically (an ``OSError`` leaves the old file as it was)."""
    data = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    directory = path.parent
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
    _sync_directory(directory)


def _sync_directory(directory: Path) -> None:
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:  # a platform without directory handles (Windows): the rename is what it is
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
