"""Loss-curve laws: fit logged runs, predict the loss curve of any learning-rate schedule.

All laws share one interface (`Law`): ``fit(runs)``, ``predict(lr, steps)``,
``predict_interval(lr, steps)``, learned ``params_``/``param_errors_``, ``save``/`load_law`.
Each law is one file, ``lrlab/laws/<name>_law.py``, found and registered by `lrlab.laws.registry`.
`SizeLaw` (`lrlab.laws.sizes`) fits any law across model sizes and forecasts a size not yet run.
"""

from lrlab.laws.base import Law
from lrlab.laws.joint import fit_joint
from lrlab.laws.metrics import METRICS, evaluate, mean_metrics
from lrlab.laws.registry import (
    DEFAULT_LAW,
    DEFAULT_SINGLE_LAW,
    LAW_NAMES,
    REGISTRY,
    fit,
    get_law,
    load_law,
    register,
)
from lrlab.laws.sizes import SizeLaw

__all__ = [
    "DEFAULT_LAW",
    "DEFAULT_SINGLE_LAW",
    "LAW_NAMES",
    "METRICS",
    "REGISTRY",
    "Law",
    "SizeLaw",
    "evaluate",
    "fit",
    "fit_joint",
    "get_law",
    "load_law",
    "mean_metrics",
    "register",
]
