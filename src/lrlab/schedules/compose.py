"""Composition: join phases at boundaries, scale a schedule, continue one from a given step.

As in optax's ``join_schedules``, each phase of a join sees the step relative to its own start, so a
phase is written as if it began at step 0.
"""

from __future__ import annotations

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

    def _lr(self, t: np.ndarray) -> np.ndarray:
        return self.factor * self.schedule(t)


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
