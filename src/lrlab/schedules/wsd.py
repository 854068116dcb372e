"""Warmup-stable-decay schedules: WSD, WSDC and WSD-S.

A WSD run holds the peak LR for most of training and decays only at the end, so one long stable
run can be branched into decays at any budget (Hu et al. 2024, MiniCPM; Hägele et al. 2024).
Decay shapes are those of `lrlab.schedules.shapes.anneal`.
"""

from __future__ import annotations

import math

import numpy as np

from lrlab.schedules.base import DecaySchedule, WarmupSchedule, register
from lrlab.schedules.shapes import DECAY_SHAPES, anneal, check_anneal_floor
from lrlab.settings import choice, integer, integers, real


@register
class WSD(DecaySchedule):
    """Warmup-stable-decay: `peak` until ``T - D``, then anneal to the floor over the last ``D``
    steps, ``D = cooldown_steps`` or ``cooldown_fraction * T`` rounded.

    ``lr = peak`` for ``W <= t < T - D``; ``lr = anneal((t - (T - D)) / D, peak, floor, decay)``
    after. MiniCPM decays exponentially; Hägele et al. find 1-sqrt best and a 20% cooldown enough
    to match cosine.
    """

    name = "wsd"
    reference = (
        "Hu et al. 2024, 'MiniCPM' (arXiv:2404.06395); Hägele et al. 2024, 'Scaling Laws and "
        "Compute-Optimal Training Beyond Fixed Training Durations' (arXiv:2405.18392)"
    )
    non_increasing = True
    continuous = True

    cooldown_fraction: float | None = real(
        None,
        help="decay length as a fraction of total steps",
        low=0.0,
        high=1.0,
        low_inclusive=False,
    )
    cooldown_steps: int | None = integer(None, help="decay length in steps", low=1)
    decay: str = choice("linear", help="shape of the decay", choices=DECAY_SHAPES)

    def _check(self) -> None:
        super()._check()
        if (self.cooldown_fraction is None) == (self.cooldown_steps is None):
            raise self.fail("give exactly one of cooldown_fraction and cooldown_steps")
        if self.cooldown < 1:
            raise self.fail(
                f"cooldown_fraction={self.cooldown_fraction} gives no decay step at "
                f"total={self.total} (use `constant` for no decay)"
            )
        if self.cooldown > self.decay_steps:
            raise self.fail(
                f"cooldown of {self.cooldown} steps is longer than the {self.decay_steps} steps "
                "after warmup"
            )
        check_anneal_floor(self, self.decay, self.floor, "end or end_ratio")

    @property
    def cooldown(self) -> int:
        """Decay length in steps."""
        if self.cooldown_steps is not None:
            return self.cooldown_steps
        return math.floor(self.cooldown_fraction * self.total + 0.5)  # half rounds up

    def _main(self, s: np.ndarray) -> np.ndarray:
        decay_start = self.decay_steps - self.cooldown
        return anneal((s - decay_start) / self.cooldown, self.peak, self.floor, self.decay)


@register
class WSDC(WarmupSchedule):
    """Warmup-stable-decay-constant: `peak` until `decay_start` (absolute step), anneal to `end`
    over `decay_length` steps, then hold `end` for as long as training goes on.

    The tail constant phase is what continual pre-training resumes from (and what the two-stage
    "WSD-con" runs of the multi-power-law paper probe with an instant decay).
    """

    name = "wsdc"
    reference = "Luo et al. 2025, 'A Multi-Power Law for Loss Curve Prediction' (arXiv:2503.12811)"
    non_increasing = True
    continuous = True

    decay_start: int = integer(help="absolute step at which the decay starts")
    decay_length: int = integer(help="decay length in steps", low=1)
    end: float = real(help="LR held after the decay", low=0.0)
    decay: str = choice("linear", help="shape of the decay", choices=DECAY_SHAPES)

    def _check(self) -> None:
        if self.decay_start < self.warmup:
            raise self.fail(f"decay_start={self.decay_start} must not be inside the warmup")
        if self.end > self.peak:
            raise self.fail(f"end={self.end!r} must not exceed peak={self.peak!r}")
        check_anneal_floor(self, self.decay, self.end, "end")
        super()._check()

    def _main(self, s: np.ndarray) -> np.ndarray:
        progress = (s + self.warmup - self.decay_start) / self.decay_length
        return anneal(progress, self.peak, self.end, self.decay)


@register
class WSDS(WarmupSchedule):
    """WSD-S: one main run that delivers a decayed model at each of several `checkpoints`.

    Between consecutive checkpoints ``c_{i-1} < c_i`` the LR stays at `peak`, then anneals to `end`
    over the last ``D_i = cooldown_fraction * (c_i - c_{i-1})`` steps (rounded, at least 1) before
    ``c_i``. The main run then resumes *from the decayed checkpoint* with the LR back at `peak` (no
    re-warmup), instead of from the undecayed one as in WSD branching. After the last checkpoint
    the LR stays at `end`. The paper describes this procedure rather than one decay curve; two
    public implementations decay inverse-proportionally, ``1 / (q / end + (1 - q) / peak)``, which
    lrlab does not offer; here the decay is any of the `anneal` shapes (linear by default).
    """

    name = "wsd_s"
    reference = (
        "Wen et al. 2024, 'Understanding Warmup-Stable-Decay Learning Rates: A River Valley Loss "
        "Landscape Perspective' (arXiv:2410.05192)"
    )

    checkpoints: tuple[int, ...] = integers(
        help="steps at which a decayed model is delivered", low=1
    )
    cooldown_fraction: float = real(
        0.1,
        help="decay length as a fraction of each segment",
        low=0.0,
        high=1.0,
        low_inclusive=False,
    )
    end: float = real(0.0, help="LR at the end of each decay", low=0.0)
    decay: str = choice("linear", help="shape of each decay", choices=DECAY_SHAPES)

    def _check(self) -> None:
        if not self.checkpoints or list(self.checkpoints) != sorted(set(self.checkpoints)):
            raise self.fail("checkpoints must be a non-empty, strictly increasing list")
        cooldowns = self._cooldowns()
        if np.any(cooldowns < 1):
            segment = int(np.argmin(cooldowns))
            raise self.fail(
                f"cooldown_fraction={self.cooldown_fraction} gives no decay step before checkpoint "
                f"{self.checkpoints[segment]}: each delivered model must be decayed"
            )
        if self.checkpoints[0] - cooldowns[0] < self.warmup:
            raise self.fail("the first decay overlaps the warmup: move the first checkpoint later")
        if self.end > self.peak:
            raise self.fail(f"end={self.end!r} must not exceed peak={self.peak!r}")
        check_anneal_floor(self, self.decay, self.end, "end")
        super()._check()

    def _cooldowns(self) -> np.ndarray:
        segment = np.diff(np.asarray((0, *self.checkpoints), dtype=np.float64))
        return np.floor(self.cooldown_fraction * segment + 0.5)  # half rounds up, as in WSD

    def _main(self, s: np.ndarray) -> np.ndarray:
        t = s + self.warmup
        ends = np.asarray(self.checkpoints, dtype=np.float64)
        cooldowns = self._cooldowns()
        segment = np.minimum(np.searchsorted(ends, t, side="left"), len(ends) - 1)
        decay_start = ends[segment] - cooldowns[segment]
        lr = anneal((t - decay_start) / cooldowns[segment], self.peak, self.end, self.decay)
        return np.where(t >= ends[-1], self.end, lr)
