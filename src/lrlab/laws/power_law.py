"""Baseline: a plain power law in the LR area, with no annealing term.

    L(t) = L0 + A * S1(t)^(-alpha),   S1(t) = lr_0 + ... + lr_t

This is the "forward area" term shared by the momentum law (Tissue et al. 2024, arXiv:2408.11029)
and the multi-power law (Luo et al. 2025, arXiv:2503.12811); alone it cannot see an LR decay.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lrlab.laws.base import Law


def lr_area_power(theta: np.ndarray, area: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``A * area^-alpha`` and its derivatives by (A, alpha), as a (points x 2) array."""
    _, amplitude, alpha = theta[:3]
    power = area**-alpha
    return amplitude * power, np.column_stack([power, -amplitude * power * np.log(area)])


def final_area_power(lr: np.ndarray, amplitude: float, alpha: float) -> tuple[float, np.ndarray]:
    """``A * S^-alpha`` at the last step of the per-step LR `lr` (``S = lr_0 + ... + lr_T``) and
    its gradient by every step's LR (each one adds to ``S``)."""
    area = float(lr.sum())
    value = amplitude * area**-alpha
    return value, np.full(lr.size, -alpha * value / area)


class PowerLaw(Law):
    """L = L0 + A * S1^-alpha (no annealing term; the baseline)."""

    name = "power"
    summary = "L0 + A*S1^-alpha, LR area only (baseline, no annealing term)"
    param_names = ("L0", "A", "alpha")

    def features(self, lr: np.ndarray, steps: np.ndarray) -> Any:
        return np.cumsum(lr)[steps]

    def curve(self, theta: np.ndarray, features: Any) -> np.ndarray:
        return theta[0] + lr_area_power(theta, features)[0]

    def curve_and_jacobian(self, theta: np.ndarray, features: Any) -> tuple[np.ndarray, np.ndarray]:
        power, derivatives = lr_area_power(theta, features)
        return theta[0] + power, np.column_stack([np.ones(features.size), derivatives])

    def bounds(self, max_loss: float, min_loss: float) -> tuple[np.ndarray, np.ndarray]:
        return np.array([0.0, 0.0, 0.01]), np.array([min_loss, 100.0, 3.0])

    def starts(self, min_loss: float) -> list[np.ndarray]:
        return [np.array([f * min_loss, 0.5, alpha]) for f in (0.8, 0.95) for alpha in (0.3, 0.6)]

    def final_loss_and_gradient(self, lr: np.ndarray) -> tuple[float, np.ndarray]:
        self._require_fitted()
        L0, amplitude, alpha = self.params_
        value, gradient = final_area_power(np.asarray(lr, dtype=np.float64), amplitude, alpha)
        return L0 + value, gradient
