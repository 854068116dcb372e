"""Checkpoints: written atomically, kept last-K (plus chosen steps), read without executing code.

A checkpoint is one ``torch.save`` file holding only tensors and plain data (model and optimizer
state, the step, the RNG state, the config and the schedule spec), so it loads with
``torch.load(..., weights_only=True)``: a file whose pickle names any other Python object is
refused, never run. It is written to a temporary file and renamed (`lrlab.atomic`), so a kill
leaves the previous checkpoint intact and never a half-written one under a checkpoint's name;
`remove_orphans` deletes the temporary file such a kill leaves (as large as a checkpoint).

A checkpoint that loads is also checked for what the trainer reads from it (`load`), and its
weights, optimizer moments and RNG state are put back through `restore_model`,
`restore_optimizer` and `restore_rng`, so a crafted or mismatched file (a key missing, a shape
that differs, a bad RNG state, a negative step) is a one-line error naming the file and the part
at fault, never a PyTorch traceback.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from lrlab.atomic import atomic_write, temporary_target
from lrlab.errors import LrlabError, brief
from lrlab.schedules import from_spec

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


def remove_orphans(folder: Path) -> list[Path]:
    """Delete the temporary files of checkpoint writes killed before their rename, and return
    them. Only for the folder's one writer (`lrlab.locks`): another's write would be in flight."""
    if not folder.is_dir():
        return []
    orphans = [
        path
        for path in folder.iterdir()
        if (target := temporary_target(path)) is not None and _NAME.fullmatch(target)
    ]
    for path in orphans:
        path.unlink(missing_ok=True)
    return orphans


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
        raise LrlabError(
            f"{path}: not a readable checkpoint, truncated or corrupt ({_first_line(error)})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise LrlabError(f"{path}: not an lrlab tunnel checkpoint")
    if payload.get("version") != VERSION:
        raise LrlabError(
            f"{path}: checkpoint version {brief(payload.get('version'))}, this lrlab "
            f"reads version {VERSION}"
        )
    _check_payload(path, payload)
    return payload


def _check_payload(path: Path, payload: dict[str, Any]) -> None:
    """The parts of a checkpoint the trainer reads, each of the right kind (their fit to the
    model is checked when they are restored)."""

    def require(key: str, ok: bool, wanted: str) -> None:
        if not ok:
            raise LrlabError(f"{path}: {key} must be {wanted}, got {brief(payload.get(key))}")

    for key in ("step", "model", "optimizer", "rng", "config", "schedule", "vocab_size"):
        if key not in payload:
            raise LrlabError(f"{path}: not a complete checkpoint (no {key!r})")
    step = payload["step"]
    require("step", type(step) is int and step >= 0, "a non-negative integer")
    model = payload["model"]
    require(
        "model",
        isinstance(model, dict) and all(isinstance(v, torch.Tensor) for v in model.values()),
        "a mapping of tensors",
    )
    optimizer = payload["optimizer"]
    require(
        "optimizer",
        isinstance(optimizer, dict)
        and isinstance(optimizer.get("state"), dict)
        and isinstance(optimizer.get("param_groups"), list),
        "an optimizer state (state and param_groups)",
    )
    rng = payload["rng"]
    require(
        "rng",
        isinstance(rng, torch.Tensor) and rng.dtype == torch.uint8 and rng.ndim == 1,
        "a byte tensor",
    )
    config = payload["config"]
    require(
        "config",
        isinstance(config, dict)
        and all(isinstance(config.get(s), dict) for s in ("model", "optim", "data", "train")),
        "a run config with sections model, optim, data and train",
    )
    vocab = payload["vocab_size"]
    require("vocab_size", type(vocab) is int and vocab > 0, "a positive integer")
    try:
        from_spec(payload["schedule"])
    except LrlabError as error:
        raise LrlabError(f"{path}: schedule: {error}") from None


def restore_model(model: torch.nn.Module, weights: dict[str, torch.Tensor], path: Path) -> None:
    """Load a checkpoint's weights into `model`; a missing, extra or differently shaped tensor
    is an `LrlabError` naming it."""
    expected = model.state_dict()
    missing = [key for key in expected if key not in weights]
    extra = [key for key in weights if key not in expected]
    if missing or extra:
        what = f"no weights for {missing[0]!r}" if missing else f"unknown weights {extra[0]!r}"
        raise LrlabError(f"{path}: the weights do not fit this run's model ({what})")
    for key, value in expected.items():
        if weights[key].shape != value.shape:
            raise LrlabError(
                f"{path}: the weights do not fit this run's model ({key} has shape "
                f"{tuple(weights[key].shape)} there, {tuple(value.shape)} here)"
            )
    model.load_state_dict(weights)


def restore_optimizer(optimizer: torch.optim.Optimizer, state: dict[str, Any], path: Path) -> None:
    """Load a checkpoint's optimizer moments. The hyperparameters stay this run's own (its
    config: the same on a resume, possibly changed on a branch or a new stage). Groups or moments
    that do not fit this run's parameters are an `LrlabError` (PyTorch would fail only at the
    first step, or not at all)."""
    groups = optimizer.param_groups
    saved = state["param_groups"]
    sizes = [len(group["params"]) for group in groups]
    if (
        not all(isinstance(g, dict) and isinstance(g.get("params"), list) for g in saved)
        or [len(g["params"]) for g in saved] != sizes
    ):
        raise LrlabError(
            f"{path}: the optimizer state does not fit this run's model (parameter groups of "
            f"sizes {sizes} here)"
        )
    for group, saved_group in zip(groups, saved, strict=True):
        for param, index in zip(group["params"], saved_group["params"], strict=True):
            moments = state["state"].get(index, {})
            if not isinstance(moments, dict) or not all(
                _fits(name, value, param) for name, value in moments.items()
            ):
                raise LrlabError(
                    f"{path}: the optimizer state of parameter {brief(index)} does not fit "
                    "this run's model"
                )
    hyperparameters = [{k: v for k, v in group.items() if k != "params"} for group in groups]
    try:
        optimizer.load_state_dict(state)
    except (ValueError, KeyError, TypeError, RuntimeError) as error:
        raise LrlabError(f"{path}: unusable optimizer state ({_first_line(error)})") from None
    for group, values in zip(optimizer.param_groups, hyperparameters, strict=True):
        group.update(values)


def _fits(name: Any, value: Any, param: torch.Tensor) -> bool:
    """An AdamW moment of `param`'s shape, or its step count: a finite non-negative scalar."""
    if not isinstance(value, torch.Tensor):
        return False
    if name == "step":
        return value.ndim == 0 and bool(torch.isfinite(value)) and float(value) >= 0
    return value.shape == param.shape


def restore_rng(rng: torch.Tensor, path: Path) -> None:
    """Put back the CPU random-number generator's state; a bad one is an `LrlabError`."""
    try:
        torch.set_rng_state(rng)
    except (RuntimeError, TypeError) as error:
        raise LrlabError(f"{path}: unusable RNG state ({_first_line(error)})") from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__
