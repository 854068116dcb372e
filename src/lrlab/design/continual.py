"""Plans for a continual-pre-training stage: how to schedule the LR of ``M`` more steps after a
base run, compared under the law fitted to that run.

- ``rewarm-redecay``: re-warm to the peak and decay again by cosine to 10% (Gupta et al. 2023,
  arXiv:2308.04014; Ibrahim et al. 2024, arXiv:2403.08763);
- ``infinite``: re-warm, cosine cooldown to a constant, hold it, anneal exponentially over the
  last tenth (the infinite schedule of Ibrahim et al. 2024);
- ``constant``: go on at the base run's final LR.

Each plan is a `join` of the base schedule and the new stage, runnable as it is in the wind tunnel.
A law fitted on one data distribution forecasts the effect of the LR alone: it cannot see the loss
jump that new data causes or the forgetting of old data, so compare plans with each other rather
than reading their losses as the new stage's absolute loss.
"""

from __future__ import annotations

import dataclasses

from lrlab.design.optimize import Forecast, check_peak, check_steps, forecast
from lrlab.errors import LrlabError
from lrlab.laws.base import Law
from lrlab.schedules import MAX_STEPS, MAX_STEPS_TEXT, Schedule, from_spec, join


@dataclasses.dataclass(frozen=True)
class ContinualPlan:
    """One way to schedule the new stage, with the forecast over base + stage."""

    name: str
    schedule: Schedule  # base and new stage joined
    forecast: Forecast


def plan_continual(
    law: Law,
    base: Schedule,
    base_steps: int,
    stage_steps: int,
    *,
    peak: float,
    warmup: int,
) -> list[ContinualPlan]:
    """The three plans for `stage_steps` more steps after `base_steps` steps of `base`."""
    base_steps = check_steps("base_steps", base_steps)
    stage_steps = check_steps("stage_steps", stage_steps)
    if base_steps + stage_steps > MAX_STEPS:
        raise LrlabError(
            f"base_steps + stage_steps = {base_steps + stage_steps} is more than {MAX_STEPS_TEXT}, "
            "lrlab's step limit"
        )
    peak = check_peak(peak)
    warmup = check_steps("warmup", warmup, low=0)
    if warmup >= stage_steps:
        raise LrlabError(f"warmup={warmup} must be less than the stage's {stage_steps} steps")
    final_lr = float(base(base_steps - 1))
    anneal = max(1, stage_steps // 10)
    stages = {
        "rewarm-redecay": {
            "name": "rewarm_redecay",
            "start": final_lr,
            "peak": peak,
            "warmup": warmup,
            "total": stage_steps,
            "end_ratio": 0.1,
        },
        "infinite": {
            "name": "infinite",
            "peak": peak,
            "warmup": warmup,
            "cooldown_steps": max(1, stage_steps // 5),
            "anneal_start": stage_steps - anneal,
            "anneal_steps": anneal,
        },
        "constant": {"name": "constant", "peak": final_lr},
    }
    plans = []
    for name, spec in stages.items():
        stage = from_spec(spec)
        whole = join([base, stage], [base_steps])
        plans.append(ContinualPlan(name, whole, forecast(law, whole, base_steps + stage_steps)))
    return plans
