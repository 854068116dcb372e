"""Choose the schedule that a fitted law predicts to end at the lowest loss.

Every candidate shares the user's step budget ``N``, peak LR and linear warmup ``W``:

- a *family* (``wsd``, ``cosine``, ``linear``, ``two_stage``, ``infinite``) has one to three
  shape parameters, searched with a bounded derivative-free optimiser (Powell; for WSD once per
  decay shape);
- *free-form* is any non-increasing schedule after warmup (as in Luo et al. 2025, §5), given by
  ``K`` knots ``u_j = peak * exp(-(z_0 + ... + z_j))`` with ``z >= 0`` (so non-increasing and
  positive by construction) joined linearly, optimised by L-BFGS-B on the law's exact gradient
  (`Law.final_loss_and_gradient`) from several starts (cosine, linear, WSD). Knots cannot make a
  step drop, so the WSD and two-stage optima (also non-increasing) compete with the knot optimum and
  the lowest forecast wins.

`optimize_schedule` returns a `Design`: the best schedule as an lrlab spec, its forecast final
loss with the law's band, and the same forecasts for cosine-to-10%, WSD-20%-linear and
linear-to-zero at the same budget. A search takes from seconds to minutes (every forecast is a pass
over the budget's steps): given a `progress` callback, it says every few seconds what it is
searching, how many forecasts it made and the lowest final loss so far.

**Trust region.** A fit records how fast its runs' LR fell (`lrlab.runs.regime`: the most it fell
over each number of steps, as a share of the peak), and every candidate must fall no faster: a
law has seen nothing of a faster fall, and its forecast there is an extrapolation (a momentum-law
design that dropped the LR to zero within 13 steps, after fits on decays of 760 steps and drops
to 10%, lost its own check in the wind tunnel). The family searches add an exact penalty on the
excess fall (WSD then also searches its final LR). For the free form the envelope is a set of
linear constraints on the knot values (every pair of knots may differ by at most the envelope's
limit for their distance), so its search is SLSQP on the knot values under those constraints,
from the same starts raised into the envelope; a result is raised, knot by knot, to the lowest
values the envelope allows, which undoes SLSQP's rounding-error excess. (A quadratic penalty on
the knot pairs, the method before, made L-BFGS-B take about 20x the forecasts of the search
without the region.) `Design.trust_region` states the rule; a fit written before fits recorded
the envelope designs without one, with a note saying so; ``trust_region=False`` turns it off.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from lrlab.errors import LrlabError, brief
from lrlab.laws.base import Law
from lrlab.runs.model import MAX_LR
from lrlab.runs.regime import DecayRegime, fitted_regime
from lrlab.schedules import DECAY_SHAPES, MAX_STEPS, MAX_STEPS_TEXT, Schedule, from_spec

FAMILIES = ("wsd", "cosine", "linear", "two_stage", "infinite", "free")
_MAX_LOG_DROP = 25.0  # exp(-25) of the peak: as good as zero for any schedule
_EXPONENTIAL_FLOOR = 0.01  # a geometric decay needs a positive end; 1% of the peak
# Loss per unit of excess fall (a share of the peak) in the family searches: an exact penalty,
# far above what any law credits a fall with (a fall of the whole peak moves a loss by < 1).
_EXCESS_PENALTY = 100.0
_EXCESS_TOLERANCE = 1e-3  # an excess fall below 0.1% of the peak is within the region
NO_REGION = (
    "not kept within the fitted runs' decay: the fit does not record how fast its runs' LR fell "
    "(written by an earlier lrlab; fit again to record it)"
)
OFF = "not kept within the fitted runs' decay (turned off)"


@dataclasses.dataclass(frozen=True)
class Forecast:
    """A schedule and the law's forecast of its final loss, with the band."""

    schedule: Schedule
    final_loss: float
    low: float
    high: float

    def to_dict(self) -> dict[str, Any]:
        """The forecast as JSON: the schedule's spec, the final loss and the band ``[low, high]``
        (the form every command and the study summary write)."""
        return {
            "spec": self.schedule.to_spec(),
            "final_loss": self.final_loss,
            "band": [self.low, self.high],
        }


@dataclasses.dataclass(frozen=True)
class Design:
    """The best schedule found in a family, and the reference schedules at the same budget."""

    family: str
    budget: int
    best: Forecast
    baselines: dict[str, Forecast]
    # The rule the design was kept to (`lrlab.runs.regime`), or why it was kept to none.
    trust_region: str = OFF
    # How much faster than the fitted runs the best schedule falls (a share of the peak; 0:
    # within), and each baseline's (None without an envelope).
    excess: dict[str, float] | None = None

    def gain(self, baseline: str) -> float:
        """Predicted final-loss improvement over a baseline (positive: the design is better)."""
        return self.baselines[baseline].final_loss - self.best.final_loss

    def to_dict(self) -> dict[str, Any]:
        """The design as JSON (``lrlab optimize --json``), with the gain over each baseline."""
        return {
            "family": self.family,
            "steps": self.budget,  # the key files written before the rename carry
            "best": self.best.to_dict(),
            "baselines": {name: f.to_dict() for name, f in self.baselines.items()},
            "gain": {name: self.gain(name) for name in self.baselines},
            "trust_region": {"rule": self.trust_region, "excess": self.excess},
        }


