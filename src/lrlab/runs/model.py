"""The `Run` model: one training run's per-step learning rate and its logged losses."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from lrlab.errors import LrlabError, LrlabWarning

# The largest learning rate accepted: far above any optimiser's (SGD with LARS stays under 100),
# so a larger one is a unit mix-up or damage, and it would overflow the laws' LR sums.
MAX_LR = 1e3


class RunWarning(LrlabWarning):
    """A run was read, but something in it deserves a look (dropped points, sparse LR log)."""


@dataclasses.dataclass(frozen=True, eq=False)
class Run:
    """A training run as the laws see it.

    `lr[t]` is the learning rate used at step ``t`` for every step from 0 to the last logged step
    (so ``len(lr) == steps[-1] + 1`` at least); `steps` are the logged steps, strictly increasing,
    and `loss[i]` the finite loss observed at ``steps[i]``. `source` says where the run came from
    (a path, or a description), `metadata` how it was read (e.g. where its LR came from).
    """

    name: str
    lr: np.ndarray
    steps: np.ndarray
    loss: np.ndarray
    source: str = ""
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        lr = np.asarray(self.lr, dtype=np.float64)
        steps = np.asarray(self.steps)
        loss = np.asarray(self.loss, dtype=np.float64)
        where = f"run {self.name!r}" + (f" ({self.source})" if self.source else "")
        if steps.ndim != 1 or loss.ndim != 1 or lr.ndim != 1:
            raise LrlabError(f"{where}: lr, steps and loss must be one-dimensional")
        if steps.size == 0:
            raise LrlabError(f"{where}: no logged loss values")
        if steps.size != loss.size:
            raise LrlabError(f"{where}: {steps.size} steps but {loss.size} loss values")
        if not np.all(np.isfinite(steps)) or np.any(steps != np.round(steps)):
            raise LrlabError(f"{where}: steps must be whole numbers")
        steps = steps.astype(np.int64)
        if steps[0] < 0 or np.any(np.diff(steps) <= 0):
            raise LrlabError(f"{where}: steps must be non-negative and strictly increasing")
        if not np.all(np.isfinite(loss)):
            raise LrlabError(f"{where}: loss values must be finite")
        if lr.size < steps[-1] + 1:
            raise LrlabError(
                f"{where}: per-step lr covers steps 0..{lr.size - 1} but the last logged step is "
                f"{steps[-1]}"
            )
        if not np.all(np.isfinite(lr)) or np.any(lr < 0):
            raise LrlabError(f"{where}: learning rates must be finite and non-negative")
        object.__setattr__(self, "lr", lr)
        object.__setattr__(self, "steps", steps)
        object.__setattr__(self, "loss", loss)

    @property
    def logged_lr(self) -> np.ndarray:
        """The learning rate at each logged step."""
        return self.lr[self.steps]

    def until(self, last_step: int) -> Run:
        """The same run cut after `last_step` (losses and per-step LR)."""
        keep = self.steps <= last_step
        if not np.any(keep):
            raise LrlabError(f"run {self.name!r}: no logged step at or before {last_step}")
        return dataclasses.replace(
            self,
            lr=self.lr[: last_step + 1],
            steps=self.steps[keep],
            loss=self.loss[keep],
        )
