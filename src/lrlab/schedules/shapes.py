"""Annealing curves shared by every schedule that decays from one LR to another.

`anneal(progress, start, end, shape)` maps progress ``p`` in [0, 1] to an LR that goes from `start`
(p = 0) to `end` (p = 1):

- ``linear``: ``start + (end - start) p``
- ``cosine``: ``end + (start - end) (1 + cos(pi p)) / 2`` (Loshchilov & Hutter 2017)
- ``exponential``: ``start^(1 - p) end^p``, geometric interpolation (needs ``end > 0``; the WSD
  decay of the multi-power-law paper, Luo et al. 2025; MiniCPM, Hu et al. 2024)
- ``1-sqrt``: ``end + (start - end) (1 - sqrt(p))`` (Hägele et al. 2024, "Scaling Laws and
  Compute-Optimal Training Beyond Fixed Training Durations")
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from lrlab.schedules.base import Schedule

DECAY_SHAPES = ("linear", "cosine", "exponential", "1-sqrt")


def anneal(progress: np.ndarray, start: float | np.ndarray, end: float, shape: str) -> np.ndarray:
    """LR along a decay of the given shape; `progress` is clipped to [0, 1]."""
    p = np.clip(progress, 0.0, 1.0)
    if shape == "linear":
        return start + (end - start) * p
    if shape == "cosine":
        return end + (start - end) * (1.0 + np.cos(np.pi * p)) / 2.0
    if shape == "exponential":
        return start ** (1.0 - p) * end**p
    if shape == "1-sqrt":
        return end + (start - end) * (1.0 - np.sqrt(p))
    raise ValueError(f"unknown decay shape {shape!r}")


def check_anneal_floor(schedule: Schedule, shape: str, floor: float, field: str) -> None:
    """An exponential (geometric) anneal to 0 is undefined: name the field to change."""
    if shape == "exponential" and floor <= 0.0:
        raise schedule.fail(f"an exponential decay needs a final LR above 0 (set {field})")


def restart_cycles(
    s: np.ndarray, first_length: float, growth: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Warm-restart cycles whose lengths grow geometrically: ``L_i = first_length * growth^i``.

    Returns the cycle index of each step ``s`` (an int array) and, per cycle, its first step
    ``first_length * (growth^i - 1) / (growth - 1)`` and its length ``L_i`` (SGDR's ``T_mult``),
    so that per-cycle quantities are computed once per cycle, not once per step.
    """
    horizon = float(np.max(s, initial=0.0))
    if growth == 1.0:
        count = int(horizon // first_length) + 2
        cycles = np.arange(count, dtype=np.float64)
        index = (s // first_length).astype(np.int64)
        return index, cycles * first_length, np.full(count, float(first_length))
    count = int(np.ceil(np.log1p(horizon / first_length * (growth - 1.0)) / math.log(growth))) + 2
    cycles = np.arange(count, dtype=np.float64)
    starts = first_length * (growth**cycles - 1.0) / (growth - 1.0)
    index = np.searchsorted(starts, s, side="right") - 1
    return index, starts, first_length * growth**cycles
