"""The momentum law of Tissue et al. (2024), "Scaling Law with Learning Rate Annealing",
arXiv:2408.11029:

    L(s) = L0 + A * S1^(-alpha) - C * S2
    S1 = lr_0 + ... + lr_s                       (forward area)
    S2 = m_1 + ... + m_s,   m_i = lambda * m_{i-1} + (lr_{i-1} - lr_i),   m_0 = 0   (annealing area)

The decay factor `lambda` (0.99 to 0.999 in the paper) is fitted unless the ``lam`` option fixes
it. Every step contributes, warmup included (LR increases give negative momentum).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np
from scipy import signal

from lrlab.errors import LrlabError
from lrlab.laws.base import Law, register
from lrlab.laws.power import lr_area_power


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
    momentum = signal.lfilter([1.0], [1.0, -lam], drops)
    # dm_i/dlambda = m_{i-1} + lambda * dm_{i-1}/dlambda
    by_lam = signal.lfilter([1.0], [1.0, -lam], np.concatenate([[0.0], momentum[:-1]]))
    area = np.concatenate([[0.0], np.cumsum(momentum)])
    area_by_lam = np.concatenate([[0.0], np.cumsum(by_lam)])
    return area[steps], area_by_lam[steps]


@register
class MomentumLaw(Law):
    """Momentum law (Tissue et al. 2024, arXiv:2408.11029), see the module docstring."""

    name = "momentum"
    summary = "L0 + A*S1^-alpha - C*S2 with momentum S2, Tissue et al. 2024 (arXiv:2408.11029)"
    param_names = ("L0", "A", "alpha", "C", "lam")
    shape_params = ("lam",)
    defaults: ClassVar[dict[str, Any]] = {"lam": None}

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        lam = self.config["lam"]
        if lam is not None and not (isinstance(lam, int | float) and 0 <= lam < 1):
            raise LrlabError(f"law 'momentum': option lam must be in [0, 1), got {lam!r}")
        if lam is not None:  # shorthand for fixed={"lam": lam}
            self.config["fixed"] = {**(self.config["fixed"] or {}), "lam": float(lam)}
        fixed_lam = (self.config["fixed"] or {}).get("lam")
        if fixed_lam is not None and not 0 <= fixed_lam < 1:
            raise LrlabError(
                f"law 'momentum': option fixed: lam must be in [0, 1), got {fixed_lam!r}"
            )

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
        if "lam" in (self.config["fixed"] or {}):  # a fixed lam may be any value in [0, 1)
            lower[4], upper[4] = 0.0, 1.0
        return lower, upper

    def starts(self, min_loss: float) -> list[np.ndarray]:
        lam = self.config["lam"]
        return [
            np.array([f * min_loss, 0.5, 0.5, c, lam if lam is not None else guess])
            for f, c, guess in ((0.9, 1.0, 0.999), (0.95, 0.3, 0.99), (0.85, 3.0, 0.995))
        ]
