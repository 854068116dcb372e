"""The points a fit sees: a run's logged points, coarse-grained into bins when there are many.

A law's cost grows with the number of points it is evaluated at (the drop-sum quadrature of the
multi-power laws holds a few hundred nodes per point), so a log with a loss at every one of a
million steps would take minutes and tens of gigabytes to fit point by point. Loss curves are
smooth on the scale of such logs, so a run with more than `COARSE_ABOVE` usable points is fitted
on bins, the law evaluated once per bin:

- Bins are runs of consecutive logged points. A bin starting at step ``a`` spans at most
  ``REL_WIDTH * (a - anchor)`` steps, ``anchor`` being the last *anchor* at or before ``a``: step 0
  and every step where the LR bends (its second difference, times the width a bin would have
  there, exceeds ``KINK`` times the run's largest LR: the end of a warmup, the start of a decay, a
  step drop). So bins are geometric in the time since the last change of the schedule, and one
  step wide right after a change. A bin never crosses an anchor, nor a multiple of ``LR_BIN`` in
  log LR. Each bin's row is at the rounded mean step of its points.
- Between anchors the law's log-curve ``l`` is, at each bin, the quadratic through its values
  at the rows of the bin and its neighbours, in the coordinate ``x = log(t - anchor + 1)``, in
  which loss curves are nearly straight (responses to a change of the schedule are smooth
  functions of the log of the time since it, and the early loss a power of the LR area).
- The residuals are *targets*: each bin's points are cut into up to `PLACES` runs of
  consecutive points and each run into up to `LEVELS` groups by the points' deviations from the
  same quadratics through the bins' mean log-losses. A target's residual is the mean of the
  quadratic over its points minus their mean log-loss, and it counts as many points as it holds
  (its Huber loss is weighted by the count, `lrlab.laws.base.robust_least_squares`). Runs keep
  the misfit's change within a bin; levels keep the spread of the noise, which decides where the
  Huber loss is quadratic and where linear. For least squares the targets give the pointwise
  objective exactly, but for a term free of the parameters and the error of the quadratics,
  which Lagrange's remainder bounds for each bin:

      |mean_i l(x_i) - mean_i q_b(x_i)| <= max|l'''| / 6 mean_i |(x_i - x_0)(x_i - x_1)(x_i - x_2)|

  (``x_j`` the coordinates of the three rows; 0 for a bin of one point). A least-squares fit is a
  projection, so these errors move the fitted log-curve by at most their count-weighted RMS over
  the points. The fit evaluates the bound at the fitted parameters, with ``l'''`` from third
  divided differences over neighbouring rows, and reports its RMS and largest value in log-loss,
  with the number of bins and targets, in ``fit_info_["coarse"]``. On the curve of
  `benchmarks/long_logs.py` (a million steps, 180 bins) the exact error has an RMS of 4.3e-7
  (bound: 3.2e-6) and is largest, 8.7e-5 (bound: 1.6e-4), in a bin of two points at step 6 of a
  warmup from LR 0; beyond step 1000 it is below 2e-6 (tests/test_long_logs.py checks the bound
  against the exact bin means).

The threshold keeps every log of a few hundred or thousand points (the shared benchmark's, the
wind tunnel's evaluation logs) on the exact point-by-point fit, where it is fast anyway, with the
same numbers to the digit; the `Law` option ``coarse=False`` turns coarse-graining off. What is
measured per point stays per point (the residual noise of the band and its calibration): the
fitted curve is spread from the rows to every logged point by the same quadratics.

`curve_knots` does the same for predictions at more than `DENSE_ABOVE` steps: the curve is
evaluated at knots (bins of width `KNOT_WIDTH`) and spread to the steps by the quadratics
(within 4.5e-6 relative of the exact curve at every one of the benchmark's million steps, 1298
knots).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from lrlab.runs.model import Run

if TYPE_CHECKING:
    from scipy import sparse

COARSE_ABOVE = 2000  # a run with more usable points than this is coarse-grained
PLACES = 4  # a bin's targets: up to this many runs of consecutive points (module docstring)
LEVELS = 4  # ... each cut into up to this many groups by the points' deviations
REL_WIDTH = 0.3  # a bin's width relative to its distance from the last anchor
LR_BIN = 0.3  # bins do not cross multiples of this in log LR
KINK = 1e-3  # an LR bend above this fraction of the largest LR over a bin's width is an anchor
DENSE_ABOVE = 20_000  # a curve asked for at more steps than this is spread from knots
KNOT_WIDTH = 0.02  # the knots' spacing relative to the distance from the last anchor


@dataclasses.dataclass(frozen=True, eq=False)
class FitPoints:
    """A run, or part of one, as a fit sees it: every logged point (`steps`, `log_loss`) and the
    rows the law is evaluated at, one per bin of consecutive points (`bin_starts` indexes the
    first point of each): the bin's step `fit_steps`, mean log-loss `fit_log_loss`, `counts`,
    and `stretches`, which numbers the stretches between anchors (and gaps where bins were left
    out) that the local quadratics do not cross, and each row's `origins`: the anchor its stretch
    starts from, the origin of the coordinate ``log(t - origin + 1)`` the quadratics are in. The
    fit's residuals are the `targets`: for each
    bin, up to ``PLACES * LEVELS`` groups of its points (`target_bins`, `target_counts`; see the
    module docstring).
    Without coarse-graining every point is its own bin and its own target."""

    lr: np.ndarray
    steps: np.ndarray
    log_loss: np.ndarray
    bin_starts: np.ndarray
    fit_steps: np.ndarray
    fit_log_loss: np.ndarray
    counts: np.ndarray
    stretches: np.ndarray
    origins: np.ndarray
    targets: np.ndarray
    target_counts: np.ndarray
    target_bins: np.ndarray
    target_mean: np.ndarray
    target_spread: np.ndarray

    @property
    def coarse(self) -> bool:
        """Whether some bin holds more than one point."""
        return self.fit_steps.size < self.steps.size

    @functools.cached_property
    def _spread_at(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """For `per_point`: each row's stencil and order, and for each point its row and its
        distances from the first two steps of that row's stencil."""
        nodes, order = stencils(self.stretches)
        rows = np.repeat(np.arange(self.fit_steps.size), self.counts)
        x = coordinate(self.steps, self.origins[rows])
        at = coordinate(self.fit_steps, self.origins)
        return nodes, order, rows, x - at[nodes[rows, 0]], x - at[nodes[rows, 1]]

    def per_point(self, values: np.ndarray) -> np.ndarray:
        """Values at the rows (along the last axis) at every logged point, by the local
        quadratics (the values themselves where each point is its own bin)."""
        if not self.coarse:
            return values
        return newton_spread(values, coordinate(self.fit_steps, self.origins), *self._spread_at)

    def mix(self) -> sparse.csr_array:
        """The rows x rows operator from the curve at the rows to each bin's model value, the
        mean of its local quadratic over the bin's points."""
        from scipy import sparse

        nodes, order = stencils(self.stretches)
        mean, spread = bin_moments(self)
        weights = lagrange(coordinate(self.fit_steps, self.origins)[nodes], order, mean, spread)
        rows = np.repeat(np.arange(self.fit_steps.size), 3)
        size = self.fit_steps.size
        return sparse.csr_array((weights.ravel(), (rows, nodes.ravel())), shape=(size, size))

    def target_mix(self) -> sparse.csr_array:
        """The targets x rows operator from the curve at the rows to each target's model value,
        the mean of its bin's local quadratic over the target's points."""
        from scipy import sparse

        nodes, order = stencils(self.stretches)
        nodes, order = nodes[self.target_bins], order[self.target_bins]
        at = coordinate(self.fit_steps, self.origins)[nodes]
        weights = lagrange(at, order, self.target_mean, self.target_spread)
        rows = np.repeat(np.arange(self.targets.size), 3)
        shape = (self.targets.size, self.fit_steps.size)
        return sparse.csr_array((weights.ravel(), (rows, nodes.ravel())), shape=shape)

    def subset(self, keep: np.ndarray) -> FitPoints:
        """The bins where the boolean mask `keep` is set, with their points; a gap left by bins
        left out starts a new stretch."""
        points = np.repeat(keep, self.counts)
        counts = self.counts[keep]
        position = np.flatnonzero(keep)
        kept = self.stretches[keep]
        change = (np.diff(kept) != 0) | (np.diff(position) > 1)
        targets = keep[self.target_bins]
        return FitPoints(
            self.lr,
            self.steps[points],
            self.log_loss[points],
            np.cumsum(counts) - counts,
            self.fit_steps[keep],
            self.fit_log_loss[keep],
            counts,
            np.concatenate([[0], np.cumsum(change)]).astype(np.int64)[: counts.size],
            self.origins[keep],
            self.targets[targets],
            self.target_counts[targets],
            (np.cumsum(keep) - 1)[self.target_bins[targets]],
            self.target_mean[targets],
            self.target_spread[targets],
        )

    def blocks(self, count: int) -> list[np.ndarray]:
        """`count` contiguous blocks of bins (boolean masks), each with about the same number of
        points: a bin goes to the block of its first point when the points are split evenly."""
        sizes = [block.size for block in np.array_split(np.arange(self.steps.size), count)]
        owner = np.searchsorted(np.cumsum(sizes), self.bin_starts, side="right")
        return [owner == index for index in range(count)]


