"""The simple schedule nearest a free-form one: a WSD or two-stage spec a person can type.

A free-form recommendation (`optimize_schedule` with ``family="free"``) is a piecewise-linear
spec of some fifty knots, exact but hard to read or to carry into another trainer. Its nearest
simple equivalent is the WSD (any decay shape, any length, any final LR) or two-stage schedule of
the same budget, peak and warmup whose LR curve is closest to it in least squares over the steps
after warmup (the warmups agree by construction). It is fitted on the LR curve, not on the
forecast: it says what the free-form shape *is*, and the law's forecast of it, set beside the
free-form's, says what simplifying costs. (The best WSD or two-stage schedule by forecast is
what ``lrlab optimize --family wsd`` finds.)

For a given decay length and shape other than exponential the LR is linear in the final LR, so
that is solved exactly; the exponential decay's final LR, and the decay length, are searched. For
the two-stage schedule every drop step is tried at once (cumulative sums). Its parameters are
rounded to three significant digits, so the spec reads well, and the forecast is of that spec.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from lrlab.design.optimize import Forecast, check_peak, check_steps, forecast
from lrlab.errors import LrlabError
from lrlab.laws.base import Law
from lrlab.schedules import DECAY_SHAPES, Schedule, from_spec
from lrlab.schedules.shapes import anneal

FIT = "least squares on the LR curve after warmup"
_SIMPLE = ("constant", "cosine", "linear", "wsd", "two_stage", "infinite")
_COARSE = 160  # decay lengths tried first; the best one's neighbourhood is then searched
_SMALLEST = 1e-4  # final LRs below this fraction of the peak are 0 (exponential: this)


@dataclasses.dataclass(frozen=True)
class SimpleEquivalent:
    """A simple schedule near a free-form one: its forecast, and how far apart the two LR
    curves are (root mean square over the steps after warmup, as a fraction of the peak)."""

    forecast: Forecast
    distance: float

    def to_dict(self) -> dict[str, Any]:
        """As JSON: the forecast (spec, final loss, band), the spec as a string, the distance and
        how it was fitted."""
        return {
            **self.forecast.to_dict(),
            "text": str(self.forecast.schedule),
            "lr_distance": self.distance,
            "fitted_by": FIT,
        }


def is_simple(schedule: Schedule) -> bool:
    """Whether `schedule` is already a family of a few parameters (nothing nearer to offer)."""
    return schedule.name in _SIMPLE


def nearest_simple(
    law: Law, schedule: Schedule, budget: int, *, peak: float, warmup: int
) -> SimpleEquivalent:
    """The WSD or two-stage schedule of `budget` steps, peak LR `peak` and linear warmup
    `warmup` whose LR curve is nearest that of `schedule` after warmup, with `law`'s forecast."""
    budget, warmup = check_steps("budget", budget), check_steps("warmup", warmup, low=0)
    peak = check_peak(peak)
    if budget < warmup + 2:  # a two-stage schedule needs a step at the peak and one after
        raise LrlabError(f"budget={budget} leaves fewer than 2 steps after warmup={warmup}")
    target = np.asarray(schedule(np.arange(warmup, budget)), dtype=np.float64) / peak
    candidates = [_two_stage(target, peak, warmup)]
    candidates += [_wsd(target, shape, peak, budget, warmup) for shape in DECAY_SHAPES]
    spec = min(candidates, key=lambda spec: _distance(from_spec(spec), target, peak, warmup))
    simple = from_spec(spec)
    return SimpleEquivalent(forecast(law, simple, budget), _distance(simple, target, peak, warmup))


def _distance(schedule: Schedule, target: np.ndarray, peak: float, warmup: int) -> float:
    """RMS difference of the LR curves after warmup, relative to the peak."""
    lr = schedule(np.arange(warmup, warmup + target.size)) / peak
    return math.sqrt(float(np.mean((lr - target) ** 2)))


def _round(value: float) -> float:
    return float(f"{value:.3g}")


