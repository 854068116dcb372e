"""Forecast where a running training run ends, from the part of it logged so far.

`LiveForecaster.forecast(run)` fits a loss-curve law to the run's points (warm-started from the
previous fit, so a refit after a few new points is quick and does not jump between optima),
forecasts the final loss under the planned schedule with the law's band, and scores the what-ifs
of `lrlab.live.whatif` (when to start the cooldown, extending the run). It returns a
`LiveForecast`, whose `to_dict` is the JSON object of ``lrlab watch --json``.

A forecast is only given when it means something:

- too few points (fewer than `min_points`, by default three per fitted parameter plus three):
  status ``waiting``, with the number of points still needed;
- a fit that does not pin the final loss down (its band wider than `max_band` of the forecast,
  or a non-finite forecast): status ``unstable``, no number;
- otherwise status ``forecast``.

A run that has not lowered its LR yet tells a law nothing about how the loss responds to a decay:
the forecast of a cooldown is then the law's extrapolation from the warmup alone, and says so. A
`reference` fit (an earlier fit of the same kind of model, e.g. ``lrlab fit`` on a few finished
runs) fixes that: its response to the LR (every parameter but ``L0``, ``A`` and ``alpha``) is held,
and only the run's own power law is fitted live.
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
from lrlab.laws import DEFAULT_LAW, Law, get_law, load_law
from lrlab.live.whatif import (
    Cooldown,
    ScoredWhatIf,
    parse_cooldown,
    schedule_total,
    score_whatifs,
)
from lrlab.runs.model import Run
from lrlab.schedules import Schedule, from_spec

# What a reference fit leaves to the live run: the power law in the LR area every law starts
# with. The rest (the response to LR changes) comes from the reference.
OWN_PARAMS = ("L0", "A", "alpha")
DEFAULT_MAX_BAND = 0.2


@dataclasses.dataclass(frozen=True)
class LiveForecast:
    """One snapshot of a running run: where it is, where it will end, and the what-ifs.

    `status` is ``forecast``, ``waiting`` (too few points: `needed` more) or ``unstable``;
    `final_loss`, `final_low`, `final_high` are None unless forecasting. `law` (the fitted law) and
    `run` (the points it was fitted to) are kept for plots, not written to JSON."""

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
        ``best_cooldown`` (or null), ``notes``, ``fit_seconds``."""
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
    band level; `whatifs=False` skips them.
    """

    def __init__(
        self,
        *,
        total_steps: int | None = None,
        schedule: Schedule | dict[str, Any] | str | None = None,
        law: str | Law = DEFAULT_LAW,
        reference: Law | str | Path | None = None,
        cooldown: Cooldown | str | None = None,
        level: float | None = None,
        min_points: int | None = None,
        max_band: float = DEFAULT_MAX_BAND,
        bands: bool = True,
        whatifs: bool = True,
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
        if reference is not None:
            self.law = reference_law(reference, bands)
            self._start: np.ndarray | None = self.law_params(reference)
        else:
            self.law = get_law(law, bands=bands) if isinstance(law, str) else law
            self._start = None
        free = len(self.law.param_names) - len(self.law.fixed_parameters())
        self.min_points = int(min_points if min_points is not None else 3 * free + 3)
        if self.min_points <= free:
            raise LrlabError(f"min_points must exceed the {free} fitted parameters")
        if not max_band > 0:
            raise LrlabError(f"max_band must be positive, got {max_band}")
        self.cooldown = parse_cooldown(cooldown)
        self.level = level
        self.max_band = float(max_band)
        self.whatifs = whatifs
        self.has_reference = reference is not None

    @staticmethod
    def law_params(reference: Law | str | Path) -> np.ndarray:
        """A reference fit's parameters: the first fit's warm start."""
        fitted = load_law(reference) if isinstance(reference, str | Path) else reference
        return np.asarray(fitted.params_, dtype=np.float64).copy()

    def usable_points(self, run: Run) -> int:
        """Points a law can fit: those logged after some LR has been applied."""
        return int(np.count_nonzero(np.cumsum(run.lr)[run.steps] > 0))

    def forecast(self, run: Run, notes: Sequence[str] = ()) -> LiveForecast:
        """Fit the law to `run` (the part logged so far) and forecast its end."""
        notes = list(notes)
        points = self.usable_points(run)
        common = {
            "step": int(run.steps[-1]),
            "loss": float(run.loss[-1]),
            "points": points,
            "total_steps": self.total_steps,
            "law_name": self.law.name,
        }
        if points < self.min_points:
            return LiveForecast(
                **common, status="waiting", needed=self.min_points - points, notes=tuple(notes)
            )
        began = time.perf_counter()
        try:
            law = self.law.fit([run], start=self._start)
        except LrlabError as error:  # e.g. too few points in a jackknife block
            notes.append(f"fit failed: {error}")
            return LiveForecast(**common, status="unstable", notes=tuple(notes))
        self._start = law.params_.copy()
        observed = run.lr[: int(run.steps[-1]) + 1]
        planned, whatif, best = score_whatifs(
            law,
            observed,
            self.schedule,
            self.total_steps,
            self.cooldown,
            self.level,
            only_planned=not self.whatifs,
        )
        seconds = round(time.perf_counter() - began, 3)
        finite = all(math.isfinite(v) for v in (planned.final_loss, planned.low, planned.high))
        width = (planned.high - planned.low) / planned.final_loss if finite else math.inf
        if not finite or planned.final_loss <= 0 or width > self.max_band:
            band = f"[{planned.low:.4g}, {planned.high:.4g}]" if finite else "not finite"
            notes.append(
                f"the fit's band for the final loss is {band}, wider than {self.max_band:.0%} of "
                "the forecast: no forecast until more points narrow it"
            )
            return LiveForecast(
                **common, status="unstable", notes=tuple(notes), fit_seconds=seconds, law=law
            )
        reach = _extrapolation(observed, planned, whatif)
        if not self.has_reference and reach is not None:
            notes.append(
                f"the forecasts lower the LR to {reach[1]:.0%} of its peak, the run so far only "
                f"to {reach[0]:.0%}: how that lowers the loss is the law's extrapolation; a "
                "reference fit of earlier runs (--reference FIT.json) pins it down"
            )
        return LiveForecast(
            **common,
            status="forecast",
            final_loss=planned.final_loss,
            final_low=planned.low,
            final_high=planned.high,
            planned=planned,
            whatif=tuple(whatif),
            best=best,
            notes=tuple(notes),
            fit_seconds=seconds,
            law=law,
            run=run,
        )


def _extrapolation(
    observed: np.ndarray, planned: ScoredWhatIf, whatif: Sequence[ScoredWhatIf]
) -> tuple[float, float] | None:
    """The lowest LR the run has reached after its peak and the lowest the forecasts go to, as
    fractions of the peak, when the forecasts go lower by more than a tenth of the peak (None
    otherwise): how the loss responds there has not been seen."""
    peak = float(observed.max())
    if peak <= 0:
        return None
    seen = float(observed[int(np.argmax(observed)) :].min()) / peak
    future = [planned.whatif.lr, *(item.whatif.lr for item in whatif)]
    wanted = min(float(lr[observed.size :].min(initial=peak)) for lr in future) / peak
    return (seen, wanted) if wanted < seen - 0.1 else None
