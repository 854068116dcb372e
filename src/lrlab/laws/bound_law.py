"""The convex-optimisation bound of Schaipp, Hägele, Taylor, Simsekli and Bach (2025), "The
Surprising Agreement Between Convex Optimization Theory and Learning-Rate Scheduling for Large
Model Training", arXiv:2501.18965, as a loss-curve law with fitted constants:

    L(t) = L0 + M * rate_T(D, G),   T = t + 1 steps taken (LRs eta_0 .. eta_t),
    rate_T = D^2 / (2 S_T) + G^2 / (2 S_T) * sum_{t<T} eta_t^2
             + G^2 / 2 * sum_{k<T-1} eta_k / (sum_{k<s<T} eta_s) * (sum_{k<=s<T} eta_s^2)
                                                               / (sum_{k<=s<T} eta_s),
    S_T = eta_0 + ... + eta_{T-1}

The rate is Theorem 10 of Defazio, Cutkosky, Mehta and Mishchenko (2023, arXiv:2310.07831) for
the last iterate of SGD on a convex, G-Lipschitz problem with initial distance D, exactly as the
authors' code computes it (``ScheduleBase.compute_rate(grad_norms=G, D=D, T=T)``, type
"refined", ``eps = 0``, in the package ``scheduled`` of github.com/fabian-sp/lr-scheduling). The
paper's fits of the bound to loss curves add an offset and a scale (``C + M * rate``, their
``RateFitter``); ``M``, ``D`` and ``G`` enter only as ``M D^2`` and ``M G^2``, so the law fits the
identifiable constants

    L(t) = L0 + A / S_T + B * n_T,   A = M D^2 / 2,   B = M G^2 / 2,
    n_T = sum_{j<T-1} eta_j^2 / (eta_{j+1} + ... + eta_{T-1}) + eta_{T-1},

where ``n_T = 2 (rate_T - D^2 / (2 S_T)) / G^2``: since ``eta_k / (a_k b_k) = 1 / a_k - 1 / b_k``
(``a_k``, ``b_k`` the sums over ``s > k`` and ``s >= k``), the double sum telescopes term by term
in the ``eta_j^2``, and the second term cancels. (The authors' fitter also offers a gradient norm
that changes with ``t``, ``G_1 e^(A_1 t) + G_2 t^(A_2) + B``; the law keeps the constant ``G`` of
the bound as stated.) Trailing steps at LR 0 do not move the iterate, so they leave the bound as
it was at the last step with a positive LR (the formula as written divides by zero there).

The one costly part, ``sum_j eta_j^2 / (S_T - S_{j+1})`` at every fitted step, is evaluated once
per curve (it does not depend on the constants) in O(T + points * log(T) / rel_width): the
`exact_steps` terms nearest to ``T`` one by one, the rest in segments where the distance
``S_T - S_{j+1}`` changes by at most the factor ``1 + rel_width``, each taken at its
``eta^2``-weighted mean distance (relative error below ``rel_width^2 / 4``: ``1/x`` is convex and
varies by that factor in a segment). The nearest distances are summed from the end, and a
segment's mean distance, which comes from running sums that can cancel to rounding noise at a
small LR far from the start, is held within the segment's own levels (there the error is at most
first order in ``rel_width``, for that segment alone). `exact_noise` sums the terms one by one,
for checks.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from lrlab.errors import LrlabError
from lrlab.laws.base import Law
from lrlab.settings import real


@dataclasses.dataclass(frozen=True)
class BoundFeatures:
    """The LR area ``S_T`` and the noise term ``n_T`` at the fitted steps."""

    area: np.ndarray
    noise: np.ndarray


def _last_moving(lr: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """For each step, the last step at or before it with a positive LR (-1 if none): a step at
    LR 0 leaves the iterate where it was."""
    index = np.where(lr > 0, np.arange(lr.size), -1)
    return np.maximum.accumulate(index)[steps]


def exact_noise(lr: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """``n_T`` (module docstring) at each of `steps`, summed term by term in O(T) per step (for
    checks; NaN where no LR has been applied)."""
    lr = np.asarray(lr, dtype=np.float64)
    out = np.full(len(steps), np.nan)
    for index, last in enumerate(_last_moving(lr, np.asarray(steps, dtype=np.int64))):
        if last < 0:
            continue
        # S_T - S_{j+1} = lr_{j+1} + ... + lr_last, summed from the end so it never rounds to 0
        remaining = np.cumsum(lr[last:0:-1])[::-1]
        out[index] = float(np.sum(lr[:last] ** 2 / remaining)) + lr[last]
    return out


def noise_term(
    lr: np.ndarray, steps: np.ndarray, rel_width: float = 0.01, exact_steps: int | None = None
) -> np.ndarray:
    """``n_T`` at each of `steps` by the bounded-error segments of the module docstring (NaN
    where no LR has been applied)."""
    lr = np.asarray(lr, dtype=np.float64)
    steps = np.asarray(steps, dtype=np.int64)
    exact_steps = exact_steps or math.ceil(1.0 / rel_width)
    out = np.full(steps.size, np.nan)
    last = _last_moving(lr, steps)
    moving = last >= 0
    if not np.any(moving):
        return out
    last = last[moving]
    area = np.cumsum(lr)
    total = area[last]
    squares = lr**2
    prefix_c = np.concatenate([[0.0], np.cumsum(squares)])
    prefix_cs = np.concatenate([[0.0], np.cumsum(squares * area)])

    # The terms j = last - 1, last - 2, ... (exact_steps of them), one by one; their distances
    # S_last - S_j summed from the end, so that they never round away when the LR is small.
    back = np.arange(exact_steps)[None, :]
    valid = back <= last[:, None] - 1  # j = last - 1 - back >= 0
    tail = np.where(valid, lr[np.maximum(last[:, None] - back, 0)], 0.0)
    distance = np.cumsum(tail, axis=1)
    j = np.maximum(last[:, None] - 1 - back, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(valid, squares[j] / distance, 0.0)
    noise = terms.sum(axis=1) + lr[last]

    # The terms j < edge, in segments of geometric distance levels g0 (1 + w)^m.
    edge = np.maximum(last - exact_steps, 0)
    far = edge > 0
    if np.any(far):
        owner = np.flatnonzero(far)
        g0 = distance[owner, -1]  # S_last - S_edge: the smallest distance among the far terms
        ratio = np.maximum(total[owner] / np.maximum(g0, 1e-300), 1.0)
        counts = np.ceil(np.log(ratio) / math.log1p(rel_width)).astype(np.int64) + 2
        flat_owner = np.repeat(owner, counts)
        first = np.repeat(np.cumsum(counts) - counts, counts)
        level = np.arange(flat_owner.size) - first + 1
        reach = np.repeat(g0, counts) * (1.0 + rel_width) ** level
        bound = np.searchsorted(area, total[flat_owner] - reach, side="right")
        bound = np.minimum(bound, edge[flat_owner])
        # a segment runs from its level's boundary up to the previous level's (the edge for the
        # first); each point's last one reaches down to j = 0
        first_level = level == 1
        last_level = np.r_[flat_owner[1:] != flat_owner[:-1], True]
        upper = np.where(first_level, edge[flat_owner], np.roll(bound, 1))
        lower = np.where(last_level, 0, bound)
        weight = prefix_c[upper] - prefix_c[lower]
        moment = prefix_cs[upper] - prefix_cs[lower]
        keep = weight > 0
        at = flat_owner[keep]
        # The weighted mean distance, held within its segment's levels: far from the start, at a
        # small LR, S_last * weight - moment cancels to rounding noise, and there the segment's
        # own bounds are the better estimate (first order in rel_width instead of second).
        lowest = reach[keep] / (1.0 + rel_width)
        highest = np.where(last_level[keep], np.maximum(reach[keep], total[at]), reach[keep])
        mean = np.clip(total[at] - moment[keep] / weight[keep], lowest, highest)
        noise += np.bincount(at, weights=weight[keep] / mean, minlength=last.size)
    out[moving] = noise
    return out


@dataclasses.dataclass(kw_only=True, eq=False)
class BoundLaw(Law):
    """Convex bound (Schaipp et al. 2025, arXiv:2501.18965), see the module docstring."""

    name = "bound"
    summary = "L0 + A/S + B*n: last-iterate convex bound, Schaipp et al. 2025 (arXiv:2501.18965)"
    param_names = ("L0", "A", "B")

    rel_width: float = real(
        0.01,
        help="noise sum: relative width of the distance segments",
        low=0,
        high=1,
        low_inclusive=False,
    )

    def features(self, lr: np.ndarray, steps: np.ndarray) -> BoundFeatures:
        return BoundFeatures(np.cumsum(lr)[steps], noise_term(lr, steps, self.rel_width))

    def curve(self, theta: np.ndarray, features: BoundFeatures) -> np.ndarray:
        L0, A, B = theta
        return L0 + A / features.area + B * features.noise

    def curve_and_jacobian(
        self, theta: np.ndarray, features: BoundFeatures
    ) -> tuple[np.ndarray, np.ndarray]:
        inverse = 1.0 / features.area
        jacobian = np.column_stack([np.ones(inverse.size), inverse, features.noise])
        return jacobian @ theta, jacobian

    def bounds(self, max_loss: float, min_loss: float) -> tuple[np.ndarray, np.ndarray]:
        # A and B scale like LR area x loss and loss / LR: wide, for LRs from 1e-6 to 10
        return np.array([0.0, 0.0, 0.0]), np.array([min_loss, 1e8, 1e9])

    def starts(self, min_loss: float) -> list[np.ndarray]:
        # The curve is linear in its constants, so the fit is nearly convex: few starts suffice.
        return [np.array([f * min_loss, a, b]) for f, a, b in ((0.9, 1.0, 100.0), (0.7, 5.0, 1e3))]

    def final_loss_and_gradient(self, lr: np.ndarray) -> tuple[float, np.ndarray]:
        """Exact, in O(T): with ``R_j = lr_{j+1} + ... + lr_T`` (``T`` the last step),
        ``n = sum_{j<T} lr_j^2 / R_j + lr_T``, so ``dn / dlr_i = 2 lr_i / R_i [i < T]
        - sum_{j<i} lr_j^2 / R_j^2 + [i = T]``, and ``d(A/S) / dlr_i = -A / S^2``. Trailing steps
        at LR 0 are held there (module docstring)."""
        self._require_fitted()
        L0, A, B = self.params_
        lr = np.asarray(lr, dtype=np.float64)
        last = int(_last_moving(lr, np.array([lr.size - 1]))[0])
        if last < 0:
            raise LrlabError(f"law {self.name!r}: the schedule applies no LR")
        gradient = np.zeros(lr.size)
        area = float(lr[: last + 1].sum())
        remaining = np.cumsum(lr[last:0:-1])[::-1]  # R_j for j < last
        head = lr[:last]
        noise = float(np.sum(head**2 / remaining)) + lr[last]
        gradient[:last] = 2.0 * head / remaining
        gradient[1 : last + 1] -= np.cumsum(head**2 / remaining**2)
        gradient[last] += 1.0
        gradient *= B
        gradient[: last + 1] -= A / area**2
        return L0 + A / area + B * noise, gradient
