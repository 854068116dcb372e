"""How fast the fitted runs' LR fell: the region a schedule designed from the fit must stay in.

A law fitted on runs whose LR never fell by more than some amount over some number of steps has
seen nothing of a faster fall, and its forecast of one is an extrapolation: on the wind tunnel the
momentum law, fitted on runs whose fastest decay took 760 steps to 10% of the peak (and a drop to
10%), credited a free-form drop to zero within 13 steps with a loss the training run did not
reach. So the fit records its runs' *fall envelope*, and a design may not fall faster than it.

The envelope is ``F(k)``, for window lengths ``k`` on a geometric grid from 1 step to the longest
run (`GRID` lengths): the largest fall of the LR over ``k`` consecutive steps in any fitted run,
as a fraction of that run's peak, ``max_t (lr[t] - lr[t + k]) / max(lr)``, made non-decreasing in
``k`` (a fall seen within ``k`` steps is seen within more). A schedule of peak ``P`` is *within*
the envelope when over every grid length ``k`` its LR falls by at most ``F(k) * P``. So the level
is bounded as well as the rate: runs that all ended at 10% of their peak give ``F = 0.9`` at most,
and a design then stays above 10% of its peak; runs whose steepest decay is linear to zero over
``D`` steps give ``F(k) = k / D``, and a design then takes at least ``D`` steps to reach zero.
Between grid lengths the limit is that of the next shorter one, so a non-increasing schedule
within the envelope falls over any ``k`` steps by at most ``F`` at the next longer grid length
(about 20% longer); and its whole fall, from any step to any later one, is at most the
envelope's last value, however long it takes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from lrlab.errors import LrlabError
from lrlab.runs.model import Run

GRID = 48  # window lengths of the envelope, geometric from 1 step to the longest run
KEY = "decay_regime"  # the field of a fit's ``fit`` section that holds the envelope


@dataclasses.dataclass(frozen=True)
class DecayRegime:
    """The fall envelope of fitted runs: ``fall[i]`` is the most the LR fell, as a fraction of
    the run's peak, over ``windows[i]`` consecutive steps (module docstring)."""

    windows: np.ndarray
    fall: np.ndarray

    @classmethod
    def of_runs(cls, runs: Sequence[Run]) -> DecayRegime:
        """The envelope of `runs`' per-step LR."""
        longest = max(run.lr.size for run in runs)
        windows = np.unique(np.round(np.geomspace(1, max(longest - 1, 1), GRID)).astype(np.int64))
        fall = np.zeros(windows.size)
        for run in runs:
            peak = float(run.lr.max())
            if peak <= 0:
                continue
            fall = np.maximum(fall, _falls(run.lr, windows) / peak)
        return cls(windows, np.maximum.accumulate(np.clip(fall, 0.0, 1.0)))

    def to_dict(self) -> dict[str, Any]:
        """As JSON, in a fit's ``fit`` section: the window lengths and falls (6 digits)."""
        return {
            "windows": [int(k) for k in self.windows],
            "fall": [float(f"{f:.6g}") for f in self.fall],
        }

    @classmethod
    def from_dict(cls, data: Any, source: str) -> DecayRegime:
        """Rebuild from `to_dict` output, or an `LrlabError` naming `source` and the field."""
        if not isinstance(data, dict) or "windows" not in data or "fall" not in data:
            raise LrlabError(f"{source} must be a mapping with 'windows' and 'fall'")
        try:
            windows = np.asarray(data["windows"], dtype=np.float64)
            fall = np.asarray(data["fall"], dtype=np.float64)
        except (TypeError, ValueError):
            raise LrlabError(f"{source}: windows and fall must be lists of numbers") from None
        if windows.ndim != 1 or windows.size == 0 or fall.shape != windows.shape:
            raise LrlabError(f"{source}: windows and fall must be lists of the same length >= 1")
        whole = np.all(np.isfinite(windows)) and np.all(windows == np.round(windows))
        if not whole or windows[0] < 1 or np.any(np.diff(windows) <= 0):
            raise LrlabError(f"{source}: windows must be increasing whole numbers of steps >= 1")
        if not np.all(np.isfinite(fall)) or np.any((fall < 0) | (fall > 1)):
            raise LrlabError(f"{source}: fall must be fractions of the peak in [0, 1]")
        if np.any(np.diff(fall) < 0):
            raise LrlabError(f"{source}: fall must not decrease with the window length")
        return cls(windows.astype(np.int64), fall)

    def limit(self, length: np.ndarray | float) -> np.ndarray:
        """The most the LR may fall, as a fraction of the peak, over `length` steps: the
        envelope at the longest grid length not above it (0 below one step)."""
        at = np.searchsorted(self.windows, np.asarray(length), side="right") - 1
        return np.where(at >= 0, self.fall[np.clip(at, 0, None)], 0.0)

    def excess(self, lr: np.ndarray, peak: float) -> float:
        """How much faster than the envelope the per-step LR `lr` falls: the largest amount, as
        a fraction of `peak`, by which its fall over a grid length, or its whole fall from any
        step to any later one, exceeds the limit (0 within)."""
        lr = np.asarray(lr, dtype=np.float64)
        windows = self.windows[self.windows < lr.size]
        # The whole fall is bounded by the envelope's last value whatever its length: between
        # the two longest grid lengths below it, a fall could otherwise pass unseen.
        drawdown = float(np.max(np.maximum.accumulate(lr) - lr)) / peak - self.fall[-1]
        if windows.size == 0:
            return max(0.0, drawdown)
        over = _falls(lr, windows) / peak - self.fall[: windows.size]
        return max(0.0, float(over.max()), drawdown)

    def room(self, lr: np.ndarray, peak: float) -> float:
        """The largest share ``s`` in [0, 1] of the per-step LR `lr`'s falls that the envelope
        allows: ``s`` times each of its falls over a grid length, and its whole fall, within the
        limits. A family whose depth scales its falls (a decay ``lr = peak - s (peak - lr0)``
        after a rising warmup, lr0 <= peak: WSD, cosine and linear to a final LR, a two-stage
        drop) is within the envelope at ``s`` = ``room(lr0, peak)``: each fall between two steps
        after warmup is ``s`` times lr0's, and one from a warmup step less than that, since the
        warmup does not scale and lies below the peak."""
        lr = np.asarray(lr, dtype=np.float64)
        windows = self.windows[self.windows < lr.size]
        falls = np.append(_falls(lr, windows), np.max(np.maximum.accumulate(lr) - lr)) / peak
        limits = np.append(self.fall[: windows.size], self.fall[-1])
        with np.errstate(divide="ignore", invalid="ignore"):
            shares = np.where(falls > 0, limits / falls, np.inf)
        return float(min(1.0, shares.min()))

    def least_geometric_end(self, length: int, steps: int) -> float:
        """The lowest end, a share of the peak, of a geometric decay from the peak over the
        last `length` of `steps` steps, held at the peak before (WSD's exponential decay), that
        keeps within the envelope. Its LR ``end ** (j / length)`` at the decay's step ``j``
        falls fastest where it starts, so over ``k`` steps by ``1 - end ** e_k``, ``e_k =
        min(k, length - 1) / length``, at most (a fall from a warmup step, below the peak, by
        less), and in all by ``1 - end ** e_K`` at its last step: so ``end >= (1 - F(k)) **
        (1 / e_k)`` for each grid length below `steps`, and ``end >= (1 - F_last) ** (1 /
        e_K)``."""
        if length <= 1:
            return 0.0  # the decay's only step is the peak: no fall
        windows = self.windows[self.windows < steps]
        exponents = np.append(np.minimum(windows, length - 1), length - 1) / length
        limits = np.append(self.fall[: windows.size], self.fall[-1])
        return float(np.max((1.0 - limits) ** (1.0 / exponents)))

    def describe(self) -> str:
        """One line: the rule, with the envelope at a few lengths."""
        points, last = [], -1.0
        for length in (1, 10, 100, 1000, 10000):
            limit = float(self.limit(length))
            if length <= self.windows[-1] and f"{limit:.0%}" != f"{last:.0%}":
                points.append(f"{limit:.0%} in {length} step{'s' if length > 1 else ''}")
                last = limit
        if f"{self.fall[-1]:.0%}" != f"{last:.0%}":
            points.append(f"{self.fall[-1]:.0%} in all")
        else:
            points[-1] += " or any longer stretch"
        return (
            "kept within the fitted runs' decay: over any k steps the LR falls no more (as a "
            f"share of the peak) than a fitted run's did: at most {', '.join(points)}"
        )


def regime_info(runs: Sequence[Run]) -> dict[str, Any]:
    """The ``fit`` section's entry for a fit of `runs`: ``{KEY: envelope}``."""
    return {KEY: DecayRegime.of_runs(runs).to_dict()}


def fitted_regime(fit_info: dict[str, Any], source: str = "fit") -> DecayRegime | None:
    """The envelope a fit recorded (its ``fit`` section, `fit_info`), or None for a fit written
    before fits recorded one."""
    if KEY not in fit_info:
        return None
    return DecayRegime.from_dict(fit_info[KEY], f"{source}: {KEY}")


def _falls(lr: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """For each window length ``k``, the largest ``lr[t] - lr[t + k]`` (0 for a length past the
    end)."""
    out = np.zeros(windows.size)
    for index, k in enumerate(windows):
        if k < lr.size:
            out[index] = max(0.0, float(np.max(lr[:-k] - lr[k:])))
    return out
