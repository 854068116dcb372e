"""Forecast where a running training run ends, from the part of it logged so far.

`LiveForecaster.forecast(run)` fits a loss-curve law to the run's points (warm-started from the
previous fit, so a refit after a few new points is quick and does not jump between optima),
forecasts the final loss under the planned schedule with the law's band, and scores the what-ifs
of `lrlab.live.whatif` (when to start the cooldown, extending the run). It returns a
`LiveForecast`, whose `to_dict` is the JSON object of ``lrlab watch --json``.

A forecast is only given when it means something:

- too few points (fewer than `min_points`, by default three per fitted parameter plus three):
  status ``waiting``, with the number of points still needed;
- a plan that lowers the LR while the run has not lowered it yet (by `UNSEEN_DECAY` of its
  peak), without a reference fit or a decay prior: status ``unstable``, no number. Such a run
  tells a law nothing about how the loss responds to a decay, so the law's number would be its
  bounds'. With a decay prior (`lrlab.laws.prior`, ``prior="default"`` for lrlab's; off by
  default, docs/laws.md "Ninth round, live prior") the multi-power law is fitted holding the
  prior's response instead, once per member (each from another data set): the forecast is the
  data sets' mean, and their spread widens its band (`HeldSpread` with groups);
- a fit that does not pin the final loss down (its band wider than `max_band` of the forecast,
  or a non-finite forecast): status ``unstable``, no number;
- otherwise status ``forecast``.

The what-ifs of a run that has not lowered its LR yet (when to start its cooldown) are the law's
extrapolation, and say so. A `reference` fit (an earlier fit of the same kind of model, e.g.
``lrlab fit`` on a few finished runs) fixes that: its response to the LR (every parameter but
``L0``, ``A`` and ``alpha``) is held, and only the run's own power law is fitted live; the
spread of the reference's replicate fits widens the bands (`lrlab.live.whatif.HeldSpread`).

Without a reference, a law that the points seen cannot pin down (`pinned_down`), or whose band
is too wide, gives way to a smaller one (`FALLBACK_LAWS`), and a note says so. While the run has
begun its decay and the plan goes lower than it has (a cosine run at half its length), the first
law tried is `DECAY_LAW` (``auto``, an average of lrlab, mpl and momentum) in place of the default
``lrlab``: on development cells it extrapolated such a decay better (docs/laws.md, "Tenth round,
live").
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lrlab.errors import LrlabError
from lrlab.laws import DEFAULT_SINGLE_LAW, Law, get_law, load_law
from lrlab.laws.parallel import fork_map, worth_forking
from lrlab.laws.prior import PRIOR_LAW, DecayPrior, PriorMember, default_prior, stable_scale
from lrlab.laws.registry import pinned_down
from lrlab.live.whatif import (
    Cooldown,
    HeldSpread,
    ScoredWhatIf,
    WhatIf,
    continuation,
    cooldown_note,
    parse_cooldown,
    plan_whatifs,
    schedule_total,
    score_whatifs,
)
from lrlab.runs.model import Run
from lrlab.schedules import Schedule, from_spec

# What a reference fit leaves to the live run: the power law in the LR area every law starts
# with. The rest (the response to LR changes) comes from the reference.
OWN_PARAMS = ("L0", "A", "alpha")
DEFAULT_MAX_BAND = 0.2  # its origin: docs/live.md, "Where the 20% came from"
# An LR drop, as a fraction of the peak, that a run has to have made before its own points say
# anything about how a decay lowers the loss (and that a forecast going lower has to exceed
# before it is called an extrapolation).
UNSEEN_DECAY = 0.1
# Without a reference, the laws tried in turn when the chosen one cannot be pinned down by the
# points seen (or its band is too wide): each one smaller, so needing less of the run. Chosen on
# training-only evidence (docs/laws.md, "Seventh round").
FALLBACK_LAWS = ("mpl", "momentum", "power")
# Without a reference, the law tried first in place of `DEFAULT_SINGLE_LAW` while the run has
# begun its decay and the plan goes lower than it has: a partial decay, extrapolated. Chosen on
# development cells by a rule written down first, against that law only (docs/laws.md, "Tenth
# round, live"), so another chosen law is kept.
DECAY_LAW = "auto"


@dataclasses.dataclass(frozen=True)
class LiveForecast:
    """One snapshot of a running run: where it is, where it will end, and the what-ifs.

    `status` is ``forecast``, ``waiting`` (too few points: `needed` more) or ``unstable``;
    `final_loss`, `final_low`, `final_high` are None unless forecasting; `decay_prior` says that
    the response to a decay the run has not begun came from the decay prior. `law` (the fitted
    law) and `run` (the points it was fitted to) are kept for plots, not written to JSON."""

    step: int | None
    loss: float | None
    points: int
    total_steps: int
    law_name: str
    status: str
    needed: int = 0
    final_loss: float | None = None
    final_low: float | None = None
    final_high: float | None = None
    planned: ScoredWhatIf | None = None
    whatif: tuple[ScoredWhatIf, ...] = ()
    best: ScoredWhatIf | None = None
    notes: tuple[str, ...] = ()
    fit_seconds: float = 0.0
    decay_prior: bool = False
    law: Law | None = dataclasses.field(default=None, repr=False, compare=False)
    run: Run | None = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def message(self) -> str:
        """One line on the state: the forecast, or why there is none."""
        where = "no data yet" if self.step is None else f"step {self.step}"
        if self.status == "waiting":
            return f"{where}: {self.points} points, {self.needed} more needed for a forecast"
        if self.status == "unstable":
            return f"{where}: the fit does not pin the final loss down yet"
        return (
            f"{where}: final loss {self.final_loss:.4f} "
            f"[{self.final_low:.4f}, {self.final_high:.4f}] at step {self.total_steps}"
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``lrlab watch --json``: ``step``, ``loss``, ``points``,
        ``total_steps``, ``law``, ``status``, ``needed``, ``final_loss``, ``final_low``,
        ``final_high``, ``planned`` (the planned run's cooldown start), ``whatif`` (a list),
        ``best_cooldown`` (or null), ``notes``, ``fit_seconds``, ``decay_prior`` (whether the
        decay's effect came from the decay prior)."""
        best = self.best
        return {
            "step": self.step,
            "loss": self.loss,
            "points": self.points,
            "total_steps": self.total_steps,
            "law": self.law_name,
            "status": self.status,
            "needed": self.needed,
            "final_loss": self.final_loss,
            "final_low": self.final_low,
            "final_high": self.final_high,
            "planned_cooldown_start": self.planned.whatif.start if self.planned else None,
            "whatif": [item.to_dict() for item in self.whatif],
            # The best what-if's own JSON, less what every cooldown shares (kind, label, total).
            "best_cooldown": None
            if best is None
            else {
                key: value
                for key, value in best.to_dict().items()
                if key not in ("kind", "label", "total")
            },
            "notes": list(self.notes),
            "fit_seconds": self.fit_seconds,
            "decay_prior": self.decay_prior,
        }


