"""lrlab's own law: the multi-power law with a non-linear LR-drop measure and fading benefit.

    L(t) = L0 + A * S_t^(-alpha) - B * ((S_t / S_w)^(-kappa) * (D_t - F_t) + F_t)
    D_t = sum_{k=1..t} (phi(lr_{k-1}) - phi(lr_k)) * G(lr_k^(-gamma) * (S_t - S_{k-1}))
    F_t = sum_{k=1..t} (phi(m_{k-1}) - phi(m_k)) * G(lr_k^(-gamma) * (S_t - S_{k-1}))
    phi(lr) = lr_ref * (lr / lr_ref)^p,   G(x) = 1 - (C * x + 1)^(-beta),   S_t = lr_0 + ... + lr_t,
    m_k = max(lr_0, ..., lr_k)

With ``p = 1, kappa = 0`` this is the multi-power law of Luo et al. (2025, arXiv:2503.12811), in
which the warmup's LR rises enter the drop sum as negative drops: they add the excess loss of
training at the peak LR, the "floor" ``F`` (negative), which every later drop lowers again.
The extra parameters come from studying where that law misses on the shared benchmark
(functional form chosen by looking at the residuals of fits to the three *training* runs and of
the published fits; the held-out curves were never used to fit anything):

- ``p`` (fitted 0.7-0.9): the loss reduction bought by lowering the LR is concave in the LR drop,
  as when the noise-driven excess loss scales like ``lr^p`` rather than linearly (so dropping to
  3e-5 buys less than the multi-power law extrapolates from a drop to 9e-5 - the ``wsdcon_3``
  miss).
- ``kappa`` (fitted 0.04-0.2): the benefit of a drop shrinks as training progresses, as the
  gradient noise that annealing removes shrinks with the reducible loss (Tissue et al. 2024,
  arXiv:2408.11029, discuss the same coupling); without it, long slow decays
  (``cosine_72000``) get too much credit. The fade applies to the drops, and to re-warming back
  up to an earlier maximum (which gives back what a drop bought), but not to the floor ``F``,
  the part of the LR rises that sets a new maximum LR (the warmup): a constant-LR run keeps its
  floor. ``S_w`` (`area_ref`) is the LR area at the end of warmup (set when fitting), so a drop
  right after warmup can remove the whole floor and the fade does not depend on the LR's units.

Until 2026-11-23 the fade applied to the floor too (``B (S_t)^-kappa D_t``), which made the
constant-LR curve fall towards ``L0`` as ``S^-kappa``, faster than the runs do over a 3x longer
horizon; option ``fade_warmup=True`` keeps that form, and fits saved before the option existed
load with it (``Law.legacy_config``). Docs/laws.md ("Fourth round") gives the numbers of both.

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

`lr_ref` only conditions the fit (any value gives the same family; ``B`` absorbs it); it is set to
the largest LR of the training runs when fitting. The drop sum uses the same bounded-error
quadrature as the multi-power law (`lrlab.laws.drops`), since ``phi`` differences telescope over a
segment exactly as the LR differences do; each node splits at `DropQuadrature.lr_new_max` into
its fading part and its floor part.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
from scipy import sparse

from lrlab.laws.base import Law, Progress, register
from lrlab.laws.drops import DropQuadrature, build_drop_quadrature
from lrlab.laws.power import lr_area_power
from lrlab.runs.model import Run

_MAX_LOG_X = 600.0


@dataclasses.dataclass(frozen=True)
class ImprovedFeatures:
    """LR area at the steps and the drop-sum nodes, the floor nodes first (see `_sums`)."""

    area: np.ndarray
    relative_area: np.ndarray  # area / area_ref, the base of the fade
    drops: DropQuadrature
    log_before: np.ndarray  # log(lr_before / lr_ref), -inf for LR 0
    log_fading_end: np.ndarray  # log(lr / lr_ref) where a node's fading part ends
    log_floor_end: np.ndarray  # log(lr_after / lr_ref) of the floor nodes
    floor_ownership: sparse.csr_array  # points x floor nodes


def _kernel(
    C: float, beta: float, gamma: float, drops: DropQuadrature
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """At each node: ``x = lr^-gamma * area``, ``log(1 + C x)`` and ``(C x + 1)^-beta = 1 - G``."""
    x = np.exp(np.minimum(drops.log_area - gamma * drops.log_lr, _MAX_LOG_X))
    log_base = np.log1p(C * x)
    return x, log_base, np.exp(-beta * log_base)


def _power(log_x: np.ndarray, p: float) -> tuple[np.ndarray, np.ndarray]:
    """``x^p`` and its derivative by p, from ``log x`` (``0^p ln 0`` = 0)."""
    x_p = np.exp(p * log_x)
    return x_p, np.where(x_p > 0, x_p * log_x, 0.0)


@register
class ImprovedLaw(Law):
    """lrlab's law: multi-power law + concave drop measure + fading benefit (module docstring)."""

    name = "lrlab"
    summary = "lrlab's law: multi-power law with concave LR-drop measure and fading benefit"
    param_names = ("L0", "A", "alpha", "B", "C", "beta", "gamma", "p", "kappa")
    shape_params = ("C", "beta", "gamma", "p", "kappa")
    defaults: ClassVar[dict[str, Any]] = {
        "rel_width": 0.1,
        "lr_bin": 0.1,
        "lr_ref": None,
        "area_ref": None,
        "prior_p": None,
        "prior_kappa": None,
        "fade_warmup": False,
    }
    legacy_config: ClassVar[dict[str, Any]] = {"fade_warmup": True, "area_ref": 1.0}

    def fit(self, runs: Sequence[Run], progress: Progress | None = None) -> Law:
        if self.config["lr_ref"] is None:
            self.config["lr_ref"] = float(max(run.lr.max() for run in runs)) or 1.0
        if self.config["area_ref"] is None:
            # The LR area when each run first reaches its largest LR: the end of warmup.
            at_peak = [float(np.cumsum(run.lr)[np.argmax(run.lr)]) for run in runs]
            self.config["area_ref"] = float(np.median(at_peak)) or 1.0
        return super().fit(runs, progress)

    def features(self, lr: np.ndarray, steps: np.ndarray) -> ImprovedFeatures:
        drops = build_drop_quadrature(lr, steps, self.config["rel_width"], self.config["lr_bin"])
        floor = drops.lr_new_max < drops.lr_after
        if self.config["fade_warmup"]:
            floor[:] = False
        drops = drops.take(np.argsort(~floor, kind="stable"))
        floor_count = int(floor.sum())
        lr_ref = self.config["lr_ref"] or 1.0
        fading_end = np.where(np.arange(drops.size) < floor_count, drops.lr_new_max, drops.lr_after)
        with np.errstate(divide="ignore"):
            return ImprovedFeatures(
                area=np.cumsum(lr)[steps],
                relative_area=np.cumsum(lr)[steps] / (self.config["area_ref"] or 1.0),
                drops=drops,
                log_before=np.log(drops.lr_before / lr_ref),
                log_fading_end=np.log(fading_end / lr_ref),
                log_floor_end=np.log(drops.lr_after[:floor_count] / lr_ref),
                floor_ownership=drops.ownership[:, :floor_count],
            )

    def curve(self, theta: np.ndarray, features: ImprovedFeatures) -> np.ndarray:
        # The value alone, at a fraction of curve_and_jacobian's cost (the fit calls both).
        L0, _, _, B, C, beta, gamma, p, kappa = theta
        _, _, tail = _kernel(C, beta, gamma, features.drops)
        fading, floor = self._sums(
            p, features, lambda weight, _: [weight * (1.0 - tail[: weight.size])]
        )
        drop_sum = features.relative_area**-kappa * fading[:, 0] + floor[:, 0]
        return L0 + lr_area_power(theta, features.area)[0] - B * drop_sum

    def curve_and_jacobian(
        self, theta: np.ndarray, features: ImprovedFeatures
    ) -> tuple[np.ndarray, np.ndarray]:
        L0, _, _, B, C, beta, gamma, p, kappa = theta
        drops, area = features.drops, features.area
        power, power_derivatives = lr_area_power(theta, area)
        x, log_base, tail = _kernel(C, beta, gamma, drops)
        slope_x = beta * tail * x / (C * x + 1.0)

        def columns(weight: np.ndarray, weight_by_p: np.ndarray) -> list[np.ndarray]:
            """weight * G and its derivatives by C, beta, gamma, p (first `weight.size` nodes)."""
            nodes = slice(weight.size)
            return [
                weight * (1.0 - tail[nodes]),
                weight * slope_x[nodes],
                weight * tail[nodes] * log_base[nodes],
                -C * weight * slope_x[nodes] * drops.log_lr[nodes],
                weight_by_p * (1.0 - tail[nodes]),
            ]

        fading, floor = self._sums(p, features, columns)
        fade = features.relative_area**-kappa
        sums = fade[:, None] * fading + floor
        jacobian = np.column_stack(
            [
                np.ones(area.size),
                power_derivatives,
                -sums[:, 0],
                -B * sums[:, 1:],
                B * np.log(features.relative_area) * fade * fading[:, 0],
            ]
        )
        return L0 + power - B * sums[:, 0], jacobian

    def _sums(
        self,
        p: float,
        features: ImprovedFeatures,
        terms: Callable[[np.ndarray, np.ndarray], list[np.ndarray]],
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each point's sums (points x terms) of ``terms(weight, d weight / d p)`` over its nodes,
        for the fading
        weights ``phi(before) - phi(fading end)`` and for the floor weights
        ``phi(fading end) - phi(after)``: the part of a rise that sets a new maximum LR (warmup),
        whose loss does not fade. The floor nodes come first, so the floor is a slice."""
        lr_ref = self.config["lr_ref"] or 1.0
        with np.errstate(invalid="ignore"):
            (before, before_by_p), (end, end_by_p), (after, after_by_p) = (
                _power(log_lr, p)
                for log_lr in (features.log_before, features.log_fading_end, features.log_floor_end)
            )
        count = after.size
        # The node-length terms are summed one by one, not stacked into one nodes x terms array:
        # the smaller working set keeps glibc's allocator from handing memory back to the system
        # and faulting it in again on every call (400M fit: 2.3 s stacked, 1.4 s like this).
        fading = terms(lr_ref * (before - end), lr_ref * (before_by_p - end_by_p))
        floor = terms(lr_ref * (end[:count] - after), lr_ref * (end_by_p[:count] - after_by_p))
        return (
            np.column_stack([features.drops.ownership @ term for term in fading]),
            np.column_stack([features.floor_ownership @ term for term in floor]),
        )

    def penalty(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The optional prior pulling ``p`` to 1 and ``kappa`` to 0 (module docstring)."""
        scales = [self.config["prior_p"], self.config["prior_kappa"]]
        weights = self.config["huber_delta"] / np.array([s or np.inf for s in scales])
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
