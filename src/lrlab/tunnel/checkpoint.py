"""Checkpoints: written atomically, kept last-K (plus chosen steps), read without executing code.

A checkpoint is one ``torch.save`` file holding only tensors and plain data (model and optimizer
state, the step, the RNG state, the config and the schedule spec), so it loads with
``torch.load(..., weights_only=True)``: a file whose pickle names any other Python object is
refused, never run. It is written to a temporary file and renamed (`lrlab.atomic`), so a kill
leaves the previous checkpoint intact and never a half-written one under a checkpoint's name.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from lrlab.atomic import atomic_write
from lrlab.errors import LrlabError

FORMAT = "lrlab.tunnel.checkpoint"
VERSION = 1
_NAME = re.compile(r"step_(\d+)\.pt")


def checkpoint_path(folder: Path, step: int) -> Path:
    """``folder/step_00000123.pt``: names sort in step order."""
    return folder / f"step_{step:08d}.pt"


def save(
    folder: Path, step: int, state: dict[str, Any], *, keep_last: int, keep_steps: list[int]
) -> Path:
    """Write the checkpoint of `step` atomically, then delete periodic ones beyond the last
    `keep_last` (checkpoints of `keep_steps` are never deleted)."""
    path = checkpoint_path(folder, step)
    payload = {"format": FORMAT, "version": VERSION, "step": step, **state}
    atomic_write(path, lambda file: torch.save(payload, file))
    periodic = [s for s in list_steps(folder) if s not in keep_steps]
    for old in periodic[:-keep_last]:
        checkpoint_path(folder, old).unlink(missing_ok=True)
    return path


def list_steps(folder: Path) -> list[int]:
    """Steps of the checkpoints in `folder`, ascending."""
    if not folder.is_dir():
        return []
    return sorted(int(m.group(1)) for p in folder.iterdir() if (m := _NAME.fullmatch(p.name)))


def resolve(path: str | Path) -> Path:
    """A checkpoint file, or the latest checkpoint of a run folder (or its checkpoints/)."""
    path = Path(path)
    if path.is_file():
        return path
    for folder in (path / "checkpoints", path):
        steps = list_steps(folder)
        if steps:
            return checkpoint_path(folder, steps[-1])
    raise LrlabError(f"{path}: no such checkpoint file, and no checkpoints in that folder")


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint safely; a truncated, foreign or malicious file is an `LrlabError`."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise LrlabError(f"{path}: no such checkpoint") from None
    except pickle.UnpicklingError as error:
        # weights_only refuses any global it does not know: say so, without the long advice.
        reason = str(error).strip().splitlines()[0][:200]
        raise LrlabError(
            f"{path}: refused to load, the file holds Python objects beyond plain data ({reason})"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as error:
        reason = (
            str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        )
        raise LrlabError(
            f"{path}: not a readable checkpoint, truncated or corrupt ({reason})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise LrlabError(f"{path}: not an lrlab tunnel checkpoint")
    if payload.get("version") != VERSION:
        raise LrlabError(
            f"{path}: checkpoint version {payload.get('version')!r}, this lrlab "
            f"reads version {VERSION}"
        )
    return payload
