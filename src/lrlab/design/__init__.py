"""Schedule design: optimise a schedule under a fitted law, refine one from gradient norms, and
plan continual pre-training."""

from lrlab.design.continual import ContinualPlan, plan_continual
from lrlab.design.optimize import (
    FAMILIES,
    BudgetPoint,
    Design,
    Forecast,
    baselines,
    budget_sweep,
    forecast,
    optimize_schedule,
)
from lrlab.design.refine import VARIANTS, refine_schedule

__all__ = [
    "FAMILIES",
    "VARIANTS",
    "BudgetPoint",
    "ContinualPlan",
    "Design",
    "Forecast",
    "baselines",
    "budget_sweep",
    "forecast",
    "optimize_schedule",
    "plan_continual",
    "refine_schedule",
]