def _two_stage(target: np.ndarray, peak: float, warmup: int) -> dict[str, Any]:
    """The best drop: for a drop after ``k`` post-warmup steps the low LR is the mean of the
    rest, and the error the sum of the two parts' squared deviations."""
    n = target.size
    k = np.arange(1, n)  # at least one step at the peak and one after the drop
    above = np.concatenate([[0.0], np.cumsum((target - 1.0) ** 2)])[k]
    sums = np.cumsum(target[::-1])[::-1]
    squares = np.cumsum((target**2)[::-1])[::-1]
    rest = n - k
    low = np.clip(sums[k] / rest, 0.0, 1.0)
    below = squares[k] - 2 * low * sums[k] + rest * low**2
    best = int(np.argmin(above + below))
    return {
        "name": "two_stage",
        "peak": peak,
        "warmup": warmup,
        "drop_step": warmup + int(k[best]),
        "low": min(_round(float(low[best]) * peak), peak),
    }


def _wsd(target: np.ndarray, shape: str, peak: float, budget: int, warmup: int) -> dict[str, Any]:
    """The best decay length and final LR for one decay shape."""
    n = target.size
    # The error of holding the peak over the first n - D steps, for every D at once.
    held = np.concatenate([[0.0], np.cumsum((target - 1.0) ** 2)])

    def fit(length: int) -> tuple[float, float]:
        """(error, final LR as a fraction of the peak) for a decay over the last `length`."""
        tail = target[n - length :]
        progress = np.arange(length) / length
        ratio, error = _end_ratio(tail, progress, shape)
        return held[n - length] + error, ratio

    coarse = np.unique(np.round(np.geomspace(1, n, _COARSE)).astype(int))
    errors = [fit(int(length))[0] for length in coarse]
    at = int(np.argmin(errors))
    # The error is smooth in the length between grid points: search the two gaps around the
    # best one step by step, where they are short, else on a finer grid of the same size.
    low, high = int(coarse[max(at - 1, 0)]), int(coarse[min(at + 1, coarse.size - 1)])
    lengths = np.unique(np.round(np.linspace(low, high, min(high - low + 1, _COARSE))))
    length = min((int(value) for value in lengths), key=lambda value: fit(value)[0])
    ratio = fit(length)[1]
    spec: dict[str, Any] = {
        "name": "wsd",
        "peak": peak,
        "total": budget,
        "warmup": warmup,
        "cooldown_fraction": min(_round(length / budget), (budget - warmup) / budget),
        "decay": shape,
    }
    if ratio >= _SMALLEST:
        spec["end_ratio"] = _round(ratio)
    elif shape == "exponential":
        spec["end_ratio"] = _SMALLEST
    return spec


def _end_ratio(tail: np.ndarray, progress: np.ndarray, shape: str) -> tuple[float, float]:
    """The final LR (a fraction of the peak, in [0, 1]) of the decay of `shape` nearest `tail`
    at `progress`, and its squared error. All but the exponential decay are linear in it:
    ``lr = g + ratio (1 - g)`` with ``g`` the decay from 1 to 0, solved in closed form."""
    if shape != "exponential":
        g = anneal(progress, 1.0, 0.0, shape)
        h = 1.0 - g
        denominator = float(h @ h)
        ratio = float((tail - g) @ h) / denominator if denominator > 0 else 0.0
        ratio = min(max(ratio, 0.0), 1.0)
        residual = tail - g - ratio * h
        return ratio, float(residual @ residual)
    # Geometric: 1^(1 - p) r^p = r^p, searched over log r (it needs r > 0), coarse then fine.
    ratios = np.geomspace(_SMALLEST, 1.0, 64)
    for _ in range(2):
        errors = np.sum((np.exp(np.outer(np.log(ratios), progress)) - tail) ** 2, axis=1)
        at = int(np.argmin(errors))
        best = (float(ratios[at]), float(errors[at]))
        ratios = np.geomspace(ratios[max(at - 1, 0)], ratios[min(at + 1, ratios.size - 1)], 32)
    return best
