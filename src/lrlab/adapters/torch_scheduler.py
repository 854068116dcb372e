"""An lrlab schedule as a PyTorch learning-rate scheduler (`torch.optim.lr_scheduler.LRScheduler`).

>>> scheduler = LRLabScheduler(optimizer, "cosine(peak=3e-4, total=10000, warmup=500)")
>>> for batch in loader:
...     loss(batch).backward(); optimizer.step(); optimizer.zero_grad()
...     scheduler.step()

As with every PyTorch scheduler, the LR after `n` calls of `step()` is the schedule at step `n`
(step 0 on construction). The schedule gives absolute LRs; each parameter group's LR is the
schedule times the group's multiplier (see `LRLabScheduler`).

Speed: the schedules are evaluated vectorised over a chunk of upcoming steps and kept, so a step is
a list lookup and a multiply per group. Only one chunk per distinct schedule is held, so memory is
bounded however long the run, and the values are those of ``schedule(np.arange(...))``, exactly.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from lrlab.errors import SpecError
from lrlab.schedules import Schedule, from_spec

ScheduleLike = Schedule | dict[str, Any] | str

# Plain-data keys of the state dict, loadable with `torch.load(..., weights_only=True)`.
_COUNTER_KEYS = ("last_epoch", "_step_count", "base_lrs", "_last_lr")


class LRLabScheduler(LRScheduler):
    """Sets each parameter group's LR from an lrlab schedule (a `Schedule`, spec dict or string).

    Args:
        optimizer: the optimizer whose ``param_groups[i]["lr"]`` this scheduler sets.
        schedule: one schedule for every group, or a list with one schedule per group.
        on_spec_mismatch: what `load_state_dict` does when the saved schedule specs differ from
            this scheduler's: ``"error"`` (raise `SpecError`, the default, so a resumed job cannot
            silently follow another schedule) or ``"warn"`` (warn and use this scheduler's
            schedules from the saved step on, to change the schedule of a run on purpose).
        chunk_steps: how many steps to evaluate at once; memory is ``chunk_steps`` floats per
            distinct schedule.
        last_epoch: as in every PyTorch scheduler; leave it at -1 and resume with
            `load_state_dict`.

    Group multipliers: group ``i`` gets ``schedule_i(t) * multiplier_i``, where
    ``multiplier_i = group.get("lr_scale", 1.0)`` (the timm convention for layer-wise LR decay),
    further multiplied, when one schedule is shared by all groups, by the ratio of the group's
    initial ``lr`` to group 0's. So per-group LRs given to the optimizer keep their ratios, as with
    `LambdaLR`, and group 0 follows the schedule exactly. With a list of schedules each schedule is
    that group's absolute LR and the optimizer's ``lr`` values are ignored.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        schedule: ScheduleLike | Sequence[ScheduleLike],
        *,
        on_spec_mismatch: Literal["error", "warn"] = "error",
        chunk_steps: int = 4096,
        last_epoch: int = -1,
    ) -> None:
        if on_spec_mismatch not in ("error", "warn"):
            raise ValueError(
                f"on_spec_mismatch must be 'error' or 'warn', got {on_spec_mismatch!r}"
            )
        if chunk_steps < 1:
            raise ValueError(f"chunk_steps must be at least 1, got {chunk_steps}")
        groups = optimizer.param_groups
        shared = not isinstance(schedule, (list, tuple))
        self.schedules: list[Schedule] = _schedule_per_group(schedule, len(groups))
        self.multipliers: list[float] = _group_multipliers(groups, shared)
        self.on_spec_mismatch = on_spec_mismatch
        self.chunk_steps = chunk_steps
        # Groups with equal schedules share one cached row of values.
        self._distinct = list(dict.fromkeys(self.schedules))
        self._row_of_group = [self._distinct.index(item) for item in self.schedules]
        self._chunk_start = 0
        self._group_rows: list[list[float]] = [[] for _ in groups]  # empty: filled on first use
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """The LR of each group at step `last_epoch`."""
        return self.lrs_at(self.last_epoch)

    def lrs_at(self, step: int) -> list[float]:
        """The LR of each group at `step`, from the cached chunk (evaluating a new one if
        needed)."""
        offset = step - self._chunk_start
        if not 0 <= offset < len(self._group_rows[0]):
            self._evaluate_chunk(step)
            offset = 0
        return [row[offset] * scale for row, scale in zip(self._group_rows, self.multipliers)]

    def _evaluate_chunk(self, start: int) -> None:
        steps = np.arange(start, start + self.chunk_steps, dtype=np.float64)
        # tolist(): indexing a list of Python floats is several times faster than a numpy array.
        rows = [schedule(steps).tolist() for schedule in self._distinct]
        self._group_rows = [rows[index] for index in self._row_of_group]
        self._chunk_start = start

    def state_dict(self) -> dict[str, Any]:
        """The step counters, group multipliers and schedule specs, as plain data (so that
        ``torch.load(..., weights_only=True)`` reads it, as the Hugging Face Trainer does).

        Each distinct schedule's spec is stored once, with the index of each group's schedule:
        a table schedule's spec holds a value per step.
        """
        state = {key: getattr(self, key) for key in _COUNTER_KEYS}
        state["multipliers"] = list(self.multipliers)
        state["schedule_specs"] = self._specs()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the step and multipliers, check the schedules, and set the groups' LRs.

        Raises `SpecError` if the saved schedule specs differ from this scheduler's (or warns, with
        ``on_spec_mismatch="warn"``), and `ValueError` if the number of groups differs.
        """
        saved_multipliers = list(state_dict["multipliers"])
        if len(saved_multipliers) != len(self.multipliers):
            raise ValueError(
                f"the saved scheduler has {len(saved_multipliers)} parameter groups, "
                f"this optimizer has {len(self.multipliers)}"
            )
        self._check_specs(state_dict["schedule_specs"])
        for key in _COUNTER_KEYS:
            setattr(self, key, state_dict[key])
        self.multipliers = saved_multipliers
        # Setting the LRs here makes a resumed run exact even if the optimizer's state (which
        # holds the LRs) is loaded after the scheduler, or not at all.
        for group, lr in zip(self.optimizer.param_groups, self.lrs_at(self.last_epoch)):
            _set_group_lr(group, lr)
        self._last_lr = [_copy_lr(group["lr"]) for group in self.optimizer.param_groups]

    def _specs(self) -> dict[str, list[Any]]:
        return {
            "distinct": [schedule.to_spec() for schedule in self._distinct],
            "of_group": list(self._row_of_group),
        }

    def _check_specs(self, saved_specs: dict[str, list[Any]]) -> None:
        if saved_specs == self._specs():
            return
        saved = [_spec_text(spec) for spec in saved_specs["distinct"]]
        current = [_shorten(str(schedule)) for schedule in self._distinct]
        message = (
            f"the saved scheduler followed {saved} (group -> schedule {saved_specs['of_group']}), "
            f"this one follows {current} (group -> schedule {self._row_of_group})"
        )
        if self.on_spec_mismatch == "error":
            raise SpecError(message + " (pass on_spec_mismatch='warn' to switch on purpose)")
        warnings.warn(message + "; continuing with the new schedule", stacklevel=3)


def _schedule_per_group(
    schedule: ScheduleLike | Sequence[ScheduleLike], group_count: int
) -> list[Schedule]:
    if not isinstance(schedule, (list, tuple)):
        return [from_spec(schedule)] * group_count
    if len(schedule) != group_count:
        raise ValueError(
            f"got {len(schedule)} schedules for {group_count} parameter groups; "
            "give one schedule, or one per group"
        )
    return [from_spec(item) for item in schedule]


def _group_multipliers(groups: list[dict[str, Any]], shared: bool) -> list[float]:
    # Before the base class runs, `initial_lr` is set only when resuming with last_epoch >= 0.
    initial_lrs = [float(group.get("initial_lr", group["lr"])) for group in groups]
    if shared and initial_lrs[0] <= 0.0:
        raise ValueError("parameter group 0 needs an lr above 0: other groups are scaled by it")
    multipliers = []
    for index, (group, initial_lr) in enumerate(zip(groups, initial_lrs)):
        lr_scale = float(group.get("lr_scale", 1.0))
        if not lr_scale >= 0.0:
            raise ValueError(f"parameter group {index}: lr_scale must be >= 0, got {lr_scale}")
        multipliers.append(lr_scale * (initial_lr / initial_lrs[0] if shared else 1.0))
    return multipliers


def _spec_text(spec: dict[str, Any]) -> str:
    try:
        return _shorten(str(from_spec(spec)))
    except SpecError:  # saved by a version of lrlab whose schedules differ from this one's
        return _shorten(repr(spec))


def _shorten(text: str, limit: int = 200) -> str:
    # A table schedule's spec lists every value; the message needs only enough to tell them apart.
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _set_group_lr(group: dict[str, Any], lr: float) -> None:
    # A tensor LR (capturable/fused optimizers) is updated in place, as PyTorch's schedulers do.
    if isinstance(group["lr"], torch.Tensor):
        group["lr"].fill_(lr)
    else:
        group["lr"] = lr


def _copy_lr(lr: float | torch.Tensor) -> float | torch.Tensor:
    return lr.clone() if isinstance(lr, torch.Tensor) else lr