def fit_points(run: Run, coarse: bool = True) -> FitPoints:
    """The points of `run` for a fit: every logged point its own bin, or, with `coarse` and more
    than `COARSE_ABOVE` usable points (LR area above 0), the usable points in bins (module
    docstring)."""
    log_loss = np.log(run.loss)
    usable = np.cumsum(run.lr)[run.steps] > 0
    if not coarse or np.count_nonzero(usable) <= COARSE_ABOVE:
        index = np.arange(run.steps.size)
        ones = np.ones(run.steps.size, dtype=np.int64)
        return FitPoints(
            run.lr,
            run.steps,
            log_loss,
            index,
            run.steps,
            log_loss,
            ones,
            index,
            np.zeros(run.steps.size, dtype=np.int64),
            log_loss,
            ones,
            index,
            np.zeros(run.steps.size),
            np.zeros(run.steps.size),
        )
    steps, log_loss = run.steps[usable], log_loss[usable]
    fresh = anchors(run.lr)
    starts = bin_starts(run.lr, steps, fresh, REL_WIDTH)
    counts = np.diff(np.append(starts, steps.size))
    fit_steps = np.rint(np.add.reduceat(steps.astype(np.float64), starts) / counts)
    means = np.add.reduceat(log_loss, starts) / counts
    stretch = np.searchsorted(fresh, steps[starts], side="right")
    bins = FitPoints(
        run.lr,
        steps,
        log_loss,
        starts,
        fit_steps.astype(np.int64),
        means,
        counts,
        stretch,
        fresh[stretch - 1],
        means,
        counts,
        np.arange(counts.size),
        np.zeros(counts.size),
        np.zeros(counts.size),
    )
    return dataclasses.replace(bins, **_grouped_targets(bins))


