"""The final loss a fitted law predicts for a per-step LR sequence, and its exact gradient with
respect to every step's LR: what schedule optimisation descends on.

Each law's gradient is derived by hand from its formula (``t`` = 0..T, ``S = lr_0 + ... + lr_T``,
``d_k = lr_{k-1} - lr_k``) and costs O(T) with cumulative sums; tests check each against finite
differences of the law's own `predict`, so a change to a law that this module misses fails there.
"""

from __future__ import annotations

import numpy as np

from lrlab.errors import LrlabError
from lrlab.laws.base import Law

_TINY_LR = 1e-100  # LR 0 makes lr^-gamma infinite (its terms vanish in the limit); keep it finite


def final_loss_and_gradient(law: Law, lr: np.ndarray) -> tuple[float, np.ndarray]:
    """``(L(T), dL(T)/d lr)`` for the law's fitted parameters, T the last step of `lr`."""
    lr = np.asarray(lr, dtype=np.float64)
    params = dict(zip(law.param_names, np.asarray(law.params_, dtype=np.float64), strict=True))
    if law.name == "power":
        return _power(lr, params)
    if law.name == "momentum":
        return _momentum(lr, params)
    if law.name == "mpl":
        return _multipower(lr, params, p=1.0, kappa=0.0, lr_ref=1.0)
    if law.name == "lrlab":
        return _multipower(
            lr, params, p=params["p"], kappa=params["kappa"], lr_ref=law.config["lr_ref"] or 1.0
        )
    raise LrlabError(f"law {law.name!r} has no analytic gradient: optimise a schedule family")


def _area_term(lr: np.ndarray, params: dict[str, float]) -> tuple[float, float, np.ndarray]:
    """``A S^-alpha``, ``S`` and the gradient (every step adds to S)."""
    area = float(lr.sum())
    value = params["A"] * area ** -params["alpha"]
    return value, area, np.full(lr.size, -params["alpha"] * value / area)


def _power(lr: np.ndarray, params: dict[str, float]) -> tuple[float, np.ndarray]:
    """``L = L0 + A S^-alpha``."""
    value, _, gradient = _area_term(lr, params)
    return params["L0"] + value, gradient


def _drop_gradient(weights: np.ndarray, size: int) -> np.ndarray:
    """Gradient of ``sum_k d_k w_k`` (k = 1..T, ``d_k = lr_{k-1} - lr_k``) by each ``lr_i``:
    ``w_{i+1} - w_i`` (zero beyond the ends)."""
    gradient = np.zeros(size)
    gradient[:-1] += weights
    gradient[1:] -= weights
    return gradient


def _momentum(lr: np.ndarray, params: dict[str, float]) -> tuple[float, np.ndarray]:
    """``L = L0 + A S^-alpha - C S2``; ``S2 = sum_i m_i = sum_k d_k w_k`` with
    ``w_k = (1 - lam^(T - k + 1)) / (1 - lam)`` (each drop's momentum summed to the end)."""
    value, _, gradient = _area_term(lr, params)
    last = lr.size - 1
    k = np.arange(1, lr.size)
    lam = params["lam"]
    weights = (1.0 - lam ** (last - k + 1)) / (1.0 - lam)
    drops = lr[:-1] - lr[1:]
    annealing = float(drops @ weights)
    gradient -= params["C"] * _drop_gradient(weights, lr.size)
    return params["L0"] + value - params["C"] * annealing, gradient


def _multipower(
    lr: np.ndarray, params: dict[str, float], *, p: float, kappa: float, lr_ref: float
) -> tuple[float, np.ndarray]:
    """Multi-power law with drop measure ``phi(lr) = lr_ref (lr / lr_ref)^p`` and fade ``S^-kappa``
    (``p = 1, kappa = 0`` is the plain multi-power law of Luo et al. 2025):

        L = L0 + A S^-alpha - B S^-kappa D,   D = sum_k (phi_{k-1} - phi_k) G(x_k),
        x_k = lr_k^-gamma (S - S_{k-1}),      G(x) = 1 - (C x + 1)^-beta.

    ``S - S_{k-1} = lr_k + ... + lr_T``, so ``dx_k/dlr_i = lr_k^-gamma [k <= i] - gamma x_k / lr_k
    [k = i]`` and the chain rule needs one cumulative sum of
    ``(phi_{k-1} - phi_k) G'(x_k) lr_k^-gamma``.
    """
    value, area, gradient = _area_term(lr, params)
    B, C, beta, gamma = params["B"], params["C"], params["beta"], params["gamma"]
    after = np.maximum(lr[1:], _TINY_LR)
    # S - S_{k-1} = lr_k + ... + lr_T, summed from the end so it never rounds below zero.
    remaining = np.cumsum(lr[::-1])[::-1][1:]
    phi = lr_ref * (np.maximum(lr, 0.0) / lr_ref) ** p
    drops = phi[:-1] - phi[1:]
    scale = after**-gamma
    x = scale * remaining
    base = C * x + 1.0
    kernel = 1.0 - base**-beta
    kernel_slope = beta * C * base ** (-beta - 1.0)  # G'(x)
    total = float(drops @ kernel)
    fade = area**-kappa

    d_total = _drop_gradient(kernel, lr.size) * (p * phi / np.maximum(lr, _TINY_LR))
    weighted = drops * kernel_slope
    d_total[1:] += np.cumsum(weighted * scale) - gamma * weighted * x / after

    gradient -= B * (fade * d_total - kappa * area ** (-kappa - 1.0) * total)
    return params["L0"] + value - B * fade * total, gradient
