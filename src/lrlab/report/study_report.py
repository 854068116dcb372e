"""What a study found, as ``summary.json``, figures and ``report.html``.

`lrlab.study` runs a study and hands its results here as an `Analysis` (the law fitted and why,
the recommended schedule and the schedules it is compared with) and `Verification`s (schedules
trained after their forecast). They are defined here, with the code that shows them, so that the
report depends only on the layers below it (design, laws, runs, schedules) and never on the study.

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
from lrlab.design.optimize import Forecast, forecast
from lrlab.laws import Law, SizeLaw
from lrlab.laws.auto_law import MEMBERS, AutoLaw
from lrlab.laws.base import FinalDifference
from lrlab.laws.metrics import coverage, pred_e
from lrlab.laws.sizes import describe_count, log_distance
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
from lrlab.report.sizes_html import render_sizes
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
    """The law fitted to the runs, every single law's cross-validation scores on them
    (`law_table`, as `lrlab.laws.selection.choose_law` gives it), the recommended schedule and
    its comparisons, and how the law was chosen, in words (`law_choice`; empty: not said)."""

    law: Law
    law_table: dict[str, dict[str, Any]]
    budget: int
    peak: float
    warmup: int
    recommended: Forecast
    comparisons: dict[str, Forecast]
    law_choice: str = ""
    # The region the recommendation was kept in (`lrlab.design.optimize.Design.trust_region`).
    trust_region: str = ""


@dataclasses.dataclass(frozen=True)
class SizeDesign:
    """One model size under a size-aware law: the law at that size (`SizeLaw.at`), the WSD
    family's optimum there (its cooldown share and decay say in two numbers whether the optimum
    moves with size), the comparisons there, the runs measured at that size (none at a target
    not run) and the tokens each run trains on (None where unknown)."""

    name: str
    params: float
    law: Law
    wsd: Forecast
    comparisons: dict[str, Forecast]
    runs: tuple[Run, ...] = ()
    tokens: float | None = None


@dataclasses.dataclass(frozen=True)
class SizeAnalysis:
    """A study across sizes: the size-aware law, each fitted size, and the target size (one of
    them, or a size not run), whose law, recommendation and comparisons are the report's
    `Analysis`; `note` says what the target is and whether it was checked by training."""

    size_law: SizeLaw
    fitted: tuple[SizeDesign, ...]
    target: SizeDesign
    note: str

    @property
    def designs(self) -> tuple[SizeDesign, ...]:
        """The fitted sizes, then the target where it is not one of them."""
        if any(size is self.target for size in self.fitted):
            return self.fitted
        return (*self.fitted, self.target)


def write_report(
    analysis: Analysis,
    runs: Sequence[Run],
    out: str | Path,
    *,
    title: str = "lrlab study",
    verifications: Sequence[Verification] = (),
    extra: dict[str, Any] | None = None,
    sizes: SizeAnalysis | None = None,
) -> dict[str, Any]:
    """Write ``summary.json``, the figures and ``report.html`` into `out`; return the summary.

    `extra` adds top-level entries to the summary (the wind-tunnel study adds its config). With
    `sizes` (a study across sizes), the analysis is the target size's, each run is shown fitted
    at its own size, and the summary and page get a sizes section (`_sizes_summary`)."""
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
    run_laws = {run.name: law for run in runs}
    if sizes is not None:  # each run as the law fits it at its own size
        run_laws.update({run.name: size.law for size in sizes.fitted for run in size.runs})
    fitted = [_observed_curve(run_laws[run.name], run, run.name) for run in runs]
    figures = _figures(
        law, runs, fitted, best, analysis.comparisons, verifications, analysis.budget, out
    )
    sizes_entry = {}
    if sizes is not None:
        sizes_entry = {"sizes": _sizes_summary(sizes, best, analysis.budget)}
        figures["sizes"] = _sizes_figure(sizes, best, analysis.budget, out, loss_label(runs))
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
        "law_weights": law_weights(law),
        "law_choice": analysis.law_choice,
        "fit": law.to_dict(),
        "recommended": _forecast_summary(best, analysis.budget),
        "trust_region": analysis.trust_region,
        "comparisons": comparisons,
        "verification": [_verification_summary(v, analysis.budget) for v in verifications],
        "verdicts": check_verdicts(verifications, comparisons, law.band_level),
        **sizes_entry,
        **(extra or {}),
        "figures": {key: path.name for key, path in figures.items()},
    }
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    sections = [render_sizes(summary["sizes"], figures["sizes"])] if sizes is not None else []
    atomic_write_text(out / "report.html", render_report(summary, figures, sections))
    return summary


def law_weights(law: Law) -> dict[str, float]:
    """The laws whose forecasts `law` is made of, with their weights: the members an average
    (``auto``) kept, else the law itself with weight 1."""
    if isinstance(law, AutoLaw):
        weights = dict(zip(MEMBERS, law.params_, strict=True))
        return {name: float(weights[name]) for name in law.members_}
    return {law.name: 1.0}


def _sizes_summary(sizes: SizeAnalysis, best: Forecast, budget: int) -> dict[str, Any]:
    """The summary's ``sizes`` entry: the size-aware law (its forms and their values at the
    smallest and largest fitted sizes), the target (its forecast with band, what it is), and
    per size (the fitted ones, then the target) the forecast of the recommended schedule `best`
    (designed for the target), the WSD family's optimum and the comparisons, and which of the
    named schedules (recommended and comparisons) is forecast lowest, by how much."""
    size_law, steps = sizes.size_law, np.arange(budget)
    data = size_law.to_dict()
    rows = []
    for size in sizes.designs:
        recommended = forecast(size.law, best.schedule, budget)
        named = {"recommended": recommended, **size.comparisons}
        order = sorted(named, key=lambda name: named[name].final_loss)
        finals = {name: size.law.final_replicas(named[name].schedule(steps)) for name in order[:2]}
        lead = size.law.compare_finals(finals[order[1]], finals[order[0]])
        wsd = size.wsd.schedule.to_spec()
        rows.append(
            {
                "name": size.name,
                "params": size.params,
                "params_text": describe_count(size.params),
                "fitted": bool(size.runs),
                "target": size is sizes.target,
                "runs": [run.name for run in size.runs],
                "tokens_per_param": None if size.tokens is None else size.tokens / size.params,
                "log_distance": log_distance(size.params, list(size_law.sizes_.values())),
                "recommended": recommended.to_dict(),
                "wsd_optimum": {
                    **_forecast_summary(size.wsd, budget),
                    "cooldown_fraction": wsd.get("cooldown_fraction"),
                    "decay": wsd.get("decay"),
                },
                # The recommended schedule against this size's best WSD: where it stays at or
                # below that at every size, the optimum found for the target serves them all.
                "recommended_minus_wsd_optimum": recommended.final_loss - size.wsd.final_loss,
                "comparisons": {name: f.to_dict() for name, f in size.comparisons.items()},
                "winner": order[0],
                "winner_lead": lead.difference,
                "winner_lead_band": [lead.low, lead.high],
                "winner_separated": lead.separated,
                "winner_text": f"{order[0]} lowest, over {order[1]}: {lead.describe_gain()}",
            }
        )
    target = next(row for row in rows if row["target"])
    return {
        "law": size_law.law,
        "forms": data["forms"],
        "exponent": data["exponent"],
        "fitted_sizes": data["sizes"],
        "scale": data["scale"],
        "shared": data["shared"],
        "target": {
            "name": sizes.target.name,
            "params": sizes.target.params,
            "params_text": target["params_text"],
            "log_distance": target["log_distance"],
            "held_at_bound": sizes.target.law.fit_info_.get("size", {}).get("held_at_bound", []),
            "note": sizes.note,
            "recommended": _forecast_summary(best, budget),
        },
        "per_size": rows,
        "optimum_moves": _optimum_moves(rows),
    }


def _optimum_moves(rows: list[dict[str, Any]]) -> str:
    """Does the optimum change with size? In one line: the WSD family's optimum at each size,
    the recommended schedule against it, and the lowest named schedule at each size."""
    wsd = ", ".join(
        f"{row['params_text']} {100 * row['wsd_optimum']['cooldown_fraction']:.0f}% "
        f"({row['wsd_optimum']['decay']})"
        for row in rows
    )
    versus = ", ".join(
        f"{row['params_text']} {row['recommended_minus_wsd_optimum']:+.4f}" for row in rows
    )
    winners = {row["winner"] for row in rows}
    named = (
        f"is {next(iter(winners))} at every size"
        if len(winners) == 1
        else "changes with size ("
        + ", ".join(f"{row['params_text']}: {row['winner']}" for row in rows)
        + ")"
    )
    return (
        f"Best WSD cooldown share (decay) by size: {wsd}. The recommended schedule minus that "
        f"size's best WSD: {versus}. The lowest of the named schedules {named}."
    )


def _sizes_figure(sizes: SizeAnalysis, best: Forecast, budget: int, out: Path, loss: str) -> Path:
    """The recommended schedule `best` forecast at each fitted size and at the target, with
    bands: how the loss curve, and its uncertainty, change with size."""
    lr = best.schedule(np.arange(budget))
    grid = np.unique(np.linspace(max(1, budget // 20), budget - 1, 200).astype(int))
    curves = []
    for size in sizes.designs:
        label = f"{size.name} ({describe_count(size.params)})"
        if size is sizes.target:
            label += ", target"
        curves.append(LossCurve(label, grid, *size.law.predict_with_band(lr, grid)))
    return plot_loss_curves(
        curves,
        out / "sizes.png",
        title="the recommended schedule, forecast at each size",
        zoom_from=(1 - ZOOM_SHARE) * budget,
        loss=loss,
    )


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
    # Runs of one schedule (a study across sizes runs each at every size) are drawn once.
    same: dict[bytes, list[Run]] = {}
    for run in runs:
        same.setdefault(np.asarray(run.lr[:budget]).tobytes(), []).append(run)
    run_labels = {run.name: f"run: {run.name}" for run in runs}
    for group in same.values():
        if len(group) > 1:
            run_labels[group[0].name] += f" (and {len(group) - 1} more of this schedule)"
    schedules += [(run_labels[group[0].name], group[0].lr[:budget]) for group in same.values()]
    labels = [label for label, _ in schedules] + [v.name for v in verifications]
    styles = assign_styles(labels + [label for label in run_labels.values() if label not in labels])
    run_styles = {run.name: styles[run_labels[run.name]] for run in runs}
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
