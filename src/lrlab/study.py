"""``lrlab study``: which schedule, and what loss will it reach? One command, with the evidence.

On the user's logs (`study_runs`): read the runs, fit every law, score each law by predicting each
run from the others (leave-one-run-out; with a single run, its last 30% from its first 70%), keep
the law that forecasts best, optimise a schedule for the budget under it, and compare it with
cosine-to-10%, WSD-20%-linear and linear-to-zero at the same budget.

On the built-in default (`study_default`, needs PyTorch): first train a constant, a cosine and a
two-stage run in the wind tunnel, study them as above, then train the recommended schedule and
WSD-20%-linear to check the forecasts against measured losses. Runs that finished are reused,
so an interrupted study resumes where it stopped.

Both write ``summary.json`` and a self-contained ``report.html`` (`lrlab.report.html`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lrlab import __version__
from lrlab.atomic import atomic_write_text
from lrlab.design.optimize import Forecast, baselines, design_schedule
from lrlab.errors import LrlabError
from lrlab.laws import Law, get_law
from lrlab.laws.metrics import coverage, pred_e, worst_e
from lrlab.report.html import render_report
from lrlab.report.plots import LossCurve, plot_loss_curves, plot_schedules
from lrlab.runs import Run
from lrlab.schedules import Schedule, from_spec

LAW_NAMES = ("power", "momentum", "mpl", "lrlab")
HOLDOUT_FRACTION = 0.3  # a single run is scored on its last 30% from a fit to the rest

Progress = Callable[[str], None]


def _silent(_: str) -> None:
    pass


# --- choosing a law -----------------------------------------------------------------------------


def cross_validate(name: str, runs: Sequence[Run]) -> dict[str, dict[str, float]]:
    """PredE and WorstE of law `name` on each run, forecast by a fit that never saw it."""
    scores = {}
    for index, run in enumerate(runs):
        if len(runs) > 1:
            law = get_law(name, bands=False).fit([r for i, r in enumerate(runs) if i != index])
            target = run
        else:  # one run: fit its beginning, forecast its end
            cut = int(run.steps[-1] * (1 - HOLDOUT_FRACTION))
            law = get_law(name, bands=False).fit([run.until(cut)])
            keep = run.steps > cut
            target = dataclasses.replace(run, steps=run.steps[keep], loss=run.loss[keep])
        pred = law.predict_run(target)
        defined = np.isfinite(pred)
        if not np.any(defined):
            raise LrlabError(f"run {run.name!r}: no logged step to score after the LR starts")
        scores[run.name] = {
            "PredE": pred_e(target.loss[defined], pred[defined]),
            "WorstE": worst_e(target.loss[defined], pred[defined]),
        }
    return scores


def choose_law(
    runs: Sequence[Run], names: Sequence[str] = LAW_NAMES, progress: Progress = _silent
) -> tuple[str, dict[str, dict[str, Any]]]:
    """The law with the lowest mean cross-validated PredE, and every law's scores."""
    table: dict[str, dict[str, Any]] = {}
    for name in names:
        progress(f"cross-validating law {name!r} on {len(runs)} run(s)")
        try:
            scores = cross_validate(name, runs)
        except LrlabError as error:  # a law that cannot fit these runs is reported, not chosen
            table[name] = {"error": str(error)}
            continue
        table[name] = {
            "runs": scores,
            "PredE": float(np.mean([s["PredE"] for s in scores.values()])),
            "WorstE": float(np.mean([s["WorstE"] for s in scores.values()])),
        }
    scored = [name for name in names if "PredE" in table[name]]
    if not scored:
        raise LrlabError("no law could be fitted to these runs")
    return min(scored, key=lambda name: table[name]["PredE"]), table


# --- the study ----------------------------------------------------------------------------------


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


