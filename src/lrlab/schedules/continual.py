"""Schedules for continual pre-training: infinite, repeated cosine with re-warming, re-warm +
re-decay.

Continual pre-training adds data stages to a finished run. Ibrahim et al. 2024 show that re-warming
the LR and re-decaying it on each new stage (with some replay) matches re-training from scratch, and
propose "infinite" schedules that never need re-warming because the LR rests at a constant between
stages. ``t`` is the step from 0 throughout.
"""

from __future__ import annotations

import numpy as np

from lrlab.schedules.base import DecaySchedule, Schedule, WarmupSchedule, register
from lrlab.schedules.shapes import DECAY_SHAPES, anneal, check_anneal_floor
from lrlab.settings import choice, integer, integers, real

_IBRAHIM = (
    "Ibrahim, Thérien, Gupta, Richter, Anthony, Lesort, Belilovsky & Rish 2024, 'Simple and "
    "Scalable Strategies to Continually Pre-train Large Language Models' (arXiv:2403.08763)"
)
_GUPTA = (
    "Gupta, Thérien, Ibrahim, Richter, Anthony, Belilovsky, Rish & Lesort 2023, 'Continual "
    "Pre-Training of Large Language Models: How to (re)warm your model?' (arXiv:2308.04014)"
)


@register
class Infinite(WarmupSchedule):
    """Infinite LR schedule (Ibrahim et al. 2024): warmup, cooldown, constant, anneal.

    With ``W = warmup``, ``C = cooldown_steps``, ``A = anneal_start``, ``D = anneal_steps``,
    ``eta_const = constant_ratio * peak`` and ``eta_min = min_ratio * peak``:

    - ``t < W``: ``peak * t / W`` (linear warmup)
    - ``W <= t < W + C``: cooldown ``eta_const + (peak - eta_const) (1 + cos(pi (t - W) / C)) / 2``
      (the paper's cosine cooldown; other `anneal` shapes via `cooldown_shape`)
    - ``W + C <= t < A``: ``eta_const``, for as long as the data stages last
    - ``A <= t``: ``eta_const * (eta_min / eta_const)^((t - A) / D)``, then ``eta_min`` (the paper's
      exponential anneal, taken only when a converged checkpoint is wanted)

    ``anneal_start=None`` keeps the constant phase forever. The phase formulas are those of the
    paper's "CosineInf" schedule as its reference implementations write them. Default ratios: the
    CosineInf settings eta_max 3e-4, eta_const 1.65e-4, eta_min 3e-5 reported by later continual
    pre-training work with this schedule. The paper also studies an inverse-sqrt cooldown; its
    exact formula could not be retrieved, so only the `anneal` shapes are offered.
    """

    name = "infinite"
    reference = _IBRAHIM
    non_increasing = True
    continuous = True

    cooldown_steps: int = integer(help="steps of the cooldown from peak to the constant LR", low=1)
    constant_ratio: float = real(
        0.55, help="constant LR as a fraction of the peak", low=0.0, high=1.0, low_inclusive=False
    )
    anneal_start: int | None = integer(
        None, help="absolute step at which the final anneal starts (omit to stay constant forever)"
    )
    anneal_steps: int | None = integer(None, help="steps of the final anneal", low=1)
    min_ratio: float = real(
        0.1,
        help="LR after the anneal as a fraction of the peak",
        low=0.0,
        high=1.0,
        low_inclusive=False,
    )
    cooldown_shape: str = choice("cosine", help="cooldown curve", choices=DECAY_SHAPES)
    anneal_shape: str = choice("exponential", help="final anneal curve", choices=DECAY_SHAPES)

    def _check(self) -> None:
        if (self.anneal_start is None) != (self.anneal_steps is None):
            raise self.fail("give anneal_start and anneal_steps together (or neither)")
        if self.anneal_start is not None and self.anneal_start < self.warmup + self.cooldown_steps:
            raise self.fail(
                f"anneal_start={self.anneal_start} must not be before the end of the cooldown "
                f"(warmup + cooldown_steps = {self.warmup + self.cooldown_steps})"
            )
        if self.min_ratio > self.constant_ratio:
            raise self.fail(
                f"min_ratio={self.min_ratio!r} must not exceed "
                f"constant_ratio={self.constant_ratio!r}"
            )
        super()._check()

    def _main(self, s: np.ndarray) -> np.ndarray:
        constant = self.constant_ratio * self.peak
        lr = anneal(s / self.cooldown_steps, self.peak, constant, self.cooldown_shape)
        if self.anneal_start is None:
            return lr
        t = s + self.warmup
        final = anneal(
            (t - self.anneal_start) / self.anneal_steps,
            constant,
            self.min_ratio * self.peak,
            self.anneal_shape,
        )
        return np.where(t >= self.anneal_start, final, lr)


