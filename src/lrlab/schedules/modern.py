"""Recent schedules: Power scheduler, REX, damped cosine, UBA.

``t`` is the step from 0, ``W`` the warmup steps, ``T`` the total steps and
``p = (t - W) / (T - W)`` the progress of the main phase.
"""

from __future__ import annotations

import math

import numpy as np

from lrlab.schedules.base import DecaySchedule, Schedule, WarmupSchedule, register
from lrlab.schedules.shapes import restart_cycles
from lrlab.settings import choice, integer, real


@register
class Power(Schedule):
    """Power scheduler (Shen et al. 2024): an LR set by the tokens seen, not by a step budget.

    ``n = t * batch_size * seq_len`` tokens seen and
    ``eta_power(n) = min(lr_max, batch_size * a * n^b)`` (``batch_size`` counted in sequences). Then

    - ``t < W``: ``(t / W) * eta_power(n_W)`` (linear warmup to the power curve)
    - ``W <= t < T - D``: ``eta_power(n)``
    - ``T - D <= t``: ``f(q) * eta_power(n_{T-D})`` with ``q = (t - (T - D)) / D``, decaying to 0
      at ``T = total`` over ``D = decay_steps``.

    The paper decays exponentially; the exact curve here is that of IBM's dolomite-engine
    ``ExponentialScheduler`` (the training code of the paper's PowerLM models),
    ``f(q) = (e^(1 - q) - 1) / (e - 1)``, which goes from 1 to 0 with time constant ``D``;
    ``linear`` is ``f(q) = 1 - q``. Without `total` there is no decay: the schedule needs no step
    budget, which is the point of the paper. Defaults ``a = 4``, ``b = -0.51``, ``lr_max = 0.02``
    (the paper's fitted values with muP).
    """

    name = "power"
    reference = (
        "Shen, Stallone, Mishra, Zhang, Tan, Prasad, Meza Soria, Cox & Panda 2024, 'Power "
        "Scheduler: A Batch Size and Token Number Agnostic Learning Rate Scheduler' "
        "(arXiv:2408.13359)"
    )
    # The LR never rises after the warmup, but the property tests only know the warmup of
    # `WarmupSchedule`s, whose warmup ends at `peak`; this one ends on the power curve instead.
    non_increasing = False
    continuous = True

    batch_size: int = integer(help="sequences per step (beta in the paper)", low=1)
    seq_len: int = integer(help="tokens per sequence", low=1)
    a: float = real(4.0, help="power-law amplitude", low=0.0, low_inclusive=False)
    b: float = real(-0.51, help="power-law exponent (<= 0)", high=0.0)
    lr_max: float = real(0.02, help="cap on the LR", low=0.0, low_inclusive=False)
    # At least one step: at step 0 no token has been seen and n^b is infinite.
    warmup: int = integer(help="warmup steps", low=1)
    total: int | None = integer(None, help="total steps; omit for no final decay", low=1)
    decay_steps: int | None = integer(None, help="steps of the final decay (with total)", low=1)
    decay: str = choice("exponential", help="final decay curve", choices=("exponential", "linear"))

    def _check(self) -> None:
        if (self.total is None) != (self.decay_steps is None):
            raise self.fail("give total and decay_steps together (or neither)")
        if self.total is not None and self.total - self.decay_steps < self.warmup:
            raise self.fail(
                f"the decay (decay_steps={self.decay_steps}) overlaps the warmup "
                f"(warmup={self.warmup}, total={self.total})"
            )

    def power_lr(self, step: np.ndarray | float) -> np.ndarray:
        """``eta_power`` at a step: ``min(lr_max, batch_size * a * n^b)``, ``n`` the tokens seen."""
        tokens = np.asarray(step, dtype=np.float64) * self.batch_size * self.seq_len
        # n^b overflows to inf for n = 0 or a tiny n; both are capped at lr_max (and only occur
        # inside the warmup, where `_lr` evaluates this branch but does not use it).
        with np.errstate(divide="ignore", over="ignore"):
            return np.minimum(self.lr_max, self.batch_size * self.a * tokens**self.b)

    def _lr(self, t: np.ndarray) -> np.ndarray:
        ramp = t / self.warmup * self.power_lr(self.warmup)
        lr = np.where(t < self.warmup, ramp, self.power_lr(t))
        if self.total is None:
            return lr
        decay_start = self.total - self.decay_steps
        q = np.clip((t - decay_start) / self.decay_steps, 0.0, 1.0)
        if self.decay == "exponential":
            factor = (np.exp(1.0 - q) - 1.0) / (math.e - 1.0)
        else:
            factor = 1.0 - q
        return np.where(t >= decay_start, factor * self.power_lr(decay_start), lr)