def check_steps(name: str, value: Any, low: int = 1) -> int:
    """`value` as a whole number of steps from `low` to `lrlab.schedules.MAX_STEPS` (the most a
    per-step array may hold), or an error naming `name`."""
    whole = isinstance(value, int | np.integer) and not isinstance(value, bool)
    if not whole or not low <= value <= MAX_STEPS:
        raise LrlabError(
            f"{name}={brief(value)} must be a whole number of steps from {low} to {MAX_STEPS_TEXT}"
        )
    return int(value)


def check_peak(peak: Any, name: str = "peak") -> float:
    """`peak` as a learning rate in (0, `lrlab.runs.model.MAX_LR`], or an error naming `name`."""
    number = isinstance(peak, int | float | np.floating) and not isinstance(peak, bool)
    if not number or not 0 < peak <= MAX_LR:
        raise LrlabError(f"{name}={brief(peak)} must be a learning rate in (0, {MAX_LR:g}]")
    return float(peak)


def forecast(law: Law, schedule: Schedule, steps: int) -> Forecast:
    """The law's final loss (at step ``steps - 1``) for a schedule, with its band."""
    steps = check_steps("steps", steps)
    lr = schedule(np.arange(steps))
    last = np.array([steps - 1])
    pred, low, high = law.predict_with_band(lr, last)
    return Forecast(schedule, float(pred[0]), float(low[0]), float(high[0]))


def baselines(peak: float, steps: int, warmup: int) -> dict[str, Schedule]:
    """The schedules a design is compared with, at the same budget, peak and warmup: cosine to
    10%, WSD with a 20% linear decay, and linear decay to zero (Bergsma et al. 2025)."""
    common = {"peak": peak, "total": steps, "warmup": warmup}
    return {
        "cosine-10%": from_spec({"name": "cosine", **common, "end_ratio": 0.1}),
        "wsd-20%-linear": from_spec(
            {"name": "wsd", **common, "cooldown_fraction": 0.2, "decay": "linear"}
        ),
        "linear-to-zero": from_spec({"name": "linear", **common}),
    }


def optimize_schedule(
    law: Law,
    budget: int,
    *,
    peak: float,
    warmup: int = 0,
    family: str = "free",
    knots: int = 48,
    smoothness: float = 0.0,
    trust_region: bool = True,
    progress: Callable[[str], None] | None = None,
    progress_seconds: float = 5.0,
) -> Design:
    """Optimise a schedule of `family` for a budget of `budget` steps under the fitted `law`,
    kept within the fitted runs' decay unless `trust_region` is False (module docstring);
    `progress`, if given, gets a line at most every `progress_seconds` while it searches."""
    if family not in FAMILIES:
        raise LrlabError(f"unknown family {brief(family)} (choose from {', '.join(FAMILIES)})")
    budget = check_steps("budget", budget)
    warmup = check_steps("warmup", warmup, low=0)
    if budget < warmup + 10:
        raise LrlabError(f"budget={budget} leaves too few steps after warmup={warmup}")
    peak = check_peak(peak)
    if isinstance(knots, bool) or not isinstance(knots, int | np.integer) or knots < 3:
        raise LrlabError(f"knots={brief(knots)} must be a whole number of at least 3")
    if not isinstance(smoothness, int | float) or not 0 <= smoothness < math.inf:
        raise LrlabError(f"smoothness={brief(smoothness)} must be a finite number >= 0")
    ticker = _Ticker(progress, progress_seconds)
    regime, rule = design_region(law, trust_region)
    steps = np.arange(budget)

    def excess(schedule: Schedule) -> float:
        return 0.0 if regime is None else regime.excess(schedule(steps), peak)

    if family == "free":
        # A step drop, which some fits favour, falls between knots: compete with the
        # non-increasing families' optima, which are free-form schedules too.
        candidates = [_free_form(law, budget, peak, warmup, knots, smoothness, ticker, regime)]
        candidates += [
            _family(law, budget, peak, warmup, name, ticker, regime)
            for name in ("wsd", "two_stage")
        ]
        # Only those within the region compete (the free form always is, once raised).
        inside = [s for s in candidates if excess(s) <= _EXCESS_TOLERANCE] or candidates
        best = min(inside, key=lambda s: law.final_loss_and_gradient(s(steps))[0])
    else:
        best = _family(law, budget, peak, warmup, family, ticker, regime)
    compared = baselines(peak, budget, warmup)
    return Design(
        family,
        budget,
        forecast(law, best, budget),
        {name: forecast(law, schedule, budget) for name, schedule in compared.items()},
        rule,
        None
        if regime is None
        else {"best": excess(best), **{name: excess(s) for name, s in compared.items()}},
    )


