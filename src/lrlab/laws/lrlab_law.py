"""lrlab's own law: the multi-power law with a non-linear LR-drop measure and fading benefit.

    L(t) = L0 + A * S_t^(-alpha)
           - B * S_t^(-kappa) * sum_{k=1..t} (phi(lr_{k-1}) - phi(lr_k)) * G(x_k)
    x_k = lr_k^(-gamma) * (S_t - S_{k-1}),   phi(lr) = lr_ref * (lr / lr_ref)^p,
    G(x) = 1 - (C * x + 1)^(-beta),   S_t = lr_0 + ... + lr_t

With ``p = 1, kappa = 0`` this is the multi-power law of Luo et al. (2025, arXiv:2503.12811).
The two extra parameters come from studying where that law misses on the shared benchmark
(functional form chosen by looking at the residuals of fits to the three *training* runs and of
the published fits; the held-out curves were never used to fit anything):

- ``p`` (fitted 0.7-0.9): the loss reduction bought by lowering the LR is concave in the LR drop,
  as when the noise-driven excess loss scales like ``lr^p`` rather than linearly (so dropping to
  3e-5 buys less than the multi-power law extrapolates from a drop to 9e-5 - the ``wsdcon_3``
  miss).
- ``kappa`` (fitted 0.1-0.16): the benefit of a drop shrinks as training progresses, as the
  gradient noise that annealing removes shrinks with the reducible loss (Tissue et al. 2024,
  arXiv:2408.11029, discuss the same coupling); without it, long slow decays
  (``cosine_72000``) get too much credit.

Optional prior (options ``prior_p``, ``prior_kappa``; off by default): the fit adds the residuals
``huber_delta * (p - 1) / prior_p`` and ``huber_delta * kappa / prior_kappa`` (a deviation of one
prior scale costs as much as one logged point off by the Huber scale), so ``p`` and ``kappa`` move
away from the multi-power law only as far as the data insist. Cross-validation on the *training*
runs alone (each size; folds: fit two of the three training runs and predict the third, and fit
all three on steps < 12000 and predict them to the end) prefers ``prior_p = 0.1,
prior_kappa = 0.01`` (mean CV PredE 0.00098, vs 0.00209 without a prior and 0.00143 for MPL), and
it helps fits to two runs; but on the held-out curves of the three-run split (looked at once, and
disclosed in docs/laws.md) it is worse at every size, so it is not the default.

A second round (2026-11-23, all held-out scores looked at and disclosed in docs/laws.md, section
"Second round") tried the convex-optimisation bound of Schaipp et al. (2025, arXiv:2501.18965) as
the annealing term, a lagged-LR noise floor, tying ``kappa`` to ``alpha``, an LR exponent in the
progress area and priors on the kernel ``(C, beta, gamma)``; none beat this law by the
training-only cross-validation above without losing elsewhere, so this law stays the default.

`lr_ref` only conditions the fit (any value gives the same family; ``B`` absorbs it): the fit
learns `lr_ref_`, the `lr_ref` parameter or, by default, the largest LR of the training runs. The
drop sum uses the same bounded-error quadrature as the multi-power law (`lrlab.laws.drops`), since
``phi`` differences telescope over a segment exactly as the LR differences do, and the same kernel
(`lrlab.laws.kernel`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from lrlab.laws import kernel
from lrlab.laws.base import Law
from lrlab.laws.drops import DropQuadrature, build_drop_quadrature, merge_quadratures
from lrlab.laws.power_law import lr_area_power
from lrlab.runs.model import Run
from lrlab.settings import real


@dataclasses.dataclass(frozen=True)
class LRLabFeatures:
    """LR area at the steps, the drop-sum nodes, and the LRs at the nodes' segment ends: node
    ``i``'s ``lr_before / lr_ref_`` is ``exp(log_levels[ends[i]])``, its ``lr_after / lr_ref_``
    ``exp(log_levels[ends[n + i]])`` (``n`` nodes; the ends' distinct values are fewer than the
    nodes, so the drop measure costs one power per value)."""

    area: np.ndarray
    drops: DropQuadrature
    log_levels: np.ndarray  # log(lr / lr_ref_) of each distinct LR at a segment end (-inf for 0)
    ends: np.ndarray  # each node's index into log_levels at its segment's start, then its end

    @property
    def before_after_split(self) -> int:
        """Where `ends` turns from the segments' starts to their ends (the number of nodes)."""
        return self.ends.size // 2


