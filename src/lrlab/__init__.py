"""lrlab: design, predict and verify learning-rate schedules.

The public API, importable from ``lrlab`` itself::

    from lrlab import WSD, Cosine, parse, read_run, fit, load_law, forecast, optimize_schedule

- schedules (`lrlab.schedules`): every schedule class (`WSD`, `Cosine`, `Infinite`, ...) and
  `parse`, `from_spec`, `join`, `scale`, `continue_from`, `anneal`;
- runs (`lrlab.runs`): `Run`, `read_run`;
- laws (`lrlab.laws`): `fit`, `fit_joint`, `get_law`, `load_law`, `Law`, `LAW_NAMES`,
  `DEFAULT_LAW`, `evaluate`;
- design (`lrlab.design`): `forecast`, `optimize_schedule`, `budget_sweep`, `baselines`,
  `refine_schedule`, `plan_continual`.

Each name is loaded from its sub-package on first use, so ``import lrlab`` (and the command line)
stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_SCHEDULES = (
    "Schedule Constant Cosine CosineRestarts DampedCosine Exponential Infinite InverseSqrt "
    "Linear MultiStep OneCycle PiecewiseLinear Polynomial Power RepeatedCosine Rex "
    "RewarmRedecay Step Table TwoStage UBA WSD WSDC WSDS "
    "parse from_spec to_string join scale continue_from anneal load_spec save_spec"
)
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(_SCHEDULES.split(), "lrlab.schedules"),
    **dict.fromkeys(("Run", "read_run"), "lrlab.runs"),
    **dict.fromkeys(
        (
            "Law",
            "LAW_NAMES",
            "DEFAULT_LAW",
            "fit",
            "fit_joint",
            "SizeLaw",
            "get_law",
            "load_law",
            "evaluate",
        ),
        "lrlab.laws",
    ),
    **dict.fromkeys(
        (
            "Forecast",
            "forecast",
            "optimize_schedule",
            "budget_sweep",
            "baselines",
            "refine_schedule",
            "plan_continual",
        ),
        "lrlab.design",
    ),
}
__all__ = ["__version__", *_EXPORTS]  # noqa: PLE0604 (the keys of _EXPORTS are strings)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'lrlab' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
