"""Schedules given by data: piecewise-linear points, and a table of per-step values (the output of
schedule optimisation or gradient-norm refinement)."""

from __future__ import annotations

import numpy as np

from lrlab.schedules.base import Schedule, register
from lrlab.settings import points, reals


@register
class PiecewiseLinear(Schedule):
    """Linear interpolation between ``[step, lr]`` points; constant before the first point and
    after the last."""

    name = "piecewise_linear"
    reference = "lrlab"
    continuous = True

    points: tuple[tuple[float, float], ...] = points(help="[step, lr] pairs, steps increasing")

    def _check(self) -> None:
        steps = [step for step, _ in self.points]
        if not steps:
            raise self.fail("points must not be empty")
        if steps != sorted(set(steps)):
            raise self.fail("points must have strictly increasing steps")

    def _lr(self, t: np.ndarray) -> np.ndarray:
        steps, lrs = zip(*self.points)
        return np.interp(t, steps, lrs)


@register
class Table(Schedule):
    """One LR per step: ``values[t]``, linearly interpolated between integer steps and held at the
    last value after the end of the table."""

    name = "table"
    reference = "lrlab"

    values: tuple[float, ...] = reals(help="the LR at steps 0, 1, 2, ...", low=0.0)

    def _check(self) -> None:
        if not self.values:
            raise self.fail("values must not be empty")
        # Cached arrays: a table can hold a value per step of a long run.
        object.__setattr__(self, "_values", np.asarray(self.values, dtype=np.float64))
        object.__setattr__(self, "_steps", np.arange(len(self.values), dtype=np.float64))

    def _lr(self, t: np.ndarray) -> np.ndarray:
        return np.interp(t, self._steps, self._values)
