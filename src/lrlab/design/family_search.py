"""The family searches of schedule design (`lrlab.design.optimize`): a family's one to four
shape parameters searched by Powell's bounded derivative-free method, for each sub-family (WSD: each
decay shape), without a trust region or within the fitted runs' fall envelope
(`lrlab.runs.regime`), where every point tried is raised to the lowest final LR the envelope
allows (`FamilySearch`) and the infinite schedule takes an exact penalty instead."""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from lrlab.design.ticker import Ticker
from lrlab.errors import LrlabError
from lrlab.laws.base import Law
from lrlab.runs.regime import DecayRegime
from lrlab.schedules import DECAY_SHAPES, Schedule, from_spec

_EXPONENTIAL_FLOOR = 0.01  # a geometric decay needs a positive end; 1% of the peak
# Loss per unit of excess fall (a share of the peak) in the family searches: an exact penalty,
# far above what any law credits a fall with (a fall of the whole peak moves a loss by < 1).
_EXCESS_PENALTY = 100.0
_ROUNDING = 1e-9  # a family's depth raised into the region leaves at most rounding's excess


@dataclasses.dataclass(frozen=True)
class _Candidate:
    """One sub-family to search: its spec from parameters, their bounds and start, and under a
    trust region `depth`, the parameter that sets how low the schedule ends (a share of the
    peak; None: none), and `kind`, how the least depth the envelope allows is found:
    ``scaled``, a depth that scales the falls from the peak (`DecayRegime.room`); ``geometric``,
    WSD's geometric decay (`DecayRegime.least_geometric_end`); `flat` when that least does not
    depend on the other parameters (cosine's, linear's, the two-stage drop's), so the boundary
    holds one depth and every parameter is searched as well; `lengths`, what the lowest curve
    depends on in whole steps (WSD: its decay length), a key cheaper than its digest."""

    build: Callable[[np.ndarray], dict]
    bounds: list[tuple[float, float]]
    start: list[float]
    depth: int | None = None
    kind: str = "scaled"
    flat: bool = False
    lengths: Callable[[Schedule], Any] | None = None