@register
class RepeatedCosine(Schedule):
    """Repeated cosine with re-warming: one warmup + cosine cycle per data stage.

    Cycle ``i`` spans ``[S_i, S_i + L_i)`` (``S_i`` the sum of the earlier lengths); with
    ``W_i = warmup`` or ``round(warmup_fraction * L_i)`` and ``s = t - S_i``:
    ``lr = peak * s / W_i`` for ``s < W_i``, then
    ``floor + (peak - floor) (1 + cos(pi (s - W_i) / (L_i - W_i))) / 2`` with
    ``floor = end_ratio * peak``. After the last cycle the LR stays at the floor. Each stage
    re-warms from 0 as a fresh linear warmup does (the setting of Gupta et al. 2023 and Ibrahim et
    al. 2024, who warm up over 1% of each stage and decay to 10% of the peak), so the LR jumps down
    to 0 at every stage boundary.
    """

    name = "repeated_cosine"
    reference = f"{_IBRAHIM}; {_GUPTA}"

    peak: float = real(help="peak LR of every cycle", low=0.0, low_inclusive=False)
    # An empty list means "not given" (list fields cannot be None).
    cycle_steps: tuple[int, ...] = integers([], help="length of each cycle (data stage)", low=1)
    cycle_length: int | None = integer(None, help="length of every cycle (with cycle_count)", low=1)
    cycle_count: int | None = integer(None, help="number of cycles (with cycle_length)", low=1)
    warmup: int | None = integer(
        None, help="warmup steps in every cycle (overrides warmup_fraction)"
    )
    warmup_fraction: float = real(
        0.01, help="warmup as a fraction of each cycle", low=0.0, high=1.0
    )
    end_ratio: float = real(
        0.1, help="LR at the end of every cycle as a fraction of the peak", low=0.0, high=1.0
    )

    def _check(self) -> None:
        by_list = bool(self.cycle_steps)
        by_count = self.cycle_length is not None or self.cycle_count is not None
        if by_list == by_count or (by_count and None in (self.cycle_length, self.cycle_count)):
            raise self.fail("give cycle_steps, or cycle_length with cycle_count")
        lengths = self._lengths()
        warmups = self._warmups(lengths)
        if np.any(warmups >= lengths):
            raise self.fail("every cycle must be longer than its warmup")
        # Cached arrays: the cycle starts are needed on every call.
        object.__setattr__(self, "_starts", np.concatenate(([0.0], np.cumsum(lengths))))

    def _lengths(self) -> np.ndarray:
        if self.cycle_steps:
            return np.asarray(self.cycle_steps, dtype=np.float64)
        return np.full(self.cycle_count, float(self.cycle_length))

    def _warmups(self, lengths: np.ndarray) -> np.ndarray:
        if self.warmup is not None:
            return np.full_like(lengths, float(self.warmup))
        return np.round(self.warmup_fraction * lengths)

    def _lr(self, t: np.ndarray) -> np.ndarray:
        starts = self._starts
        lengths = np.diff(starts)
        warmups = self._warmups(lengths)
        cycle = np.clip(np.searchsorted(starts, t, side="right") - 1, 0, len(lengths) - 1)
        s = t - starts[cycle]
        w = warmups[cycle]
        floor = self.end_ratio * self.peak
        decay = anneal((s - w) / (lengths[cycle] - w), self.peak, floor, "cosine")
        ramp = self.peak * s / np.maximum(w, 1.0)
        return np.where(s < w, ramp, decay)


@register
class RewarmRedecay(DecaySchedule):
    """One continual-pre-training stage: re-warm from `start` to `peak`, then re-decay to the floor.

    ``lr = start + (peak - start) t / W`` for ``t < W`` (linear re-warming, Gupta et al. 2023;
    Ibrahim et al. 2024; ``warmup_shape=cosine`` uses ``(1 - cos(pi t / W)) / 2`` instead of
    ``t / W``), then ``anneal((t - W) / (T - W), peak, floor, decay)`` with ``floor = end`` or
    ``end_ratio * peak`` (default 0.1, cosine, as in both papers), and the floor after
    ``T = total``. `start` is the previous stage's final LR, so that
    ``join([base, rewarm_redecay(...)], [boundary])`` has no jump at the boundary.
    """

    name = "rewarm_redecay"
    reference = f"{_GUPTA}; {_IBRAHIM}"
    non_increasing = True
    continuous = True

    start: float = real(help="LR at step 0 (the previous stage's final LR)", low=0.0)
    decay: str = choice("cosine", help="shape of the re-decay", choices=DECAY_SHAPES)

    def _check(self) -> None:
        if self.warmup_shape == "exponential":
            raise self.fail(
                "warmup_shape=exponential is not supported: the re-warming starts at "
                "`start` (use linear or cosine)"
            )
        if self.start > self.peak:
            raise self.fail(f"start={self.start!r} must not exceed peak={self.peak!r}")
        check_anneal_floor(self, self.decay, self.floor, "end or end_ratio")
        super()._check()

    @property
    def floor(self) -> float:
        """The final LR: `end`, or `end_ratio` (default 0.1, as in both papers) times the peak."""
        if self.end is not None:
            return self.end
        return self.peak * (0.1 if self.end_ratio is None else self.end_ratio)

    def _main(self, s: np.ndarray) -> np.ndarray:
        return anneal(s / self.decay_steps, self.peak, self.floor, self.decay)

    def _lr(self, t: np.ndarray) -> np.ndarray:
        # The base warmup ramps from 0; re-warming ramps from `start`, so rescale it.
        lr = super()._lr(t)
        ramp = self.start + (self.peak - self.start) * lr / self.peak
        return np.where(t < self.warmup, ramp, lr)