def analyse(
    runs: Sequence[Run],
    *,
    budget: int | None = None,
    peak: float | None = None,
    warmup: int | None = None,
    progress: Progress = _silent,
) -> Analysis:
    """Choose a law by cross-validation, fit it, and optimise a schedule for the budget."""
    if not runs:
        raise LrlabError("a study needs at least one run")
    chosen, law_table = choose_law(runs, progress=progress)
    progress(f"fitting law {chosen!r} (with its band) on all runs")
    law = get_law(chosen).fit(list(runs))
    budget = int(budget or max(int(run.steps[-1]) + 1 for run in runs))
    peak = float(peak if peak is not None else law.fit_info_["peak_lr"])
    warmup = int(warmup if warmup is not None else law.fit_info_["warmup_steps"])
    warmup = min(warmup, budget // 2)
    progress(f"optimising a schedule for {budget} steps under law {chosen!r}")
    design = design_schedule(law, budget, peak=peak, warmup=warmup, family="free")
    return Analysis(law, law_table, budget, peak, warmup, design.best, design.baselines)


def write_report(
    analysis: Analysis,
    runs: Sequence[Run],
    out: str | Path,
    *,
    title: str = "lrlab study",
    verifications: Sequence[Verification] = (),
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``summary.json``, the figures and ``report.html`` into `out`; return the summary."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    law, best = analysis.law, analysis.recommended
    fitted = [_observed_curve(law, run, run.name) for run in runs]
    figures = _figures(law, runs, fitted, best, analysis.comparisons, verifications,
                       analysis.budget, out)
    summary = {
        "lrlab": __version__,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "title": title,
        "budget": analysis.budget,
        "peak_lr": analysis.peak,
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


def study_runs(
    runs: Sequence[Run],
    out: str | Path,
    *,
    budget: int | None = None,
    peak: float | None = None,
    warmup: int | None = None,
    progress: Progress = _silent,
) -> dict[str, Any]:
    """The study of the user's logs: analyse and report (no training)."""
    analysis = analyse(runs, budget=budget, peak=peak, warmup=warmup, progress=progress)
    names = ", ".join(run.name for run in runs)
    summary = write_report(analysis, runs, out, title=f"lrlab study of {names}")
    progress(f"wrote {Path(out) / 'report.html'} and {Path(out) / 'summary.json'}")
    return summary


def _forecast_summary(f: Forecast, steps: int) -> dict[str, Any]:
    return {"spec": f.schedule.to_spec(), "text": str(f.schedule),
            "shape": describe_shape(f.schedule(np.arange(steps))), "final_loss": f.final_loss,
            "band": [f.low, f.high]}


def describe_shape(lr: np.ndarray) -> str:
    """A schedule in words: where it peaks, how long it holds, where the decay ends."""
    peak_step = int(np.argmax(lr))
    peak = float(lr[peak_step])
    held = peak_step + int(np.argmax(lr[peak_step:] < 0.99 * peak)) if np.any(
        lr[peak_step:] < 0.99 * peak) else lr.size
    text = f"peak {peak:.3g} at step {peak_step}"
    if held >= lr.size:
        return text + ", held to the end"
    share = 100.0 * (lr.size - held) / lr.size
    return (f"{text}, held until step {held}, then decays over the last {share:.0f}% of the "
            f"steps to {float(lr[-1]):.3g}")


def _verification_summary(v: Verification, steps: int) -> dict[str, Any]:
    return {
        "name": v.name,
        **_forecast_summary(v.predicted, steps),
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
        "schedules": plot_schedules(schedules, out / "schedules.png",
                                    title="learning-rate schedules"),
        "fit": plot_loss_curves(fitted, out / "fit.png",
                                title=f"law {law.name!r}: observed vs fitted"),
        "forecast": plot_loss_curves(forecasts, out / "forecast.png",
                                     title=f"forecast over {budget} steps",
                                     zoom_from=0.6 * budget),
    }
    if verifications:
        checked = [_observed_curve(law, v.run, v.name) for v in verifications]
        figures["verification"] = plot_loss_curves(
            checked, out / "verification.png", title="forecast (lines) vs measured (dots)",
            zoom_from=0.6 * budget,
        )
    return figures


# --- the built-in default: evidence from the wind tunnel ----------------------------------------

#: The default study: a 0.1M-parameter byte-level model on the Python standard library's source,
#: small enough that fitting, forecasting and checking take a few minutes on two CPU cores.
DEFAULT_STUDY: dict[str, Any] = {
    "budget": 800,
    "peak": 3e-3,
    "warmup": 40,
    # The three-run protocol of Luo et al. (2025): a constant run, a cosine run, and a two-stage
    # run whose sudden drop shows the law how fast a lower LR pays off, which smooth schedules
    # alone leave undetermined (and an optimiser then exploits).
    "fit_schedules": {
        "constant": "constant(peak={peak}, warmup={warmup})",
        "cosine": "cosine(peak={peak}, total={budget}, warmup={warmup}, end_ratio=0.1)",
        "two-stage": "two_stage(peak={peak}, warmup={warmup}, drop_step={drop_step}, "
                     "low={low})",
    },
    "verify": ["recommended", "wsd-20%-linear"],
    "tunnel": {
        "model": {"d_model": 64, "n_layers": 2, "n_heads": 4},
        # 8 MB of the library's source: far more tokens than the runs see, quick to tokenise.
        "data": {"corpus": "stdlib", "max_bytes": 8_000_000},
        "train": {"batch_size": 16, "seq_len": 64, "eval_interval": 10, "eval_batches": 4,
                  "checkpoint_interval": 100, "seed": 0},
    },
}
_STUDY_KEYS = set(DEFAULT_STUDY)


def study_config(data: dict[str, Any] | None = None, source: str = "study config") -> dict[str, Any]:
    """The default study with a user's overrides (from ``--config FILE``), checked."""
    data = data or {}
    if not isinstance(data, dict):
        raise LrlabError(f"{source}: expected a mapping of study settings")
    unknown = sorted(set(data) - _STUDY_KEYS)
    if unknown:
        raise LrlabError(f"{source}: unknown field {unknown[0]!r} "
                         f"(fields: {', '.join(sorted(_STUDY_KEYS))})")
    config = {**DEFAULT_STUDY, **data}
    tunnel = DEFAULT_STUDY["tunnel"]
    config["tunnel"] = {section: {**tunnel.get(section, {}), **data.get("tunnel", {}).get(section, {})}
                        for section in {*tunnel, *data.get("tunnel", {})}}
    for field, kind, low in (("budget", int, 20), ("warmup", int, 0), ("peak", float, 0.0)):
        value = config[field]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low or (
                kind is int and int(value) != value):
            raise LrlabError(f"{source}: {field}={value!r} must be a {kind.__name__} >= {low}")
    if config["warmup"] >= config["budget"] // 2:
        raise LrlabError(f"{source}: warmup={config['warmup']} must be under half the budget")
    if not isinstance(config["fit_schedules"], dict) or not config["fit_schedules"]:
        raise LrlabError(f"{source}: fit_schedules must map run names to schedule specs")
    allowed = {"recommended", *baselines(1.0, 100, 0)}
    bad = [name for name in config["verify"] if name not in allowed]
    if bad:
        raise LrlabError(f"{source}: verify: {bad[0]!r} is not one of {', '.join(sorted(allowed))}")
    return config


def study_default(
    out: str | Path, config: dict[str, Any] | None = None, *, progress: Progress = _silent
) -> dict[str, Any]:
    """Train the fit runs in the wind tunnel, analyse them, train the schedules to verify, and
    report. Finished runs in `out` are reused and unfinished ones resumed."""
    config = study_config(config)
    out = Path(out)
    budget, peak, warmup = config["budget"], float(config["peak"]), config["warmup"]
    values = {"budget": budget, "peak": peak, "warmup": warmup,
              "drop_step": max(warmup, round(0.6 * budget)), "low": float(f"{peak / 10:.6g}")}
    jobs = {name: from_spec(spec.format(**values))
            for name, spec in config["fit_schedules"].items()}
    total = len(jobs) + len(config["verify"])
    runs = [
        train_tunnel_run(config, _run_folder(out, f"fit-{name}", schedule, config), name, schedule,
                         progress, f"[{index}/{total}]")
        for index, (name, schedule) in enumerate(jobs.items(), start=1)
    ]
    analysis = analyse(runs, budget=budget, peak=peak, warmup=warmup, progress=progress)
    forecasts = {"recommended": analysis.recommended, **analysis.comparisons}
    verifications = []
    for index, name in enumerate(config["verify"], start=len(jobs) + 1):
        predicted = forecasts[name]
        folder = _run_folder(out, f"verify-{name}", predicted.schedule, config)
        run = train_tunnel_run(config, folder, name, predicted.schedule, progress,
                               f"[{index}/{total}]")
        verifications.append(Verification(name, predicted, run))
    summary = write_report(
        analysis, runs, out, title="lrlab study: wind-tunnel runs on the Python standard library",
        verifications=verifications, extra={"study_config": config},
    )
    progress(f"wrote {out / 'report.html'} and {out / 'summary.json'}")
    return summary


def _run_folder(out: Path, role: str, schedule: Schedule, config: dict[str, Any]) -> Path:
    """``out/runs/ROLE-HASH``, the hash that of the run's schedule and tunnel setup, so a changed
    schedule (say, a different recommendation) or setup trains a new run instead of resuming a
    different one."""
    text = json.dumps([str(schedule), config["tunnel"]], sort_keys=True, default=str)
    return out / "runs" / f"{role}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"


def train_tunnel_run(config: dict[str, Any], folder: Path, name: str, schedule: Schedule,
                     progress: Progress, counter: str) -> Run:
    """Train `schedule` for ``config["budget"]`` steps with the setup ``config["tunnel"]`` in
    `folder` (a finished run is reused, an interrupted one resumed) and read its eval curve."""
    from lrlab.runs import read_run
    from lrlab.tunnel import config_from_dict
    from lrlab.tunnel.train import train

    tunnel = {section: dict(values) for section, values in config["tunnel"].items()}
    tunnel.setdefault("train", {}).update(schedule=str(schedule), steps=config["budget"])
    resume = folder.exists()  # a finished run is reused, an interrupted one continued
    progress(f"{counter} {'resuming' if resume else 'training'} {name}: {schedule}")
    record = train(config_from_dict(tunnel, source=f"study run {name}"), folder, resume=resume)
    if record.get("status") != "finished":
        raise LrlabError(f"{folder}: the {name} run did not finish ({record.get('status')}); "
                         "lower the peak LR in the study config")
    run = read_run(folder / "eval.csv")
    return dataclasses.replace(run, name=name)