def reference_law(reference: Law | str | Path, bands: bool = True) -> Law:
    """An unfitted law that holds a fitted `reference`'s response to the LR (every parameter but
    `OWN_PARAMS`, and what it learned such as lrlab's reference LR) and fits the rest."""
    fitted = load_law(reference) if isinstance(reference, str | Path) else reference
    if not hasattr(fitted, "params_"):
        raise LrlabError(f"reference law {fitted.name!r} is not fitted")
    params = fitted.get_params()
    for name in type(fitted).learned:  # e.g. lrlab's lr_ref: B is in its units
        if name in params:
            params[name] = float(getattr(fitted, f"{name}_"))
    values = fitted.params_dict
    params["fixed"] = {name: values[name] for name in fitted.param_names if name not in OWN_PARAMS}
    params["bands"] = bands
    return type(fitted)(**params)


class LiveForecaster:
    """Refit a law to a growing run and forecast its end (module docstring).

    `schedule` is the planned schedule (a `Schedule` or spec; None: the run's logged LR is held
    at its last value); `total_steps` the run's budget (default: the schedule's total); `law` a
    law name or unfitted `Law`; `reference` a fitted law (or its file) whose response to the LR
    is held; `cooldown` the what-ifs' decay (`lrlab.live.whatif.parse_cooldown`); `level` the
    band level; `whatifs=False` skips them. `fallback`: without a reference, the laws (names)
    tried in turn, those smaller than `law` only, when a fit leaves a third of its parameters
    undetermined (`pinned_down`) or its band is wider than `max_band` (default
    `FALLBACK_LAWS`; ``()``: none). `decay_law`: without a reference and with a fallback, the
    law tried first (then the fallback laws smaller than it) in place of `law` when that is
    `DEFAULT_SINGLE_LAW`, while the run has begun its decay and the plan goes lower than it has
    (default `DECAY_LAW`; None: `law`). `prior`: without a reference, the response to a decay
    the run has not begun (a `DecayPrior` or its file; ``"default"``: lrlab's, `default_prior`;
    None, the default: no forecast of such a decay).
    """

    def __init__(
        self,
        *,
        total_steps: int | None = None,
        schedule: Schedule | dict[str, Any] | str | None = None,
        law: str | Law = DEFAULT_SINGLE_LAW,
        reference: Law | str | Path | None = None,
        cooldown: Cooldown | str | None = None,
        level: float | None = None,
        min_points: int | None = None,
        max_band: float = DEFAULT_MAX_BAND,
        bands: bool = True,
        whatifs: bool = True,
        fallback: Sequence[str] | None = None,
        prior: DecayPrior | str | Path | None = None,
        decay_law: str | Law | None = DECAY_LAW,
    ) -> None:
        self.schedule = None if schedule is None else from_spec(schedule)
        total = total_steps if total_steps is not None else schedule_total(self.schedule)
        if total is None:
            raise LrlabError(
                "the run's total steps are unknown: give --total-steps N (or a schedule with a "
                "total)"
            )
        if int(total) < 2:
            raise LrlabError(f"total steps must be at least 2, got {total}")
        self.total_steps = int(total)
        self._reference: Law | None = None
        # Each law's last fit: the next fit's warm start.
        self._starts: dict[str, np.ndarray] = {}
        if reference is not None:
            self._reference = (
                load_law(reference) if isinstance(reference, str | Path) else reference
            )
            self.law = reference_law(self._reference, bands)
            self._starts[self.law.name] = self.law_params(self._reference)
            self.fallback: tuple[Law, ...] = ()  # the reference pins the response down
        else:
            self.law = get_law(law, bands=bands) if isinstance(law, str) else law
            names = FALLBACK_LAWS if fallback is None else fallback
            laws = [get_law(name, bands=bands) for name in names]
            # Only smaller laws: each step down needs less of the run.
            self.fallback = _smaller(laws, self.law)
        # A partial decay's chain: `decay_law`, then the fallback laws smaller than it.
        self.decay_chain: tuple[Law, ...] = ()
        if decay_law is not None and self.fallback and self.law.name == DEFAULT_SINGLE_LAW:
            first = get_law(decay_law, bands=bands) if isinstance(decay_law, str) else decay_law
            self.decay_chain = (first, *_smaller(laws, first))

        def points_for(fitted: int) -> int:
            """Points a fit of `fitted` free parameters waits for: `min_points`, else 3 per
            parameter and 3 more."""
            return int(min_points if min_points is not None else 3 * fitted + 3)

        free = _free(self.law)
        self.min_points = points_for(free)
        self.decay_min_points = (
            points_for(_free(self.decay_chain[0])) if self.decay_chain else self.min_points
        )
        self.prior_min_points = points_for(len(OWN_PARAMS))
        if self.min_points <= free:
            raise LrlabError(f"min_points must exceed the {free} fitted parameters")
        if not max_band > 0:
            raise LrlabError(f"max_band must be positive, got {max_band}")
        self.cooldown = parse_cooldown(cooldown)
        # Said with each forecast where the plan's decay cannot be read as the what-ifs' own.
        self.cooldown_note: str | None = None
        if whatifs and self.cooldown is None:
            self.cooldown_note = cooldown_note(self.schedule, self.total_steps)
        self.level = level
        self.max_band = float(max_band)
        self.whatifs = whatifs
        self.has_reference = reference is not None
        if prior == "default":
            prior = default_prior()
        self.prior = DecayPrior.load(prior) if isinstance(prior, str | Path) else prior

    @staticmethod
    def law_params(reference: Law | str | Path) -> np.ndarray:
        """A reference fit's parameters: the first fit's warm start."""
        fitted = load_law(reference) if isinstance(reference, str | Path) else reference
        return np.asarray(fitted.params_, dtype=np.float64).copy()

    def usable_points(self, run: Run) -> int:
        """Points a law can fit: those logged after some LR has been applied."""
        return int(np.count_nonzero(np.cumsum(run.lr)[run.steps] > 0))

    def forecast(self, run: Run, notes: Sequence[str] = ()) -> LiveForecast:
        """Fit the law to `run` (the part logged so far) and forecast its end; without a
        reference, a law the points cannot pin down gives way to the next of `fallback`."""
        notes = list(notes)
        if self.cooldown_note is not None:
            notes.append(self.cooldown_note)
        points = self.usable_points(run)
        common = {
            "step": int(run.steps[-1]),
            "loss": float(run.loss[-1]),
            "points": points,
            "total_steps": self.total_steps,
        }
        observed = run.lr[: int(run.steps[-1]) + 1]
        unseen = None
        partial = False  # the run has begun its decay, and the plan goes lower than it has
        if not self.has_reference:
            plan = plan_whatifs(observed, self.schedule, self.total_steps, self.cooldown)[0]
            unseen = _extrapolation(observed, [plan.lr])
            if unseen is not None and unseen[0] <= 1 - UNSEEN_DECAY:
                unseen = None  # the run has lowered its LR: its points say how the loss responds
                partial = bool(self.decay_chain)
        with_prior = unseen is not None and self.prior is not None
        # A prior holds the response to the LR, as a reference fit does: only the run's own
        # power law is fitted, and needs as many points as with a reference.
        needed = self.prior_min_points if with_prior else self.min_points
        chain = self.decay_chain if partial else (self.law, *self.fallback)
        if partial:  # never with a prior: the run has lowered its LR
            needed = self.decay_min_points
        if points < needed:
            return LiveForecast(
                **common,
                law_name=PRIOR_LAW if with_prior else chain[0].name,
                status="waiting",
                needed=needed - points,
                notes=tuple(notes),
            )
        began = time.perf_counter()
        if with_prior:
            return self._prior_forecast(run, observed, common, notes, began)
        if unseen is not None:
            # The run has not lowered its LR yet, and the plan does: nothing in its points says
            # how much a decay lowers the loss, and a law's number for it is its bounds' and
            # starting values' (docs/laws.md, "Seventh round, live": forecasts of the training
            # curves missed by 1-57%). No fit can change that, so none is made.
            notes.append(
                f"the plan lowers the LR to {unseen[1]:.0%} of its peak, and the run has not "
                f"lowered it yet (it is at {unseen[0]:.0%}): how much a decay lowers the loss "
                "cannot be learnt from this run; no forecast until the decay has begun, or with "
                "a reference fit of earlier runs (--reference FIT.json) or a decay prior"
            )
            return LiveForecast(
                **common, law_name=self.law.name, status="unstable", notes=tuple(notes)
            )
        refused: list[str] = []
        for candidate in chain:
            law, scored, reason = self._attempt(candidate, run, observed, notes)
            if reason is None:
                break
            refused.append(f"law {candidate.name!r}: {reason}")
        seconds = round(time.perf_counter() - began, 3)
        if reason is not None:
            notes += refused
            return LiveForecast(
                **common,
                law_name=chain[0].name,
                status="unstable",
                notes=tuple(notes),
                fit_seconds=seconds,
                law=law,
            )
        if partial:
            notes.append(
                f"the run has begun its decay (its LR is at {observed[-1] / observed.max():.0%} "
                f"of its peak) and the plan goes lower: forecast with law {chain[0].name!r}, "
                f"which extrapolates such a decay better than {self.law.name!r}"
            )
        if refused:
            notes.append(f"{'; '.join(refused)}: forecast with law {law.name!r} instead")
        planned, whatif, _ = scored
        reach = _extrapolation(observed, [planned.whatif.lr, *(i.whatif.lr for i in whatif)])
        if not self.has_reference and reach is not None:
            notes.append(
                f"the forecasts lower the LR to {reach[1]:.0%} of its peak, the run so far only "
                f"to {reach[0]:.0%}: how that lowers the loss is the law's extrapolation; a "
                "reference fit of earlier runs (--reference FIT.json) pins it down"
            )
        return _scored_forecast(common, law.name, scored, notes, seconds, law, run)

    def _prior_forecast(
        self,
        run: Run,
        observed: np.ndarray,
        common: dict[str, Any],
        notes: list[str],
        began: float,
    ) -> LiveForecast:
        """A forecast of a run whose planned decay has not begun, its response to the decay
        taken from the decay prior (`lrlab.laws.prior`): the run is fitted holding the prior's
        centre response, and once per member holding the member's; the members' spread widens
        every band (`HeldSpread` with groups)."""
        prior = self.prior
        assert prior is not None  # the caller checks
        peak = float(observed.max())
        stable = continuation(observed, self.schedule, True, self.total_steps)
        bands = self.law.bands
        total = self.total_steps
        try:
            # A member's drop is a share of the stable loss at the end, which the fit itself
            # gives: the centre is fitted with the last loss seen as that loss, then refitted
            # with its own; the members are fitted with the centre's (they differ little).
            scale = float(np.mean(run.loss[-5:]))
            first = prior.law(prior.centre(), peak, total, scale, False).fit([run])
            scale = stable_scale(first, stable, total - 1)
            law = prior.law(prior.centre(), peak, total, scale, bands)
            law = law.fit([run], start=first.params_)

            def fit_member(member: PriorMember) -> Law:
                held = prior.law(member, peak, total, scale, False)
                return held.fit([run], start=first.params_)

            # The members side by side where one takes long enough to pay for a worker process
            # (`lrlab.laws.parallel`; the same fits to the bit either way).
            timed = time.process_time()
            head = fit_member(prior.members[0])
            seconds = time.process_time() - timed
            rest = fork_map(fit_member, prior.members[1:], parallel=worth_forking(seconds))
            members = (head, *rest)
        except LrlabError as error:
            notes.append(f"a fit with the decay prior failed: {error}")
            return LiveForecast(
                **common,
                law_name=PRIOR_LAW,
                status="unstable",
                notes=tuple(notes),
                decay_prior=True,
            )
        # The forecast is the data sets' mean of the members' forecasts, and how far another
        # data set can lie from it widens the band (`HeldSpread`).
        held = _PriorSpread(members, groups=tuple(item.dataset for item in prior.members))
        scored, band = self._score(law, observed, held)
        seconds = round(time.perf_counter() - began, 3)
        datasets = ", ".join(dict.fromkeys(item.dataset for item in prior.members))
        if band is not None:
            notes.append(
                f"with the decay prior ({datasets}) the band for the final loss is {band}, "
                f"wider than {self.max_band:.0%} of the forecast"
            )
            return LiveForecast(
                **common,
                law_name=PRIOR_LAW,
                status="unstable",
                notes=tuple(notes),
                fit_seconds=seconds,
                decay_prior=True,
                law=law,
            )
        notes.append(
            "the run has not begun its decay: how much the decay lowers the loss is a prior "
            f"from other data sets ({datasets}), whose spread is in the band; a reference fit of "
            "earlier runs of this model (--reference FIT.json) pins it down better"
        )
        return _scored_forecast(
            common, PRIOR_LAW, scored, notes, seconds, law, run, decay_prior=True
        )

    def _attempt(
        self, candidate: Law, run: Run, observed: np.ndarray, notes: list[str]
    ) -> tuple[Law | None, Any, str | None]:
        """Fit `candidate` to `run` and score the what-ifs: the fitted law, `score_whatifs`'s
        result and None, or the reason it gives no forecast (the fit failed; without a reference,
        the points leave the law undetermined (`pinned_down`); the band is too wide)."""
        try:
            law = candidate.fit([run], start=self._starts.get(candidate.name))
        except LrlabError as error:  # e.g. too few points in a jackknife block
            return None, None, f"fit failed: {error}"
        self._starts[candidate.name] = law.params_.copy()
        if not self.has_reference and not pinned_down(law):
            unpinned = ", ".join(law.fit_info_["unpinned"])
            return law, None, f"the points leave {unpinned} undetermined"
        scored, band = self._score(law, observed, self._held_spread(run, law, notes))
        if band is not None:
            reason = (
                f"the fit's band for the final loss is {band}, wider than {self.max_band:.0%} "
                "of the forecast: no forecast until more points narrow it"
            )
            return law, None, reason
        return law, scored, None

    def _score(
        self, law: Law, observed: np.ndarray, held: HeldSpread | None
    ) -> tuple[tuple[ScoredWhatIf, list[ScoredWhatIf], ScoredWhatIf | None], str | None]:
        """`score_whatifs`'s result for `law`, and the planned final loss's band as text where it
        is not finite, the forecast not positive or the band wider than `max_band` (else None)."""
        scored = score_whatifs(
            law,
            observed,
            self.schedule,
            self.total_steps,
            self.cooldown,
            self.level,
            only_planned=not self.whatifs,
            held=held,
        )
        planned = scored[0]
        finite = all(math.isfinite(v) for v in (planned.final_loss, planned.low, planned.high))
        width = (planned.high - planned.low) / planned.final_loss if finite else math.inf
        if not finite or planned.final_loss <= 0 or width > self.max_band:
            return scored, f"[{planned.low:.4g}, {planned.high:.4g}]" if finite else "not finite"
        return scored, None

    def _held_spread(self, run: Run, law: Law, notes: list[str]) -> HeldSpread | None:
        """With a reference fit that has replicates (and bands wanted): `run` refitted once per
        replicate, holding that replicate's response to the LR, so that the bands carry the
        reference's uncertainty too (`HeldSpread`). None otherwise, with a note when a reference
        without replicates leaves the bands to the live run's spread alone."""
        reference = self._reference
        if reference is None or not self.law.bands:
            return None
        replicas = reference.replicates_
        if len(replicas) < 2:
            notes.append(
                "the reference fit has no replicates (fitted without bands): the band leaves "
                "out its uncertainty"
            )
            return None
        names = self.law.param_names
        own = [names.index(name) for name in OWN_PARAMS]
        params = self.law.get_params()
        params["bands"] = False
        refits = []
        for theta in replicas:
            params["fixed"] = {
                name: float(value)
                for name, value in zip(names, theta, strict=True)
                if name not in OWN_PARAMS
            }
            start = np.asarray(theta, dtype=np.float64).copy()
            start[own] = law.params_[own]  # the live fit's own part: a near start
            try:
                refits.append(type(self.law)(**params).fit([run], start=start))
            except LrlabError as error:
                notes.append(
                    f"a refit with a reference replicate failed ({error}): the band "
                    "leaves out the reference's uncertainty"
                )
                return None
        return HeldSpread(tuple(refits), float(reference.band_scale_))


