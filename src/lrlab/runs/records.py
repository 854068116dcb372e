"""Logged rows as arrays, and the rules for messy logs.

A reader turns a log into `Records`: for every row, in file order, the step, the loss and the LR
(NaN where the row has no value) and where in the file it came from. `clean` then applies the rules
for messy logs: resumed runs log overlapping, out-of-order segments, so the *last* value logged for
a step wins (for loss and LR separately) and the result is sorted by step; NaN/inf losses are
dropped with a warning giving their count. What no law can use is an error naming its line: a
step that is not a whole number in 0..`lrlab.schedules.MAX_STEPS`, a loss that is not positive
(laws fit the log of the loss), an LR that is negative or above `MAX_LR`."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from lrlab.errors import LrlabError
from lrlab.runs.model import MAX_LR, RunWarning
from lrlab.schedules import MAX_STEPS


@dataclasses.dataclass(frozen=True)
class Records:
    """Logged rows in file order. `lr` and `loss` are NaN where a row has no value (empty cell);
    `loss_present` tells a missing loss from a logged NaN. ``lines`` locates each row for errors,
    in `unit`s (``line``, or ``row`` / ``record`` for binary formats)."""

    source: str
    steps: np.ndarray
    loss: np.ndarray
    loss_present: np.ndarray
    lr: np.ndarray
    lr_present: np.ndarray
    lines: np.ndarray
    unit: str = "line"

    @staticmethod
    def from_rows(
        source: str,
        rows: list[tuple[int, float, float | None, float | None]],
        unit: str = "line",
    ) -> Records:
        """Build from ``(line, step, loss or None, lr or None)`` tuples."""
        if not rows:
            raise LrlabError(f"{source}: no data rows")
        lines = np.array([row[0] for row in rows], dtype=np.int64)
        steps = np.array([row[1] for row in rows], dtype=np.float64)
        loss_present = np.array([row[2] is not None for row in rows])
        lr_present = np.array([row[3] is not None for row in rows])
        loss = np.array([np.nan if row[2] is None else row[2] for row in rows], dtype=np.float64)
        lr = np.array([np.nan if row[3] is None else row[3] for row in rows], dtype=np.float64)
        return Records(source, steps, loss, loss_present, lr, lr_present, lines, unit)

    def where(self, row: int) -> str:
        """``"<source>, line N"`` for row `row`."""
        return f"{self.source}, {self.unit} {self.lines[row]}"


@dataclasses.dataclass(frozen=True)
class CleanLog:
    """Sorted, de-duplicated logged values: losses at `steps`, LR values at `lr_steps`."""

    steps: np.ndarray
    loss: np.ndarray
    lr_steps: np.ndarray
    lr: np.ndarray


def check_steps(records: Records) -> np.ndarray:
    """The steps as integers; a fractional, negative, non-finite or too large step is an error
    naming its line (per-step arrays cover every step up to the last: a stray row at step 1e8
    would take gigabytes)."""
    steps = records.steps
    bad = ~np.isfinite(steps) | (steps < 0) | (steps != np.round(steps))
    if np.any(bad):
        first = int(np.argmax(bad))
        raise LrlabError(
            f"{records.where(first)}: step {float(steps[first])!r} is not a non-negative whole "
            "number"
        )
    beyond = steps > MAX_STEPS
    if np.any(beyond):
        first = int(np.argmax(beyond))
        raise LrlabError(
            f"{records.where(first)}: step {int(steps[first])} is beyond the last step lrlab "
            f"handles ({MAX_STEPS:,}; see docs/laws.md)"
        )
    return steps.astype(np.int64)


def _last_per_step(steps: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keep the value logged last for each step; return them sorted by step."""
    if steps.size and np.all(steps[1:] > steps[:-1]):  # the usual log: nothing to sort
        return steps, values
    reversed_steps = steps[::-1]
    unique, first_in_reversed = np.unique(reversed_steps, return_index=True)
    return unique, values[::-1][first_in_reversed]


def _check_values(records: Records) -> None:
    """Losses must be positive (the laws fit log-loss; NaN/inf are dropped later, with a
    warning) and LRs finite, non-negative and at most `MAX_LR`."""
    loss, lr = records.loss, records.lr
    with np.errstate(invalid="ignore"):
        bad_loss = records.loss_present & np.isfinite(loss) & (loss <= 0)
        bad_lr = records.lr_present & ~(np.isfinite(lr) & (lr >= 0) & (lr <= MAX_LR))
    if np.any(bad_loss):
        first = int(np.argmax(bad_loss))
        raise LrlabError(
            f"{records.where(first)}: loss {float(loss[first])!r} is not positive "
            "(the laws fit the logarithm of the loss)"
        )
    if np.any(bad_lr):
        first = int(np.argmax(bad_lr))
        raise LrlabError(
            f"{records.where(first)}: lr {float(lr[first])!r} is not a finite number in "
            f"[0, {MAX_LR:g}]"
        )


def clean(records: Records) -> CleanLog:
    """Apply the messy-log rules: last value per step wins, sort by step, drop NaN/inf losses."""
    steps = check_steps(records)
    _check_values(records)
    loss_steps, loss = _last_per_step(
        steps[records.loss_present], records.loss[records.loss_present]
    )
    finite = np.isfinite(loss)
    dropped = int(np.count_nonzero(~finite))
    if dropped:
        # A diverged step logs inf or NaN, and the run may go on (a skipped fp16 step): the
        # value says nothing a law can fit, so it goes, and the warning points at the first.
        first = int(np.argmax(records.loss_present & ~np.isfinite(records.loss)))
        warnings.warn(
            f"{records.source}: dropped {dropped} NaN/inf loss value(s), the first at "
            f"{records.unit} {records.lines[first]}",
            RunWarning,
            stacklevel=3,
        )
    if not np.any(finite):
        raise LrlabError(f"{records.source}: no finite loss values")
    lr_steps, lr = _last_per_step(steps[records.lr_present], records.lr[records.lr_present])
    return CleanLog(loss_steps[finite], loss[finite], lr_steps, lr)