@register
class Rex(DecaySchedule):
    """REX, the reflected-exponential profile (Chen, Wolfe & Kyrillidis 2022):
    ``floor + (peak - floor) * (1 - p) / (1/2 + (1 - p) / 2)``, i.e. ``(1 - p) / (1 - p / 2)``.

    The LR is 1, 2/3 and 0 times the peak at ``p = 0, 1/2, 1``: it stays above linear decay and
    drops late. REX samples the profile every iteration, as this step function does. The paper uses
    no warmup and a floor of 0 (the defaults).
    """

    name = "rex"
    reference = (
        "Chen, Wolfe & Kyrillidis 2022, 'REX: Revisiting Budgeted Training with an Improved "
        "Schedule', MLSys 2022 (arXiv:2107.04197)"
    )
    non_increasing = True
    continuous = True

    def _main(self, s: np.ndarray) -> np.ndarray:
        remaining = 1.0 - np.clip(s / self.decay_steps, 0.0, 1.0)
        return self.floor + (self.peak - self.floor) * remaining / (0.5 + 0.5 * remaining)


@register
class DampedCosine(WarmupSchedule):
    """Damped cosine: cosine decay with warm restarts whose amplitude shrinks by `damping` per
    cycle.

    No paper defines a "damped cosine" LR schedule; the best-documented form is TensorFlow/Keras
    ``CosineDecayRestarts`` (SGDR with ``t_mul``, ``m_mul``, ``alpha``). Cycle ``i`` lasts
    ``cycle * cycle_mult^i`` steps and, with ``f`` the fraction of it done,
    ``lr = peak * (end_ratio + (1 - end_ratio) * damping^i * (1 + cos(pi f)) / 2)``: the floor stays
    at ``end_ratio * peak`` and only the amplitude above it is damped (unlike `cosine_restarts`,
    whose `peak_decay` scales the peak towards an absolute floor).
    """

    name = "damped_cosine"
    reference = (
        "tf.keras.optimizers.schedules.CosineDecayRestarts (m_mul damping); Loshchilov & Hutter "
        "2017, 'SGDR: Stochastic Gradient Descent with Warm Restarts' (arXiv:1608.03983)"
    )

    cycle: int = integer(help="length of the first cycle in steps (first_decay_steps)", low=1)
    damping: float = real(help="amplitude factor per restart (m_mul)", low=0.0, high=1.0)
    cycle_mult: float = real(2.0, help="each cycle is this many times longer (t_mul)", low=1.0)
    end_ratio: float = real(0.0, help="floor as a fraction of the peak (alpha)", low=0.0, high=1.0)

    def _main(self, s: np.ndarray) -> np.ndarray:
        index, starts, lengths = restart_cycles(s, self.cycle, self.cycle_mult)
        fraction = (s - starts[index]) / lengths[index]
        amplitudes = (1.0 - self.end_ratio) * self.damping ** np.arange(len(starts))
        return self.peak * (
            self.end_ratio + amplitudes[index] * (1.0 + np.cos(np.pi * fraction)) / 2.0
        )


@register
class UBA(DecaySchedule):
    """UBA, the Unified Budget-Aware schedule (Tang, Dong, Zeng, Zhou & Lin 2025), one parameter
    phi.

    With ``c = 1 + cos(pi p)``: ``lr = floor + (peak - floor) * 2c / (2 phi + (2 - phi) c)``.
    The paper's text could not be retrieved (only its abstract); this form is the one a public
    third-party implementation labels "UBA formula" (the same expression, with eta_max and
    eta_min), not checked against the paper's equations.
    It falls from `peak` to the floor for every ``phi > 0``; ``phi = 2`` is cosine decay, small phi
    holds the LR high for longer, large phi drops it early.
    """

    name = "uba"
    reference = (
        "Tang, Dong, Zeng, Zhou & Lin 2025, 'Stepsize anything: A unified learning rate schedule "
        "for budgeted-iteration training', NeurIPS 2025 (arXiv:2505.24452); formula from a "
        "third-party implementation"
    )
    non_increasing = True
    continuous = True

    phi: float = real(
        help="the single UBA hyper-parameter (phi = 2 gives cosine)", low=0.0, low_inclusive=False
    )

    def _main(self, s: np.ndarray) -> np.ndarray:
        c = 1.0 + np.cos(np.pi * np.clip(s / self.decay_steps, 0.0, 1.0))
        shape = 2.0 * c / (2.0 * self.phi + (2.0 - self.phi) * c)
        return self.floor + (self.peak - self.floor) * shape
