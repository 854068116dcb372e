"""Joint fits: one law per group of runs (e.g. per model size), sharing its shape parameters.

Each law splits its parameters into *scale* parameters, which differ between model sizes (the
loss floor ``L0``, the amplitude ``A`` and exponent ``alpha`` of the LR-area power law, the size
of the annealing benefit), and *shape* parameters (`Law.shape_params`), which say how the loss
responds to the schedule (the multi-power-law kernel ``C, beta, gamma``, lrlab's ``p, kappa``,
the momentum decay ``lam``). Luo et al. (2025, arXiv:2503.12811) fit the multi-power law to
25M, 100M and 400M models separately and find nearly the same kernel at every size (``C`` about
2, ``beta`` about 0.6, ``gamma`` about 0.64); a joint fit uses that: the shape parameters are
fitted once to the runs of every group, the scale parameters per group. With three runs per
size the shape is poorly determined by one size alone (fits reach the bounds of ``C``), and
pooling the sizes pins it down.

The joint solution is the same robust objective as `Law.fit` (Huber on log-loss residuals) summed
over the groups. Each group's law is then an ordinary fitted law: it is refitted on its own runs
with the shared values fixed (the ``fixed`` parameter), which keeps the joint optimum and gives it
the usual jackknife band; the standard errors of the shared parameters come from the joint fit.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from lrlab.errors import LrlabError
from lrlab.laws.base import (
    FitProblem,
    Law,
    Progress,
    gauss_newton_covariance,
    robust_least_squares,
)
from lrlab.laws.registry import get_law
from lrlab.runs.model import Run

if TYPE_CHECKING:
    from scipy import optimize


def fit_joint(
    law: str,
    groups: Mapping[str, Sequence[Run]],
    shared: Sequence[str] | None = None,
    progress: Progress | None = None,
    **config: Any,
) -> dict[str, Law]:
    """Fit law `law` (built with the parameters `config`) to each group of runs, with the
    parameters `shared` (default: the law's `shape_params`) equal across the groups. Returns the
    fitted law of each group."""
    began = time.perf_counter()
    if len(groups) < 2:
        raise LrlabError("a joint fit needs runs of at least two groups (e.g. two model sizes)")
    empty = [name for name, runs in groups.items() if not runs]
    if empty:
        raise LrlabError(f"joint fit: group {empty[0]!r} has no runs")
    point_config = {**config, "bands": False}
    template = get_law(law, **point_config)
    shared = tuple(template.shape_params if shared is None else shared)
    unknown = [name for name in shared if name not in template.param_names]
    if unknown or not shared:
        raise LrlabError(
            f"joint fit: law {law!r} shares none of {', '.join(unknown) or 'no parameters'} "
            f"(parameters: {', '.join(template.param_names)})"
        )
    # Each group's own fit is the starting point of its scale parameters.
    separate = {}
    for name, runs in groups.items():
        if progress:
            progress(f"joint fit: starting point for group {name!r}")
        separate[name] = get_law(law, **point_config).fit(runs)
    problem = JointProblem(template, shared, separate, groups)
    if progress:
        progress(f"joint fit: {len(groups)} groups, shared {', '.join(shared)}")
    result = problem.solve(template.huber_delta, max_evals=600)
    shared_values = dict(zip(shared, map(float, result.x[problem.shared_slots]), strict=True))
    shared_errors = problem.shared_errors(result)
    fitted = {}
    for (name, runs), choose in zip(groups.items(), problem.selection, strict=True):
        if progress:
            progress(f"joint fit: group {name!r} with the shared parameters fixed")
        fixed = {**(config.get("fixed") or {}), **shared_values}
        # Warm-started from the joint solution: the law's fixed starts alone can end in a worse
        # local minimum once the shared values are held (seen on wind-tunnel runs: 4x the cost).
        group_law = get_law(law, **{**config, "fixed": fixed}).fit(runs, start=choose @ result.x)
        for param, error in shared_errors.items():
            index = group_law.param_names.index(param)
            group_law.param_errors_[index] = error
            group_law.covariance_[index, index] = error**2
        group_law.fit_info_["joint"] = {
            "groups": list(groups),
            "shared": list(shared),
            "seconds": round(time.perf_counter() - began, 4),
        }
        fitted[name] = group_law
    return fitted


class JointProblem:
    """The stacked least-squares problem: ``x`` = every group's own parameters, then the shared
    ones; group g's parameter vector is ``selection[g] @ x``."""

    def __init__(
        self,
        template: Law,
        shared: tuple[str, ...],
        separate: dict[str, Law],
        groups: Mapping[str, Sequence[Run]],
    ) -> None:
        names = template.param_names
        self.shared_index = [names.index(name) for name in shared]
        self.own_index = [i for i in range(len(names)) if i not in self.shared_index]
        self.laws = list(separate.values())
        own, count = len(self.own_index), len(self.laws)
        size = own * count + len(shared)
        self.shared_slots = np.arange(own * count, size)
        self.selection = []
        self.problems: list[FitProblem] = []
        for g, (law, runs) in enumerate(zip(self.laws, groups.values(), strict=True)):
            choose = np.zeros((len(names), size))
            choose[self.own_index, own * g + np.arange(own)] = 1.0
            choose[self.shared_index, self.shared_slots] = 1.0
            self.selection.append(choose)
            self.problems.append(law.fit_problem(runs))
        lowers = [problem.lower for problem in self.problems]
        uppers = [problem.upper for problem in self.problems]
        # Own parameters keep their group's bounds; shared ones must satisfy every group's.
        self.lower = np.concatenate(
            [lower[self.own_index] for lower in lowers] + [np.max(lowers, 0)[self.shared_index]]
        )
        self.upper = np.concatenate(
            [upper[self.own_index] for upper in uppers] + [np.min(uppers, 0)[self.shared_index]]
        )

    def start(self) -> np.ndarray:
        own = [law.params_[self.own_index] for law in self.laws]
        shared = np.median([law.params_[self.shared_index] for law in self.laws], axis=0)
        return np.clip(np.concatenate([*own, shared]), self.lower, self.upper)

    def solve(
        self, huber_delta: float, max_evals: int, start: np.ndarray | None = None
    ) -> optimize.OptimizeResult:
        """The robust least-squares solution (`robust_least_squares`), from `start` (clipped to
        the bounds) or from `start()`."""
        x0 = self.start() if start is None else np.clip(start, self.lower, self.upper)
        return robust_least_squares(
            self.objective,
            self.jacobian,
            x0,
            self.lower,
            self.upper,
            huber_delta,
            max_evals=max_evals,
            weights=self.huber_weights(),
        )

    def group_parameters(self, x: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each group's parameter vector at `x` and its derivative by `x`: here a selection,
        linear; a subclass may map `x` otherwise (`lrlab.laws.sizes`: functions of model size)."""
        return [(choose @ x, choose) for choose in self.selection]

    def objective(self, x: np.ndarray) -> np.ndarray:
        return np.concatenate(
            [
                problem.objective(theta)
                for (theta, _), problem in zip(self.group_parameters(x), self.problems, strict=True)
            ]
        )

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        return np.vstack(
            [
                problem.jacobian(theta) @ derivative
                for (theta, derivative), problem in zip(
                    self.group_parameters(x), self.problems, strict=True
                )
            ]
        )

    def huber_weights(self) -> np.ndarray | None:
        """The points each residual stands for, where a group's points are coarse-grained
        (`FitProblem.huber_weights`; None where every residual is a point)."""
        weights = [problem.huber_weights() for problem in self.problems]
        if all(weight is None for weight in weights):
            return None
        return np.concatenate(
            [
                np.ones(problem.objective(problem.lower).size) if weight is None else weight
                for problem, weight in zip(self.problems, weights, strict=True)
            ]
        )

    def shared_errors(self, result: Any) -> dict[str, float]:
        """1-sigma errors of the shared parameters from the joint Gauss-Newton covariance."""
        covariance = gauss_newton_covariance(result.jac, 2.0 * result.cost, result.x.size)
        names = [self.laws[0].param_names[i] for i in self.shared_index]
        errors = np.sqrt(np.clip(np.diag(covariance)[self.shared_slots], 0.0, None))
        return dict(zip(names, map(float, errors), strict=True))
