"""Live forecasts inside trainers: the final loss and band, and the best cooldown start, logged to
the trainer's own loggers and to a JSON file beside the run, with the fits off the training
thread (docs/live.md).

- `Forecaster`: a plain loop, ``update(step, loss, lr)`` and ``forecast()``;
- `TrainerForecastCallback` (and `add_forecast_callback`): a Hugging Face ``TrainerCallback``
  (needs the ``hf`` extra);
- `LightningForecastCallback`: a PyTorch Lightning ``Callback`` (needs the ``lightning`` extra).

Each name is imported on first use, so this package needs neither transformers nor Lightning
until their callback is asked for, and then an import error names the extra to install.
"""

from __future__ import annotations

import importlib
from typing import Any

from lrlab.errors import require

# Name -> its module, and the extra installing the framework that module imports ("" for none).
_EXPORTS = {
    "Forecaster": ("lrlab.integrations.loop", ""),
    "forecast_metrics": ("lrlab.integrations.loop", ""),
    "METRIC_NAMES": ("lrlab.integrations.loop", ""),
    "TrainerForecastCallback": ("lrlab.integrations.huggingface", "hf"),
    "add_forecast_callback": ("lrlab.integrations.huggingface", "hf"),
    "LightningForecastCallback": ("lrlab.integrations.lightning", "lightning"),
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'lrlab.integrations' has no attribute {name!r}")
    module_name, extra = _EXPORTS[name]
    module = (
        require(module_name, extra, f"{__name__}.{name}")
        if extra
        else importlib.import_module(module_name)
    )
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
