"""The free-form search of schedule design (`lrlab.design.optimize`): any non-increasing
schedule after warmup, given by knots joined linearly, optimised on the law's exact gradient from
several starts; within the fitted runs' fall envelope by SLSQP under linear constraints on the
knot values (`_KnotRegion`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from lrlab.design.ticker import Ticker
from lrlab.laws.base import Law
from lrlab.runs.regime import DecayRegime
from lrlab.schedules import Schedule, from_spec

_MAX_LOG_DROP = 25.0  # exp(-25) of the peak: as good as zero for any schedule


def _knot_weights(positions: np.ndarray, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation between knots: the left knot of each step and the right weight."""
    left = np.clip(np.searchsorted(positions, steps, side="right") - 1, 0, len(positions) - 2)
    weight = (steps - positions[left]) / (positions[left + 1] - positions[left])
    return left, np.clip(weight, 0.0, 1.0)


def free_form(
    law: Law,
    steps: int,
    peak: float,
    warmup: int,
    knots: int,
    smoothness: float,
    ticker: Ticker,
    regime: DecayRegime | None = None,
) -> Schedule:
    from scipy import optimize  # 0.3 s to import: only designing needs it

    knots = int(max(3, min(knots, steps - warmup)))
    # Knots crowd towards the end, where the laws want the LR to change fast: the gap shrinks
    # linearly, from about 2 (N - W) / K after warmup to about 2 (N - W) / K^2 at the end.
    fraction = 1.0 - (1.0 - np.linspace(0.0, 1.0, knots)) ** 2
    positions = np.unique(np.round(warmup + (steps - 1 - warmup) * fraction))  # whole steps
    knots = positions.size
    after = np.arange(warmup, steps, dtype=np.float64)
    left, weight = _knot_weights(positions, after)
    warm = peak * np.arange(warmup) / max(warmup, 1)

    region = None if regime is None else _KnotRegion(regime, positions, peak, warmup)

    def lr_of(values: np.ndarray) -> np.ndarray:
        return np.concatenate([warm, values[left] * (1 - weight) + values[left + 1] * weight])

    def by_values(values: np.ndarray) -> tuple[float, np.ndarray]:
        """The forecast (with the smoothness penalty) and its gradient by knot value."""
        loss, gradient = law.final_loss_and_gradient(lr_of(values))
        ticker.tick(float(loss))  # the forecast, before the smoothness penalty
        tail = gradient[warmup:]
        by_value = np.bincount(left, tail * (1 - weight), knots)
        by_value += np.bincount(left + 1, tail * weight, knots)
        if smoothness > 0:  # penalise curvature of the knot values, relative to the peak
            curvature = np.diff(values, 2) / peak
            loss += smoothness * float(curvature @ curvature)
            by_value += smoothness * 2 * np.convolve(curvature, [1.0, -2.0, 1.0]) / peak
        return float(loss), by_value

    def by_drops(z: np.ndarray) -> tuple[float, np.ndarray]:
        values = peak * np.exp(-np.cumsum(z))
        loss, by_value = by_values(values)
        # d values_j / d z_i = -values_j for j >= i: a reversed cumulative sum.
        return loss, -np.cumsum((by_value * values)[::-1])[::-1]

    def by_shares(share: np.ndarray) -> tuple[float, np.ndarray]:
        loss, by_value = by_values(peak * share)
        return loss, peak * by_value

    best: tuple[float, np.ndarray] | None = None
    starts = _free_form_starts(peak, steps, warmup)
    for index, schedule in enumerate(starts, start=1):
        ticker.stage(f"free-form search (start {index} of {len(starts)})")
        start_values = np.maximum(schedule(positions), peak * 1e-4)
        if region is None:
            z0 = -np.diff(np.log(np.concatenate([[peak], start_values])))
            result = optimize.minimize(
                by_drops,
                np.clip(z0, 0.0, _MAX_LOG_DROP),
                jac=True,
                method="L-BFGS-B",
                bounds=[(0.0, _MAX_LOG_DROP)] * knots,
                options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-12},
            )
            found = (float(result.fun), peak * np.exp(-np.cumsum(result.x)))
        else:
            found = region.search(by_shares, region.raise_into(start_values))
        if best is None or found[0] < best[0] or not math.isfinite(best[0]):
            best = found
    values = best[1]
    # Six significant digits: a readable spec; the forecast is made on this rounded schedule.
    points = [[int(p), float(f"{v:.6g}")] for p, v in zip(positions, values, strict=True)]
    if warmup > 0:  # the warmup, exact at integer steps: 0 at step 0, peak*(W-1)/W at W-1
        points = [[0, 0.0], [warmup - 1, float(f"{warm[-1]:.6g}")], *points]
        if warmup == 1:
            points.pop(1)
    return from_spec({"name": "piecewise_linear", "points": points})


