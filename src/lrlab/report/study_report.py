"""What a study found, as ``summary.json``, figures and ``report.html``.

`lrlab.study` runs a study and hands its results here as an `Analysis` (the chosen law, the
recommended schedule and the schedules it is compared with) and `Verification`s (schedules trained
after their forecast). They are defined here, with the code that shows them, so that the report
depends only on the layers below it (design, laws, runs, schedules) and never on the study.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lrlab import __version__
from lrlab.atomic import atomic_write_text
from lrlab.design.optimize import Forecast
from lrlab.laws import Law
from lrlab.laws.metrics import coverage, pred_e
from lrlab.report.html import render_report
from lrlab.report.plots import LossCurve, plot_loss_curves, plot_schedules
from lrlab.runs import Run


@dataclasses.dataclass(frozen=True)
class Verification:
    """A schedule trained after its forecast: the forecast and the measured run."""

    name: str
    predicted: Forecast
    run: Run

    @property
    def measured(self) -> float:
        """The measured final loss."""
        return float(self.run.loss[-1])


@dataclasses.dataclass(frozen=True)
class Analysis:
    """The chosen law fitted to the runs, the recommended schedule and its comparisons."""

    law: Law
    law_table: dict[str, dict[str, Any]]
    budget: int
    peak: float
    warmup: int
    recommended: Forecast
    comparisons: dict[str, Forecast]


def write_report(
    analysis: Analysis,
    runs: Sequence[Run],
    out: str | Path,
    *,
    title: str = "lrlab study",
    verifications: Sequence[Verification] = (),
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``summary.json``, the figures and ``report.html`` into `out`; return the summary.

    `extra` adds top-level entries to the summary (the wind-tunnel study adds its config)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    law, best = analysis.law, analysis.recommended
    fitted = [_observed_curve(law, run, run.name) for run in runs]
    figures = _figures(
        law, runs, fitted, best, analysis.comparisons, verifications, analysis.budget, out
    )
    summary = {
        "lrlab": __version__,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "title": title,
        "budget": analysis.budget,
        "peak": analysis.peak,
        "warmup": analysis.warmup,
        "runs": [_run_summary(run, curve) for run, curve in zip(runs, fitted, strict=True)],
        "laws": analysis.law_table,
        "chosen_law": law.name,
        "fit": law.to_dict(),
        "recommended": _forecast_summary(best, analysis.budget),
        "comparisons": {
            name: {**_forecast_summary(f, analysis.budget), "gain": f.final_loss - best.final_loss}
            for name, f in analysis.comparisons.items()
        },
        "verification": [_verification_summary(v, analysis.budget) for v in verifications],
        **(extra or {}),
        "figures": {key: path.name for key, path in figures.items()},
    }
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    atomic_write_text(out / "report.html", render_report(summary, figures))
    return summary


def describe_shape(lr: np.ndarray) -> str:
    """A schedule in words: where it peaks, how long it holds, where the decay ends."""
    peak_step = int(np.argmax(lr))
    peak = float(lr[peak_step])
    below = lr[peak_step:] < 0.99 * peak
    held = peak_step + int(np.argmax(below)) if np.any(below) else lr.size
    text = f"peak {peak:.3g} at step {peak_step}"
    if held >= lr.size:
        return text + ", held to the end"
    share = 100.0 * (lr.size - held) / lr.size
    return (
        f"{text}, held until step {held}, then decays over the last {share:.0f}% of the "
        f"steps to {float(lr[-1]):.3g}"
    )


def _forecast_summary(f: Forecast, budget: int) -> dict[str, Any]:
    """A forecast as JSON, with its spec as a string and its shape in words (for the page)."""
    return {
        **f.to_dict(),
        "text": str(f.schedule),
        "shape": describe_shape(f.schedule(np.arange(budget))),
    }


def _verification_summary(v: Verification, budget: int) -> dict[str, Any]:
    return {
        "name": v.name,
        **_forecast_summary(v.predicted, budget),
        "measured": v.measured,
        "error": v.measured - v.predicted.final_loss,
        "inside_band": bool(v.predicted.low <= v.measured <= v.predicted.high),
    }


def _observed_curve(law: Law, run: Run, name: str) -> LossCurve:
    """The law's prediction and band at a run's logged steps, with the observed loss."""
    return LossCurve(name, run.steps, *law.predict_with_band(run.lr, run.steps), run.loss)


def _run_summary(run: Run, curve: LossCurve) -> dict[str, Any]:
    pred, low, high = curve.pred, curve.low, curve.high
    defined = np.isfinite(pred)
    return {
        "name": run.name,
        "source": run.source,
        "last_step": int(run.steps[-1]),
        "final_loss": float(run.loss[-1]),
        "fit_PredE": pred_e(run.loss[defined], pred[defined]),
        "band_coverage": coverage(run.loss[defined], low[defined], high[defined]),
    }


def _figures(
    law: Law,
    runs: Sequence[Run],
    fitted: Sequence[LossCurve],
    best: Forecast,
    comparisons: dict[str, Forecast],
    verifications: Sequence[Verification],
    budget: int,
    out: Path,
) -> dict[str, Path]:
    """The report's PNG files in `out`, by role: schedules, fit, forecast (and verification)."""
    steps = np.arange(budget)
    schedules = [("recommended", best.schedule(steps))]
    schedules += [(name, f.schedule(steps)) for name, f in comparisons.items()]
    schedules += [(f"run: {run.name}", run.lr[:budget]) for run in runs]
    grid = np.unique(np.linspace(max(1, budget // 20), budget - 1, 200).astype(int))
    forecasts = []
    for name, f in [("recommended", best), *comparisons.items()]:
        lr = f.schedule(steps)
        forecasts.append(LossCurve(name, grid, *law.predict_with_band(lr, grid)))
    figures = {
        "schedules": plot_schedules(
            schedules, out / "schedules.png", title="learning-rate schedules"
        ),
        "fit": plot_loss_curves(
            fitted, out / "fit.png", title=f"law {law.name!r}: observed vs fitted"
        ),
        "forecast": plot_loss_curves(
            forecasts,
            out / "forecast.png",
            title=f"forecast over {budget} steps",
            zoom_from=0.6 * budget,
        ),
    }
    if verifications:
        checked = [_observed_curve(law, v.run, v.name) for v in verifications]
        figures["verification"] = plot_loss_curves(
            checked,
            out / "verification.png",
            title="forecast (lines) vs measured (dots)",
            zoom_from=0.6 * budget,
        )
    return figures
