"""The LR-drop sum of the multi-power law, fast and with bounded error.

The multi-power law (Luo et al. 2025, arXiv:2503.12811) needs, at each evaluation step ``t``,

    D(t) = sum_{k=1..t} d_k * G(lr_k^-gamma * (S_t - S_{k-1})),   d_k = lr_{k-1} - lr_k,
    S_t = lr_0 + ... + lr_t,

which costs steps x points if evaluated as written. `DropQuadrature` replaces the sum, once per
curve and independently of the parameters, by a short weighted sum over *segments* of ``k``:

- constant stretches have ``d_k = 0`` and vanish;
- the `exact_steps` drops nearest to ``t`` are kept one by one (there ``G`` changes fastest);
- farther away, segments are bounded by geometric levels of the LR area ``S_t - S_{k-1}``
  (ratio ``1 + rel_width``) and by geometric bins of the LR itself (width `lr_bin` in log LR), and
  never mix LR increases with decreases.

Each segment becomes one node: weight ``sum d_k``, LR area and LR at the ``|d_k|``-weighted
centroid. Inside a segment ``x = lr^-gamma * (S_t - S_{k-1})`` varies by a relative amount of at
most ``rel_width + gamma * lr_bin`` (to first order), and ``|dG/d log x| <= beta``, so the error is
at most ``B * beta * (rel_width + gamma * lr_bin) * sum |d_k|``; the centroid rule cancels the
first-order term, so in practice the error is far smaller (checked against
`lrlab.laws.kernel.exact_drop_sum` in the tests on the published parameters).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

_MAX_LEVEL_SPAN = 1e7  # the geometric levels cover LR areas from g0 up to g0 * _MAX_LEVEL_SPAN


@dataclasses.dataclass(frozen=True)
class DropQuadrature:
    """Nodes that approximate the drop sum ``D(t)`` at each evaluation step (a *point*): each
    point's nodes are contiguous, in point order."""

    counts: np.ndarray  # number of nodes of each point
    weights: np.ndarray  # of each node: the sum of d_k over its segment
    lr_before: np.ndarray  # lr_{k-1} at each segment's first k (the sum of d_k telescopes to
    lr_after: np.ndarray  # lr_before - lr_after, and so does any phi(lr_{k-1}) - phi(lr_k))
    log_area: np.ndarray  # log(S_t - S_{k-1}) at each segment's centroid (-inf for zero area)
    log_lr: np.ndarray  # log(lr_k) at each segment's centroid

    @property
    def size(self) -> int:
        """Number of nodes."""
        return self.log_lr.size

    def workspace(self, name: str, rows: int) -> np.ndarray:
        """A `rows` x nodes array kept with the nodes under `name`, for the values an
        evaluation computes at every node (`lrlab.laws.kernel.node_kernel`): a fit evaluates
        hundreds of times on the same nodes, and a fresh array that large costs a page fault
        per 4 KiB each time. Its contents are those of the last evaluation that used it."""
        buffers = self._workspaces
        if name not in buffers or buffers[name].shape[0] != rows:
            buffers[name] = np.empty((rows, self.size))
        return buffers[name]

    @functools.cached_property
    def _workspaces(self) -> dict[str, np.ndarray]:
        return {}

    @functools.cached_property
    def log_lr_range(self) -> tuple[float, float]:
        """The least and largest `log_lr` (0, 0 without nodes)."""
        if self.size == 0:
            return 0.0, 0.0
        return float(self.log_lr.min()), float(self.log_lr.max())

    @functools.cached_property
    def log_area_max(self) -> float:
        """The largest `log_area` (-inf without nodes)."""
        return float(self.log_area.max()) if self.size else -math.inf

    @functools.cached_property
    def _starts(self) -> np.ndarray:
        """Each point's first node, clipped into range (for a point without nodes)."""
        return np.minimum(np.cumsum(self.counts) - self.counts, max(self.size - 1, 0))

    def owner_sums(self, rows: np.ndarray) -> np.ndarray:
        """``sum over a point's nodes of rows`` for each point (rows: nodes, or k x nodes; the
        result: points, or k x points), as reductions over contiguous runs (a third of the cost
        of a sparse points x nodes product)."""
        if self.size == 0:
            return np.zeros((*rows.shape[:-1], self.counts.size))
        sums = np.add.reduceat(rows, self._starts, axis=-1)
        sums[..., self.counts == 0] = 0.0  # reduceat gives a value, not 0, for an empty run
        return sums

    def total(self, values: np.ndarray, overwrite: bool = False) -> np.ndarray:
        """``sum over a point's nodes of weight * values`` for each point (values: nodes or
        k x nodes; the result: points or k x points); with `overwrite`, `values` is multiplied
        by the weights in place (a workspace's, which need not be kept)."""
        if overwrite:
            values *= self.weights
            return self.owner_sums(values)
        return self.owner_sums(values * self.weights)


