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
to 10%, lost its own check in the wind tunnel). A family's final LR (its *depth*: WSD's, for each
decay shape, cosine's, linear's, the two-stage schedule's low LR) is searched too, and every point
the family search tries is raised to the lowest depth the envelope allows for its other
parameters (`lrlab.design.family_search`): so its forecasts are all of schedules inside, and
Powell searches the family's other parameters with the depth at that least (WSD: its decay
length), then the depth as well where the law's gradient or the top of its range asks for a
higher end, or where that least is one for the whole family (cosine, linear, two-stage), with no
penalty. The infinite schedule, whose two decays no one parameter keeps within, adds an exact
penalty on the excess fall instead (as every family did before, at 2-3x the forecasts of the
search without the region). For the free form (`lrlab.design.free_form`) the envelope is a set of
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
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from lrlab.design.family_search import search_family
from lrlab.design.free_form import free_form
from lrlab.design.ticker import Ticker
from lrlab.errors import LrlabError, brief
from lrlab.laws.base import Law
from lrlab.runs.model import MAX_LR
from lrlab.runs.regime import DecayRegime, fitted_regime
from lrlab.schedules import MAX_STEPS, MAX_STEPS_TEXT, Schedule, from_spec

FAMILIES = ("wsd", "cosine", "linear", "two_stage", "infinite", "free")
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
    ticker = Ticker(progress, progress_seconds)
    regime, rule = design_region(law, trust_region)
    steps = np.arange(budget)

    def excess(schedule: Schedule) -> float:
        return 0.0 if regime is None else regime.excess(schedule(steps), peak)

    if family == "free":
        # A step drop, which some fits favour, falls between knots: compete with the
        # non-increasing families' optima, which are free-form schedules too.
        candidates = [free_form(law, budget, peak, warmup, knots, smoothness, ticker, regime)]
        candidates += [
            search_family(law, budget, peak, warmup, name, ticker, regime)
            for name in ("wsd", "two_stage")
        ]
        # Only those within the region compete (the free form always is, once raised).
        inside = [s for s in candidates if excess(s) <= _EXCESS_TOLERANCE] or candidates
        best = min(inside, key=lambda s: law.final_loss_and_gradient(s(steps))[0])
    else:
        best = search_family(law, budget, peak, warmup, family, ticker, regime)
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
    ticker = Ticker(progress, progress_seconds)
    regime = design_region(law, trust_region)[0]
    peak = check_peak(peak)
    warmup = check_steps("warmup", warmup, low=0)
    points = []
    for steps in sorted({check_steps("budget", b) for b in budgets}):
        if steps < warmup + 10:
            raise LrlabError(f"budget={steps} leaves too few steps after warmup={warmup}")
        best = search_family(law, steps, peak, warmup, "wsd", ticker, regime)
        points.append(BudgetPoint(steps, forecast(law, best, steps), steps - best.cooldown))
    return points
