"""The learning rate at every step of a run, from a schedule spec or from the logged values.

Rule (also in the docs): when a schedule spec is given (``--schedule SPEC`` or a sidecar
``<run>.schedule.json``), ``lr[t] = schedule(t)`` for every step. Otherwise the logged ``lr`` values
are linearly interpolated between logged steps, with ``lr = 0`` at step 0 when the first logged step
is later (training starts from LR 0 as under a warmup), and held at the last logged value after the
last logged LR step. Where the logged ramp shows the warmup ending between two logged points, or a
warmup is given, the LR reaches the peak there (`lrlab.runs.warmup`). Interpolation cannot see a
schedule's shape between logged points, so a warning is given when logged LR points are far apart
(a gap over `SPARSE_GAP_FRACTION` of the run and over `SPARSE_GAP_MIN_STEPS` steps).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from lrlab.errors import LrlabError
from lrlab.runs.model import MAX_LR, RunWarning
from lrlab.runs.warmup import Warmup, logged_warmup
from lrlab.schedules import MAX_STEPS

SPARSE_GAP_FRACTION = 0.05
SPARSE_GAP_MIN_STEPS = 256


def lr_from_schedule(schedule: Any, last_step: int, source: str) -> np.ndarray:
    """Per-step LR for steps 0..last_step from a schedule (object, spec dict or spec string)."""
    from lrlab.schedules import from_spec  # the schedule library is only needed for specs

    if not 0 <= last_step <= MAX_STEPS:
        raise LrlabError(f"{source}: step {last_step} is outside 0..{MAX_STEPS:,}")
    lr = np.asarray(from_spec(schedule)(np.arange(last_step + 1)), dtype=np.float64)
    if not np.all(np.isfinite(lr)) or np.any(lr < 0):
        raise LrlabError(f"{source}: the schedule gives a non-finite or negative learning rate")
    if np.any(lr > MAX_LR):
        raise LrlabError(
            f"{source}: the schedule's learning rate reaches {lr.max():g}, above {MAX_LR:g}"
        )
    return lr


def lr_from_logged(
    lr_steps: np.ndarray,
    lr: np.ndarray,
    last_step: int,
    source: str,
    *,
    warmup: int | None = None,
) -> np.ndarray:
    """Per-step LR for steps 0..last_step by linear interpolation of logged ``(step, lr)``
    points (and the end of the warmup, `lrlab.runs.warmup`; `warmup` if given)."""
    return logged_lr_and_warmup(lr_steps, lr, last_step, source, warmup)[0]


def logged_lr_and_warmup(
    lr_steps: np.ndarray, lr: np.ndarray, last_step: int, source: str, warmup: int | None
) -> tuple[np.ndarray, Warmup]:
    """`lr_from_logged`, and the run's warmup as `lrlab.runs.warmup.logged_warmup` finds it."""
    if lr_steps.size == 0:
        raise LrlabError(
            f"{source}: no 'lr' values and no schedule; pass --schedule SPEC, write a sidecar "
            "<run>.schedule.json, or map the LR column with --columns lr=NAME"
        )
    found, lr_steps, lr = logged_warmup(lr_steps, lr, warmup, source)
    gaps = np.diff(np.append(lr_steps, max(last_step, lr_steps[-1])))
    if found.steps and lr_steps.size > 1 and lr_steps[1] == found.steps:
        gaps[0] = 0  # a known warmup from LR 0: a straight ramp, as lrlab's warmups are
    largest = int(gaps.max()) if gaps.size else 0
    if largest > max(SPARSE_GAP_FRACTION * last_step, SPARSE_GAP_MIN_STEPS):
        where = int(lr_steps[int(np.argmax(gaps))])
        # Before the first logged point the gap is the warmup the log does not show: its length
        # is what the user knows and can pass, more often than the whole schedule.
        advice = "--warmup N or --schedule SPEC" if where == 0 else "--schedule SPEC"
        warnings.warn(
            f"{source}: logged LR points are up to {largest} steps apart (after step {where}); "
            f"per-step LR is linearly interpolated there, pass {advice} for the exact LR",
            RunWarning,
            stacklevel=4,
        )
    return np.interp(np.arange(last_step + 1), lr_steps, lr), found