def _drop_measure(
    features: LRLabFeatures, p: float, by_p: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """``(lr_before / lr_ref)^p - (lr_after / lr_ref)^p`` at each node and, with `by_p`, its
    derivative by p (``0^p ln 0`` = 0), in the nodes' workspace (`DropQuadrature.workspace`)."""
    log_levels = features.log_levels
    with np.errstate(invalid="ignore"):
        powers = np.exp(p * log_levels)
    half = features.before_after_split
    work = features.drops.workspace("measure", 4)
    ends = work[:2].reshape(-1)  # the nodes' values at their segments' starts, then their ends
    powers.take(features.ends, out=ends, mode="clip")  # unbuffered
    np.subtract(ends[:half], ends[half:], out=work[2])
    if not by_p:
        return work[2], None
    with np.errstate(invalid="ignore"):
        by_p_levels = np.where(powers > 0, powers * log_levels, 0.0)
    by_p_levels.take(features.ends, out=ends, mode="clip")
    np.subtract(ends[:half], ends[half:], out=work[3])
    return work[2], work[3]


@dataclasses.dataclass(kw_only=True, eq=False)
class LRLabLaw(Law):
    """lrlab's law: multi-power law + concave drop measure + fading benefit (module docstring)."""

    name = "lrlab"
    summary = "lrlab's law: multi-power law with concave LR-drop measure and fading benefit"
    param_names = ("L0", "A", "alpha", "B", "C", "beta", "gamma", "p", "kappa")
    shape_params = ("C", "beta", "gamma", "p", "kappa")
    learned = ("lr_ref",)

    rel_width: float = real(
        0.1, help="quadrature: relative width of the LR-area levels", low=0, low_inclusive=False
    )
    lr_bin: float = real(
        0.1, help="quadrature: width of the LR bins, in log LR", low=0, low_inclusive=False
    )
    lr_ref: float | None = real(
        None,
        help="reference LR of the drop measure (default: the training runs' largest)",
        low=0,
        low_inclusive=False,
    )
    prior_p: float | None = real(
        None, help="scale of a prior pulling p to 1 (default: none)", low=0, low_inclusive=False
    )
    prior_kappa: float | None = real(
        None, help="scale of a prior pulling kappa to 0 (default: none)", low=0, low_inclusive=False
    )

    def prepare(self, runs: Sequence[Run]) -> None:
        if self.lr_ref is not None:
            self.lr_ref_ = self.lr_ref
        else:
            self.lr_ref_ = float(max(run.lr.max() for run in runs)) or 1.0

    def features(self, lr: np.ndarray, steps: np.ndarray) -> LRLabFeatures:
        drops = build_drop_quadrature(lr, steps, self.rel_width, self.lr_bin)
        return self._features(np.cumsum(lr)[steps], drops)

    def merged_features(self, features: list[LRLabFeatures]) -> LRLabFeatures:
        """The curves' nodes one after the other (`merge_quadratures`): a point fit of three
        runs takes about 10% less CPU so, a fit with its band 2-4% (BENCHMARKS.md, "Fit speed:
        the band's refits reuse the parts' features"; `mpl`, with twice the nodes a point,
        gained nothing and keeps its parts)."""
        area = np.concatenate([part.area for part in features])
        return self._features(area, merge_quadratures([part.drops for part in features]))

    def _features(self, area: np.ndarray, drops: DropQuadrature) -> LRLabFeatures:
        """The features of the points at LR area `area` with the drop-sum nodes `drops`."""
        ends = np.concatenate([drops.lr_before, drops.lr_after])
        levels, index = np.unique(ends, return_inverse=True)
        with np.errstate(divide="ignore"):
            log_levels = np.log(levels / self.lr_ref_)
        return LRLabFeatures(area, drops, log_levels, index.reshape(-1))

    def curve(self, theta: np.ndarray, features: LRLabFeatures) -> np.ndarray:
        """The curve alone: the same numbers as `curve_and_jacobian`'s (the same operations) at
        half its cost, for predictions (a band's replicates, the band's calibration)."""
        L0, B, p, kappa = theta[0], theta[3], theta[7], theta[8]
        drops, area = features.drops, features.area
        power, _ = lr_area_power(theta, area)
        _, _, tail = kernel.node_kernel(theta, drops)
        weight, _ = _drop_measure(features, p, by_p=False)
        row = drops.workspace("sum", 1)[0]
        np.subtract(1.0, tail, out=row)
        row *= weight
        fade = self.lr_ref_ * area**-kappa
        return L0 + power - B * (fade * drops.owner_sums(row))

    def curve_and_jacobian(
        self, theta: np.ndarray, features: LRLabFeatures
    ) -> tuple[np.ndarray, np.ndarray]:
        L0, _, _, B, C, _, _, p, kappa = theta
        drops, area = features.drops, features.area
        power, power_derivatives = lr_area_power(theta, area)
        _, log_base, tail, slope_x = kernel.node_kernel(theta, drops, slope=True)
        weight, weight_by_p = _drop_measure(features, p)
        # Per node, each multiplied by the weight (lr_ref_ is applied to the sums): G and its
        # derivatives by C, beta, gamma; then G times the weight's derivative by p.
        rows = drops.workspace("terms", 5)
        np.subtract(1.0, tail, out=rows[0])
        np.multiply(weight_by_p, rows[0], out=rows[4])
        rows[0] *= weight
        np.multiply(weight, slope_x, out=rows[1])
        np.multiply(tail, log_base, out=rows[2])
        rows[2] *= weight
        np.multiply(rows[1], drops.log_lr, out=rows[3])
        rows[3] *= -C
        sums = drops.owner_sums(rows)
        fade = self.lr_ref_ * area**-kappa
        drop_sum = fade * sums[0]
        jacobian = np.empty((area.size, 9))
        jacobian[:, 0] = 1.0
        jacobian[:, 1:3] = power_derivatives
        jacobian[:, 3] = -drop_sum
        jacobian[:, 4:8] = (-B * fade)[:, None] * sums[1:].T
        jacobian[:, 8] = B * np.log(area) * drop_sum
        return L0 + power - B * drop_sum, jacobian

    def penalty(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The optional prior pulling ``p`` to 1 and ``kappa`` to 0 (module docstring)."""
        scales = [self.prior_p, self.prior_kappa]
        weights = self.huber_delta / np.array([s or np.inf for s in scales])
        jacobian = np.zeros((2, theta.size))
        jacobian[[0, 1], [7, 8]] = weights
        return weights * np.array([theta[7] - 1.0, theta[8]]), jacobian

    def bounds(self, max_loss: float, min_loss: float) -> tuple[np.ndarray, np.ndarray]:
        lower = np.array([0.0, 0.0, 0.01, 0.0, 1e-3, 0.01, 0.0, 0.2, -1.0])
        upper = np.array([min_loss, 100.0, 3.0, 1e5, 1e3, 5.0, 2.0, 3.0, 1.0])
        return lower, upper

    def starts(self, min_loss: float) -> list[np.ndarray]:
        return [
            np.array([f * min_loss, 0.5, 0.5, b, 2.0, 0.6, 0.6, 1.0, 0.0])
            for f, b in ((0.9, 500.0), (0.95, 100.0), (0.85, 2000.0))
        ]

    def final_loss_and_gradient(self, lr: np.ndarray) -> tuple[float, np.ndarray]:
        """Exact (not by quadrature): `lrlab.laws.kernel.final_loss_and_gradient`."""
        self._require_fitted()
        p, kappa = self.params_[7:9]
        return kernel.final_loss_and_gradient(
            lr, self.params_, p=p, kappa=kappa, lr_ref=self.lr_ref_
        )
