"""The multi-power law of Luo et al. (2025), "A Multi-Power Law for Loss Curve Prediction Across
Learning Rate Schedules", ICLR 2025, arXiv:2503.12811:

    L(t) = L0 + A * S_t^(-alpha)
           - B * sum_{k=1..t} (lr_{k-1} - lr_k) * G(lr_k^(-gamma) * (S_t - S_{k-1}))
    G(x) = 1 - (C * x + 1)^(-beta),   S_t = lr_0 + ... + lr_t,

exactly as the reference code evaluates it (so the published parameters reproduce the published
table). The drop sum is computed by `lrlab.laws.drops.DropQuadrature` (bounded error, far fewer
terms than steps x points); ``evaluation="exact"`` sums it term by term instead. The kernel ``G``
is `lrlab.laws.kernel`'s, shared with lrlab's law.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from lrlab.laws import kernel
from lrlab.laws.base import Law
from lrlab.laws.drops import DropQuadrature, build_drop_quadrature
from lrlab.laws.power_law import lr_area_power
from lrlab.settings import choice, real


@dataclasses.dataclass(frozen=True)
class MultiPowerFeatures:
    """Per-curve data: LR area at the steps, the drop-sum nodes, and (exact mode) the raw LR."""

    area: np.ndarray
    drops: DropQuadrature | None
    lr: np.ndarray
    steps: np.ndarray


def drop_sum(theta: np.ndarray, drops: DropQuadrature) -> np.ndarray:
    """Per-point sum of ``d * G`` for ``theta[4:7] = C, beta, gamma``."""
    _, _, tail = kernel.node_kernel(theta, drops)
    return drops.total(np.subtract(1.0, tail, out=drops.workspace("sum", 1)[0]), True)


def drop_terms(theta: np.ndarray, drops: DropQuadrature) -> np.ndarray:
    """Per-point sums of d*G, d*dG/dC, d*dG/dbeta, d*dG/dgamma (4 x points)."""
    C = theta[4]
    _, log_base, tail, slope_x = kernel.node_kernel(theta, drops, slope=True)
    rows = drops.workspace("terms", 4)
    np.subtract(1.0, tail, out=rows[0])
    rows[1] = slope_x
    np.multiply(tail, log_base, out=rows[2])
    np.multiply(slope_x, drops.log_lr, out=rows[3])
    rows[3] *= -C
    return drops.total(rows, overwrite=True)


@dataclasses.dataclass(kw_only=True, eq=False)
class MultiPowerLaw(Law):
    """Multi-power law (Luo et al. 2025, arXiv:2503.12811), see the module docstring."""

    name = "mpl"
    summary = "multi-power law, Luo et al. 2025 (arXiv:2503.12811)"
    param_names = ("L0", "A", "alpha", "B", "C", "beta", "gamma")
    shape_params = ("C", "beta", "gamma")

    evaluation: str = choice(
        "fast",
        help="drop sum by bounded-error quadrature, or term by term",
        choices=("fast", "exact"),
    )
    rel_width: float = real(
        0.05, help="quadrature: relative width of the LR-area levels", low=0, low_inclusive=False
    )
    lr_bin: float = real(
        0.05, help="quadrature: width of the LR bins, in log LR", low=0, low_inclusive=False
    )

    def features(self, lr: np.ndarray, steps: np.ndarray) -> MultiPowerFeatures:
        drops = None
        if self.evaluation == "fast":
            drops = build_drop_quadrature(lr, steps, self.rel_width, self.lr_bin)
        return MultiPowerFeatures(np.cumsum(lr)[steps], drops, lr, steps)

    def curve(self, theta: np.ndarray, features: MultiPowerFeatures) -> np.ndarray:
        L0, B = theta[0], theta[3]
        power, _ = lr_area_power(theta, features.area)
        if features.drops is None:
            C, beta, gamma = theta[4:7]
            drops = kernel.exact_drop_sum(features.lr, features.steps, C, beta, gamma)
        else:
            drops = drop_sum(theta, features.drops)
        return L0 + power - B * drops

    def curve_and_jacobian(
        self, theta: np.ndarray, features: MultiPowerFeatures
    ) -> tuple[np.ndarray, np.ndarray | None]:
        if features.drops is None:
            return self.curve(theta, features), None
        L0, B = theta[0], theta[3]
        power, power_derivatives = lr_area_power(theta, features.area)
        terms = drop_terms(theta, features.drops)
        jacobian = np.empty((features.area.size, 7))
        jacobian[:, 0] = 1.0
        jacobian[:, 1:3] = power_derivatives
        jacobian[:, 3] = -terms[0]
        jacobian[:, 4:] = -B * terms[1:].T
        return L0 + power - B * terms[0], jacobian

    def bounds(self, max_loss: float, min_loss: float) -> tuple[np.ndarray, np.ndarray]:
        lower = np.array([0.0, 0.0, 0.01, 0.0, 1e-3, 0.01, 0.0])
        upper = np.array([min_loss, 100.0, 3.0, 1e5, 1e3, 5.0, 2.0])
        return lower, upper

    def starts(self, min_loss: float) -> list[np.ndarray]:
        return [
            np.array([f * min_loss, 0.5, 0.5, b, 2.0, 0.6, 0.6])
            for f, b in ((0.85, 500.0), (0.95, 100.0), (0.9, 2000.0))
        ]

    def final_loss_and_gradient(self, lr: np.ndarray) -> tuple[float, np.ndarray]:
        """Exact (not by quadrature): `lrlab.laws.kernel.final_loss_and_gradient` with
        ``p = 1, kappa = 0``."""
        self._require_fitted()
        return kernel.final_loss_and_gradient(lr, self.params_, p=1.0, kappa=0.0, lr_ref=1.0)
