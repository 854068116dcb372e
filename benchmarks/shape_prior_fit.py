"""A prior on the shape of `auto`'s member laws, learnt from fits to other data sets (tried in the
tenth round, docs/laws.md, and not kept: benchmark code, not part of the package).

From one or two runs the shape parameters of a law with an annealing term (how fast and how far
the loss follows a drop of the LR) are poorly determined, and `auto`'s forecasts miss most there
(docs/laws.md, "Eighth round"). Other data sets say what those shapes usually are. The standard
empirical-Bayes move is to borrow that: a Gaussian prior on each shape parameter, its mean and
spread taken from fits to *other* data sets, added to the fit with a weight that fades as the
runs fitted grow in number (docs/laws.md, "Tenth round").

Shapes are carried between data sets in dimensionless coordinates (as the decay prior of
`lrlab.laws.prior` carries the response to a decay), with LRs in units of the fitted runs'
peak LR and steps in units of their longest run, `T`:

- `mpl` and `lrlab`: ``log_c = log(C * peak^(1 - gamma) * T)`` (the kernel's argument
  ``C * lr^-gamma * area`` in those units), ``log_beta``, ``gamma``; `lrlab` also ``log_p`` and
  ``kappa``;
- `momentum`: ``log_rate = log((1 - lambda) * T)``, its momentum's decay per run length.

The penalty (`ShapePenalty`) adds one residual per coordinate,
``huber_delta * strength * (points / runs) * (value - mean) / sd``, to the fit's log-loss
residuals: one prior sd costs about what `strength` runs' worth of points, each off by
`huber_delta`, cost; against the data its weight falls as ``1 / runs``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from lrlab.atomic import atomic_write_text
from lrlab.errors import LrlabError
from lrlab.laws.base import Law
from lrlab.runs.model import Run

PRIOR_FORMAT = "lrlab-shape-prior-1"
# The dimensionless coordinates of each law's shape (module docstring).
COORDINATES: dict[str, tuple[str, ...]] = {
    "momentum": ("log_rate",),
    "mpl": ("log_c", "log_beta", "gamma"),
    "lrlab": ("log_c", "log_beta", "gamma", "log_p", "kappa"),
}
# A prior sd below this (in the coordinates' units) would hold a shape that two data sets
# happened to agree on as if it were known.
SD_FLOOR = 0.1


def coordinates(
    law: str, theta: np.ndarray, peak: float, length: float
) -> tuple[np.ndarray, np.ndarray]:
    """Law `law`'s shape coordinates at parameters `theta` (`COORDINATES`), for runs of peak LR
    `peak` and longest run `length` steps, and their Jacobian by `theta` (coordinates x params)."""
    theta = np.asarray(theta, dtype=np.float64)
    if law not in COORDINATES:
        raise LrlabError(f"shape prior: no shape coordinates for law {law!r}")
    jacobian = np.zeros((len(COORDINATES[law]), theta.size))
    if law == "momentum":
        lam = theta[4]
        jacobian[0, 4] = -1.0 / (1.0 - lam)
        return np.array([math.log((1.0 - lam) * length)]), jacobian
    C, beta, gamma = theta[4:7]
    log_peak = math.log(peak)
    values = [math.log(C) + (1.0 - gamma) * log_peak + math.log(length), math.log(beta), gamma]
    jacobian[0, 4], jacobian[0, 6] = 1.0 / C, -log_peak
    jacobian[1, 5] = 1.0 / beta
    jacobian[2, 6] = 1.0
    if law == "lrlab":
        p, kappa = theta[7:9]
        values += [math.log(p), kappa]
        jacobian[3, 7] = 1.0 / p
        jacobian[4, 8] = 1.0
    return np.array(values), jacobian


def run_scale(runs: Sequence[Run]) -> tuple[float, float]:
    """The units of the coordinates for `runs`: their largest LR and their longest last step."""
    return float(max(run.lr.max() for run in runs)), float(max(run.steps[-1] for run in runs))


@dataclasses.dataclass(frozen=True)
class ShapePrior:
    """Per law, per coordinate, the prior's ``(mean, sd)``; `sources` names what it was learnt
    from (data sets, each a list of fits)."""

    laws: dict[str, dict[str, tuple[float, float]]]
    sources: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for law, table in self.laws.items():
            if law not in COORDINATES or set(table) != set(COORDINATES[law]):
                raise LrlabError(
                    f"shape prior: law {law!r} needs coordinates "
                    f"{', '.join(COORDINATES.get(law, ()))}, got {', '.join(table)}"
                )
            for name, (mean, sd) in table.items():
                if not (math.isfinite(mean) and math.isfinite(sd) and sd > 0):
                    raise LrlabError(
                        f"shape prior: {law} {name}: mean and sd must be finite, sd above 0, "
                        f"got {mean!r}, {sd!r}"
                    )

    def moments(self, law: str) -> tuple[np.ndarray, np.ndarray] | None:
        """The means and sds of `law`'s coordinates, in `COORDINATES` order (None: no prior)."""
        table = self.laws.get(law)
        if table is None:
            return None
        pairs = np.array([table[name] for name in COORDINATES[law]], dtype=np.float64)
        return pairs[:, 0], pairs[:, 1]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the format, the sources, and each law's coordinates."""
        return {
            "format": PRIOR_FORMAT,
            "sources": list(self.sources),
            "laws": {
                law: {name: {"mean": mean, "sd": sd} for name, (mean, sd) in table.items()}
                for law, table in self.laws.items()
            },
        }

    @classmethod
    def from_dict(cls, data: Any, source: str = "shape prior") -> ShapePrior:
        """The prior `to_dict` wrote; a clear error naming `source` otherwise."""
        if not isinstance(data, dict) or data.get("format") != PRIOR_FORMAT:
            raise LrlabError(f"{source}: not a shape prior (format {PRIOR_FORMAT!r} expected)")
        try:
            laws = {
                str(law): {
                    str(name): (float(entry["mean"]), float(entry["sd"]))
                    for name, entry in table.items()
                }
                for law, table in data["laws"].items()
            }
            sources = tuple(str(name) for name in data.get("sources", []))
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise LrlabError(f"{source}: malformed shape prior ({error!r})") from None
        try:
            return cls(laws, sources)
        except LrlabError as error:
            raise LrlabError(f"{source}: {error}") from None

    def save(self, path: str | Path) -> Path:
        """Write the prior as JSON, atomically."""
        return atomic_write_text(Path(path), json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> ShapePrior:
        """Read a prior `save` wrote."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise LrlabError(f"{path}: cannot read the shape prior ({error})") from None
        return cls.from_dict(data, str(path))


@dataclasses.dataclass(frozen=True)
class ShapeSample:
    """One fit's shape coordinates: `law` fitted to runs of data set `dataset`."""

    dataset: str
    law: str
    values: tuple[float, ...]


def sample(dataset: str, law: Law, runs: Sequence[Run]) -> ShapeSample:
    """The shape coordinates of `law`, fitted to `runs` of data set `dataset`."""
    values, _ = coordinates(law.name, law.params_, *run_scale(runs))
    return ShapeSample(dataset, law.name, tuple(float(v) for v in values))


def learn(samples: Sequence[ShapeSample], leave_out: str | None = None) -> ShapePrior:
    """The prior from `samples`, leaving out data set `leave_out` (the one forecast): per law and
    coordinate, the mean of the data sets' means (each data set weighs the same), and as sd the
    spread of those means (sample sd) plus the mean spread within a data set, in quadrature,
    floored at `SD_FLOOR`."""
    kept = [s for s in samples if s.dataset != leave_out]
    laws: dict[str, dict[str, tuple[float, float]]] = {}
    for law, names in COORDINATES.items():
        by_set: dict[str, list[tuple[float, ...]]] = {}
        for entry in kept:
            if entry.law == law:
                by_set.setdefault(entry.dataset, []).append(entry.values)
        if not by_set:
            continue
        groups = [np.array(values) for values in by_set.values()]
        means = np.array([group.mean(axis=0) for group in groups])
        between = means.var(axis=0, ddof=1) if len(groups) > 1 else np.zeros(len(names))
        within = np.mean([group.var(axis=0) for group in groups], axis=0)
        sd = np.maximum(np.sqrt(between + within), SD_FLOOR)
        laws[law] = {
            name: (float(mean), float(spread))
            for name, mean, spread in zip(names, means.mean(axis=0), sd, strict=True)
        }
    if not laws:
        raise LrlabError(f"shape prior: no fits left to learn from (leaving out {leave_out!r})")
    sources = tuple(sorted({s.dataset for s in kept}))
    return ShapePrior(laws, sources)


@dataclasses.dataclass(frozen=True)
class ShapePenalty:
    """The prior's residuals for one fit of a law (module docstring), appended to the law's own
    penalty `own`: a callable like `Law.penalty`."""

    law: str
    own: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
    mean: np.ndarray
    sd: np.ndarray
    scale: float  # huber_delta * strength * points per run
    peak: float
    length: float

    def __call__(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        own, own_jacobian = self.own(theta)
        values, jacobian = coordinates(self.law, theta, self.peak, self.length)
        weight = self.scale / self.sd
        rows = weight * (values - self.mean)
        return np.concatenate([own, rows]), np.vstack([own_jacobian, weight[:, None] * jacobian])


@contextmanager
def shaped(
    law: Law, prior: ShapePrior | None, strength: float, runs: Sequence[Run]
) -> Iterator[Law]:
    """`law` with the prior's penalty for fitting `runs` while the block runs, then without it
    (so a fitted law saves, loads and pickles as any other). No prior for the law, or `strength`
    0: the law unchanged."""
    moments = prior.moments(law.name) if prior is not None else None
    if moments is None or strength <= 0:
        yield law
        return
    points_per_run = sum(run.steps.size for run in runs) / len(runs)
    law.penalty = ShapePenalty(  # type: ignore[method-assign]
        law.name,
        law.penalty,
        *moments,
        law.huber_delta * strength * points_per_run,
        *run_scale(runs),
    )
    try:
        yield law
    finally:
        del law.penalty
