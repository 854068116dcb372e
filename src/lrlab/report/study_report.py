"""What a study found, as ``summary.json``, figures and ``report.html``.

`lrlab.study` runs a study and hands its results here as an `Analysis` (the chosen law, the
recommended schedule and the schedules it is compared with) and `Verification`s (schedules trained
after their forecast). They are defined here, with the code that shows them, so that the report
depends only on the layers below it (design, laws, runs, schedules) and never on the study.

Claims stay within the evidence:

- A comparison's gain is the difference of two forecasts from one fit, with the band of that
  difference (`Law.compare_final`), often far narrower than either forecast's band since much of
  their error is shared; it is a gain (``separated``) only where that band excludes 0, and is
  otherwise said to be within the forecast's uncertainty.
- A check (the recommended schedule and others, trained after the forecast) ends in a verdict per
  schedule checked against the recommendation: does the measured ranking confirm the forecast
  ranking, by how much, and is the measured difference beyond run-to-run noise
  (`measurement_noise`, from the measured curves themselves).
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
from lrlab.laws.base import FinalDifference
from lrlab.laws.metrics import coverage, pred_e
from lrlab.report.html import render_report
from lrlab.report.plots import (
    ZOOM_SHARE,
    LossCurve,
    assign_styles,
    loss_label,
    plot_loss_curves,
    plot_run_fits,
    plot_schedules,
)
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
    steps = np.arange(analysis.budget)
    best_finals = law.final_replicas(best.schedule(steps))  # forecast once, compared with each
    comparisons = {
        name: _comparison_summary(
            f,
            law.compare_finals(law.final_replicas(f.schedule(steps)), best_finals),
            analysis.budget,
        )
        for name, f in analysis.comparisons.items()
    }
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
        "comparisons": comparisons,
        "verification": [_verification_summary(v, analysis.budget) for v in verifications],
        "verdicts": check_verdicts(verifications, comparisons, law.band_level),
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
    # A decay from the peak stays within 1% of it for a while too (a cosine for 7% of its
    # length): only a tenth of the steps after the peak or more is a hold, as in WSD.
    if held - peak_step < 0.1 * (lr.size - peak_step):
        held = peak_step
    share = 100.0 * (lr.size - held) / lr.size
    hold = f", held until step {held}" if held > peak_step else ""
    return (
        f"{text}{hold}, then decays over the last {share:.0f}% of the steps to {float(lr[-1]):.3g}"
    )


def _forecast_summary(f: Forecast, budget: int) -> dict[str, Any]:
    """A forecast as JSON, with its spec as a string and its shape in words (for the page)."""
    return {
        **f.to_dict(),
        "text": str(f.schedule),
        "shape": describe_shape(f.schedule(np.arange(budget))),
    }


def _comparison_summary(f: Forecast, gain: FinalDifference, budget: int) -> dict[str, Any]:
    """A comparison as JSON: its forecast, and the recommendation's `gain` on it (this forecast
    minus the recommendation's, positive when the recommendation ends lower) with the band of
    that difference (`gain_low`, `gain_high`: None without replicates), whether the band
    separates the two (`separated`: the only gain the page colours), and `gain_text`, the words
    the page and the CLI show."""
    return {
        **_forecast_summary(f, budget),
        "gain": gain.difference,
        "gain_low": gain.low,
        "gain_high": gain.high,
        "separated": gain.separated,
        "gain_text": gain.describe_gain(),
    }


def measurement_noise(run: Run, tail: float = 0.25) -> float | None:
    """The scatter of one measured loss of `run` about its smooth curve, from the last `tail` of
    its logged points (at least five): ``1.4826 * median(|second difference|) / sqrt(6)``.
    Independent scatter of sd ``s`` gives second differences of sd ``s * sqrt(6)``, while a
    smooth curve's own second difference over a logging interval is far smaller; the median
    keeps a spike from counting. None for a run of fewer than five points. It is the noise of
    a single final measurement, and so a lower bound on the noise between two training runs:
    separate runs (other seeds, other data order) can drift apart by more (docs/laws.md,
    "Run-to-run scatter")."""
    count = max(5, round(tail * run.loss.size))
    if run.loss.size < count:
        return None
    second = np.diff(run.loss[-count:], 2)
    return float(1.4826 * np.median(np.abs(second)) / np.sqrt(6))


def check_verdicts(
    verifications: Sequence[Verification], comparisons: dict[str, dict[str, Any]], level: float
) -> list[dict[str, Any]]:
    """One verdict per schedule checked besides the recommended one (none unless the
    recommended schedule was checked too): the measured gain of the recommendation on it
    (its measured final loss minus the recommendation's) against the forecast gain, and whether
    the measured difference is beyond run-to-run noise, ``z * sqrt(s_a^2 + s_b^2)`` with ``s``
    each run's `measurement_noise` and ``z`` the normal quantile of `level` (the band level).
    ``outcome``: "confirms" (the measured ranking is the forecast's, beyond noise),
    "contradicts" (the reverse, beyond noise), "within noise", or "noise unknown"; ``text``
    says it in one line."""
    from scipy import stats  # costs 0.3 s to import: only a checked study needs it

    by_name = {v.name: v for v in verifications}
    reference = by_name.get("recommended")
    if reference is None:
        return []
    z = float(stats.norm.ppf(0.5 + level / 2))
    reference_noise = measurement_noise(reference.run)
    verdicts = []
    for name, checked in by_name.items():
        if checked is reference or name not in comparisons:
            continue
        forecast_gain = comparisons[name]["gain"]
        measured_gain = checked.measured - reference.measured
        noises = [reference_noise, measurement_noise(checked.run)]
        noise = None if None in noises else z * float(np.hypot(*noises))
        agrees = bool(np.sign(measured_gain) == np.sign(forecast_gain))
        ranking = "agrees with" if agrees else "is the reverse of"
        if noise is None:
            outcome = "noise unknown"
            words = f"the measured ranking {ranking} the forecast; run-to-run noise unknown"
        elif abs(measured_gain) > noise:
            outcome = "confirms" if agrees else "contradicts"
            words = f"the measured ranking {outcome} the forecast, beyond run-to-run noise"
        else:
            outcome = "within noise"
            words = (
                f"within run-to-run noise, the check does not separate them; the measured "
                f"ranking {ranking} the forecast"
            )
        noise_text = "" if noise is None else f", noise +-{noise:.4f}"
        verdicts.append(
            {
                "name": name,
                "recommended_measured": reference.measured,
                "measured": checked.measured,
                "measured_gain": measured_gain,
                "forecast_gain": forecast_gain,
                "forecast_separated": comparisons[name]["separated"],
                "noise": noise,
                "beyond_noise": None if noise is None else bool(abs(measured_gain) > noise),
                "agrees": agrees,
                "outcome": outcome,
                "text": (
                    f"check vs {name}: {words} (measured: recommended {reference.measured:.4f}, "
                    f"{name} {checked.measured:.4f}, gain {measured_gain:+.4f}{noise_text}; "
                    f"forecast gain {forecast_gain:+.4f})"
                ),
            }
        )
    return verdicts


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
    """The report's PNG files in `out`, by role: schedules, fit, forecast (and verification).

    A schedule has one style in all of them (a run's is keyed ``run: NAME``, so that a run named
    like a compared schedule is still told apart); the loss axes name the runs' loss."""
    steps = np.arange(budget)
    schedules = [("recommended", best.schedule(steps))]
    schedules += [(name, f.schedule(steps)) for name, f in comparisons.items()]
    schedules += [(f"run: {run.name}", run.lr[:budget]) for run in runs]
    styles = assign_styles([label for label, _ in schedules] + [v.name for v in verifications])
    run_styles = {run.name: styles[f"run: {run.name}"] for run in runs}
    loss = loss_label([*runs, *(v.run for v in verifications)])
    grid = np.unique(np.linspace(max(1, budget // 20), budget - 1, 200).astype(int))
    forecasts = []
    for name, f in [("recommended", best), *comparisons.items()]:
        lr = f.schedule(steps)
        forecasts.append(LossCurve(name, grid, *law.predict_with_band(lr, grid)))
    zoom_from = (1 - ZOOM_SHARE) * budget
    figures = {
        "schedules": plot_schedules(
            schedules, out / "schedules.png", title="learning-rate schedules", styles=styles
        ),
        "fit": plot_run_fits(
            fitted,
            out / "fit.png",
            title=f"law {law.name!r} fitted to each run",
            loss=loss,
            styles=run_styles,
        ),
        "forecast": plot_loss_curves(
            forecasts,
            out / "forecast.png",
            title=f"forecast over {budget} steps",
            zoom_from=zoom_from,
            loss=loss,
            styles=styles,
        ),
    }
    if verifications:
        checked = [_observed_curve(law, v.run, v.name) for v in verifications]
        figures["verification"] = plot_loss_curves(
            checked,
            out / "verification.png",
            title="forecast (lines) vs measured (dots)",
            zoom_from=zoom_from,
            loss=loss,
            styles=styles,
        )
    return figures
