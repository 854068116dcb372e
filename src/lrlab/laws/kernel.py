"""The kernel of the multi-power law (Luo et al. 2025, arXiv:2503.12811), shared by the `mpl` law
and lrlab's law (the multi-power law with a drop measure ``phi`` and a fade ``S_t^-kappa``):

    L(t) = L0 + A S_t^-alpha - B S_t^-kappa sum_{k=1..t} (phi(lr_{k-1}) - phi(lr_k)) G(x_k),
    G(x) = 1 - (C x + 1)^-beta,   x_k = lr_k^-gamma (S_t - S_{k-1}),   S_t = lr_0 + ... + lr_t,

with ``phi(lr) = lr_ref (lr / lr_ref)^p`` (``p = 1, kappa = 0``: the multi-power law itself).
``G`` is evaluated here three ways, each where it is cheapest and most accurate:

- `node_kernel`: on the nodes of a `DropQuadrature` (every step of a curve, for
  fitting; parameters ``theta`` in the laws' order ``L0, A, alpha, B, C, beta, gamma, ...``);
- `exact_drop_sum`: term by term, as the reference code does (for checks and speed baselines);
- `final_loss_and_gradient`: the loss at the last step and its exact gradient by every step's LR,
  derived by hand in O(T) (for schedule optimisation).
"""

from __future__ import annotations

import numpy as np

from lrlab.laws.drops import DropQuadrature, drop_sum_gradient
from lrlab.laws.power_law import final_area_power

_MAX_LOG_X = 600.0  # exp(600) is finite; G is 1 to double precision long before
_TINY_LR = 1e-100  # LR 0 makes lr^-gamma infinite (its terms vanish in the limit); keep it finite


def node_kernel(
    theta: np.ndarray, drops: DropQuadrature, slope: bool = False
) -> tuple[np.ndarray, ...]:
    """At every quadrature node: ``x``, ``log(C x + 1)`` and ``(C x + 1)^-beta`` (= 1 - G), for
    ``theta[4:7] = C, beta, gamma``; with `slope`, also ``x * dG/d(C x)``, the factor every
    derivative of ``G`` by ``C``, ``gamma`` (and ``lr``) shares.

    They are written into the nodes' workspace (`DropQuadrature.workspace`), overwritten by the
    next call on the same nodes: this runs at every node of every evaluation of a fit, where
    fresh arrays of that size cost a page fault per 4 KiB each time."""
    C, beta, gamma = theta[4:7]
    x, log_base, tail, scaled, slope_x = drops.workspace("kernel", 5)
    np.multiply(drops.log_lr, -gamma, out=x)
    x += drops.log_area
    low, high = drops.log_lr_range
    if max(-gamma * low, -gamma * high) + drops.log_area_max > _MAX_LOG_X:  # else a no-op pass
        np.minimum(x, _MAX_LOG_X, out=x)
    np.exp(x, out=x)
    np.log1p(np.multiply(C, x, out=scaled), out=log_base)
    np.exp(np.multiply(log_base, -beta, out=tail), out=tail)
    if not slope:
        return x, log_base, tail
    # beta * tail * x / (C * x + 1)
    np.multiply(beta, tail, out=slope_x)
    slope_x *= x
    scaled += 1.0
    slope_x /= scaled
    return x, log_base, tail, slope_x


def exact_drop_sum(
    lr: np.ndarray, steps: np.ndarray, C: float, beta: float, gamma: float
) -> np.ndarray:
    """``sum_k (lr_{k-1} - lr_k) G(x_k)`` at each of `steps`, summed term by term as the
    reference code does (steps x points; for checks and the speed baseline)."""
    lr = np.asarray(lr, dtype=np.float64)
    area = np.cumsum(lr)
    out = np.empty(len(steps))
    for index, t in enumerate(np.asarray(steps, dtype=np.int64)):
        k = np.arange(1, t + 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            x = lr[k] ** -gamma * (area[t] - area[k - 1])
            x = np.where(area[t] - area[k - 1] == 0, 0.0, x)
        g = 1.0 - (C * x + 1.0) ** -beta
        out[index] = np.sum((lr[k - 1] - lr[k]) * g)
    return out


def final_loss_and_gradient(
    lr: np.ndarray, theta: np.ndarray, *, p: float, kappa: float, lr_ref: float
) -> tuple[float, np.ndarray]:
    """``(L(T), dL(T)/d lr)`` of the law in the module docstring for the per-step LR `lr`
    (``T`` its last step), ``theta[:7] = L0, A, alpha, B, C, beta, gamma``:

        L = L0 + A S^-alpha - B S^-kappa D,   D = sum_k (phi_{k-1} - phi_k) G(x_k),
        x_k = lr_k^-gamma (S - S_{k-1}).

    ``S - S_{k-1} = lr_k + ... + lr_T``, so ``dx_k/dlr_i = lr_k^-gamma [k <= i] - gamma x_k / lr_k
    [k = i]`` and the chain rule needs one cumulative sum of
    ``(phi_{k-1} - phi_k) G'(x_k) lr_k^-gamma``.
    """
    L0, amplitude, alpha, B, C, beta, gamma = theta[:7]
    lr = np.asarray(lr, dtype=np.float64)
    value, gradient = final_area_power(lr, amplitude, alpha)
    area = float(lr.sum())
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

    d_total = drop_sum_gradient(kernel, lr.size) * (p * phi / np.maximum(lr, _TINY_LR))
    weighted = drops * kernel_slope
    d_total[1:] += np.cumsum(weighted * scale) - gamma * weighted * x / after

    gradient -= B * (fade * d_total - kappa * area ** (-kappa - 1.0) * total)
    return L0 + value - B * fade * total, gradient
