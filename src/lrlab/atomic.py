"""Atomic file writes: a reader sees the old file or the new one, never half of one.

The data goes to a temporary file in the destination's folder (same file system, so the rename is
atomic), is flushed and fsync'ed, then renamed over the destination with `os.replace`.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write(file)`` on a temporary file, then move it to `path` in one step."""
    destination = Path(path)
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{destination.name}.", dir=destination.parent)
    try:
        # mkstemp makes the file private (0600); give it the permissions a plain open() would.
        os.chmod(temporary, 0o666 & ~_umask())
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, destination)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return destination


# `atomic_write`'s temporary files: "." + the destination's name + "." + mkstemp's 8 characters.
_TEMPORARY = re.compile(r"\.(?P<target>.+)\.[a-z0-9_]{8}")


def temporary_target(path: str | os.PathLike[str]) -> str | None:
    """The name of the file that `path` was to become, if `path` is a temporary file of
    `atomic_write` (one left behind by a process killed before its rename); else None. Lets a
    writer that owns a folder remove such leftovers, each as large as the file it was for."""
    match = _TEMPORARY.fullmatch(Path(path).name)
    return match.group("target") if match else None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically."""
    return atomic_write(path, lambda file: file.write(text.encode("utf-8")))


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write `data` to `path` atomically."""
    return atomic_write(path, lambda file: file.write(data))
