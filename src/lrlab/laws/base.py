"""One interface for every loss-curve law, in the style of scikit-learn estimators.

- A law is a keyword-only dataclass: its fields are the constructor parameters, declared with
  `lrlab.settings` and checked on construction (`get_params` returns them). ``fit(runs)`` learns
  and returns the law itself; it never changes a parameter.
- Learned attributes end in ``_``: `params_` (array, in `param_names` order), `param_errors_`
  (1-sigma, from the Gauss-Newton covariance `covariance_`), `replicates_` (the parameters refitted
  with one run, or one block of a single run, left out), `noise_sd_` (robust scatter of the
  log-loss residuals), `band_scale_`, `band_growth_`, `band_reach_`, `band_distance_sd_` and
  `band_schedules_` (the band's calibration), `fit_info_`, and whatever a law learns from the
  runs before the fit (`prepare`; named in `learned`, such as lrlab's reference LR `lr_ref_`).
- ``predict(lr, steps)`` is pure: the loss at `steps` of a run whose per-step LR is `lr`.
- ``predict_interval(lr, steps, level)`` gives a band from the fit: the jackknife spread of the
  replicate predictions plus the residual noise, in log-loss, at normal quantiles, widened by
  `band_scale_`, calibrated on each replicate's error on the run (or block) it left out, and
  widening beyond the longest fitted run as ``1 + band_growth_ * log(step / band_reach_)``, the
  growth calibrated on refits of the runs' first parts that forecast the rest, and widening with
  the schedule's distance ``D`` from the fitted runs' schedules (`schedule_distance`) by adding
  ``band_distance_sd_ * D`` in quadrature to that spread, in log-loss.
  ``predict_with_band`` gives the prediction and the band at once.
- ``compare_final(lr_a, lr_b, level)``: the difference of two schedules' forecast final losses,
  with a band from the same replicate fits, whose shared errors cancel (`FinalDifference`).
- ``final_loss_and_gradient(lr)``: the predicted loss at the last step and its exact gradient by
  every step's LR, for schedule optimisation (laws that can give it override it).
- ``save(path)`` / `lrlab.laws.load_law(path)` round-trip a fitted law through JSON (written
  atomically); `from_dict` also reads the files of earlier versions.

Fitting minimises a Huber loss on log-loss residuals ``log(pred) - log(loss)`` (scale
`huber_delta`, as Luo et al. 2025 fit the multi-power law) with bounded trust-region least squares
from several fixed starting points, so it is robust to spikes and deterministic. `fit_problem`
exposes that objective, so that a joint fit (`lrlab.laws.joint`) can stack several laws' problems.
"""

from __future__ import annotations

import abc
import dataclasses
import functools
import json
import math
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from lrlab.atomic import atomic_write_text
from lrlab.errors import LrlabError, LrlabWarning, brief
from lrlab.laws.parallel import fork_map, worth_forking
from lrlab.laws.points import (
    FitPoints,
    coarse_error_bound,
    curve_knots,
    fit_points,
    point_residuals,
    row_mix,
)
from lrlab.runs.model import MAX_LR, Run
from lrlab.runs.regime import fitted_regime, regime_info
from lrlab.runs.warmup import fitted_warmup
from lrlab.settings import MAX_INTEGER, check_fields, flag, from_mapping, mapping, real

if TYPE_CHECKING:
    from scipy import optimize
    from threadpoolctl import ThreadpoolController

FORMAT = "lrlab-law-fit"
# 2: learned values in "learned" (version 1 kept them in the configuration, where the fit wrote
# them) and fit keys "peak" / "warmup" (version 1: "peak_lr" / "warmup_steps").
FORMAT_VERSION = 2
_OLD_FIT_KEYS = {"peak_lr": "peak", "warmup_steps": "warmup"}
_SINGLE_RUN_BLOCKS = 4
# The band's growth with the extrapolation (`Law._growth_scores`): the runs' first parts refitted.
_GROWTH_FOLDS = (1 / 3, 1 / 2)
_GROWTH_EVALS = 25  # a warm start from the full fit: a loose refit is enough for a quantile
_GROWTH_GRID = np.linspace(0.0, 4.0, 81)
_GROWTH_MIN_POINTS = 10  # forecast points beyond the refits' reach needed to estimate a growth
# The least growth: estimates from two or three runs scatter (0 for half of the development
# tasks' refits, up to the grid's end for others); docs/laws.md, seventh round, says how it was
# chosen, on training runs only.
_GROWTH_FLOOR = 0.25
# The largest growth (the grid reaches 4): chosen on training-only folds, docs/laws.md, ninth round.
_GROWTH_CAP = 2.0
# The band's widening with the schedule's distance from the fitted runs' (`schedule_distance`).
_DISTANCE_KNOTS = 256  # a fitted run's schedule is kept at this many steps (plus its last)
_DISTANCE_SAMPLES = 1024  # steps of a forecast at which the distance is measured, at most
_DISTANCE_LR_FLOOR = 1e-2  # LRs below this fraction of the fitted peak count as this fraction
# The log-loss sd added in quadrature per unit of distance: a constant, since per-fit estimates
# from two or three runs were mostly 0; chosen on training-only folds and the wind tunnel
# (docs/laws.md, "Ninth round, bands (additive)"). Added, not multiplied, so that a band already
# wide (a large jackknife sd) does not become many times the loss.
_DISTANCE_SD = 0.015
_SCOUT_EVALS = 40  # evaluations per start before the best start is refined
_REFIT_EVALS = 100  # about what a warm-started jackknife refit takes (20-400)
_TINY = 1e-300

Progress = Callable[[str], None]


