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
    """LR area at the steps, the per-step LR drops and the steps."""

    area: np.ndarray
    drops: np.ndarray
    steps: np.ndarray


def annealing_area(
    drops: np.ndarray, steps: np.ndarray, lam: float
) -> tuple[np.ndarray, np.ndarray]:
    """``S2`` at `steps` and its derivative by lambda; ``drops[i - 1] = lr_{i-1} - lr_i``."""
    from scipy import signal  # costs 0.1 s to import: only evaluating the law needs it

    momentum = signal.lfilter([1.0], [1.0, -lam], drops)
    # dm_i/dlambda = m_{i-1} + lambda * dm_{i-1}/dlambda
    by_lam = signal.lfilter([1.0], [1.0, -lam], np.concatenate([[0.0], momentum[:-1]]))
    area = np.concatenate([[0.0], np.cumsum(momentum)])
    area_by_lam = np.concatenate([[0.0], np.cumsum(by_lam)])
    return area[steps], area_by_lam[steps]


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
        return MomentumFeatures(np.cumsum(lr)[steps], lr[:-1] - lr[1:], steps)

    def curve(self, theta: np.ndarray, features: MomentumFeatures) -> np.ndarray:
        return self.curve_and_jacobian(theta, features)[0]

    def curve_and_jacobian(
        self, theta: np.ndarray, features: MomentumFeatures
    ) -> tuple[np.ndarray, np.ndarray]:
        L0, _, _, C, lam = theta
        power, power_derivatives = lr_area_power(theta, features.area)
        area2, area2_by_lam = annealing_area(features.drops, features.steps, lam)
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