def _split(owner: np.ndarray, counts: np.ndarray, parts: int) -> np.ndarray:
    """Cut each run of equal `owner` (runs of `counts` consecutive items) into up to `parts`
    pieces of equal size: the piece of each item, numbered across all runs."""
    pieces = np.minimum(parts, counts)
    first = np.cumsum(counts) - counts
    rank = np.arange(owner.size) - first[owner]
    return (np.cumsum(pieces) - pieces)[owner] + rank * pieces[owner] // counts[owner]


def _grouped_targets(bins: FitPoints) -> dict[str, np.ndarray]:
    """Each bin's targets (module docstring): its points cut into up to `PLACES` runs of
    consecutive points, and each run into up to `LEVELS` groups by their deviation from the
    local quadratics through the bins' mean log-losses; for each group its mean log-loss, its
    count, and the mean and mean squared deviation of its points' coordinates."""
    rows = np.repeat(np.arange(bins.counts.size), bins.counts)
    place = _split(rows, bins.counts, PLACES)
    place_counts = np.bincount(place)
    deviation = bins.log_loss - bins.per_point(bins.fit_log_loss)
    order = np.lexsort((deviation, place))  # by place (points stay in step order), then level
    group = np.empty(order.size, dtype=np.int64)
    group[order] = _split(place[order], place_counts, LEVELS)
    sizes = np.bincount(group)
    x = coordinate(bins.steps, bins.origins[rows])
    mean = np.bincount(group, weights=x) / sizes
    target_bins = np.zeros(sizes.size, dtype=np.int64)
    target_bins[group] = rows
    return {
        "targets": np.bincount(group, weights=bins.log_loss) / sizes,
        "target_counts": sizes,
        "target_bins": target_bins,
        "target_mean": mean,
        "target_spread": np.bincount(group, weights=(x - mean[group]) ** 2) / sizes,
    }


