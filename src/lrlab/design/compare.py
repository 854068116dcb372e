"""A design's forecasts against runs the user has measured: was the design optimistic or
pessimistic at its budgets?

A design says which schedule should end lowest at a budget and what loss it will reach. It
cannot be checked directly until its schedule is trained, but the runs a user has already
measured at that budget check the law it rests on: for each run whose length matches a budget of
the design, the run's measured final loss against the law's forecast for that run's own schedule
(the error: the law, and with it the design's forecast there, is optimistic or pessimistic by
about that much), and the forecast gain of the design's schedule over the run's, with the band of
that difference (`Law.compare_final`). A measured run that ended below the design's forecast
best says the forecast was pessimistic there, whatever the band.

A design file is what `lrlab optimize --json` prints (the best schedule for ``steps``, and with
``--budgets`` the best WSD schedule of each budget) or a study's ``summary.json`` (its
recommendation for ``budget``). The forecasts are made again with the law given, from the
design's schedules, so that every number compared comes from one fit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lrlab.design.optimize import Forecast, check_steps, forecast
from lrlab.errors import LrlabError, brief
from lrlab.laws.base import Law
from lrlab.mapping_file import read_mapping
from lrlab.runs.model import Run
from lrlab.schedules import from_spec

# A run matches a budget when its length (last logged step + 1) is within this fraction of it:
# logs rarely hold the very last step (the 124M logs end 200 steps before theirs).
MATCH_TOLERANCE = 0.01


@dataclasses.dataclass(frozen=True)
class DesignPoint:
    """One schedule a design forecasts: its label, budget and spec (the forecast is the law's)."""

    label: str
    budget: int
    spec: Any


def read_design(path: str | Path) -> list[DesignPoint]:
    """The schedules of a design file (`lrlab optimize --json` output or a study's
    ``summary.json``), each with its budget; an `LrlabError` naming the file and field
    otherwise."""
    data = read_mapping(path, "design")
    source = str(path)
    if "best" in data:  # lrlab optimize --json
        family = data.get("family", "free")
        points = [_point(data["best"], data.get("steps"), f"best ({family})", source, "best")]
        budgets = data.get("budgets", [])
        if not isinstance(budgets, list):
            raise LrlabError(f"{source}: field 'budgets' must be a list, got {brief(budgets)}")
        for index, entry in enumerate(budgets):
            where = f"budgets[{index}]"
            if not isinstance(entry, dict):
                raise LrlabError(f"{source}: {where} must be a mapping")
            points.append(_point(entry, entry.get("steps"), "best wsd", source, where))
        return points
    if "recommended" in data:  # a study's summary.json
        recommended = data["recommended"]
        return [_point(recommended, data.get("budget"), "recommended", source, "recommended")]
    raise LrlabError(
        f"{source}: not a design (no field 'best' as `lrlab optimize --json` writes, nor "
        "'recommended' as a study's summary.json)"
    )


def _point(entry: Any, budget: Any, label: str, source: str, where: str) -> DesignPoint:
    """One design point from a design file's entry (with its 'spec') and budget, checked."""
    if not isinstance(entry, dict) or "spec" not in entry:
        raise LrlabError(f"{source}: {where} must be a mapping with a 'spec'")
    budget = check_steps(f"{source}: {where} budget", budget)
    try:
        from_spec(entry["spec"])
    except LrlabError as error:
        raise LrlabError(f"{source}: {where} spec: {error}") from None
    return DesignPoint(label, budget, entry["spec"])


def check_design(
    law: Law, points: Sequence[DesignPoint], runs: Sequence[Run], level: float | None = None
) -> dict[str, Any]:
    """Each design point with the measured runs of its budget (length within `MATCH_TOLERANCE`):
    the point's forecast; per run its measured final loss, the law's forecast for it and the
    error (measured - forecast: negative where the law is pessimistic), the design's forecast
    gain over it with the difference's band, and by how much it ended below the design's
    forecast; per point the mean error. Runs matching no budget are listed by name."""
    matched: set[str] = set()
    rows = []
    for point in points:
        schedule = from_spec(point.spec)
        expected = forecast(law, schedule, point.budget)
        design_finals = law.final_replicas(schedule(np.arange(point.budget)))
        checked = []
        for run in runs:
            length = int(run.steps[-1]) + 1
            if abs(length - point.budget) > MATCH_TOLERANCE * point.budget:
                continue
            matched.add(run.name)
            pred, low, high = law.predict_with_band(run.lr, run.steps[-1:], level)
            measured = float(run.loss[-1])
            gain = law.compare_finals(law.final_replicas(run.lr), design_finals, level)
            checked.append(
                {
                    "run": run.name,
                    "last_step": length - 1,
                    "measured": measured,
                    "forecast": float(pred[0]),
                    "band": [float(low[0]), float(high[0])],
                    "error": measured - float(pred[0]),
                    "design_gain": gain.difference,
                    "design_gain_low": gain.low,
                    "design_gain_high": gain.high,
                    "design_gain_text": gain.describe_gain(),
                    "below_design_forecast": expected.final_loss - measured,
                }
            )
        rows.append(
            {
                "label": point.label,
                "budget": point.budget,
                **_forecast_fields(expected),
                "runs": checked,
                "mean_error": float(np.mean([r["error"] for r in checked])) if checked else None,
            }
        )
    unmatched = [run.name for run in runs if run.name not in matched]
    return {"points": rows, "unmatched": unmatched}


def _forecast_fields(f: Forecast) -> dict[str, Any]:
    return {"spec": f.schedule.to_spec(), "final_loss": f.final_loss, "band": [f.low, f.high]}


def describe_check(check: dict[str, Any]) -> list[str]:
    """`check_design`'s result as lines of text, one per design point and one per run."""
    lines = []
    for point in check["points"]:
        low, high = point["band"]
        lines.append(
            f"budget {point['budget']}, {point['label']}: forecast {point['final_loss']:.4f} "
            f"[{low:.4f}, {high:.4f}]"
        )
        if not point["runs"]:
            lines.append("  no measured run of this budget")
            continue
        for row in point["runs"]:
            beaten = row["below_design_forecast"]
            where = "below" if beaten > 0 else "above"
            lines.append(
                f"  {row['run']}: measured {row['measured']:.4f} at step {row['last_step']}, "
                f"{abs(beaten):.4f} {where} the design's forecast"
            )
            lines.append(
                f"    the law's forecast for this run {row['forecast']:.4f} (error "
                f"{row['error']:+.4f}); the design over this run's schedule: "
                f"{row['design_gain_text']}"
            )
        error = point["mean_error"]
        leaning = "pessimistic" if error < 0 else "optimistic"
        lines.append(
            f"  mean error {error:+.4f} over {len(point['runs'])} run(s): the law was {leaning} "
            f"on the runs of this budget; expect this forecast to be {leaning} by about as much"
        )
    if check["unmatched"]:
        lines.append(
            f"runs of no design budget (length within {MATCH_TOLERANCE:.0%}): "
            + ", ".join(check["unmatched"])
        )
    return lines