class _KnotRegion:
    """The fall envelope on the free form's knots: every pair of knots ``i < j`` (and the LR at
    the end of warmup before them) may differ by at most the envelope's limit for their
    distance, ``peak * F(p_j - p_i)``. These are linear constraints on the knot values, so the
    search under them is SLSQP on the values as shares of the peak, which keeps them exactly and
    converges in tens of forecasts from every start; a quadratic penalty on the pairs made the
    problem stiff (L-BFGS-B took thousands of forecasts where the search without the region
    takes hundreds), and the kinks of a parametrisation with the envelope built in stalled
    L-BFGS-B at different optima from different starts."""

    def __init__(
        self, regime: DecayRegime, positions: np.ndarray, peak: float, warmup: int
    ) -> None:
        self.peak = peak
        # The LR at the last warmup step leads: a fall from it counts too.
        self.lead = [peak * (warmup - 1) / warmup] if warmup > 0 else []
        where = np.concatenate([[warmup - 1] if warmup > 0 else [], positions])
        gaps = where[None, :] - where[:, None]
        self.limits = np.where(gaps > 0, peak * regime.limit(np.maximum(gaps, 0)), np.inf)
        # The constraints on the knot values as shares of the peak: each at most the peak, and
        # no lower than the lead allows (or exp(-25) of the peak, as without the region);
        # rows ``x_i - x_j <= bound``: each binding pair's fall, and each knot no higher than
        # the one before it (the free form is non-increasing).
        lead, count = len(self.lead), positions.size
        share = self.limits / peak
        self.low = np.full(count, math.exp(-_MAX_LOG_DROP))
        if lead:
            self.low = np.maximum(self.low, self.lead[0] / peak - share[0, lead:])
        pairs = self._pairs(share[lead:, lead:])
        later = np.arange(1, count)
        rows = np.concatenate([pairs, np.stack([later, later - 1], axis=1)])
        self.bound = np.concatenate(
            [share[lead + pairs[:, 0], lead + pairs[:, 1]], np.zeros(later.size)]
        )
        self.matrix = np.zeros((len(rows), count))
        self.matrix[np.arange(len(rows)), rows[:, 0]] = 1.0
        self.matrix[np.arange(len(rows)), rows[:, 1]] = -1.0

    def search(
        self, objective: Callable[[np.ndarray], tuple[float, np.ndarray]], start: np.ndarray
    ) -> tuple[float, np.ndarray]:
        """The lowest `objective` (of the knot values as shares of the peak, with its gradient)
        SLSQP finds from `start` (knot values within the region), and the knot values there,
        raised into the region: SLSQP may leave a rounding error's excess."""
        from scipy import optimize  # 0.3 s to import: only designing needs it

        result = optimize.minimize(
            objective,
            np.clip(start / self.peak, self.low, 1.0),
            jac=True,
            method="SLSQP",
            bounds=list(zip(self.low, np.ones(start.size), strict=True)),
            constraints=[
                {
                    "type": "ineq",
                    "fun": lambda x: self.bound - self.matrix @ x,
                    "jac": lambda x: -self.matrix,
                }
            ],
            options={"maxiter": 500, "ftol": 1e-12},
        )
        values = self.raise_into(self.peak * np.clip(result.x, self.low, 1.0))
        return objective(values / self.peak)[0], values

    @staticmethod
    def _pairs(share: np.ndarray) -> np.ndarray:
        """The knot pairs ``(i, j)`` whose limit (`share`, a share of the peak) can bind, given
        that the knots do not increase: not those at the whole peak or more; not those inside a
        kept wider pair ``(a, b)``, ``a <= i < j <= b``, of no larger limit (``x_i - x_j <= x_a -
        x_b``); not those that two kept shorter pairs through a knot between already bound
        (``F_ik + F_kj <= F_ij``). Each dropped pair is implied by kept ones, so the region is
        the same, with fewer rows for SLSQP, whose every step grows with them (a fit whose runs
        drop in one step has a flat envelope: all but a few dozen pairs go)."""
        count = share.shape[0]
        kept = np.zeros((count, count), dtype=bool)
        # around[i, j]: the lowest limit of a kept pair around (i, j); widest pairs first.
        around = np.full((count + 1, count + 1), np.inf)
        for width in range(count - 1, 0, -1):
            for i in range(count - width):
                j = i + width
                wider = min(around[i - 1, j] if i > 0 else np.inf, around[i, j + 1])
                kept[i, j] = share[i, j] < min(1.0, wider)
                around[i, j] = min(wider, share[i, j]) if kept[i, j] else wider
        for width in range(2, count):  # shortest first: the shorter pairs are settled
            for i in range(count - width):
                j = i + width
                if kept[i, j]:
                    between = kept[i, i + 1 : j] & kept[i + 1 : j, j]
                    through = share[i, i + 1 : j] + share[i + 1 : j, j]
                    kept[i, j] = not np.any(between & (through <= share[i, j]))
        return np.argwhere(kept)

    def raise_into(self, values: np.ndarray) -> np.ndarray:
        """The knot values raised, in order, to the least each pair with an earlier knot
        allows: within the envelope, and still non-increasing (the limit grows with distance)."""
        full = np.concatenate([self.lead, values])
        for j in range(1, full.size):
            full[j] = max(full[j], float(np.max(full[:j] - self.limits[:j, j])))
        return full[len(self.lead) :]


def _free_form_starts(peak: float, steps: int, warmup: int) -> Sequence[Schedule]:
    """Smooth decays and late, steep ones: the laws' optima lie in either basin."""
    common = {"peak": peak, "total": steps, "warmup": warmup}
    room = (steps - warmup) / steps
    return [
        from_spec({"name": "cosine", **common, "end_ratio": 0.1}),
        from_spec({"name": "linear", **common, "end_ratio": 0.01}),
        *(
            from_spec(
                {"name": "wsd", **common, "cooldown_fraction": min(f, room), "end_ratio": 0.01}
            )
            for f in (0.2, 0.05)
        ),
    ]
