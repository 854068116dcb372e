"""Adapters that hand an lrlab schedule to a training framework: PyTorch, Hugging Face, optax.

Each adapter lives in its own module and imports its framework there, so ``import lrlab.adapters``
imports none of torch, transformers or jax; a name is loaded from its module on first use:

>>> from lrlab.adapters import LRLabScheduler  # imports torch now, not before

Where the framework is not installed, that import fails with a `ModuleNotFoundError` that names
the extra to install (``pip install 'lrlab[hf]'``), not only the missing module.
"""

from __future__ import annotations

from typing import Any

from lrlab.errors import require

# Public name -> module that defines it (and imports its framework), and the extras installing
# what that module needs (the Hugging Face Trainer runs on PyTorch, which the hf extra leaves out).
_LAZY_NAMES = {
    "LRLabScheduler": ("lrlab.adapters.torch_scheduler", "torch"),
    "LRLabScheduleMixin": ("lrlab.adapters.huggingface", "torch,hf"),
    "LRLabTrainer": ("lrlab.adapters.huggingface", "torch,hf"),
    "to_optax": ("lrlab.adapters.optax_schedule", "jax"),
}

__all__ = ["LRLabScheduleMixin", "LRLabScheduler", "LRLabTrainer", "to_optax"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module_name, extra = _LAZY_NAMES[name]
    return getattr(require(module_name, extra, f"{__name__}.{name}"), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
