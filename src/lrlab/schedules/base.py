"""The `Schedule` base class: a frozen, validated set of parameters that is a pure step -> LR
function.

Every schedule is a keyword-only frozen dataclass. Its fields are declared with the helpers of
`lrlab.settings` (`real`, `integer`, `choice`, ...), which carry the help text and the allowed
range; the base class coerces and checks every field on construction, so a bad value fails where it
is given, with a message that names the schedule, the field and the range. Subclasses implement
`_lr(t)` on a float64 array of non-negative steps and register themselves with `@register`.

A schedule writes itself as a spec dict (`Schedule.to_spec`) and as a compact string (`str`,
`to_string`); reading them back is `lrlab.schedules.spec`, which builds on this module (and not the
other way round).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np

from lrlab.errors import SpecError
from lrlab.settings import MISSING, Rule, check_fields, choice, integer, number_text, real, rule_of

REGISTRY: dict[str, type[Schedule]] = {}

#: The most steps lrlab evaluates a schedule at, one LR per step (``--steps``, ``--budget`` and
#: the like are checked against it): a float64 per-step array of 10^7 steps takes 80 MB and a
#: forecast builds about a dozen (also the bound of a log's last step, `lrlab.runs.records`), ten
#: times the longest public pre-training runs (about 10^6 steps). A schedule itself takes any step.
MAX_STEPS = 10**7
MAX_STEPS_TEXT = "10^7"


def register(cls: type[Schedule]) -> type[Schedule]:
    """Class decorator: make a schedule reachable by its `name` from specs and the command line."""
    if cls.name in REGISTRY:
        raise RuntimeError(f"schedule name {cls.name!r} registered twice")
    REGISTRY[cls.name] = cls
    return cls


# --- the base class -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class Schedule:
    """A learning-rate schedule: a pure function from the step (from 0) to the learning rate.

    Call it with an int, a float or a numpy array of non-negative steps; it returns a float for a
    scalar and a float64 array of the same shape for an array.
    """

    name: ClassVar[str] = ""
    reference: ClassVar[str] = ""
    #: True when the LR never increases once the warmup (if any) is over; tested as a property.
    non_increasing: ClassVar[bool] = False
    #: True when the LR is a continuous function of the step (no jumps).
    continuous: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Every schedule is a frozen keyword-only dataclass; declaring it here keeps the
        # subclasses to their fields and formulas.
        super().__init_subclass__(**kwargs)
        dataclasses.dataclass(frozen=True, kw_only=True)(cls)

    def __post_init__(self) -> None:
        check_fields(self, self.name, error=SpecError)
        self._check()

    def _check(self) -> None:
        """Cross-field checks; raise `SpecError` naming the fields."""

    def _lr(self, t: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, step: Any) -> Any:
        t = np.asarray(step, dtype=np.float64)
        if not np.all(t >= 0):  # also rejects NaN
            raise ValueError(f"{self.name}: steps must be non-negative numbers")
        # Always evaluate a 1-d array: numpy's scalar and vectorised maths may differ in the
        # last bit, and a scalar call must equal the same step of an array call exactly.
        flat = t.reshape(-1)
        lr = np.broadcast_to(np.asarray(self._lr(flat), dtype=np.float64), flat.shape)
        return float(lr[0]) if t.ndim == 0 else lr.reshape(t.shape).copy()

    def fail(self, message: str) -> SpecError:
        """A `SpecError` prefixed with this schedule's name, for `_check`."""
        return SpecError(f"{self.name}: {message}")

    def to_spec(self) -> dict[str, Any]:
        """The JSON-ready spec: ``{"name": ..., field: value, ...}``; nested schedules as specs."""
        spec: dict[str, Any] = {"name": self.name}
        for spec_field in dataclasses.fields(self):
            spec[spec_field.name] = _spec_value(getattr(self, spec_field.name))
        return spec

    def __str__(self) -> str:
        return to_string(self)

    @classmethod
    def parameters(cls) -> list[tuple[str, Rule, Any]]:
        """``(name, rule, default)`` for each field, required fields first (so specs read
        ``wsd(peak=..., total=..., warmup=...)``); default is `dataclasses.MISSING` if required."""
        result = []
        for spec_field in dataclasses.fields(cls):
            default = spec_field.default
            if spec_field.default_factory is not MISSING:
                default = spec_field.default_factory()
            result.append((spec_field.name, rule_of(spec_field), default))
        return sorted(result, key=lambda item: item[2] is not MISSING)