def anchors(lr: np.ndarray) -> np.ndarray:
    """Step 0 and the steps where the LR bends by more than ``KINK`` of its largest value over
    the width a bin would have there (``REL_WIDTH`` times the step)."""
    bend = np.abs(np.diff(lr, 2))  # index i: the bend at step i + 1
    width = np.maximum(1.0, REL_WIDTH * np.arange(1, bend.size + 1))
    scale = KINK * max(float(lr.max()), np.finfo(np.float64).tiny)
    return np.concatenate([[0], np.flatnonzero(bend * width > scale) + 1])


def lr_levels(lr: np.ndarray) -> np.ndarray:
    """The steps where the LR enters another ``LR_BIN`` band of log LR (LR 0 is a band)."""
    with np.errstate(divide="ignore"):
        band = np.floor(np.log(lr) / LR_BIN)
    band[~np.isfinite(band)] = -np.inf
    return np.flatnonzero(band[1:] != band[:-1]) + 1


def bin_starts(
    lr: np.ndarray, steps: np.ndarray, fresh: np.ndarray, rel_width: float
) -> np.ndarray:
    """The index of the first point of each bin of the sorted `steps` (module docstring), bins
    spanning up to `rel_width` of their distance from the last of the anchors `fresh`."""
    edges = np.union1d(fresh, lr_levels(lr))  # steps that begin a bin when it reaches them
    starts = []
    first, count = 0, steps.size
    while first < count:
        step = int(steps[first])
        anchor = int(fresh[np.searchsorted(fresh, step, side="right") - 1])
        following = np.searchsorted(edges, step, side="right")
        stop = int(edges[following]) if following < edges.size else math.inf
        last = min(step + math.floor(rel_width * (step - anchor)), stop - 1)
        starts.append(first)
        first = max(int(np.searchsorted(steps, last, side="right")), first + 1)
    return np.array(starts, dtype=np.int64)


