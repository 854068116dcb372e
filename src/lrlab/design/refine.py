"""Gradient-norm refinement (Defazio, Cutkosky, Mehta & Mishchenko 2023, "When, Why and How Much?
Adaptive Learning Rate Scheduling by Refinement", arXiv:2310.07831).

From the gradient norms ``g_1..g_T`` logged by a previous run, the refined schedule is

    w_t = g_t^-2 (SGD variant, l2 norms)   or   w_t = g_t^-1 (Adam variant, l1 norms of the update
    direction, the paper's Adam-style refinement),
    eta_t = w_t * (sum_{p > t} w_p) / (sum_p w_p),   eta_T = 0,

rescaled so its maximum is the peak LR. The norms are first smoothed with a median filter whose
width is a fraction ``tau`` of the run (0.1 in the paper's experiments), the run's end padded by
reflection so the filter does not flatten the final rise in gradient norm; this follows the
authors' reference code (facebookresearch/adaptive_scheduling, ``find_closed_form_schedule``).
The result warms up where early gradients are large and anneals fast at the end.
"""

from __future__ import annotations

import numpy as np

from lrlab.errors import LrlabError, brief
from lrlab.runs.model import MAX_LR
from lrlab.schedules import Table

VARIANTS = {"sgd": 2.0, "adam": 1.0}  # the power of the norm in the weights w_t = g_t^-power


def smooth_gradient_norms(norms: np.ndarray, smoothing: float) -> np.ndarray:
    """Median filter of width ``smoothing * len(norms)`` (odd), end padded by reflection."""
    from scipy import ndimage  # slow to import: only refining needs it

    width = 2 * (int(smoothing * norms.size) // 2) + 1
    pad = 2 * width
    padded = np.pad(norms, (0, pad), mode="reflect") if norms.size > pad else norms
    smoothed = ndimage.median_filter(padded, size=width, mode="nearest")
    return smoothed[: norms.size]


def refined_lr(
    norms: np.ndarray, *, peak: float, variant: str = "sgd", smoothing: float = 0.1
) -> np.ndarray:
    """The refined per-step LR for gradient norms ``norms`` (one per step)."""
    if variant not in VARIANTS:
        raise LrlabError(f"unknown refinement variant {brief(variant)} (choose sgd or adam)")
    if not isinstance(peak, int | float) or not 0 < peak <= MAX_LR:
        raise LrlabError(f"peak={brief(peak)} must be a learning rate in (0, {MAX_LR:g}]")
    norms = np.asarray(norms, dtype=np.float64)
    if norms.ndim != 1 or norms.size < 2:
        raise LrlabError("refinement needs the gradient norms of at least two steps")
    if not np.all(np.isfinite(norms)) or np.any(norms <= 0):
        raise LrlabError("gradient norms must be finite and positive")
    if not isinstance(smoothing, int | float) or not 0 <= smoothing < 1:
        raise LrlabError(f"smoothing={smoothing} must be in [0, 1)")
    weights = smooth_gradient_norms(norms, smoothing) ** -VARIANTS[variant]
    tail = np.cumsum(weights[::-1])[::-1]  # sum_{p >= t} w_p
    lr = weights * np.append(tail[1:], 0.0) / tail[0]
    return peak * lr / lr.max()


def refine_schedule(
    steps: np.ndarray,
    norms: np.ndarray,
    *,
    peak: float,
    variant: str = "sgd",
    smoothing: float = 0.1,
) -> Table:
    """A table schedule refined from norms logged at `steps` (linearly interpolated to every
    step from the first logged one to the last)."""
    steps = np.asarray(steps, dtype=np.float64)
    every_step = np.interp(np.arange(steps[0], steps[-1] + 1), steps, norms)
    lr = refined_lr(every_step, peak=peak, variant=variant, smoothing=smoothing)
    return Table(values=np.concatenate([np.full(int(steps[0]), lr[0]), lr]))