def design_region(law: Law, trust_region: bool = True) -> tuple[DecayRegime | None, str]:
    """The fall envelope a design from `law` is kept within (None: none), and the rule in words:
    the fit's recorded envelope (`lrlab.runs.regime`), none for a fit that records none
    (`NO_REGION`) or when `trust_region` is False (`OFF`)."""
    if not trust_region:
        return None, OFF
    regime = fitted_regime(getattr(law, "fit_info_", {}), f"law {law.name!r}")
    return (None, NO_REGION) if regime is None else (regime, regime.describe())


class _Ticker:
    """Counts a search's forecasts and keeps the lowest; every `every` seconds it hands
    `progress` one line: ``optimize: free-form search (start 2 of 4): 340 forecasts, lowest
    final loss 3.2012, 14 s``. Without `progress` it does nothing."""

    def __init__(self, progress: Callable[[str], None] | None, every: float) -> None:
        self.progress, self.every = progress, every
        self.began = self.last = time.perf_counter()
        self.what, self.count, self.lowest = "search", 0, math.inf

    def stage(self, what: str) -> None:
        """Name what is searched from now on (the line says it)."""
        self.what = what

    def tick(self, loss: float) -> None:
        """One forecast made, of final loss `loss` (inf when the law gives none)."""
        if self.progress is None:
            return
        self.count += 1
        self.lowest = min(self.lowest, loss)
        now = time.perf_counter()
        if now - self.last < self.every:
            return
        self.last = now
        lowest = f"{self.lowest:.4f}" if math.isfinite(self.lowest) else "none yet"
        self.progress(
            f"optimize: {self.what}: {self.count} forecasts, lowest final loss {lowest}, "
            f"{now - self.began:.0f} s"
        )


# --- families -----------------------------------------------------------------------------------


def _family_candidates(
    steps: int, peak: float, warmup: int, family: str, lowest: float | None = None
) -> list[tuple[Callable[[np.ndarray], dict], list[tuple[float, float]], list[float]]]:
    """``(spec builder from parameters, bounds, start)`` for each sub-family to search; with
    `lowest` (the lowest LR, a share of the peak, a trust region reaches) the final LR of every
    family is searched down to 0 from there, since the region may forbid the usual one."""
    common = {"peak": peak, "total": steps, "warmup": warmup}
    room = (steps - warmup) / steps  # fraction of the run after warmup
    if family == "wsd" and lowest is not None:
        return [
            (
                lambda x, shape=shape: {
                    "name": "wsd",
                    **common,
                    "cooldown_fraction": float(x[0]),
                    "decay": shape,
                    "end_ratio": float(x[1]),
                },
                [(2.0 / steps, room), (floor, 1.0)],
                [min(0.2, room), min(max(lowest, floor), 1.0)],
            )
            for shape in DECAY_SHAPES
            for floor in [_EXPONENTIAL_FLOOR if shape == "exponential" else 0.0]
        ]
    if family == "wsd":
        return [
            (
                lambda x, shape=shape: {
                    "name": "wsd",
                    **common,
                    "cooldown_fraction": float(x[0]),
                    "decay": shape,
                    **({"end_ratio": _EXPONENTIAL_FLOOR} if shape == "exponential" else {}),
                },
                [(2.0 / steps, room)],
                [min(0.2, room)],
            )
            for shape in DECAY_SHAPES
        ]
    if family in ("cosine", "linear"):
        top, start = (0.5, 0.1) if lowest is None else (1.0, max(0.1, lowest))
        return [
            (lambda x: {"name": family, **common, "end_ratio": float(x[0])}, [(0.0, top)], [start])
        ]
    if family == "two_stage":
        return [
            (
                lambda x: {
                    "name": "two_stage",
                    "peak": peak,
                    "warmup": warmup,
                    "drop_step": max(warmup, 1, round(float(x[0]) * steps)),
                    "low": float(x[1]) * peak,
                },
                [(max(warmup, 1) / steps, 0.99), (0.005, 1.0)],
                [0.8, max(0.1, min(lowest or 0.0, 1.0))],
            )
        ]
    # infinite: cooldown fraction, constant ratio, anneal fraction (the anneal ends the budget),
    # and with a trust region the anneal's end as a share of the constant LR
    bounds = [(1.0 / steps, 0.5), (0.05, 1.0), (1.0 / steps, 0.5)]
    start = [0.1, 0.5, 0.1]
    if lowest is not None:
        bounds, start = [*bounds, (_EXPONENTIAL_FLOOR, 1.0)], [0.1, max(0.5, lowest), 0.1, 1.0]
    return [
        (
            lambda x: {
                "name": "infinite",
                "peak": peak,
                "warmup": warmup,
                "cooldown_steps": max(1, round(float(x[0]) * steps)),
                "constant_ratio": float(x[1]),
                "anneal_start": steps - max(1, round(float(x[2]) * steps)),
                "anneal_steps": max(1, round(float(x[2]) * steps)),
                "min_ratio": (
                    float(x[1]) * float(x[3])
                    if len(x) > 3
                    else min(_EXPONENTIAL_FLOOR, float(x[1]))
                ),
            },
            bounds,
            start,
        )
    ]


