"""The classic schedules: constant, linear, cosine, restarts, step, exponential, inverse square
root, polynomial, one-cycle and two-stage.

In every formula ``t`` is the step from 0, ``W`` the warmup steps, ``s = t - W`` the step after
warmup, ``T`` the total steps and ``p = s / (T - W)`` the progress of the main phase.
"""

from __future__ import annotations

import numpy as np

from lrlab.schedules.base import DecaySchedule, Schedule, WarmupSchedule, register
from lrlab.schedules.shapes import anneal, restart_cycles
from lrlab.settings import choice, integer, integers, real


@register
class Constant(WarmupSchedule):
    """Constant LR after warmup: ``peak``. The baseline of every loss-curve law fit."""

    name = "constant"
    reference = "Goyal et al. 2017, 'Accurate, Large Minibatch SGD' (warmup then constant)"
    non_increasing = True
    continuous = True

    def _main(self, s: np.ndarray) -> np.ndarray:
        return np.full_like(s, self.peak)


@register
class Linear(DecaySchedule):
    """Linear decay: ``peak + (floor - peak) * p``; with ``end=0`` it is decay-to-zero (D2Z).

    Bergsma et al. 2025, "Straight to Zero: Why Linearly Decaying the Learning Rate to Zero Works
    Best for LLMs", show D2Z beating cosine-to-10% at compute-optimal and longer budgets.
    """

    name = "linear"
    reference = "Bergsma et al. 2025, 'Straight to Zero' (arXiv:2502.15938)"
    non_increasing = True
    continuous = True

    def _main(self, s: np.ndarray) -> np.ndarray:
        return anneal(s / self.decay_steps, self.peak, self.floor, "linear")


@register
class Cosine(DecaySchedule):
    """Cosine decay: ``floor + (peak - floor) * (1 + cos(pi * p)) / 2``.

    The floor is absolute (`end`) or relative (`end_ratio`, e.g. 0.1 for "cosine to 10%").
    """

    name = "cosine"
    reference = "Loshchilov & Hutter 2017, 'SGDR: Stochastic Gradient Descent with Warm Restarts'"
    non_increasing = True
    continuous = True

    def _main(self, s: np.ndarray) -> np.ndarray:
        return anneal(s / self.decay_steps, self.peak, self.floor, "cosine")


@register
class CosineRestarts(WarmupSchedule):
    """Cosine with warm restarts (SGDR, cyclic cosine).

    Cycle ``i`` lasts ``T_i = cycle * cycle_mult^i`` steps and decays by cosine from
    ``peak * peak_decay^i`` to `end`, then the LR jumps back up:
    ``lr = end + (peak_i - end) * (1 + cos(pi * s_i / T_i)) / 2`` with ``s_i`` the step in the
    cycle.
    """

    name = "cosine_restarts"
    reference = "Loshchilov & Hutter 2017, 'SGDR: Stochastic Gradient Descent with Warm Restarts'"

    cycle: int = integer(help="length of the first cycle in steps", low=1)
    cycle_mult: float = real(
        1.0, help="each cycle is this many times longer than the last", low=1.0
    )
    peak_decay: float = real(
        1.0,
        help="each cycle's peak is this fraction of the last",
        low=0.0,
        high=1.0,
        low_inclusive=False,
    )
    end: float = real(0.0, help="LR at the end of every cycle", low=0.0)

    def _check(self) -> None:
        if self.end > self.peak:
            raise self.fail(f"end={self.end!r} must not exceed peak={self.peak!r}")
        super()._check()

    def _main(self, s: np.ndarray) -> np.ndarray:
        index, starts, lengths = restart_cycles(s, self.cycle, self.cycle_mult)
        peaks = self.peak * self.peak_decay ** np.arange(len(starts))
        progress = (s - starts[index]) / lengths[index]
        return anneal(progress, peaks[index], self.end, "cosine")


@register
class Step(WarmupSchedule):
    """Step decay: ``peak * gamma^floor(s / step_size)``."""

    name = "step"
    reference = "He et al. 2016, 'Deep Residual Learning for Image Recognition' (divide by 10)"
    non_increasing = True

    step_size: int = integer(help="steps between drops", low=1)
    gamma: float = real(0.1, help="factor applied at each drop", low=0.0, high=1.0)

    def _main(self, s: np.ndarray) -> np.ndarray:
        return self.peak * self.gamma ** np.floor(s / self.step_size)


@register
class MultiStep(WarmupSchedule):
    """Multi-step decay: ``peak * gamma^(number of milestones <= t)``; milestones are absolute
    steps.

    The schedule of GPT-3-era and DeepSeek LLM runs (drops at 80% and 90% of the tokens).
    """

    name = "multistep"
    reference = "DeepSeek-AI 2024, 'DeepSeek LLM' (multi-step 80%/90%); He et al. 2016"
    non_increasing = True

    milestones: tuple[int, ...] = integers(help="absolute steps at which the LR drops")
    gamma: float = real(0.1, help="factor applied at each milestone", low=0.0, high=1.0)

    def _check(self) -> None:
        if list(self.milestones) != sorted(set(self.milestones)):
            raise self.fail("milestones must be strictly increasing")
        super()._check()

    def _main(self, s: np.ndarray) -> np.ndarray:
        drops = np.searchsorted(np.asarray(self.milestones, dtype=float), s + self.warmup, "right")
        return self.peak * self.gamma**drops