def family_candidates(
    steps: int, peak: float, warmup: int, family: str, lowest: float | None = None
) -> list[_Candidate]:
    """The sub-families to search; with `lowest` (the lowest LR, a share of the peak, a trust
    region reaches) the final LR of every family is searched down to 0 from there, since the
    region may forbid the usual one."""
    common = {"peak": peak, "total": steps, "warmup": warmup}
    room = (steps - warmup) / steps  # fraction of the run after warmup
    if family == "wsd" and lowest is not None:
        return [
            _Candidate(
                lambda x, shape=shape: {
                    "name": "wsd",
                    **common,
                    "cooldown_fraction": float(x[0]),
                    "decay": shape,
                    "end_ratio": float(x[1]),
                },
                [(2.0 / steps, room), (floor, 1.0)],
                [min(0.2, room), min(max(lowest, floor), 1.0)],
                depth=1,
                kind="geometric" if shape == "exponential" else "scaled",
                lengths=lambda schedule: schedule.cooldown,
            )
            for shape in DECAY_SHAPES
            for floor in [_EXPONENTIAL_FLOOR if shape == "exponential" else 0.0]
        ]
    if family == "wsd":
        return [
            _Candidate(
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
            _Candidate(
                lambda x: {"name": family, **common, "end_ratio": float(x[0])},
                [(0.0, top)],
                [start],
                depth=0,
                flat=True,
            )
        ]
    if family == "two_stage":
        return [
            _Candidate(
                lambda x: {
                    "name": "two_stage",
                    "peak": peak,
                    "warmup": warmup,
                    "drop_step": max(warmup, 1, round(float(x[0]) * steps)),
                    "low": float(x[1]) * peak,
                },
                [(max(warmup, 1) / steps, 0.99), (0.005, 1.0)],
                [0.8, max(0.1, min(lowest or 0.0, 1.0))],
                depth=1,
                flat=True,
            )
        ]
    # infinite: cooldown fraction, constant ratio, anneal fraction (the anneal ends the budget),
    # and with a trust region the anneal's end as a share of the constant LR. Its cooldown and
    # anneal fall by different shares, and a fall from one into the other binds where the
    # constant phase is short, so no one parameter keeps it within the envelope: no depth.
    bounds = [(1.0 / steps, 0.5), (0.05, 1.0), (1.0 / steps, 0.5)]
    start = [0.1, 0.5, 0.1]
    if lowest is not None:
        bounds, start = [*bounds, (_EXPONENTIAL_FLOOR, 1.0)], [0.1, max(0.5, lowest), 0.1, 1.0]
    return [
        _Candidate(
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


def search_family(
    law: Law,
    steps: int,
    peak: float,
    warmup: int,
    family: str,
    ticker: Ticker,
    regime: DecayRegime | None = None,
) -> Schedule:
    best: tuple[float, Schedule] | None = None
    unforecast = False
    lowest = None if regime is None else 1.0 - float(regime.fall[-1])
    candidates = family_candidates(steps, peak, warmup, family, lowest)
    for index, candidate in enumerate(candidates, start=1):
        part = f" (decay shape {index} of {len(candidates)})" if len(candidates) > 1 else ""
        ticker.stage(f"{family} schedules for {steps} steps{part}")
        search = FamilySearch(law, steps, peak, warmup, candidate, ticker, regime)
        found = search.within() if regime is not None and candidate.depth is not None else None
        if found is None:  # no region, no depth, or (never seen) a result outside the region
            found = search.penalised()
        if found is None:
            unforecast = True
        elif np.isfinite(found[0]) and (best is None or found[0] < best[0]):
            best = found
    if best is None and unforecast:
        raise LrlabError(
            f"law {law.name!r} forecasts no finite loss for a {family} schedule of peak "
            f"{peak:g} over {steps} steps: the LR lies too far outside what it was fitted on"
        )
    if best is None:
        raise LrlabError(f"no valid {family} schedule fits a budget of {steps} steps")
    return best[1]


class FamilySearch:
    """Powell's bounded derivative-free search of one sub-family (`_Candidate`), without a
    trust region or within it.

    Within it (`within`), every point is raised to the lowest depth (final LR) the envelope
    allows for its other parameters, so every forecast is of a schedule inside the region and
    the search has no penalty: a family whose depth scales its falls (`DecayRegime.room`) or a
    geometric decay (`DecayRegime.least_geometric_end`) is within at that depth and above it.
    The search runs in two stages, since the laws want the LR low at the end and the optimum
    mostly lies on that boundary: first the other parameters, with the depth at its lowest
    (WSD: the decay length, as without the region: a shorter decay's least end is higher, so
    the boundary reaches up to a constant LR), then all of them from there where the law's
    gradient says a higher end would forecast lower, or the top of the depth's range (the least
    fall) forecasts lower than the boundary's optimum (then from there); where the least depth
    is one for the whole family (cosine, linear, two-stage: `flat`), all of them from the start
    the search without the region takes, keeping the best of the three. Without the
    region the search is `penalised`, with no penalty; under it, a family with no depth
    (infinite) adds the exact penalty on the excess fall there, as every family did before:
    Powell then took 2-3x the forecasts of the search without the region (WSD 3.3x on the 25M
    fit of tests/test_design.py, BENCHMARKS.md)."""

    def __init__(
        self,
        law: Law,
        steps: int,
        peak: float,
        warmup: int,
        candidate: _Candidate,
        ticker: Ticker,
        regime: DecayRegime | None,
    ) -> None:
        self.law, self.steps, self.peak, self.warmup = law, steps, peak, warmup
        self.candidate = candidate
        self.ticker, self.regime = ticker, regime
        self.every = np.arange(steps)
        # Forecasts by the LR curve's key (its digest; within the region, its lowest curve's
        # key and its depth): a schedule depends on its lengths only in whole steps, so most
        # of Powell's late points repeat an earlier schedule (on the 25M fit of
        # tests/test_design.py, 63 of WSD's 244 points under the region were new, 72 of 192
        # without it).
        self.known: dict[Any, float] = {}
        # The least depth, by the lowest curve's key, with that curve where the key is not
        # its digest but its lengths (`_Candidate.lengths`).
        self.least: dict[Any, tuple[float, np.ndarray | None]] = {}

    def schedule(self, x: np.ndarray) -> Schedule | None:
        """The schedule at parameters `x` (None: a corner of the box the schedule rejects)."""
        try:
            return from_spec(self.candidate.build(x))
        except LrlabError:  # e.g. the phases of an infinite schedule overlap
            return None

    def loss(self, lr: np.ndarray, key: Any = None) -> float:
        """The law's forecast of the final loss for the per-step LR `lr` (inf: none), made once
        for each curve (`key` tells it apart; by default its digest)."""
        key = _digest(lr) if key is None else key
        if key in self.known:
            return self.known[key]
        with np.errstate(over="ignore", invalid="ignore"):
            loss = self.law.final_loss_and_gradient(lr)[0]
        loss = float(loss) if np.isfinite(loss) else np.inf
        self.ticker.tick(loss)
        self.known[key] = loss
        return loss

    def penalised(self) -> tuple[float, Schedule] | None:
        """The lowest forecast, plus 100 loss units per unit of excess fall where there is a
        region, and its schedule; None when the start has no finite forecast."""
        regime = self.regime

        def objective(x: np.ndarray) -> float:
            schedule = self.schedule(x)
            if schedule is None:
                return np.inf
            lr = schedule(self.every)
            loss = self.loss(lr)
            if regime is not None:  # an exact penalty: the optimum lies within the region
                loss += _EXCESS_PENALTY * regime.excess(lr, self.peak)
            return loss

        found = self._powell(
            objective, list(range(len(self.candidate.start))), self.candidate.start
        )
        if found is None:
            return None
        return found[1], from_spec(self.candidate.build(found[0]))

    def within(self) -> tuple[float, Schedule] | None:
        """The lowest forecast within the region and its schedule, searched in two stages
        (class docstring); None when that schedule is outside, which the depth's rule does not
        allow (the caller then searches with the penalty), or the start has no finite
        forecast."""
        depth, bounds = self.candidate.depth, self.candidate.bounds
        others = [i for i in range(len(bounds)) if i != depth]
        start = np.asarray(self.candidate.start, dtype=np.float64)
        start[depth] = bounds[depth][0]  # raised to the least the region allows
        if others:
            found = self._powell(self._raised_loss, others, start)
        else:  # the depth alone: the search's first stage is its least
            found = (start, self._raised_loss(start))
        if found is None or not np.isfinite(found[1]):
            return None
        x = self._raised(found[0])[0]
        ended = self._end(x)
        if ended is None:
            return None
        # The top of the depth's range (the least fall): a law may want a constant LR, say,
        # far from the boundary, while no small rise from it helps.
        top = np.array(x, dtype=np.float64)
        top[depth] = bounds[depth][1]
        points = [(ended[0], x), (self._raised_loss(top), top)]
        if self.candidate.flat:  # the boundary is one depth: search as without the region
            begin = np.asarray(self.candidate.start, dtype=np.float64)
        elif ended[2] < 0 or points[1][0] < points[0][0]:  # a higher end forecasts lower
            begin = min(points, key=lambda point: point[0])[1]
        else:
            begin = None
        if begin is not None:
            found = self._powell(self._raised_loss, list(range(len(bounds))), begin)
            points += [] if found is None else [(found[1], found[0])]
        best = min(points, key=lambda point: point[0])[1]
        ended = ended if best is x else self._end(self._raised(best)[0])
        if ended is None or self.regime.excess(ended[1](self.every), self.peak) > _ROUNDING:
            return None
        return ended[0], ended[1]

    def _raised(self, x: np.ndarray) -> tuple[np.ndarray, Any, np.ndarray | None]:
        """`x` with its depth raised to the least the region allows for the other parameters
        (as it is where it is higher already), a key that tells the LR there apart from the
        search's others (None: no valid schedule), and that per-step LR (None where the key's
        forecast is made already)."""
        depth, (low, high) = self.candidate.depth, self.candidate.bounds[self.candidate.depth]
        raised = np.array(x, dtype=np.float64)
        raised[depth] = low
        lowest = self.schedule(raised)
        if lowest is None:
            return raised, None, None
        if self.candidate.kind == "geometric":  # the least end is the decay length's
            length = lowest.cooldown
            if length not in self.least:
                self.least[length] = self.regime.least_geometric_end(length, self.steps), None
            raised[depth] = min(max(x[depth], self.least[length][0], low), high)
            key = (length, float(raised[depth]))
            schedule = None if key in self.known else self.schedule(raised)
            return raised, key, None if schedule is None else schedule(self.every)
        # The depth scales the falls from the peak, by (1 - depth) / (1 - low) against the
        # lowest curve's: the raised curve is the lowest one's after warmup, scaled so.
        shape = None if self.candidate.lengths is None else self.candidate.lengths(lowest)
        if shape in self.least:
            least, curve = self.least[shape]
        else:
            curve = lowest(self.every)
            shape = _digest(curve) if shape is None else shape
            if shape not in self.least:  # kept where the key is not the curve's own
                kept = None if self.candidate.lengths is None else curve
                self.least[shape] = 1.0 - self.regime.room(curve, self.peak) * (1.0 - low), kept
            least = self.least[shape][0]
        raised[depth] = min(max(x[depth], least, low), high)
        key = (shape, float(raised[depth]))
        if key in self.known:
            return raised, key, None
        lr = np.array(curve, dtype=np.float64)
        lr[self.warmup :] += (raised[depth] - low) / (1.0 - low) * (self.peak - lr[self.warmup :])
        return raised, key, lr

    def _raised_loss(self, x: np.ndarray) -> float:
        _, key, lr = self._raised(x)
        if key is None:
            return np.inf
        return self.known[key] if lr is None else self.loss(lr, key)

    def _end(self, x: np.ndarray) -> tuple[float, Schedule, float] | None:
        """The forecast at `x` (raised already), its schedule, and the slope of the forecast
        as the depth rises from there, by the law's gradient (< 0: a higher end forecasts
        lower, so the optimum may lie inside the region, not on its boundary; 0 at the top of
        the depth's bounds); None where there is no valid schedule or finite forecast."""
        depth, step = self.candidate.depth, 1e-6
        schedule = self.schedule(x)
        if schedule is None:
            return None
        lr = schedule(self.every)
        with np.errstate(over="ignore", invalid="ignore"):
            loss, gradient = self.law.final_loss_and_gradient(lr)
        self.ticker.tick(float(loss))
        if not np.isfinite(loss):
            return None
        higher = np.array(x, dtype=np.float64)
        higher[depth] += step
        there = self.schedule(higher) if higher[depth] <= self.candidate.bounds[depth][1] else None
        slope = 0.0 if there is None else float(np.dot(gradient, there(self.every) - lr))
        return float(loss), schedule, slope if math.isfinite(slope) else 0.0

    def _powell(
        self, objective: Callable[[np.ndarray], float], free: list[int], start: Sequence[float]
    ) -> tuple[np.ndarray, float] | None:
        """Powell's search of `objective` over the parameters `free` (the others held at
        `start`'s): the parameters it ends at and their value, or None when `start` has no
        finite value (its line searches fail there)."""
        from scipy import optimize  # 0.3 s to import: only designing needs it

        point = np.asarray(start, dtype=np.float64)

        def partial(values: np.ndarray) -> float:
            full = point.copy()
            full[free] = values
            return objective(full)

        if not np.isfinite(partial(point[free])):
            return None
        result = optimize.minimize(
            partial,
            point[free],
            method="Powell",
            bounds=[self.candidate.bounds[i] for i in free],
            options={"xtol": 1e-4, "ftol": 1e-9, "maxfev": 400},
        )
        found = point.copy()
        found[free] = result.x
        return found, float(result.fun)


def _digest(lr: np.ndarray) -> bytes:
    """A digest of a per-step LR curve: a key that tells curves apart."""
    return hashlib.sha256(np.ascontiguousarray(lr, dtype=np.float64)).digest()
