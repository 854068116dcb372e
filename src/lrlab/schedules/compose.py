"""Composition: join phases at boundaries, scale a schedule, continue one from a given step.

As in optax's ``join_schedules``, each phase of a join sees the step relative to its own start, so a
phase is written as if it began at step 0.
"""

from __future__ import annotations

import math

import numpy as np

from lrlab.schedules.base import Schedule, register
from lrlab.schedules.spec import schedule_field, schedules_field
from lrlab.settings import integer, integers, real


@register
class Join(Schedule):
    """Phases joined at boundaries: ``schedules[i](t - boundaries[i-1])`` for
    ``boundaries[i-1] <= t < boundaries[i]`` (with ``boundaries[-1] = 0``)."""

    name = "join"
    reference = "optax.join_schedules"

    schedules: tuple[Schedule, ...] = schedules_field(help="the phases, in order")
    boundaries: tuple[int, ...] = integers(
        help="absolute steps at which each next phase starts", low=1
    )

    def _check(self) -> None:
        if len(self.boundaries) != len(self.schedules) - 1:
            raise self.fail(
                f"{len(self.schedules)} schedules need {len(self.schedules) - 1} boundaries, "
                f"got {len(self.boundaries)}"
            )
        if list(self.boundaries) != sorted(set(self.boundaries)):
            raise self.fail("boundaries must be strictly increasing")

    def _lr(self, t: np.ndarray) -> np.ndarray:
        starts = np.asarray((0, *self.boundaries), dtype=np.float64)
        phase = np.searchsorted(starts, t, side="right") - 1
        out = np.empty_like(t)
        for index, schedule in enumerate(self.schedules):
            inside = phase == index
            if np.any(inside):
                out[inside] = schedule(t[inside] - starts[index])
        return out


@register
class Scale(Schedule):
    """Another schedule multiplied by a constant: ``factor * schedule(t)``."""

    name = "scale"
    reference = "optax.scale_by_schedule"
    continuous = False

    schedule: Schedule = schedule_field(help="the schedule to scale")
    factor: float = real(help="multiplier", low=0.0)

    def _check(self) -> None:
        largest = largest_lr(self.schedule)
        if largest is not None and not math.isfinite(self.factor * largest):
            raise self.fail(
                f"factor={self.factor:g} times the schedule's largest LR {largest:g} overflows "
                "(is not a finite number)"
            )

    def _lr(self, t: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):
            lr = self.factor * self.schedule(t)
        if not np.all(np.isfinite(lr)):  # a schedule `largest_lr` cannot bound
            step = float(t.reshape(-1)[np.argmin(np.isfinite(lr).reshape(-1))])
            raise self.fail(f"factor={self.factor:g} makes the LR overflow at step {step:g}")
        return lr


@register
class ContinueFrom(Schedule):
    """Another schedule continued from step `start`: ``schedule(t + start)``.

    Use it to resume a run's schedule in a new job, or to branch off a running schedule.
    """

    name = "continue_from"
    reference = "lrlab"

    schedule: Schedule = schedule_field(help="the schedule to continue")
    start: int = integer(help="step of `schedule` that becomes step 0", low=0)

    def _lr(self, t: np.ndarray) -> np.ndarray:
        return self.schedule(t + self.start)


def largest_lr(schedule: Schedule) -> float | None:
    """An upper bound of the schedule's LR from its fields (its `peak` or `lr_max`, a table's or
    a piecewise-linear schedule's largest value, through joins, scales and continuations), or
    None where the fields give none (a schedule defined outside lrlab)."""
    if isinstance(schedule, Join):
        bounds = [largest_lr(phase) for phase in schedule.schedules]
        return None if None in bounds else max(bounds)
    if isinstance(schedule, Scale):
        inner = largest_lr(schedule.schedule)
        return None if inner is None else schedule.factor * inner
    if isinstance(schedule, ContinueFrom):
        return largest_lr(schedule.schedule)
    values = getattr(schedule, "values", None)
    if values is None and hasattr(schedule, "points"):
        values = [lr for _, lr in schedule.points]
    if values is not None:
        return float(max(values))
    peak = getattr(schedule, "peak", getattr(schedule, "lr_max", None))
    return float(peak) if isinstance(peak, float) else None


def join(schedules: list[Schedule], boundaries: list[int]) -> Join:
    """Join phases at absolute step boundaries; each phase sees the step relative to its start."""
    return Join(schedules=schedules, boundaries=boundaries)


def scale(schedule: Schedule, factor: float) -> Scale:
    """Multiply a schedule by a constant factor."""
    return Scale(schedule=schedule, factor=factor)


def continue_from(schedule: Schedule, start: int) -> ContinueFrom:
    """The schedule seen from step `start` on: step 0 of the result is step `start` of
    `schedule`."""
    return ContinueFrom(schedule=schedule, start=start)