class _PriorSpread(HeldSpread):
    """`HeldSpread` of a decay prior's members, laws that differ only in the response they hold
    (`DecayPrior.law`): a what-if's features are built once for all of them rather than once
    per member, and each member's curve is computed from them as its `predict` would (the same
    numbers, the same error where one is not a loss)."""

    def finals(self, item: WhatIf) -> np.ndarray:
        thetas = [law.params_ for law in self.refits]
        return self.refits[0].predict_many(thetas, item.lr, np.array([item.total - 1]))[:, 0]


def _smaller(laws: Sequence[Law], than: Law) -> tuple[Law, ...]:
    """The laws of `laws` with fewer parameters than `than`: each step down needs less of the
    run."""
    return tuple(item for item in laws if len(item.param_names) < len(than.param_names))


def _free(law: Law) -> int:
    """How many parameters a fit of `law` determines."""
    return len(law.param_names) - len(law.fixed_parameters())


def _scored_forecast(
    common: dict[str, Any],
    law_name: str,
    scored: tuple[ScoredWhatIf, list[ScoredWhatIf], ScoredWhatIf | None],
    notes: list[str],
    seconds: float,
    law: Law,
    run: Run,
    decay_prior: bool = False,
) -> LiveForecast:
    """The `LiveForecast` of a fit that forecast: its planned schedule's final loss and band,
    the what-ifs and the best of them (`scored`, as `score_whatifs` returns them)."""
    planned, whatif, best = scored
    return LiveForecast(
        **common,
        law_name=law_name,
        status="forecast",
        final_loss=planned.final_loss,
        final_low=planned.low,
        final_high=planned.high,
        planned=planned,
        whatif=tuple(whatif),
        best=best,
        notes=tuple(notes),
        fit_seconds=seconds,
        decay_prior=decay_prior,
        law=law,
        run=run,
    )


def _extrapolation(
    observed: np.ndarray, future: Sequence[np.ndarray]
) -> tuple[float, float] | None:
    """The lowest LR the run has reached after its peak and the lowest that the per-step LRs
    `future` go to after it, as fractions of the peak, when they go lower by more than
    `UNSEEN_DECAY` of the peak (None otherwise): how the loss responds there has not been seen."""
    peak = float(observed.max())
    if peak <= 0:
        return None
    seen = float(observed[int(np.argmax(observed)) :].min()) / peak
    wanted = min(float(lr[observed.size :].min(initial=peak)) for lr in future) / peak
    return (seen, wanted) if wanted < seen - UNSEEN_DECAY else None