def _spec_value(value: Any) -> Any:
    if isinstance(value, Schedule):
        return value.to_spec()
    if isinstance(value, tuple):
        return [_spec_value(item) for item in value]
    return value


def to_string(schedule: Schedule) -> str:
    """The compact string of a schedule; fields at their default value are left out."""
    parts = []
    for name, _rule, default in schedule.parameters():
        value = getattr(schedule, name)
        if default is not MISSING and _same(value, default):
            continue
        parts.append(f"{name}={_value_text(value)}")
    return f"{schedule.name}({', '.join(parts)})"


def _same(value: Any, default: Any) -> bool:
    if isinstance(value, tuple):
        return isinstance(default, (list, tuple)) and list(value) == list(default)
    return value == default


def _value_text(value: Any) -> str:
    if isinstance(value, Schedule):
        return to_string(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(_value_text(item) for item in value) + "]"
    if isinstance(value, str):
        return value if value.isidentifier() else repr(value)
    if isinstance(value, float):
        return number_text(value)
    return repr(value)


# --- warmup + main phase ------------------------------------------------------------------------

WARMUP_SHAPES = ("linear", "cosine", "exponential", "none")


class WarmupSchedule(Schedule):
    """A schedule with a peak LR reached after `warmup` steps, then a main phase.

    Warmup shapes for ``t < W`` (``p = t / W``):
    linear ``peak * p`` (Goyal et al. 2017), cosine ``peak * (1 - cos(pi p)) / 2``,
    exponential ``peak * warmup_start_ratio^(1 - p)``; ``none`` means no warmup (``W`` must be 0).
    The main phase sees the step relative to its start, ``t - W``.
    """

    peak: float = real(help="peak learning rate", low=0.0, low_inclusive=False)
    warmup: int = integer(0, help="warmup steps (the LR reaches the peak at this step)")
    warmup_shape: str = choice("linear", help="warmup curve", choices=WARMUP_SHAPES)
    warmup_start_ratio: float = real(
        0.01,
        help="LR at step 0 as a fraction of the peak (exponential warmup only)",
        low=0.0,
        high=1.0,
        low_inclusive=False,
    )

    def _check(self) -> None:
        if self.warmup_shape == "none" and self.warmup > 0:
            raise self.fail(f"warmup_shape=none needs warmup=0, got warmup={self.warmup}")
        super()._check()

    def _lr(self, t: np.ndarray) -> np.ndarray:
        main = self._main(np.maximum(t - self.warmup, 0.0))
        if self.warmup == 0:
            return main
        progress = np.minimum(t / self.warmup, 1.0)
        if self.warmup_shape == "linear":
            ramp = self.peak * progress
        elif self.warmup_shape == "cosine":
            ramp = self.peak * (1.0 - np.cos(np.pi * progress)) / 2.0
        else:
            ramp = self.peak * self.warmup_start_ratio ** (1.0 - progress)
        return np.where(t < self.warmup, ramp, main)

    def _main(self, s: np.ndarray) -> np.ndarray:
        """The LR after warmup, as a function of ``s = t - warmup`` (clipped at 0)."""
        raise NotImplementedError


class DecaySchedule(WarmupSchedule):
    """A warmup schedule with a fixed budget of `total` steps that ends at a floor LR.

    The floor is `end` (absolute) or ``end_ratio * peak``; neither means 0. After `total` steps the
    LR stays at the floor.
    """

    total: int = integer(help="total steps, warmup included", low=1)
    end: float | None = real(None, help="final LR (absolute)", low=0.0)
    end_ratio: float | None = real(
        None, help="final LR as a fraction of the peak", low=0.0, high=1.0
    )

    def _check(self) -> None:
        if self.warmup >= self.total:
            raise self.fail(f"warmup={self.warmup} must be less than total={self.total}")
        if self.end is not None and self.end_ratio is not None:
            raise self.fail("give end or end_ratio, not both")
        if self.floor > self.peak:
            raise self.fail(f"end={self.floor!r} must not exceed peak={self.peak!r}")
        super()._check()

    @property
    def floor(self) -> float:
        """The final LR."""
        if self.end is not None:
            return self.end
        return self.peak * (self.end_ratio or 0.0)

    @property
    def decay_steps(self) -> int:
        """Steps after warmup: the length of the main phase."""
        return self.total - self.warmup
