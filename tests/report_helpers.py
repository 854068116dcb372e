"""Helpers shared by the report tests: SYNTHETIC runs and a study report written from them (no
training and no shared data, so the report tests always run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lrlab.design.optimize import baselines, forecast
from lrlab.laws import get_law
from lrlab.report.study_report import Analysis, Verification, write_report
from lrlab.runs import Run
from lrlab.schedules import parse

BUDGET = 400


def synthetic_run(name: str, spec: str, source: str | None = None, budget: int = BUDGET) -> Run:
    """SYNTHETIC: a run of `spec` whose loss is the power law ``2 + 0.5 * S1^-0.4`` with a small
    deterministic wiggle (an exact curve would leave the band no spread to calibrate on)."""
    lr = parse(spec)(np.arange(budget))
    steps = np.arange(5, budget, 5)
    loss = (2.0 + 0.5 * np.cumsum(lr)[steps] ** -0.4) * (1 + 1e-4 * np.sin(steps))
    return Run(name, lr, steps, loss, source=source or f"<{name}>.csv")


def full_report(out: Path, names: tuple[str, str], budget: int = BUDGET) -> dict[str, Any]:
    """A report with everything a study report shows: two fit runs named `names` (their files
    have long paths), the three baselines, and two of them checked by (synthetic) training."""
    peak, warmup = 1e-3, budget // 20
    runs = [
        synthetic_run(
            names[0], f"constant(peak={peak}, warmup={warmup})", "/logs/a/long/folder/const.csv"
        ),
        synthetic_run(
            names[1],
            f"cosine(peak={peak}, total={budget}, warmup={warmup})",
            "/logs/a/long/folder/with_a_long_file_name_for_the_cosine_run.csv",
        ),
    ]
    law = get_law("power").fit(runs)
    forecasts = {
        name: forecast(law, schedule, budget)
        for name, schedule in baselines(peak, budget, warmup).items()
    }
    best = forecast(law, parse(f"constant(peak={peak}, warmup={warmup})"), budget)
    analysis = Analysis(
        law, {"power": {"error": "not scored"}}, budget, peak, warmup, best, forecasts
    )
    checked = [
        Verification(name, forecasts[name], synthetic_run(name, str(forecasts[name].schedule)))
        for name in ("wsd-20%-linear", "cosine-10%")
    ]
    return write_report(analysis, runs, out, title="a study", verifications=checked)
