"""The warmup of a run: the step at which its LR first reached the peak, and how that is known.

A schedule designed from fitted runs keeps their peak LR and warmup, so the warmup must be the
one the runs had, not the first step a log happens to hold: logs often start after the warmup
ended (the 124M WSD logs at step 400, after a 300-step warmup). In order of precedence:

- ``given``: the user's number (``--warmup N``); where the logged LR leaves it open, it also
  shapes the interpolated per-step LR: a straight rise from 0 that reaches the peak at step N;
- ``schedule``: the first step at which the schedule's LR reaches its maximum;
- ``logged LR``: where the logged LR first reaches its peak. Between the last logged point below
  the peak and the first at it, the crossing is where the logged ramp, extended in a straight
  line (through LR 0 at step 0 when only one logged point is below the peak), meets the peak;
  the per-step LR then peaks there too, rather than at the next logged point;
- unknown: a log that starts after step 0 with the LR already at its peak holds no trace of the
  warmup. Its per-step LR rises from 0 at step 0 to the first logged step (the convention of
  `lrlab.runs.per_step_lr`), and a fit takes that step as its warmup, saying so
  (``first logged step``), unless a warmup is given.

A fit reports the warmup of its runs (`fitted_warmup`): the median of the known ones, and where
they came from.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence

import numpy as np

from lrlab.runs.model import Run, RunWarning

GIVEN, SCHEDULE, LOGGED, PER_STEP, FIRST_LOGGED = (
    "given",
    "schedule",
    "logged LR",
    "per-step LR",
    "first logged step",
)
# An LR within this fraction of the largest counts as the peak: logs round, and float32 noise
# must not move the peak to a later step. A linear warmup rises by more than this per step
# unless it is over 10,000 steps long, where a step either way does not matter.
PEAK_TOLERANCE = 1e-4


@dataclasses.dataclass(frozen=True)
class Warmup:
    """A run's warmup in steps (None where unknown) and its `source`: one of ``given``,
    ``schedule``, ``logged LR``, or, where unknown, why."""

    steps: int | None
    source: str

    def metadata(self) -> dict[str, int | str | None]:
        """The run metadata keys of the warmup (`Run.metadata`)."""
        return {"warmup": self.steps, "warmup_from": self.source}


def first_peak(lr: np.ndarray) -> int:
    """The index of the first value within `PEAK_TOLERANCE` of the largest."""
    return int(np.argmax(lr >= (1.0 - PEAK_TOLERANCE) * np.max(lr)))


def schedule_warmup(lr: np.ndarray, given: int | None, source: str) -> Warmup:
    """The warmup of a run whose per-step LR `lr` comes from a schedule; a `given` one that
    disagrees is warned about, and wins."""
    peak_step = first_peak(lr)
    if given is None:
        return Warmup(peak_step, SCHEDULE)
    if given != peak_step:
        warnings.warn(
            f"{source}: warmup {given} given, but the schedule's LR first peaks at step "
            f"{peak_step}; the schedule sets the LR, the warmup given is reported",
            RunWarning,
            stacklevel=3,
        )
    return Warmup(given, GIVEN)


def logged_warmup(
    lr_steps: np.ndarray, lr: np.ndarray, given: int | None, source: str
) -> tuple[Warmup, np.ndarray, np.ndarray]:
    """The warmup of a run from its logged ``(step, LR)`` points (strictly increasing steps, at
    least one), and the points to interpolate the per-step LR through: the logged ones, with LR 0
    at step 0 when the log starts later, and the end of the warmup at the peak where it lies
    between logged points. A `given` warmup that the logged LR contradicts is warned about; it is
    reported, and the logged LR kept."""
    steps = np.asarray(lr_steps, dtype=np.int64)
    values = np.asarray(lr, dtype=np.float64)
    starts_later = bool(steps[0] > 0)
    if starts_later:  # training starts from LR 0, as under a warmup
        steps, values = np.concatenate([[0], steps]), np.concatenate([[0.0], values])
    peak = float(values.max())
    if peak <= 0:
        return Warmup(None, "the logged LR is 0 throughout"), steps, values
    top = first_peak(values)
    if top == 0:  # at the peak from step 0: no warmup
        return Warmup(0, LOGGED), steps, values
    below, reached = int(steps[top - 1]), int(steps[top])
    at_peak_from_start = starts_later and top == 1  # only the assumed LR 0 lies below the peak
    if at_peak_from_start:
        found, end = Warmup(None, f"the log starts at step {reached} with the LR at its peak"), None
    else:
        end = _crossing(steps, values, top, peak)
        found = Warmup(reached if end is None else end, LOGGED)
    if given is not None:
        if below < given <= reached or (given == 0 and at_peak_from_start):
            end = given
        else:
            where = (
                f"is at its peak at step {reached} already"
                if at_peak_from_start
                else f"reaches its peak between steps {below} and {reached}"
            )
            warnings.warn(
                f"{source}: warmup {given} given, but the logged LR {where}; the logged LR is "
                "kept, the warmup given is reported",
                RunWarning,
                stacklevel=3,
            )
        found = Warmup(given, GIVEN)
    if end == 0:  # the LR was at its peak from step 0, not 0 there as assumed
        values = values.copy()
        values[0] = peak
    elif end is not None and below < end < reached:
        steps, values = np.insert(steps, top, end), np.insert(values, top, peak)
    return found, steps, values


def _crossing(steps: np.ndarray, values: np.ndarray, top: int, peak: float) -> int | None:
    """Where the logged ramp, extended in a straight line through its last two points below the
    peak (`top` the first point at it), meets the peak, if strictly before the point at it; else
    None (one point below the peak, or a ramp that is not straight)."""
    if top < 2:
        return None
    before, last = top - 2, top - 1
    rise, run = values[last] - values[before], steps[last] - steps[before]
    # Compared as products: a tiny rise (a subnormal LR) would overflow the division.
    if rise <= 0 or (peak - values[last]) * run >= (steps[top] - steps[last]) * rise:
        return None
    crossing = round(float(steps[last] + (peak - values[last]) * run / rise))
    return crossing if steps[last] < crossing < steps[top] else None


def fitted_warmup(runs: Sequence[Run]) -> dict[str, int | str]:
    """The warmup a fit reports for its runs: the median of the runs' known warmups
    (`Run.metadata`, as `read_run` finds them), with their sources joined by "and"; where none is
    known, the median step at which each run's per-step LR first peaks, from ``per-step LR``
    (a run built in code) or ``first logged step`` (logs that start after their warmup)."""
    known = [run for run in runs if run.metadata.get("warmup") is not None]
    if known:
        sources = dict.fromkeys(str(run.metadata.get("warmup_from")) for run in known)
        steps = [int(run.metadata["warmup"]) for run in known]
        return {"warmup": int(np.median(steps)), "warmup_from": " and ".join(sources)}
    from_log = any("warmup_from" in run.metadata for run in runs)
    steps = [first_peak(run.lr) for run in runs]
    return {"warmup": int(np.median(steps)), "warmup_from": FIRST_LOGGED if from_log else PER_STEP}
