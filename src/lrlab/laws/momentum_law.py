"""The momentum law of Tissue et al. (2024), "Scaling Law with Learning Rate Annealing",
arXiv:2408.11029:

    L(s) = L0 + A * S1^(-alpha) - C * S2
    S1 = lr_0 + ... + lr_s                       (forward area)
    S2 = m_1 + ... + m_s,   m_i = lambda * m_{i-1} + (lr_{i-1} - lr_i),   m_0 = 0   (annealing area)

The decay factor `lambda` (0.99 to 0.999 in the paper) is fitted unless the ``lam`` parameter
fixes it. Every step contributes, warmup included (LR increases give negative momentum).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from lrlab.errors import LrlabError
from lrlab.laws.base import Law
from lrlab.laws.drops import drop_sum_gradient
from lrlab.laws.power_law import final_area_power, lr_area_power
from lrlab.settings import real


@dataclasses.dataclass(frozen=True)
class MomentumFeatures:
    """LR area at the steps and `AnnealingPlan`: how the annealing area there is summed."""

    area: np.ndarray
    plan: AnnealingPlan


@dataclasses.dataclass(frozen=True)
class AnnealingPlan:
    """What `annealing_area` needs of a curve, whatever lambda is: its non-zero LR drops, each
    with the distinct step it is summed into (the first at or after it) and its distance from
    there, and the distinct steps.

    ``m_i = sum_{k<=i} lambda^(i-k) d_k`` (``d_k = lr_{k-1} - lr_k``), so from one distinct step
    ``s`` to the next ``s'``: ``m_s' = lambda^(s'-s) m_s + sum_{s<k<=s'} lambda^(s'-k) d_k``, and
    ``S2_s = sum_{i<=s} m_i = (D_s - lambda m_s) / (1 - lambda)``, ``D_s = sum_{k<=s} d_k``. Each
    evaluation then costs one pass over the non-zero drops (none on a constant stretch) and a
    recursion over the distinct steps, where a filter over every step cost one pass per step
    and scipy.signal's import (0.3 s of CPU)."""

    drops: np.ndarray  # the non-zero d_k with k at most the last step, by k
    distance: np.ndarray  # each drop's distance from its distinct step s: s - k
    starts: np.ndarray  # where each distinct step's drops begin, for those that have any
    owners: np.ndarray  # those distinct steps (indices into `distinct`)
    gaps: np.ndarray  # each distinct step less the one before it (the first: itself)
    total_drop: np.ndarray  # D at each distinct step
    distinct: np.ndarray  # the distinct steps, sorted
    index: np.ndarray  # each step's index into `distinct`
    longest: int  # the largest distance or gap

    @classmethod
    def build(cls, drops: np.ndarray, steps: np.ndarray) -> AnnealingPlan:
        """The plan for the steps `steps` of a curve whose LR drops are `drops`
        (``drops[k - 1] = lr_{k-1} - lr_k``)."""
        distinct, index = np.unique(np.asarray(steps, dtype=np.int64), return_inverse=True)
        last = int(distinct[-1]) if distinct.size else 0
        k = np.flatnonzero(drops[:last]) + 1
        owner = np.searchsorted(distinct, k)
        distance = distinct[owner] - k
        starts = np.flatnonzero(np.diff(owner, prepend=-1))
        gaps = np.diff(distinct, prepend=0)
        total = np.concatenate([[0.0], np.cumsum(drops[:last])])[distinct]
        longest = int(max(distance.max(initial=0), gaps.max(initial=0)))
        return cls(
            drops[k - 1], distance, starts, owner[starts], gaps, total, distinct, index, longest
        )

    def area(self, lam: float) -> tuple[np.ndarray, np.ndarray]:
        """``S2`` at the steps and its derivative by lambda."""
        lam = float(lam)
        powers = lam ** np.arange(self.longest + 1, dtype=np.float64)
        # d lambda^n / d lambda = n lambda^(n - 1), 0 for n = 0
        slopes = np.arange(self.longest + 1) * np.concatenate([[0.0], powers[:-1]])
        # each distinct step's new drops, weighted by lambda^distance and by its derivative
        added = np.zeros((2, self.distinct.size))
        if self.drops.size:
            weights = np.stack([powers.take(self.distance), slopes.take(self.distance)])
            added[:, self.owners] = np.add.reduceat(weights * self.drops, self.starts, axis=1)
        momentum, by_lam = [], []
        m = dm = 0.0
        for factor, slope, new, new_slope in zip(
            powers.take(self.gaps).tolist(),
            slopes.take(self.gaps).tolist(),
            *added.tolist(),
            strict=True,
        ):
            dm = factor * dm + slope * m + new_slope
            m = factor * m + new
            momentum.append(m)
            by_lam.append(dm)
        rest, at = 1.0 - lam, np.array(momentum)
        area = (self.total_drop - lam * at) / rest
        area_by_lam = (self.total_drop - at - lam * rest * np.array(by_lam)) / rest**2
        return area[self.index], area_by_lam[self.index]


def annealing_area(
    drops: np.ndarray, steps: np.ndarray, lam: float
) -> tuple[np.ndarray, np.ndarray]:
    """``S2`` at `steps` and its derivative by lambda; ``drops[i - 1] = lr_{i-1} - lr_i``."""
    return AnnealingPlan.build(drops, steps).area(lam)


@dataclasses.dataclass(kw_only=True, eq=False)
class MomentumLaw(Law):
    """Momentum law (Tissue et al. 2024, arXiv:2408.11029), see the module docstring."""

    name = "momentum"
    summary = "L0 + A*S1^-alpha - C*S2 with momentum S2, Tissue et al. 2024 (arXiv:2408.11029)"
    param_names = ("L0", "A", "alpha", "C", "lam")
    shape_params = ("lam",)

    # In [0, 1), checked below: the rule's bounds cannot exclude 1.
    lam: float | None = real(
        None, help="hold lambda at this value (shorthand for fixed lam; wins over it)", low=None
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        # [0, 1): lambda = 1 would let the momentum grow without bound
        for where, value in (("lam", self.lam), ("fixed lam", (self.fixed or {}).get("lam"))):
            if value is not None and not 0 <= value < 1:
                raise LrlabError(
                    f"law 'momentum': {where}={value!r} is out of range (a number in [0, 1))"
                )

    def fixed_parameters(self) -> dict[str, float]:
        fixed = super().fixed_parameters()
        if self.lam is not None:
            fixed["lam"] = self.lam
        return fixed

    def features(self, lr: np.ndarray, steps: np.ndarray) -> MomentumFeatures:
        return MomentumFeatures(np.cumsum(lr)[steps], AnnealingPlan.build(lr[:-1] - lr[1:], steps))

    def curve(self, theta: np.ndarray, features: MomentumFeatures) -> np.ndarray:
        return self.curve_and_jacobian(theta, features)[0]

    def curve_and_jacobian(
        self, theta: np.ndarray, features: MomentumFeatures
    ) -> tuple[np.ndarray, np.ndarray]:
        L0, _, _, C, lam = theta
        power, power_derivatives = lr_area_power(theta, features.area)
        area2, area2_by_lam = features.plan.area(lam)
        jacobian = np.column_stack(
            [np.ones(area2.size), power_derivatives, -area2, -C * area2_by_lam]
        )
        return L0 + power - C * area2, jacobian

    def bounds(self, max_loss: float, min_loss: float) -> tuple[np.ndarray, np.ndarray]:
        lower = np.array([0.0, 0.0, 0.01, 0.0, 0.9])
        upper = np.array([min_loss, 100.0, 3.0, 1e4, 0.99999])
        if "lam" in self.fixed_parameters():  # a fixed lam may be any value in [0, 1)
            lower[4], upper[4] = 0.0, 1.0
        return lower, upper

    def starts(self, min_loss: float) -> list[np.ndarray]:
        lam = self.lam
        return [
            np.array([f * min_loss, 0.5, 0.5, c, lam if lam is not None else guess])
            for f, c, guess in ((0.9, 1.0, 0.999), (0.95, 0.3, 0.99), (0.85, 3.0, 0.995))
        ]

    def final_loss_and_gradient(self, lr: np.ndarray) -> tuple[float, np.ndarray]:
        """``S2 = sum_i m_i = sum_k d_k w_k`` with ``w_k = (1 - lam^(T - k + 1)) / (1 - lam)``
        (each drop's momentum summed to the end), so ``dS2 / d lr`` has the weights' form."""
        self._require_fitted()
        L0, amplitude, alpha, C, lam = self.params_
        lr = np.asarray(lr, dtype=np.float64)
        value, gradient = final_area_power(lr, amplitude, alpha)
        last = lr.size - 1
        k = np.arange(1, lr.size)
        weights = (1.0 - lam ** (last - k + 1)) / (1.0 - lam)
        drops = lr[:-1] - lr[1:]
        annealing = float(drops @ weights)
        gradient -= C * drop_sum_gradient(weights, lr.size)
        return L0 + value - C * annealing, gradient