def _family(
    law: Law,
    steps: int,
    peak: float,
    warmup: int,
    family: str,
    ticker: _Ticker,
    regime: DecayRegime | None = None,
) -> Schedule:
    from scipy import optimize  # 0.3 s to import: only designing needs it

    best: tuple[float, Schedule] | None = None
    unforecast = False
    lowest = None if regime is None else 1.0 - float(regime.fall[-1])
    candidates = _family_candidates(steps, peak, warmup, family, lowest)
    for index, (build, bounds, start) in enumerate(candidates, start=1):
        part = f" (decay shape {index} of {len(candidates)})" if len(candidates) > 1 else ""
        ticker.stage(f"{family} schedules for {steps} steps{part}")

        def objective(x: np.ndarray, build: Callable = build) -> float:
            try:
                schedule = from_spec(build(x))
            except LrlabError:  # a corner of the box the schedule rejects (e.g. overlaps)
                return np.inf
            lr = schedule(np.arange(steps))
            with np.errstate(over="ignore", invalid="ignore"):
                loss = law.final_loss_and_gradient(lr)[0]
            loss = float(loss) if np.isfinite(loss) else np.inf
            ticker.tick(loss)
            if regime is not None:  # an exact penalty: the optimum lies within the region
                loss += _EXCESS_PENALTY * regime.excess(lr, peak)
            return loss

        if not np.isfinite(objective(np.asarray(start))):
            unforecast = True  # Powell's line searches fail from a start without a finite loss
            continue
        result = optimize.minimize(
            objective,
            np.asarray(start),
            method="Powell",
            bounds=bounds,
            options={"xtol": 1e-4, "ftol": 1e-9, "maxfev": 400},
        )
        if np.isfinite(result.fun) and (best is None or result.fun < best[0]):
            best = (float(result.fun), from_spec(build(result.x)))
    if best is None and unforecast:
        raise LrlabError(
            f"law {law.name!r} forecasts no finite loss for a {family} schedule of peak "
            f"{peak:g} over {steps} steps: the LR lies too far outside what it was fitted on"
        )
    if best is None:
        raise LrlabError(f"no valid {family} schedule fits a budget of {steps} steps")
    return best[1]


# --- free form ----------------------------------------------------------------------------------


def _knot_weights(positions: np.ndarray, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation between knots: the left knot of each step and the right weight."""
    left = np.clip(np.searchsorted(positions, steps, side="right") - 1, 0, len(positions) - 2)
    weight = (steps - positions[left]) / (positions[left + 1] - positions[left])
    return left, np.clip(weight, 0.0, 1.0)


def _free_form(
    law: Law,
    steps: int,
    peak: float,
    warmup: int,
    knots: int,
    smoothness: float,
    ticker: _Ticker,
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


# --- budgets ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BudgetPoint:
    """The best WSD schedule for one budget, and where its decay branches off the stable run."""

    budget: int
    forecast: Forecast
    branch_step: int


def budget_sweep(
    law: Law,
    budgets: Sequence[int],
    *,
    peak: float,
    warmup: int = 0,
    trust_region: bool = True,
    progress: Callable[[str], None] | None = None,
    progress_seconds: float = 5.0,
) -> list[BudgetPoint]:
    """For each budget, the best WSD schedule's final loss and its branch step: one long stable
    run at `peak` serves every budget by decaying from ``branch_step`` (Hu et al. 2024).
    `trust_region` and `progress` as for `optimize_schedule`."""
    ticker = _Ticker(progress, progress_seconds)
    regime = design_region(law, trust_region)[0]
    peak = check_peak(peak)
    warmup = check_steps("warmup", warmup, low=0)
    points = []
    for steps in sorted({check_steps("budget", b) for b in budgets}):
        if steps < warmup + 10:
            raise LrlabError(f"budget={steps} leaves too few steps after warmup={warmup}")
        best = _family(law, steps, peak, warmup, "wsd", ticker, regime)
        points.append(BudgetPoint(steps, forecast(law, best, steps), steps - best.cooldown))
    return points