def check_curve_input(lr: np.ndarray, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate a per-step LR array and the steps to predict at."""
    lr = np.asarray(lr, dtype=np.float64)
    steps_in = np.asarray(steps)
    if lr.ndim != 1 or lr.size == 0:
        raise LrlabError("lr must be a non-empty one-dimensional per-step array")
    if not np.all(np.isfinite(lr)) or np.any(lr < 0) or np.any(lr > MAX_LR):
        # MAX_LR: the largest LR a log may hold; beyond it the laws' LR sums overflow.
        raise LrlabError(f"lr must be finite, non-negative and at most {MAX_LR:g}")
    if steps_in.ndim != 1 or np.any(steps_in != np.round(steps_in)):
        raise LrlabError("steps must be a one-dimensional array of whole numbers")
    steps_int = steps_in.astype(np.int64)
    if steps_int.size and (steps_int.min() < 0 or steps_int.max() >= lr.size):
        raise LrlabError(f"steps must lie in 0..{lr.size - 1}, the range the per-step lr covers")
    return lr, steps_int


@dataclasses.dataclass(kw_only=True, eq=False)
class Law(abc.ABC):
    """A loss-curve law: ``loss(step) = f(per-step LR up to step; params)``.

    A law file defines a subclass with `name`, `summary`, `param_names` and the methods marked
    abstract; options of its own are more dataclass fields (see docs/laws.md, "Adding a law").
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    param_names: ClassVar[tuple[str, ...]]
    # How the loss responds to the schedule, as opposed to the model's scale (`laws.joint`).
    shape_params: ClassVar[tuple[str, ...]] = ()
    # Values `prepare` learns from the training runs, saved with the fit (attribute name + "_").
    learned: ClassVar[tuple[str, ...]] = ()

    huber_delta: float = real(
        1e-3, help="scale of the Huber loss on log-loss residuals", low=0, low_inclusive=False
    )
    band_level: float = real(
        0.9, help="default level of the prediction band", low=0, high=1, low_inclusive=False
    )
    bands: bool = flag(True, help="refit with each run left out, for the band")
    fixed: dict[str, float] | None = mapping(help="parameters held at these values in the fit")
    coarse: bool = flag(True, help="fit long logs on binned points (see lrlab.laws.points)")

    def __post_init__(self) -> None:
        owner = f"law {self.name!r}"
        check_fields(self, owner)
        if self.band_level == 1:  # the band's normal quantile is infinite there
            raise LrlabError(f"{owner}: band_level=1 is out of range (a number in (0, 1))")
        if self.fixed is not None:
            self.fixed = dict(self.fixed)  # the caller's dict stays theirs
        for param, value in (self.fixed or {}).items():
            if param not in self.param_names:
                raise LrlabError(
                    f"{owner}: fixed names unknown parameter {param!r} "
                    f"(parameters: {', '.join(self.param_names)})"
                )
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not number or not math.isfinite(value):
                raise LrlabError(f"{owner}: fixed {param} must be a finite number, got {value!r}")

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters, by name (``type(law)(**law.get_params())`` is an unfitted
        copy; saved fits store them as their "config")."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}

    def fixed_parameters(self) -> dict[str, float]:
        """The parameters the fit holds, by name: `fixed`, plus any shorthand a law's own
        parameters give for it (the momentum law's ``lam``)."""
        return dict(self.fixed or {})

    # --- what each law defines ------------------------------------------------------------------

    @abc.abstractmethod
    def features(self, lr: np.ndarray, steps: np.ndarray) -> Any:
        """Everything about one curve that does not depend on the parameters (computed once)."""

    @abc.abstractmethod
    def curve(self, theta: np.ndarray, features: Any) -> np.ndarray:
        """The predicted loss at the feature's steps."""

    def curve_and_jacobian(
        self, theta: np.ndarray, features: Any
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The curve and d curve / d theta (points x params); None for finite differences."""
        return self.curve(theta, features), None

    def merged_features(self, features: list[Any]) -> Any:
        """Features of several curves as one, whose curve is theirs one after the other, each
        point's value as from its own features (a fit then evaluates its parts in one call); None
        where the law has no such merge (by default)."""
        return None

    def penalty(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Extra residuals appended to the fit's log-loss residuals (a prior), with their
        Jacobian (rows x params); none by default."""
        return np.empty(0), np.empty((0, theta.size))

    @abc.abstractmethod
    def bounds(self, max_loss: float, min_loss: float) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds of the parameters."""

    @abc.abstractmethod
    def starts(self, min_loss: float) -> list[np.ndarray]:
        """Fixed starting points of the multi-start fit."""

    def prepare(self, runs: Sequence[Run]) -> None:
        """Learn what `features` needs from the training runs (such as a reference LR) before a
        fit, into the attributes named in `learned`; nothing by default."""

    def final_loss_and_gradient(self, lr: np.ndarray) -> tuple[float, np.ndarray]:
        """``(L(T), dL(T) / d lr)`` for the fitted parameters, ``T`` the last step of the per-step
        LR `lr`: what a free-form schedule optimisation descends on. Laws whose gradient is
        derived by hand override this; the others can only optimise a schedule family."""
        raise LrlabError(f"law {self.name!r} has no analytic gradient: optimise a schedule family")

    # --- fitting --------------------------------------------------------------------------------

    def fit_problem(self, runs: Sequence[Run]) -> FitProblem:
        """The least-squares problem that fitting `runs` solves (steps with zero cumulative LR,
        where no law is defined, are left out), after `prepare` has learned from the runs."""
        runs = list(runs)
        if not runs:
            raise LrlabError(f"law {self.name!r}: no runs to fit")
        self.prepare(runs)
        parts = [fit_points(run, self.coarse) for run in runs]
        problem = self._problem(parts, *self._fit_bounds(runs))
        if problem.points <= len(self.param_names):
            raise LrlabError(
                f"law {self.name!r}: {problem.points} usable logged points, need more than "
                f"{len(self.param_names)}"
            )
        return problem

    def fit(
        self,
        runs: Sequence[Run],
        progress: Progress | None = None,
        start: np.ndarray | None = None,
    ) -> Law:
        """Fit the parameters to the logged losses of `runs` and return the law. `start`
        (parameters in `param_names` order), if given, is tried first, besides the law's own
        starting points: a warm start, such as a joint fit's solution, that the fixed starts might
        not reach."""
        began = time.perf_counter()
        runs = list(runs)
        problem = self.fit_problem(runs)
        # Each part's features, built once: the refits for the band fit the same parts, or parts
        # of them, several times, and predict them (`_problem`, `_curves_at`).
        built = {part: features for part, (features, _) in zip(problem.data, problem.parts)}
        groups = _fit_groups(problem.data)
        lower, upper = problem.lower, problem.upper
        candidates = self.starts(float(min(run.loss.min() for run in runs)))
        if start is not None:
            warm = np.asarray(start, dtype=np.float64)
            if warm.shape != (len(self.param_names),) or not np.all(np.isfinite(warm)):
                raise LrlabError(
                    f"law {self.name!r}: start must be {len(self.param_names)} finite numbers "
                    f"({', '.join(self.param_names)})"
                )
            candidates = [warm, *candidates]

        def scout(point: np.ndarray) -> tuple[float, np.ndarray]:
            # a short run from each start, then only the most promising one is refined
            result = self._solve(problem, np.clip(point, lower, upper), _SCOUT_EVALS)
            return float(result.cost), result.x

        for index in range(1, len(candidates) + 1):  # here: a worker's output may be captured
            if progress:
                progress(f"fitting law {self.name!r}: start {index}/{len(candidates)}")
        # Independent refits run side by side where they take long enough to pay for a worker
        # process (`lrlab.laws.parallel`), with the serial results to the bit.
        import_solver()  # here, once, rather than in every worker
        first = np.clip(candidates[0], lower, upper)
        problem.objective(first)  # builds the kernels' workspaces, a first evaluation's extra
        timed = time.process_time()  # CPU: a busy machine's wall time would say fork more
        problem.objective(np.nextafter(first, np.inf))
        evaluation = time.process_time() - timed
        scouts = fork_map(scout, candidates, parallel=worth_forking(evaluation * _SCOUT_EVALS))
        # the first of the lowest, as a serial loop keeping a strictly lower cost would
        best_start = scouts[min(range(len(scouts)), key=lambda index: scouts[index][0])][1]
        if progress:
            progress(f"fitting law {self.name!r}: refining the best start")
        best = self._solve(problem, best_start)
        self.params_ = self._exact_fixed(best.x)
        residuals = point_residuals(problem.data, problem.log_curve(best.x))
        free_jacobian = best.jac.copy()
        free_jacobian[:, list(self._fixed_by_index())] = 0.0  # a fixed parameter has no variance
        # The residual sum is over the logged points, whatever rows stand for them.
        rows = free_jacobian.shape[0] - problem.weights.size + problem.points
        self.covariance_ = gauss_newton_covariance(
            free_jacobian, 2.0 * best.cost, len(self.param_names), rows
        )
        self.param_errors_ = np.sqrt(np.clip(np.diag(self.covariance_), 0.0, None))
        self.noise_sd_ = float(1.4826 * np.median(np.abs(residuals - np.median(residuals))))
        self.replicates_ = np.empty((0, len(self.param_names)))
        self.band_scale_ = 1.0
        self.band_growth_ = 0.0
        self.band_reach_ = max(int(run.steps[-1]) for run in runs)
        self.band_distance_sd_ = _DISTANCE_SD if self.bands else 0.0
        self.band_schedules_ = [schedule_knots(run.lr) for run in runs]
        warmup = fitted_warmup(runs)  # and where it came from: "warmup_from"
        peak = float(max(run.lr.max() for run in runs))
        if self.bands:
            if progress:
                progress(
                    f"fitting law {self.name!r}: {len(groups)} jackknife refits for the band and "
                    f"{len(_GROWTH_FOLDS)} refits of the runs' first parts, for its growth"
                )

            def band_refit(keep: list[FitPoints] | None) -> Any:
                """A jackknife replicate: the fit to the parts in `keep`; for None the band's
                growth, which depends on neither the replicates nor the band's scale."""
                if keep is None:
                    return self._calibrate_growth(problem.data, best.x, lower, upper, built)
                refit = self._problem(keep, lower, upper, built)
                return self._exact_fixed(self._solve(refit, best.x).x)

            *replicates, self.band_growth_ = fork_map(
                band_refit,
                [keep for keep, _ in groups] + [None],
                parallel=worth_forking(evaluation * _REFIT_EVALS),
            )
            self.replicates_ = np.array(replicates)
            self.band_scale_ = self._calibrate_band([left for _, left in groups], built)
        self.fit_info_ = {
            "runs": [run.name for run in runs],
            # What the runs were trained with: the defaults for designing a schedule from this fit.
            "peak": peak,
            **warmup,
            # How fast their LR fell: the region a design from this fit stays in.
            **regime_info(runs),
            "points": int(problem.points),
            # Parameters the points leave undetermined (`unpinned_parameters`).
            "unpinned": unpinned_parameters(self, lower, upper),
            "cost": float(best.cost),
            **self._coarse_info(problem, best.x),
            "seconds": round(time.perf_counter() - began, 4),
        }
        return self

    def _fixed_by_index(self) -> dict[int, float]:
        """`fixed_parameters` keyed by parameter index."""
        fixed = self.fixed_parameters()
        return {self.param_names.index(param): value for param, value in fixed.items()}

    def _fit_bounds(self, runs: Sequence[Run]) -> tuple[np.ndarray, np.ndarray]:
        """The parameter bounds for fitting `runs`, each fixed parameter pinned to its value
        (a vanishing interval, since bounded least squares needs lower < upper)."""
        losses = np.concatenate([run.loss for run in runs])
        lower, upper = self.bounds(float(losses.max()), float(losses.min()))
        for index, value in self._fixed_by_index().items():
            if not lower[index] <= value <= upper[index]:
                raise LrlabError(
                    f"law {self.name!r}: fixed {self.param_names[index]} = {value} is "
                    f"outside its range [{lower[index]:g}, {upper[index]:g}]"
                )
            lower[index], upper[index] = value, np.nextafter(value, np.inf)
        return lower, upper

    def _exact_fixed(self, theta: np.ndarray) -> np.ndarray:
        """`theta` with the fixed parameters exactly at their values (the solver may return
        the other end of their vanishing interval)."""
        theta = theta.copy()
        for index, value in self._fixed_by_index().items():
            theta[index] = value
        return theta

    def _problem(
        self,
        parts: Sequence[FitPoints],
        lower: np.ndarray,
        upper: np.ndarray,
        built: dict[FitPoints, Any] | None = None,
    ) -> FitProblem:
        """The fit problem of `parts` (runs or parts of runs) within the given bounds; a part's
        features are taken from `built` where it has them, and added to it where not (a fit's
        refits fit the same parts several times)."""
        built = {} if built is None else built
        fits, weights, rows = [], [], []
        for part in parts:
            usable = np.cumsum(part.lr)[part.fit_steps] > 0
            targets = usable[part.target_bins]
            if part not in built:
                built[part] = self.features(part.lr, part.fit_steps[usable])
            fits.append((built[part], part.targets[targets]))
            weights.append(np.sqrt(part.target_counts[targets]))
            rows.append(np.count_nonzero(usable))
        parts = list(parts)
        merged = self.merged_features([features for features, _ in fits]) if len(fits) > 1 else None
        split = (merged, np.cumsum(rows)[:-1]) if merged is not None else None
        weights_all = np.concatenate(weights)
        return FitProblem(self, fits, lower, upper, parts, weights_all, row_mix(parts), split)

    def _coarse_info(self, problem: FitProblem, theta: np.ndarray) -> dict[str, Any]:
        """For a fit on coarse-grained points: the rows fitted and the error bound of
        `lrlab.laws.points` at `theta` (nothing otherwise)."""
        if not any(part.coarse for part in problem.data):
            return {}
        rms, largest = coarse_error_bound(problem.data, problem.log_curve(theta))
        bins = sum(part.fit_steps.size for part in problem.data)
        coarse = {"bins": bins, "targets": int(problem.weights.size)}
        return {"coarse": {**coarse, "error_rms": rms, "error_max": largest}}

    def _solve(
        self, problem: FitProblem, start: np.ndarray, max_evals: int = 400
    ) -> optimize.OptimizeResult:
        return robust_least_squares(
            problem.objective,
            problem.jacobian,
            start,
            problem.lower,
            problem.upper,
            self.huber_delta,
            max_evals,
            problem.huber_weights(),
        )

    # --- prediction -----------------------------------------------------------------------------

    def _require_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise LrlabError(f"law {self.name!r} is not fitted yet; call fit(runs) first")

    def _curves_at(
        self,
        thetas: Sequence[np.ndarray],
        lr: np.ndarray,
        steps: np.ndarray,
        features: Any = None,
    ) -> np.ndarray:
        """The curve of each parameter vector at `steps` (one row each; NaN where no LR has been
        applied yet), all from one build of the features (at knots, interpolated in between,
        for very many steps unless `coarse` is off: `lrlab.laws.points.curve_knots`), or from
        `features`, if given, where they are those of the steps with LR applied before them."""
        defined = np.cumsum(lr)[steps] > 0
        out = np.full((len(thetas), steps.size), np.nan)
        if np.any(defined):
            at, spread = curve_knots(lr, steps[defined]) if self.coarse else (steps[defined], None)
            if features is None or spread is not None:
                features = self.features(lr, at)
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                for row, theta in zip(out, thetas, strict=True):
                    curve = self.curve(theta, features)
                    row[defined] = curve if spread is None else spread(curve)
        return out

    def predict(self, lr: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """Predicted loss at `steps` for per-step LR `lr` (NaN where no LR has been applied yet).
        Where the law gives no finite, positive loss (an LR far outside the fitted runs' can make
        its formula overflow), it is an error, never a NaN, inf or negative forecast."""
        self._require_fitted()
        lr, steps = check_curve_input(lr, steps)
        pred = self._curves_at([self.params_], lr, steps)[0]
        self._check_predicted(lr, steps, pred)
        return pred

    def predict_many(
        self, params: Sequence[np.ndarray], lr: np.ndarray, steps: np.ndarray
    ) -> np.ndarray:
        """`predict` with each parameter vector of `params` in place of `params_` (one row
        each), from one build of the features: for fits of this law that differ only in their
        parameters (a decay prior's members, `lrlab.live`). Each row is checked as `predict`
        checks its prediction."""
        self._require_fitted()
        lr, steps = check_curve_input(lr, steps)
        predictions = self._curves_at(list(params), lr, steps)
        self._check_predicted(lr, steps, *predictions)
        return predictions

    def predict_interval(
        self, lr: np.ndarray, steps: np.ndarray, level: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """A `level` (default: `band_level`) band around `predict(lr, steps)`:
        ``pred * exp(+-z * sqrt((band_scale_ * band_growth(steps) * sd)^2 + w^2))``,
        ``sd^2`` = jackknife variance of the log predictions of the replicate fits +
        `noise_sd_`^2, `band_scale_` the conformal calibration of `_calibrate_band`, `band_growth`
        its widening with the length of the extrapolation (`_calibrate_growth`) and
        ``w = band_distance_spread(lr, steps)`` the widening with the schedule's distance from the
        fitted runs' schedules, added in quadrature so that it widens a band by at most ``z w``."""
        return self.predict_with_band(lr, steps, level)[1:]

    def predict_with_band(
        self, lr: np.ndarray, steps: np.ndarray, level: float | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``predict(lr, steps)`` and ``predict_interval(lr, steps, level)`` together, from one
        build of the features."""
        self._require_fitted()
        lr, steps = check_curve_input(lr, steps)
        level = float(self.band_level if level is None else level)
        if not 0 < level < 1:
            raise LrlabError(f"band level must be in (0, 1), got {level}")
        curves = self._curves_at([self.params_, *self.replicates_], lr, steps)
        self._check_predicted(lr, steps, curves[0])
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            log_curves = np.log(curves)
            spread = self.band_scale_ * self.band_growth(steps) * self._log_sd(log_curves[1:])
            distance = self.band_distance_spread(lr, steps)
            half = _normal_quantile(0.5 + level / 2) * np.sqrt(spread**2 + distance**2)
            center = log_curves[0]
            low, high = np.exp(center - half), np.exp(center + half)
        self._check_predicted(lr, steps, low, high, what="the band around")
        return curves[0], low, high

    def compare_final(
        self, lr_a: np.ndarray, lr_b: np.ndarray, level: float | None = None
    ) -> FinalDifference:
        """The forecast final loss of schedule A minus that of schedule B (per-step LRs `lr_a`,
        `lr_b`, each forecast at its own last step), with a `level` (default `band_level`) band
        for that difference from this one fit:

        ``d = f(A) - f(B)``, ``d_i`` the same from replicate fit ``i`` of ``n``,
        ``sd^2 = (n - 1) / n * sum_i (d_i - mean(d_i))^2`` (the jackknife variance of ``d``),
        band ``d +- t * sd``, ``t`` the Student quantile of `level` with ``n - 1`` degrees of
        freedom (the jackknife interval of Efron and Tibshirani: ``n`` replicates estimate the
        variance with ``n - 1`` degrees of freedom, so two runs give a wide band).

        Each schedule's own band is mostly error that the two forecasts share (a replicate fit
        that forecasts A high forecasts B high too), which cancels in ``d``. Left out, and why:
        `band_scale_`, calibrated on single forecasts' errors, most of which is that shared part;
        and the residual noise (`noise_sd_`), since both forecasts are of the expected loss: the
        band says whether the fit tells the two schedules apart, not whether one pair of training
        runs would (their final losses scatter besides; `lrlab.report.study_report` measures
        that). benchmarks/difference_band.py scores the band against measured differences of
        held-out runs (BENCHMARKS.md). A fit without replicates (``bands=False``) gives no band:
        `low`, `high` and `sd` are None."""
        return self.compare_finals(self.final_replicas(lr_a), self.final_replicas(lr_b), level)

    def final_replicas(self, lr: np.ndarray) -> np.ndarray:
        """The forecast final loss of per-step LR `lr` (at its last step) from the fitted
        parameters, then from each replicate fit: what `compare_finals` takes, so that a
        schedule compared with many is forecast once."""
        self._require_fitted()
        lr, last = check_curve_input(lr, np.array([np.size(lr) - 1]))
        finals = self._curves_at([self.params_, *self.replicates_], lr, last)[:, 0]
        self._check_predicted(lr, last, finals[:1])
        if not math.isfinite(finals[0]):  # no LR before its last step: no loss to forecast there
            raise LrlabError("compare_final: a schedule applies no LR before its last step")
        return finals

    def compare_finals(
        self, finals_a: np.ndarray, finals_b: np.ndarray, level: float | None = None
    ) -> FinalDifference:
        """`compare_final` from two schedules' `final_replicas`."""
        from scipy import stats  # costs 0.3 s to import: only bands need it, not listing laws

        level = float(self.band_level if level is None else level)
        if not 0 < level < 1:
            raise LrlabError(f"band level must be in (0, 1), got {level}")
        differences = finals_a - finals_b
        difference = float(differences[0])
        replicas = differences[1:]
        if replicas.size < 2 or not np.all(np.isfinite(replicas)):
            return FinalDifference(difference, None, None, None)
        sd = math.sqrt(float(_jackknife_variance(replicas[:, None])[0]))
        half = float(stats.t.ppf(0.5 + level / 2, replicas.size - 1)) * sd
        return FinalDifference(difference, difference - half, difference + half, sd)

    def _check_predicted(
        self,
        lr: np.ndarray,
        steps: np.ndarray,
        *predictions: np.ndarray,
        what: str = "the",
    ) -> None:
        """Refuse a prediction that is not a finite, positive loss at a step the law predicts
        (one with LR applied before it), naming the step and its LR."""
        defined = np.cumsum(lr)[steps] > 0
        for values in predictions:
            bad = defined & ~(np.isfinite(values) & (values > 0))
            if np.any(bad):
                index = int(np.argmax(bad))
                step = int(steps[index])
                peak = self.fit_info_.get("peak") if hasattr(self, "fit_info_") else None
                fitted = f"; the fitted runs peaked at {peak:g}" if peak else ""
                raise LrlabError(
                    f"law {self.name!r}: {what} forecast at step {step} is {values[index]:g}, "
                    f"not a loss (LR {lr[step]:g} there{fitted}): the schedule lies too far "
                    "outside what the law was fitted on"
                )

    def _log_sd(self, replicas: np.ndarray) -> np.ndarray:
        """Uncalibrated sd of the log prediction from the replicate fits' log predictions
        (replicates x points): their jackknife spread and the residual noise."""
        variance = np.full(replicas.shape[1], self.noise_sd_**2)
        if len(replicas) >= 2:
            variance += _jackknife_variance(replicas)
        return np.sqrt(variance)

    def band_growth(self, steps: np.ndarray) -> np.ndarray:
        """How much wider the band is at `steps` than within the fitted runs:
        ``1 + band_growth_ * log(r)``, ``r`` the step over the longest fitted run's last step
        (`band_reach_`), 1 up to it."""
        self._require_fitted()
        # A law assembled by hand rather than fitted (a known truth, in tests) has no growth.
        rate, reach = getattr(self, "band_growth_", 0.0), getattr(self, "band_reach_", 1.0)
        ratio = np.asarray(steps, dtype=np.float64) / reach
        return 1.0 + rate * np.log(np.maximum(ratio, 1.0))

    def band_distance_spread(self, lr: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """The log-loss spread the band adds (in quadrature) at `steps` of per-step LR `lr` for
        its distance from the fitted runs' own schedules: ``band_distance_sd_ * D``, ``D`` the
        `schedule_distance` of `lr` from the fitted runs' schedules (`band_schedules_`); 0 for a
        fit without the coefficient (files written before it, and laws assembled by hand)."""
        self._require_fitted()
        rate = getattr(self, "band_distance_sd_", 0.0)
        schedules = getattr(self, "band_schedules_", [])
        if rate == 0 or not schedules:
            return np.zeros(np.shape(steps))
        info = self.fit_info_
        distance = schedule_distance(lr, steps, schedules, int(info["warmup"]), info["peak"])
        return rate * distance

    def _calibrate_growth(
        self,
        parts: list[FitPoints],
        theta: np.ndarray,
        lower: np.ndarray,
        upper: np.ndarray,
        built: dict[FitPoints, Any],
    ) -> float:
        """`band_growth_`: the rate ``c1`` at which the band's scale grows with the log of the
        extrapolation ratio, from the training runs alone: the `band_level` quantile regression
        (`_growth_quantile_fit`) of the scores of forecasts from the runs' first parts
        (`_growth_scores`) on ``a * (1 + c1 log r)``. Only the growth ``c1`` is kept: the scale
        at the fitted runs' reach, `band_scale_`, comes from `_calibrate_band`, on the fit
        itself. At least `_GROWTH_FLOOR`, which is also the growth without enough points: no
        forecast is as certain 3x beyond the fitted runs as at their end. At most `_GROWTH_CAP`:
        where a fit's estimate reached the grid's end, 4, a 3x forecast's band was 5x wider.
        `built`: the parts' features so far (`_problem`)."""
        scores, ratios = self._growth_scores(parts, theta, lower, upper, built)
        if np.count_nonzero(ratios > 1.0) < _GROWTH_MIN_POINTS:
            return _GROWTH_FLOOR
        log_ratios = np.log(np.maximum(ratios, 1.0))
        fitted = _growth_quantile_fit(scores, log_ratios, float(self.band_level))[1]
        return min(_GROWTH_CAP, max(_GROWTH_FLOOR, fitted))

    def _growth_scores(
        self,
        parts: list[FitPoints],
        theta: np.ndarray,
        lower: np.ndarray,
        upper: np.ndarray,
        built: dict[FitPoints, Any],
    ) -> tuple[np.ndarray, np.ndarray]:
        """Out-of-sample errors of forecasts that extrapolate, from the training runs alone: for
        each fraction of `_GROWTH_FOLDS`, every run's points up to that fraction of its last step
        are refitted together (warm-started at `theta`), with their own jackknife replicates, and
        the rest of each run is forecast. Returns each forecast point's
        ``|log pred - log loss| / sd`` (``sd`` the refit's `_log_sd` there, as its band would be
        made) and its step over the refit's longest fitted step."""
        scores, ratios = [], []
        for fraction in _GROWTH_FOLDS:
            cuts = [fraction * part.steps[-1] for part in parts]
            # a bin is fitted only if all its points lie before its run's cut
            keeps = [
                np.maximum.reduceat(part.steps, part.bin_starts) <= cut
                for part, cut in zip(parts, cuts, strict=True)
            ]
            kept = [
                part.subset(keep) for part, keep in zip(parts, keeps, strict=True) if keep.any()
            ]
            if not kept:
                continue
            problem = self._problem(kept, lower, upper, built)
            if problem.points <= 2 * len(self.param_names):
                continue
            refit = self._exact_fixed(self._solve(problem, theta, _GROWTH_EVALS).x)
            # The refit's own jackknife, as the fit's band is made: its scores then measure how
            # far the band's spread falls short as the forecast reaches further, not how much
            # weaker a refit on a third of the points is than the fit.
            replicates = [
                self._exact_fixed(
                    self._solve(self._problem(group, lower, upper, built), refit, _GROWTH_EVALS).x
                )
                for group, _ in _fit_groups(kept)
            ]
            reach = max(float(part.steps[-1]) for part in kept)
            for part, keep in zip(parts, keeps, strict=True):
                out = np.repeat(~keep, part.counts)
                if not out.any():
                    continue
                curves = self._curves_at(
                    [refit, *replicates], part.lr, part.fit_steps, built.get(part)
                )
                log_curves = part.per_point(np.log(curves))
                sd = self._log_sd(log_curves[1:])
                with np.errstate(invalid="ignore", divide="ignore"):  # 0/0 of a noiseless fit:
                    scores.append((np.abs(log_curves[0] - part.log_loss) / sd)[out])  # dropped
                ratios.append(part.steps[out] / reach)
        if not scores:
            return np.empty(0), np.empty(0)
        score, ratio = np.concatenate(scores), np.concatenate(ratios)
        finite = np.isfinite(score)
        return score[finite], ratio[finite]

    def _calibrate_band(self, left_out: list[FitPoints], built: dict[FitPoints, Any]) -> float:
        """Conformal-style width factor: each replicate predicts the run (or block) it left out;
        the `band_level` quantile of ``|log pred - log loss| / sd`` over those out-of-sample
        points, divided by the normal quantile ``z``, so that the band would have covered that
        fraction of them. The jackknife spread alone ignores the law's own misfit on an unseen
        schedule, which these errors contain. `built`: the parts' features (`_problem`)."""
        scores = []
        for theta, part in zip(self.replicates_, left_out, strict=True):
            curves = self._curves_at(
                [theta, *self.replicates_], part.lr, part.fit_steps, built.get(part)
            )
            log_curves = part.per_point(np.log(curves))  # at every point, bins or not
            error = np.abs(log_curves[0] - part.log_loss)
            with np.errstate(invalid="ignore", divide="ignore"):  # 0/0 of a noiseless fit: dropped
                scores.append(error / self._log_sd(log_curves[1:]))
        score = np.concatenate(scores)
        score = score[np.isfinite(score)]
        if score.size == 0:
            return 1.0
        level = float(self.band_level)
        return float(np.quantile(score, level) / _normal_quantile(0.5 + level / 2))

    def predict_run(self, run: Run) -> np.ndarray:
        """Predicted loss at a run's logged steps."""
        return self.predict(run.lr, run.steps)

    @property
    def params_dict(self) -> dict[str, float]:
        """The fitted parameters by name."""
        self._require_fitted()
        return dict(zip(self.param_names, map(float, self.params_), strict=True))

    # --- persistence ----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description of the fitted law."""
        self._require_fitted()
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "law": self.name,
            "config": self.get_params(),
            "learned": {name: getattr(self, f"{name}_") for name in self.learned},
            "params": self.params_dict,
            "param_errors": dict(
                zip(self.param_names, map(float, self.param_errors_), strict=True)
            ),
            "covariance": self.covariance_.tolist(),
            "replicates": self.replicates_.tolist(),
            "noise_sd": self.noise_sd_,
            "band_scale": self.band_scale_,
            "band_growth": self.band_growth_,
            "band_reach": self.band_reach_,
            "band_distance_sd": getattr(self, "band_distance_sd_", 0.0),
            "band_schedules": [
                {"steps": steps.tolist(), "lr": lr.tolist()}
                for steps, lr in getattr(self, "band_schedules_", [])
            ],
            "fit": self.fit_info_,
        }

    def save(self, path: str | Path) -> Path:
        """Write the fitted law as JSON, atomically."""
        return atomic_write_text(path, json.dumps(self.to_dict(), indent=2, allow_nan=True) + "\n")

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "fit") -> Law:
        """Rebuild a fitted law from `to_dict` output, of this version or an earlier one."""
        version = data.get("format_version", 1)
        if not _is_real(version) or version not in (1, FORMAT_VERSION):
            raise LrlabError(
                f"{source}: field 'format_version' is {brief(version)}; this lrlab reads 1 to "
                f"{FORMAT_VERSION}"
            )
        try:
            config = data["config"]
            law = from_mapping(cls, config, f"{source}: config")
            # Version 1 kept a learned value in the configuration, where the fit had written it.
            learned = data["learned"] if version >= 2 else config
            for name in cls.learned:
                setattr(law, f"{name}_", _number(learned[name], f"{source}: learned {name}"))
            params = data["params"]
            names = cls.param_names
            law.params_ = np.array(
                [_number(params[name], f"{source}: params {name}") for name in names]
            )
            errors = data["param_errors"]
            law.param_errors_ = np.array(
                [_number(errors[name], f"{source}: param_errors {name}") for name in names]
            )
            law.covariance_ = np.array(data["covariance"], dtype=np.float64)
            law.replicates_ = np.array(data["replicates"], dtype=np.float64).reshape(
                -1, len(cls.param_names)
            )
            law.noise_sd_ = _number(data["noise_sd"], f"{source}: noise_sd")
            # absent in the oldest fits
            law.band_scale_ = _number(data.get("band_scale", 1.0), f"{source}: band_scale")
            # absent before the band grew with the extrapolation: a band that does not grow
            law.band_growth_ = _number(data.get("band_growth", 0.0), f"{source}: band_growth")
            law.band_reach_ = _number(data.get("band_reach", 1.0), f"{source}: band_reach")
            # absent before the band widened with the schedule's distance (and in files of the
            # ninth round's multiplied widening, `band_distance`): a band that does not widen
            law.band_distance_sd_ = _number(
                data.get("band_distance_sd", 0.0), f"{source}: band_distance_sd"
            )
            law.band_schedules_ = [
                _schedule(knots, f"{source}: band_schedules[{index}]")
                for index, knots in enumerate(data.get("band_schedules", []))
            ]
            fit_info = dict(data["fit"])
            law.fit_info_ = {_OLD_FIT_KEYS.get(key, key): value for key, value in fit_info.items()}
        except KeyError as error:
            raise LrlabError(f"{source}: field {brief(error.args[0])} is missing") from None
        except LrlabError:
            raise
        except (TypeError, ValueError, OverflowError) as error:
            raise LrlabError(f"{source}: malformed law fit ({brief(str(error), 100)})") from None
        law._check_loaded(source)
        return law

    def _check_loaded(self, source: str) -> None:
        """Refuse a loaded fit whose numbers no fit writes, naming the field, so that a damaged or
        crafted file never turns into NaN, inf or negative forecasts: parameters (the fit's and
        each replicate's) finite and within the law's bounds, errors and noise not negative, the
        band's scale and learned values (scales such as a reference LR) positive, the covariance
        square, the fitted runs' peak LR positive and their warmup a whole number of steps."""
        count = len(self.param_names)
        lower, upper = self.bounds(math.inf, math.inf)  # the loss-dependent bounds left open
        for row, theta in enumerate([self.params_, *self.replicates_]):
            outside = ~np.isfinite(theta) | (theta < lower) | (theta > upper)
            if np.any(outside):
                index = int(np.argmax(outside))
                field = "params" if row == 0 else f"replicates[{row - 1}]"
                raise LrlabError(
                    f"{source}: {field} {self.param_names[index]} = {theta[index]:g} is not a "
                    f"finite number in [{lower[index]:g}, {upper[index]:g}] (law {self.name!r})"
                )
        if np.any(np.isnan(self.param_errors_) | (self.param_errors_ < 0)):
            raise LrlabError(f"{source}: param_errors must be numbers of at least 0")
        if self.covariance_.shape != (count, count) or np.any(np.isnan(self.covariance_)):
            raise LrlabError(f"{source}: covariance must be {count} x {count} numbers")
        if not (math.isfinite(self.noise_sd_) and self.noise_sd_ >= 0):
            raise LrlabError(f"{source}: noise_sd = {self.noise_sd_:g} must be finite and >= 0")
        if not (math.isfinite(self.band_scale_) and self.band_scale_ > 0):
            raise LrlabError(f"{source}: band_scale = {self.band_scale_:g} must be finite and > 0")
        if not (math.isfinite(self.band_growth_) and self.band_growth_ >= 0):
            raise LrlabError(f"{source}: band_growth = {self.band_growth_:g} must be finite, >= 0")
        if not (math.isfinite(self.band_reach_) and self.band_reach_ >= 1):
            raise LrlabError(f"{source}: band_reach = {self.band_reach_:g} must be a step >= 1")
        distance_sd = self.band_distance_sd_
        if not (math.isfinite(distance_sd) and distance_sd >= 0):
            raise LrlabError(f"{source}: band_distance_sd = {distance_sd:g} must be finite, >= 0")
        if distance_sd > 0 and not self.band_schedules_:
            raise LrlabError(
                f"{source}: band_distance_sd > 0 needs the fitted runs' band_schedules"
            )
        if distance_sd > 0 and self.fit_info_.get("warmup") is None:
            raise LrlabError(f"{source}: band_distance_sd > 0 needs the fit's warmup")
        for name in self.learned:
            value = getattr(self, f"{name}_")
            if not (math.isfinite(value) and value > 0):
                raise LrlabError(f"{source}: learned {name} = {value:g} must be finite and > 0")
        peak = self.fit_info_.get("peak")
        if peak is not None and not (_is_real(peak) and math.isfinite(peak) and peak > 0):
            raise LrlabError(f"{source}: fit peak = {brief(peak)} must be a finite LR > 0")
        warmup = self.fit_info_.get("warmup")
        whole = isinstance(warmup, int) and not isinstance(warmup, bool)
        if warmup is not None and not (whole and 0 <= warmup <= MAX_INTEGER):
            raise LrlabError(f"{source}: fit warmup = {brief(warmup)} must be a whole number >= 0")
        fitted_regime(self.fit_info_, f"{source}: fit")  # a damaged envelope fails here


@dataclasses.dataclass(frozen=True)
class FinalDifference:
    """`Law.compare_final`: a difference of two forecast final losses, its band, and the
    jackknife sd the band is made of (all three None for a fit without replicates)."""

    difference: float
    low: float | None
    high: float | None
    sd: float | None

    @property
    def separated(self) -> bool:
        """Whether the band excludes 0: the fit tells the two schedules apart. Never without a
        band."""
        if self.low is None or self.high is None:
            return False
        return self.low > 0 or self.high < 0

    def describe_gain(self) -> str:
        """The difference ``f(A) - f(B)`` in words, as what schedule B gains over A: ``gain
        +0.0166 [+0.0101, +0.0231]`` only where the band separates them, otherwise ``within
        uncertainty (difference +0.0063 [-0.0040, +0.0166])``, or ``difference +0.0063 (no band:
        the fit has no replicates)``."""
        if self.low is None or self.high is None:
            return f"difference {self.difference:+.4f} (no band: the fit has no replicates)"
        band = f"[{self.low:+.4f}, {self.high:+.4f}]"
        if self.separated:
            return f"gain {self.difference:+.4f} {band}"
        return f"within uncertainty (difference {self.difference:+.4f} {band})"


class FitWarning(LrlabWarning):
    """A fit went through, but deserves a look (its points leave parameters undetermined)."""


def unpinned_parameters(law: Law, lower: np.ndarray, upper: np.ndarray) -> list[str]:
    """The fitted law's free parameters that its points leave undetermined: a 1-sigma error
    larger than the value (or not finite). A parameter at a bound of the fit (`lower`, `upper`)
    is left out: there the Gauss-Newton error measures no spread, the bound holds it."""
    values, errors = law.params_, law.param_errors_
    near = 1e-6 * np.maximum(1.0, np.abs(values))
    at_bound = (values <= lower + near) | (values >= upper - near)
    fixed = law.fixed_parameters()
    return [
        name
        for name, value, error, bound in zip(law.param_names, values, errors, at_bound, strict=True)
        if name not in fixed and not bound and not error <= abs(value)
    ]


def _normal_quantile(probability: float) -> float:
    """The standard normal quantile, from the standard library (within 1e-15 of scipy's): a fit
    with its band would otherwise import scipy.stats, 0.3 s of CPU, for this one number."""
    return statistics.NormalDist().inv_cdf(probability)


def _jackknife_variance(replicas: np.ndarray) -> np.ndarray:
    """The jackknife variance of an estimate, per column, from its `n` leave-one-out replicates
    (rows): ``(n - 1) / n * sum_i (x_i - mean(x))^2``."""
    count = len(replicas)
    return (count - 1) / count * np.sum((replicas - replicas.mean(0)) ** 2, axis=0)


def _growth_quantile_fit(
    scores: np.ndarray, distances: np.ndarray, level: float
) -> tuple[float, float]:
    """The `level` quantile regression of `scores` on ``a * (1 + c * x)`` (``x`` = `distances`,
    at least 0: the log of the extrapolation ratio; ``c >= 0`` on a
    grid): ``(a, c)`` minimising the pinball loss. For a given ``c`` the best ``a`` is the
    quantile of ``score / g`` weighted by ``g = 1 + c x``."""
    best = (math.inf, 1.0, 0.0)
    for rate in _GROWTH_GRID:
        growth = 1.0 + rate * distances
        scaled = scores / growth
        order = np.argsort(scaled)
        weights = np.cumsum(growth[order])
        a = float(scaled[order][np.searchsorted(weights, level * weights[-1])])
        error = scores - a * growth
        loss = float(np.sum(error * (level - (error < 0))))
        if loss < best[0] - 1e-12:
            best = (loss, a, float(rate))
    return best[1], best[2]


def schedule_knots(lr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A fitted run's per-step LR kept for `schedule_distance`, small enough to save with the fit:
    ``(steps, lr at them)`` at `_DISTANCE_KNOTS` evenly spaced steps plus the last, and at up to
    as many of its sharpest bends (the end of a warmup, a drop), so that linear interpolation
    between the knots gives a piecewise-linear schedule exactly."""
    lr = np.asarray(lr, dtype=np.float64)
    even = np.linspace(0, lr.size - 1, _DISTANCE_KNOTS + 1).round().astype(np.int64)
    bend = np.abs(np.diff(lr, 2))
    sharpest = np.argsort(bend)[::-1][:_DISTANCE_KNOTS]
    bends = sharpest[bend[sharpest] > 1e-9 * lr.max(initial=0.0)] + 1  # the middle step
    steps = np.unique(np.concatenate([even, bends]))
    return steps, lr[steps]


def schedule_distance(
    lr: np.ndarray,
    steps: np.ndarray,
    references: Sequence[tuple[np.ndarray, np.ndarray]],
    warmup: int,
    peak: float,
) -> np.ndarray:
    """How far the schedule of per-step LR `lr` is, up to each of `steps`, from the nearest of
    the `references` (`schedule_knots` of fitted runs): for reference ``j``,
    ``D_j(t) = mean over warmup < s <= t of |log lr(s) - log lr_j(s)|``, and ``D = min_j D_j``
    (0 up to the warmup). A reference is continued at its last LR beyond its end (how much
    further the forecast reaches is `Law.band_growth`'s part), and LRs below `_DISTANCE_LR_FLOOR`
    times `peak` (the fitted runs' peak) count as that floor, so that a decay to 0 is a finite
    distance. It measures what neither leaving a run out of the fit nor cutting the runs short
    shows a band: a forecast at another LR level or schedule shape than any fitted run's.
    Measured at up to `_DISTANCE_SAMPLES` evenly spaced steps, interpolated in between."""
    lr = np.asarray(lr, dtype=np.float64)
    steps = np.asarray(steps, dtype=np.float64)
    last = int(steps.max(initial=0))
    if last <= warmup or not references:
        return np.zeros(steps.shape)
    grid = np.unique(np.linspace(warmup + 1, last, _DISTANCE_SAMPLES).round())
    floor = _DISTANCE_LR_FLOOR * peak
    target = np.log(np.maximum(lr[grid.astype(np.int64)], floor))
    nearest = np.full(grid.size, np.inf)
    count = np.arange(1, grid.size + 1)
    for knots, values in references:
        reference = np.log(np.maximum(np.interp(grid, knots, values), floor))
        nearest = np.minimum(nearest, np.cumsum(np.abs(target - reference)) / count)
    return np.interp(steps, grid, nearest, left=0.0)


def _schedule(knots: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    """A saved `schedule_knots` (``{"steps": [...], "lr": [...]}``), checked: increasing whole
    steps from 0 and as many finite LRs of at least 0."""
    if not isinstance(knots, dict):
        raise LrlabError(f"{where} is not a mapping with 'steps' and 'lr'")
    try:
        steps = np.array(knots["steps"], dtype=np.float64)
        lr = np.array(knots["lr"], dtype=np.float64)
    except KeyError as error:
        raise LrlabError(f"{where}: field {brief(error.args[0])} is missing") from None
    except (TypeError, ValueError) as error:
        raise LrlabError(f"{where}: not a list of numbers ({brief(str(error), 80)})") from None
    whole = steps.ndim == 1 and steps.size >= 1 and np.all(np.isfinite(steps))
    whole = whole and np.all(steps == np.round(steps)) and steps[-1] <= MAX_INTEGER
    if not (whole and steps[0] == 0 and np.all(np.diff(steps) > 0)):
        raise LrlabError(f"{where}: steps must be increasing whole numbers from 0")
    if lr.shape != steps.shape or not np.all(np.isfinite(lr) & (lr >= 0)):
        raise LrlabError(f"{where}: lr must be one finite number >= 0 per step")
    return steps.astype(np.int64), lr


def _is_real(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(value: Any, where: str) -> float:
    """A number of a fit file as a float (a string or a list is an error naming the field)."""
    if not _is_real(value):
        raise LrlabError(f"{where} = {brief(value)} is not a number")
    try:
        return float(value)
    except OverflowError:  # an integer beyond float64's range
        return math.inf


@dataclasses.dataclass(frozen=True, eq=False)
class FitProblem:
    """What fitting `law` minimises: the log-loss residuals of every part (a run, or part of
    one, as features and log-losses) followed by the law's prior, within `lower` and `upper`
    (fixed parameters pinned). `objective` and `jacobian` are what the least-squares solver
    takes; a joint fit stacks several laws' problems."""

    law: Law
    parts: list[tuple[Any, np.ndarray]]
    lower: np.ndarray
    upper: np.ndarray
    data: list[FitPoints]  # the points the parts were made of
    weights: np.ndarray  # of each residual: the square root of the points its row stands for
    mix: Any = None  # sparse: the curve at the rows -> the rows' model values (coarse parts)
    # The parts' features as one (`Law.merged_features`), if the law has it, and where its curve
    # splits into the parts'.
    merged: tuple[Any, np.ndarray] | None = None
    # The parts' curves and Jacobians at the last point evaluated: the solver asks for the
    # Jacobian where it has just evaluated the residuals, and a law computes both in one pass.
    _last: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False, compare=False)

    @property
    def points(self) -> int:
        """Number of logged points fitted."""
        return int(np.sum(self.weights**2).round())

    def huber_weights(self) -> np.ndarray | None:
        """How many points each residual of `objective` stands for (the prior's count once),
        where coarse-grained points make that differ from one (None otherwise)."""
        if self.mix is None:
            return None
        prior = self.law.penalty(self.lower)[0].size
        return np.concatenate([np.rint(self.weights**2), np.ones(prior)])

    def _curves(self, theta: np.ndarray) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """Each part's ``law.curve_and_jacobian`` at `theta`, kept until another point is asked
        for (so the residuals and the Jacobian at one point cost one evaluation)."""
        key = np.asarray(theta, dtype=np.float64).tobytes()
        if self._last.get("key") != key:
            if self.merged is None:
                curves = [self.law.curve_and_jacobian(theta, f) for f, _ in self.parts]
            else:  # one evaluation of every part, split into the parts' rows
                features, ends = self.merged
                curve, block = self.law.curve_and_jacobian(theta, features)
                blocks = [None] * len(self.parts) if block is None else np.split(block, ends)
                curves = list(zip(np.split(curve, ends), blocks, strict=True))
            self._last.update(key=key, curves=curves)
        return self._last["curves"]

    def log_curve(self, theta: np.ndarray) -> np.ndarray:
        """``log(pred)`` at every row of every part."""
        predicted = np.concatenate([curve for curve, _ in self._curves(theta)])
        return np.log(np.maximum(predicted, _TINY))

    def residuals(self, theta: np.ndarray) -> np.ndarray:
        """``log(pred) - log(loss)`` at every row of every part (a bin's mean of both for
        coarse-grained points, `lrlab.laws.points`)."""
        log_curve = self.log_curve(theta)
        if self.mix is not None:
            log_curve = self.mix @ log_curve
        return log_curve - np.concatenate([log_loss for _, log_loss in self.parts])

    def objective(self, theta: np.ndarray) -> np.ndarray:
        """The fit's residuals: log-loss residuals of every part, weighted, then the prior's."""
        return np.concatenate([self.weights * self.residuals(theta), self.law.penalty(theta)[0]])

    def jacobian(self, theta: np.ndarray) -> np.ndarray:
        """d `objective` / d theta (analytic where the law gives it)."""
        blocks = []
        for predicted, block in self._curves(theta):
            if block is None:
                return _finite_difference(self.objective, theta)
            blocks.append(block / np.maximum(predicted, _TINY)[:, None])  # d log(pred)
        jacobian = np.vstack(blocks)
        if self.mix is not None:
            jacobian = self.mix @ jacobian
        return np.vstack([self.weights[:, None] * jacobian, self.law.penalty(theta)[1]])


def _fit_groups(parts: list[FitPoints]) -> list[tuple[list[FitPoints], FitPoints]]:
    """Jackknife replicates: the data each keeps and the part it leaves out (one run, or for a
    single run one contiguous block of its points)."""
    if len(parts) >= 2:
        return [(parts[:i] + parts[i + 1 :], parts[i]) for i in range(len(parts))]
    part = parts[0]
    return [
        ([part.subset(~block)], part.subset(block))
        for block in part.blocks(_SINGLE_RUN_BLOCKS)
        if not np.all(block)
    ]


def import_solver() -> None:
    """Import what `robust_least_squares` needs (0.3-0.6 s of CPU, which only fits need), and
    find the BLAS libraries it limits (`_blas`): once in the process that forks a fit's workers,
    rather than once in each of them."""
    import scipy.optimize  # noqa: F401

    _blas()


@functools.cache
def _blas() -> ThreadpoolController:
    """The BLAS libraries loaded in this process, found once, after `scipy.optimize` has loaded
    scipy's (numpy's load with numpy): the solver's matrix work is theirs. `threadpool_limits`
    would look them up again at every solve (0.8 ms; a limit of a controller found once costs
    0.015 ms, and a fit of three runs with bands solves 15 times)."""
    import scipy.optimize  # noqa: F401 - its BLAS, loaded before the look-up
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def robust_least_squares(
    objective: Callable[[np.ndarray], np.ndarray],
    jacobian: Callable[[np.ndarray], np.ndarray],
    start: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    huber_delta: float,
    max_evals: int,
    weights: np.ndarray | None = None,
) -> optimize.OptimizeResult:
    """Bounded trust-region least squares with a Huber loss of scale `huber_delta` on the
    residuals: the one solver of every fit. With `weights` (how many points each residual stands
    for, the residual scaled by the square root of its weight), a residual's Huber loss is its
    weight times that of the unscaled residual.

    The solver runs with one BLAS thread: its matrices (a few thousand rows by the law's few
    parameters) are too small to share out, and a multithreaded BLAS on busy cores spins,
    which made a fit of a million-point log take 2.2x the wall time (BENCHMARKS.md, "Long
    logs")."""
    from scipy import optimize  # costs 0.3 s to import: only fits need it, not listing laws

    loss: Any = "huber" if weights is None else _weighted_huber(weights)
    with (
        np.errstate(over="ignore", invalid="ignore", divide="ignore"),
        _blas().limit(limits=1, user_api="blas"),
    ):
        return optimize.least_squares(
            objective,
            start,
            jac=jacobian,
            bounds=(lower, upper),
            loss=loss,
            f_scale=huber_delta,
            x_scale="jac",
            method="trf",
            ftol=1e-10,
            xtol=1e-10,
            gtol=1e-10,
            max_nfev=max_evals,
        )


def _weighted_huber(weights: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """scipy's Huber loss ``rho(z)`` of ``z = (f / f_scale)^2`` as `weights` ``w`` times that of
    ``f / sqrt(w)``: ``w rho(z / w)``, with its first and second derivatives by ``z``."""

    def loss(z: np.ndarray) -> np.ndarray:
        w = weights
        u = z / w
        inner = u <= 1.0
        root = np.sqrt(np.where(inner, 1.0, u))
        return np.array(
            [
                w * np.where(inner, u, 2.0 * root - 1.0),
                np.where(inner, 1.0, 1.0 / root),
                np.where(inner, 0.0, -0.5 / (root**3 * w)),
            ]
        )

    return loss


def gauss_newton_covariance(
    jacobian: np.ndarray, residual_sum: float, n_params: int, rows: int | None = None
) -> np.ndarray:
    """Gauss-Newton covariance ``s^2 (J^T J)^+`` with ``s^2`` the residual variance (over `rows`
    residuals, by default the Jacobian's)."""
    dof = max((jacobian.shape[0] if rows is None else rows) - n_params, 1)
    return np.linalg.pinv(jacobian.T @ jacobian) * residual_sum / dof


def _finite_difference(
    function: Callable[[np.ndarray], np.ndarray], theta: np.ndarray
) -> np.ndarray:
    base = function(theta)
    columns = []
    for index in range(theta.size):
        step = 1e-6 * max(abs(theta[index]), 1e-3)
        shifted = theta.copy()
        shifted[index] += step
        columns.append((function(shifted) - base) / step)
    return np.column_stack(columns)