def merge_quadratures(quadratures: list[DropQuadrature]) -> DropQuadrature:
    """One quadrature whose points are those of `quadratures`, in order: evaluating it once costs
    the per-call work of numpy (a few microseconds a call, tens of calls an evaluation) once
    rather than once per curve, and gives each node's value as it would alone."""
    fields = [field.name for field in dataclasses.fields(DropQuadrature)]
    return DropQuadrature(
        *(
            np.concatenate([getattr(quadrature, name) for quadrature in quadratures])
            for name in fields
        )
    )


def _prefix(values: np.ndarray) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(values)])


def _lr_bin_breaks(lr_k: np.ndarray, drops: np.ndarray, lr_bin: float) -> np.ndarray:
    """Indices ``j`` (``k = j + 1``) where a new LR bin starts or the drop changes sign."""
    with np.errstate(divide="ignore"):
        bins = np.floor(np.log(lr_k) / lr_bin)
    bins[~np.isfinite(bins)] = -np.inf
    sign = np.sign(drops)
    changed = (bins[1:] != bins[:-1]) | (sign[1:] != sign[:-1])
    return np.flatnonzero(changed) + 1


def build_drop_quadrature(
    lr: np.ndarray,
    steps: np.ndarray,
    rel_width: float = 0.03,
    lr_bin: float = 0.03,
    exact_steps: int | None = None,
) -> DropQuadrature:
    """Segment nodes for the drop sum at `steps` of per-step LR `lr` (see the module docstring)."""
    lr = np.asarray(lr, dtype=np.float64)
    steps = np.asarray(steps, dtype=np.int64)
    if lr.size < 2:  # one step has no LR drop, so no nodes (a one-row log at step 0)
        return DropQuadrature(
            np.zeros(steps.size, dtype=np.int64), *(np.empty(0) for _ in range(5))
        )
    exact_steps = exact_steps or math.ceil(1.0 / rel_width)
    area = np.cumsum(lr)
    drops = lr[:-1] - lr[1:]  # index j holds d_k for k = j + 1
    area_before = area[:-1]  # S_{k-1}
    lr_k = lr[1:]
    magnitude = np.abs(drops)
    sum_drop, sum_magnitude = _prefix(drops), _prefix(magnitude)
    sum_area = _prefix(magnitude * area_before)
    sum_lr = _prefix(magnitude * lr_k)
    breaks = _lr_bin_breaks(lr_k, drops, lr_bin)

    t = steps[:, None]
    near = t - np.arange(1, exact_steps + 1)[None, :]
    edge = np.maximum(steps - exact_steps, 0)
    g0 = np.maximum(area[steps] - area_before[np.minimum(edge, max(len(lr) - 2, 0))], 0.0)
    g0 = np.where(g0 > 0, g0, np.maximum(area[steps], 1e-300) / _MAX_LEVEL_SPAN)
    n_levels = math.ceil(math.log(_MAX_LEVEL_SPAN) / math.log1p(rel_width))
    levels = g0[:, None] * (1.0 + rel_width) ** np.arange(1, n_levels + 1)[None, :]
    levels = np.minimum(levels, area[steps][:, None] * 2.0)  # beyond S_t every level maps to 0
    far = np.searchsorted(area_before, area[steps][:, None] - levels, side="right")
    bounds = np.concatenate(
        [
            np.zeros_like(t),
            t,
            near,
            far,
            np.broadcast_to(breaks[None, :], (steps.size, breaks.size)),
        ],
        axis=1,
    )
    bounds = np.sort(np.clip(bounds, 0, t), axis=1)
    start, end = bounds[:, :-1], bounds[:, 1:]
    magnitude_sum = sum_magnitude[end] - sum_magnitude[start]
    keep = (end > start) & (magnitude_sum > 0)
    owner = np.broadcast_to(np.arange(steps.size)[:, None], keep.shape)[keep]
    start, end, magnitude_sum = start[keep], end[keep], magnitude_sum[keep]
    centroid_area = (sum_area[end] - sum_area[start]) / magnitude_sum
    centroid_lr = (sum_lr[end] - sum_lr[start]) / magnitude_sum
    gap = np.maximum(area[steps][owner] - centroid_area, 0.0)
    with np.errstate(divide="ignore"):
        return DropQuadrature(
            counts=np.bincount(owner, minlength=steps.size),  # owner runs in point order
            weights=sum_drop[end] - sum_drop[start],
            lr_before=lr[start],
            lr_after=lr[end],
            log_area=np.log(gap),
            log_lr=np.log(np.maximum(centroid_lr, 1e-300)),
        )


def drop_sum_gradient(weights: np.ndarray, size: int) -> np.ndarray:
    """Gradient of ``sum_k d_k w_k`` (k = 1..T, ``d_k = lr_{k-1} - lr_k``, `weights` held fixed)
    by each ``lr_i`` of a `size`-step LR: ``w_{i+1} - w_i`` (zero beyond the ends)."""
    gradient = np.zeros(size)
    gradient[:-1] += weights
    gradient[1:] -= weights
    return gradient
