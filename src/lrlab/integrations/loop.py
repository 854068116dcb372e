"""`Forecaster`: live forecasts in a plain training loop (and the engine of the trainer
callbacks).

    from lrlab.integrations import Forecaster

    with Forecaster(schedule=schedule, total_steps=10_000, json_path="run/forecast.json") as live:
        for step in range(10_000):
            loss = train_step(step)
            if step % 10 == 0:
                new = live.update(step, loss.item(), lr=optimizer.param_groups[0]["lr"])
                if new:  # a fresh forecast: log it with your logger
                    writer.add_scalars("forecast", forecast_metrics(new), step)

`update` only records the point (and every `every` points hands the new ones to the background
fitter, `lrlab.live.BackgroundForecaster`); it never waits for a fit. `forecast()` is the newest
forecast as a dict (`lrlab.live.LiveForecast.to_dict`), also written atomically to `json_path`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

from lrlab.errors import LrlabError
from lrlab.laws import DEFAULT_SINGLE_LAW, Law
from lrlab.laws.prior import DecayPrior
from lrlab.live.background import DUTY, NICENESS, BackgroundForecaster
from lrlab.schedules import Schedule, from_spec

METRIC_NAMES = (
    "forecast/final_loss",
    "forecast/low",
    "forecast/high",
    "forecast/best_cooldown_start",
    "forecast/best_cooldown_gain",
)


def forecast_metrics(forecast: dict[str, Any] | None) -> dict[str, float]:
    """The scalars a trainer logs from a forecast: ``forecast/final_loss``, ``forecast/low``,
    ``forecast/high`` and, when there is a cooldown what-if, ``forecast/best_cooldown_start``
    and ``forecast/best_cooldown_gain``. Empty while there is no forecast (too few points)."""
    if not forecast or forecast.get("final_loss") is None:
        return {}
    values = dict(
        zip(
            METRIC_NAMES[:3],
            (forecast["final_loss"], forecast["final_low"], forecast["final_high"]),
            strict=True,
        )
    )
    best = forecast.get("best_cooldown")
    if best:
        values[METRIC_NAMES[3]] = float(best["start"])
        values[METRIC_NAMES[4]] = float(best["gain"])
    return {name: float(value) for name, value in values.items()}


class Forecaster:
    """Live forecasts for a training loop: ``update(step, loss, lr)``, ``forecast()``.

    `schedule` (a schedule or spec) is the planned schedule, and then `lr` may be omitted; without
    one, the logged LR is interpolated and held at its last value up to `total_steps` (default:
    the schedule's total). `every`: points per refit. `background`: ``process`` (a child process
    at a lower priority, the default) or ``thread``; `niceness`: how much lower the child's
    priority is (0-19; 0 where every core is busy and forecasts must not lag). `duty`: the most
    of one core's time the fits take on average (they rest between fits; 1: no rest). `prior`: the
    decay prior, as ``lrlab watch --prior``: None (the default: no forecast until the run's decay
    has begun), ``"default"`` (lrlab's, `lrlab.laws.prior.default_prior`), a prior file or a
    `DecayPrior`; without a `reference`, a run whose decay has not begun is then forecast with it
    (the forecast's ``decay_prior`` is true). The other options are those of
    `lrlab.live.LiveForecaster` (`law`, `reference`, `cooldown`, `level`, `min_points`,
    `max_band`, `fallback`).
    """

    def __init__(
        self,
        *,
        total_steps: int | None = None,
        schedule: Schedule | dict[str, Any] | str | None = None,
        every: int = 10,
        json_path: str | Path | None = None,
        background: str = "process",
        niceness: int = NICENESS,
        duty: float = DUTY,
        law: str = DEFAULT_SINGLE_LAW,
        reference: Law | str | Path | None = None,
        cooldown: str | None = None,
        level: float | None = None,
        min_points: int | None = None,
        max_band: float = 0.2,
        fallback: Sequence[str] | None = None,
        prior: DecayPrior | str | Path | None = None,
    ) -> None:
        if every < 1:
            raise LrlabError(f"every must be at least 1, got {every}")
        spec = None if schedule is None else from_spec(schedule).to_spec()
        options = {
            "total_steps": total_steps,
            "schedule": spec,
            "law": law,
            "reference": str(reference) if isinstance(reference, Path) else reference,
            "cooldown": cooldown,
            "level": level,
            "min_points": min_points,
            "max_band": max_band,
            "fallback": None if fallback is None else list(fallback),
            # A file is read where the fits run; "default" and a `DecayPrior` travel as they are.
            "prior": str(prior) if isinstance(prior, Path) else prior,
        }
        self.every = every
        self.has_schedule = spec is not None
        self.json_path = None if json_path is None else Path(json_path)
        self._background = BackgroundForecaster(
            options, mode=background, json_path=json_path, niceness=niceness, duty=duty
        )
        self._pending: tuple[list[int], list[float], list[float]] = ([], [], [])
        self._seen: dict[str, Any] | None = None

    def update(self, step: int, loss: float, lr: float | None = None) -> dict[str, Any] | None:
        """Record the loss (and LR) at `step`; returns a forecast that arrived since the last
        call, else None. Never waits for a fit."""
        if lr is None and not self.has_schedule:
            raise LrlabError("Forecaster.update: give lr, or a schedule to the Forecaster")
        steps, losses, lrs = self._pending
        steps.append(int(step))
        losses.append(float(loss))
        lrs.append(math.nan if lr is None else float(lr))
        if len(steps) >= self.every:
            self.flush()
        latest = self._background.latest()
        if latest is not None and latest is not self._seen:
            self._seen = latest
            return latest
        return None

    def flush(self) -> None:
        """Hand the points recorded since the last refit to the fitter and ask for a refit."""
        if self._pending[0]:
            self._background.submit(*self._pending)
            self._pending = ([], [], [])

    def forecast(self, wait: bool = False, timeout: float | None = 60.0) -> dict[str, Any] | None:
        """The newest forecast (None before the first). With `wait`, the points recorded so far
        are fitted first (at most `timeout` seconds)."""
        if wait:
            self.flush()
            return self._background.wait(timeout)
        return self._background.latest()

    def close(self) -> None:
        """Stop the background fitter (within about a second: a fit in progress is abandoned;
        `BackgroundForecaster.close`)."""
        self._background.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