@register
class Exponential(WarmupSchedule):
    """Exponential decay: ``max(peak * decay_rate^(s / decay_steps), end)``."""

    name = "exponential"
    reference = "TensorFlow ExponentialDecay; MiniCPM (Hu et al. 2024) uses it for the WSD decay"
    non_increasing = True
    continuous = True

    decay_rate: float = real(help="factor per decay_steps", low=0.0, high=1.0, low_inclusive=False)
    decay_steps: int = integer(help="steps over which the LR is multiplied by decay_rate", low=1)
    end: float = real(0.0, help="floor: the LR never goes below it", low=0.0)

    def _main(self, s: np.ndarray) -> np.ndarray:
        return np.maximum(self.peak * self.decay_rate ** (s / self.decay_steps), self.end)


@register
class InverseSqrt(WarmupSchedule):
    """Inverse square root: ``peak * sqrt(timescale / (s + timescale))``.

    With ``timescale = W`` and linear warmup this is the Transformer schedule
    ``d^-0.5 * min(t^-0.5, t * W^-1.5)`` rescaled so that the LR at step ``W`` is `peak`.
    """

    name = "inverse_sqrt"
    reference = "Vaswani et al. 2017, 'Attention Is All You Need'; Zhai et al. 2022 (timescale)"
    non_increasing = True
    continuous = True

    timescale: int | None = integer(None, help="decay timescale in steps (default: warmup)", low=1)

    def _check(self) -> None:
        if self.timescale is None and self.warmup == 0:
            raise self.fail("give timescale when warmup=0")
        super()._check()

    def _main(self, s: np.ndarray) -> np.ndarray:
        timescale = self.timescale or self.warmup
        return self.peak * np.sqrt(timescale / (s + timescale))


@register
class Polynomial(DecaySchedule):
    """Polynomial decay: ``floor + (peak - floor) * (1 - p)^power``."""

    name = "polynomial"
    reference = "Hugging Face get_polynomial_decay_schedule_with_warmup; Chen et al. 2018 (DeepLab)"
    non_increasing = True
    continuous = True

    power: float = real(1.0, help="exponent of (1 - progress)", low=0.0, low_inclusive=False)

    def _main(self, s: np.ndarray) -> np.ndarray:
        remaining = 1.0 - np.clip(s / self.decay_steps, 0.0, 1.0)
        return self.floor + (self.peak - self.floor) * remaining**self.power


@register
class OneCycle(Schedule):
    """One-cycle policy, as `torch.optim.lr_scheduler.OneCycleLR` computes it (two phases).

    From ``initial = peak / div_factor`` up to `peak` by step ``pct_start * total - 1``, then down
    to ``initial / final_div_factor`` at step ``total - 1``, each phase annealed by cosine or
    linearly.
    """

    name = "one_cycle"
    reference = "Smith & Topin 2018, 'Super-Convergence' (arXiv:1708.07120)"
    continuous = True

    peak: float = real(help="maximum learning rate", low=0.0, low_inclusive=False)
    total: int = integer(help="total steps", low=2)
    pct_start: float = real(
        0.3,
        help="fraction of the steps spent increasing the LR",
        low=0.0,
        high=1.0,
        low_inclusive=False,
    )
    div_factor: float = real(25.0, help="initial LR = peak / div_factor", low=1.0)
    final_div_factor: float = real(1e4, help="final LR = initial LR / final_div_factor", low=1.0)
    anneal_shape: str = choice("cosine", help="curve of each phase", choices=("cosine", "linear"))

    def _check(self) -> None:
        if not 0.0 < self.pct_start * self.total - 1.0 < self.total - 1.0:
            raise self.fail("pct_start * total must fall between 1 and total")

    def _lr(self, t: np.ndarray) -> np.ndarray:
        initial = self.peak / self.div_factor
        final = initial / self.final_div_factor
        turn = self.pct_start * self.total - 1.0
        last = self.total - 1.0
        rising = anneal(t / turn, initial, self.peak, self.anneal_shape)
        falling = anneal((t - turn) / (last - turn), self.peak, final, self.anneal_shape)
        return np.where(t <= turn, rising, falling)


@register
class TwoStage(WarmupSchedule):
    """Two-stage constant: `peak` until `drop_step` (absolute), then the constant `low`.

    The "WSD-con" schedules of the multi-power-law paper use it to isolate the loss drop that a
    single LR decrease causes.
    """

    name = "two_stage"
    reference = "Luo et al. 2025, 'A Multi-Power Law for Loss Curve Prediction' (arXiv:2503.12811)"
    non_increasing = True

    drop_step: int = integer(help="absolute step from which the LR is `low`", low=1)
    low: float = real(help="LR of the second stage", low=0.0)

    def _check(self) -> None:
        if self.low > self.peak:
            raise self.fail(f"low={self.low!r} must not exceed peak={self.peak!r}")
        if self.drop_step < self.warmup:
            raise self.fail(f"drop_step={self.drop_step} must not be inside the warmup")
        super()._check()

    def _main(self, s: np.ndarray) -> np.ndarray:
        return np.where(s + self.warmup < self.drop_step, self.peak, self.low)