def stencils(stretches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row, the three rows its local quadratic goes through (itself and its neighbours,
    shifted inwards at the ends of its stretch), and how many of them differ: 3, or 2 or 1 in a
    stretch of fewer rows (a line, a constant)."""
    rows = np.arange(stretches.size)
    first = np.searchsorted(stretches, stretches, side="left")
    last = np.searchsorted(stretches, stretches, side="right") - 1
    order = np.minimum(last - first + 1, 3)
    centre = np.clip(rows, first + 1, np.maximum(last - 1, first + 1))
    nodes = np.stack([centre - 1, centre, centre + 1], axis=1)
    two = order == 2
    nodes[two] = np.stack([first[two], last[two], last[two]], axis=1)
    one = order == 1
    nodes[one] = rows[one, None]
    return nodes, order


def lagrange(
    at: np.ndarray, order: np.ndarray, mean: np.ndarray, spread: np.ndarray | float
) -> np.ndarray:
    """Weights of the Lagrange polynomial through the steps `at` (rows x 3, the first `order` of
    them distinct) for its mean over points of mean step `mean` and mean squared deviation
    `spread` (0: its value at `mean`): ``E[(t - a)(t - b)] = spread + (mean - a)(mean - b)``."""
    x0, x1, x2 = at[:, 0], at[:, 1], at[:, 2]
    weights = np.zeros(at.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        quadratic = np.stack(
            [
                (spread + (mean - x1) * (mean - x2)) / ((x0 - x1) * (x0 - x2)),
                (spread + (mean - x0) * (mean - x2)) / ((x1 - x0) * (x1 - x2)),
                (spread + (mean - x0) * (mean - x1)) / ((x2 - x0) * (x2 - x1)),
            ],
            axis=1,
        )
        line = np.stack([(mean - x1) / (x0 - x1), (mean - x0) / (x1 - x0)], axis=1)
    weights[order == 3] = quadratic[order == 3]
    weights[order == 2, :2] = line[order == 2]
    weights[order == 1, 0] = 1.0
    return weights


def coordinate(steps: np.ndarray, origins: np.ndarray | int) -> np.ndarray:
    """``log(t - origin + 1)``: the coordinate of the local quadratics, in which loss curves are
    nearly straight (a power of the time or LR area since the schedule last changed)."""
    return np.log(steps - origins + 1.0)


def bin_moments(part: FitPoints) -> tuple[np.ndarray, np.ndarray]:
    """Each bin's mean coordinate and the mean squared distance of its points' coordinates from
    that mean."""
    x = coordinate(part.steps, np.repeat(part.origins, part.counts))
    mean = np.add.reduceat(x, part.bin_starts) / part.counts
    squares = np.add.reduceat((x - np.repeat(mean, part.counts)) ** 2, part.bin_starts)
    return mean, squares / part.counts


def row_mix(parts: list[FitPoints]) -> sparse.csr_array | None:
    """The fit's operator from the curve at every row (the rows with LR area above 0, part after
    part) to the model value of every target: its bin's row of `FitPoints.mix` for coarse
    parts, the identity for the others; None when no part is coarse."""
    if not any(part.coarse for part in parts):
        return None
    from scipy import sparse

    blocks = []
    for part in parts:
        if part.coarse:  # every row of a coarse part has LR area above 0
            blocks.append(part.target_mix())
        else:
            usable = np.count_nonzero(np.cumsum(part.lr)[part.fit_steps] > 0)
            blocks.append(sparse.eye_array(usable))
    return sparse.csr_array(sparse.block_diag(blocks))


def point_residuals(parts: list[FitPoints], log_curve: np.ndarray) -> np.ndarray:
    """Per-point log-loss residuals from the fitted log-curve at the fit's rows (the rows with
    LR area above 0, part after part): the curve spread to every point, minus its log-loss."""
    out, offset = [], 0
    for part in parts:
        usable = np.cumsum(part.lr)[part.fit_steps] > 0
        rows = log_curve[offset : offset + np.count_nonzero(usable)]
        offset += rows.size
        if part.coarse:
            out.append(part.per_point(rows) - part.log_loss)
        else:
            out.append(rows - part.fit_log_loss[usable])
    return np.concatenate(out)


def coarse_error_bound(parts: list[FitPoints], log_curve: np.ndarray) -> tuple[float, float]:
    """The bound of the module docstring on each bin of the coarse parts, at the fitted
    log-curve at the rows, with ``l'''`` the largest of the third divided differences (times 6)
    over the four-row windows within a stretch around the bin: its count-weighted RMS over the
    points, and its largest value ((0, 0) without coarse parts)."""
    errors, counts, offset = [], [], 0
    for part in parts:
        usable = np.cumsum(part.lr)[part.fit_steps] > 0
        rows = log_curve[offset : offset + np.count_nonzero(usable)]
        offset += rows.size
        if not part.coarse:
            continue
        at = coordinate(part.fit_steps, part.origins)
        third = np.zeros(rows.size)
        if rows.size >= 4:
            first = np.diff(rows) / np.diff(at)
            second = np.diff(first) / (at[2:] - at[:-2])
            windows = np.abs(6.0 * np.diff(second) / (at[3:] - at[:-3]))
            windows[part.stretches[3:] != part.stretches[:-3]] = 0.0  # across an anchor
            for shift in range(4):  # each row: the windows that hold it
                third[shift : shift + windows.size] = np.maximum(
                    third[shift : shift + windows.size], windows
                )
        nodes, order = stencils(part.stretches)
        point_rows = np.repeat(np.arange(rows.size), part.counts)
        x = coordinate(part.steps, part.origins[point_rows])
        product = np.abs(np.prod(x[:, None] - at[nodes[point_rows]], axis=1))
        product[order[point_rows] < 3] = 0.0  # a stretch of fewer rows: bins of single points
        mean_product = np.add.reduceat(product, part.bin_starts) / part.counts
        errors.append(third / 6.0 * mean_product)
        counts.append(part.counts)
    if not errors:
        return 0.0, 0.0
    error, weight = np.concatenate(errors), np.concatenate(counts)
    return float(np.sqrt(np.sum(weight * error**2) / np.sum(weight))), float(error.max())


def newton_spread(
    values: np.ndarray,
    at: np.ndarray,
    nodes: np.ndarray,
    order: np.ndarray,
    rows: np.ndarray,
    from_first: np.ndarray,
    from_second: np.ndarray,
) -> np.ndarray:
    """Values at coordinates `at` (along the last axis) spread to points by the quadratic
    through the stencil `nodes` (of `order` distinct rows) of each point's row, in Newton's form
    ``y0 + f[x0, x1] (x - x0) + f[x0, x1, x2] (x - x0)(x - x1)`` (`from_first`, `from_second`:
    each point's ``x - x0`` and ``x - x1``)."""
    x = at[nodes]
    y0, y1, y2 = values[..., nodes[:, 0]], values[..., nodes[:, 1]], values[..., nodes[:, 2]]
    with np.errstate(divide="ignore", invalid="ignore"):  # repeated nodes: zeroed here
        slope = np.where(order >= 2, (y1 - y0) / (x[:, 1] - x[:, 0]), 0.0)
        later = (y2 - y1) / (x[:, 2] - x[:, 1])
        bend = np.where(order == 3, (later - slope) / (x[:, 2] - x[:, 0]), 0.0)
    return y0[..., rows] + (slope[..., rows] + bend[..., rows] * from_second) * from_first


def curve_knots(
    lr: np.ndarray, steps: np.ndarray
) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray] | None]:
    """Where to evaluate a curve wanted at `steps`, and how to spread the values from there to
    `steps` (None: at `steps` themselves, as for up to `DENSE_ABOVE` of them; beyond, the knots
    and quadratics of the module docstring)."""
    if steps.size <= DENSE_ABOVE:
        return steps, None
    unique = np.sort(steps)  # np.unique hashes: 50 times slower on a million steps
    unique = unique[np.concatenate([[True], unique[1:] != unique[:-1]])]
    fresh = anchors(lr)
    knots = unique[np.union1d(bin_starts(lr, unique, fresh, KNOT_WIDTH), [unique.size - 1])]
    stretch = np.searchsorted(fresh, knots, side="right")
    origins = fresh[stretch - 1]
    nodes, order = stencils(stretch)
    rows = np.clip(np.searchsorted(knots, steps, side="right") - 1, 0, knots.size - 1)
    at = coordinate(knots, origins)
    x = coordinate(steps, origins[rows])
    from_first, from_second = x - at[nodes[rows, 0]], x - at[nodes[rows, 1]]

    def spread(values: np.ndarray) -> np.ndarray:
        return newton_spread(values, at, nodes, order, rows, from_first, from_second)

    return knots, spread
