"""One interface for every loss-curve law, in the style of scikit-learn estimators.

- The constructor holds configuration only; ``fit(runs)`` learns and returns the law itself.
- Learned attributes end in ``_``: `params_` (array, in `param_names` order), `param_errors_`
  (1-sigma, from the Gauss-Newton covariance `covariance_`), `replicates_` (the parameters refitted
  with one run, or one block of a single run, left out), `noise_sd_` (robust scatter of the
  log-loss residuals) and `fit_info_`.
- ``predict(lr, steps)`` is pure: the loss at `steps` of a run whose per-step LR is `lr`.
- ``predict_interval(lr, steps, level)`` gives a band from the fit: the jackknife spread of the
  replicate predictions plus the residual noise, in log-loss, at normal quantiles, widened by
  `band_scale_`, calibrated on each replicate's error on the run (or block) it left out.
  ``predict_with_band`` gives the prediction and the band at once.
- ``save(path)`` / `load_law(path)` round-trip a fitted law through JSON (written atomically).

Fitting minimises a Huber loss on log-loss residuals ``log(pred) - log(loss)`` (scale
`huber_delta`, as Luo et al. 2025 fit the multi-power law) with bounded trust-region least squares
from several fixed starting points, so it is robust to spikes and deterministic.
"""

from __future__ import annotations

import abc
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from scipy import optimize, stats

from lrlab.atomic import atomic_write_text
from lrlab.errors import LrlabError
from lrlab.mapping_file import read_mapping
from lrlab.runs.model import Run

FORMAT = "lrlab-law-fit"
FORMAT_VERSION = 1
REGISTRY: dict[str, type[Law]] = {}
COMMON_CONFIG: dict[str, Any] = {
    "huber_delta": 1e-3,
    "band_level": 0.9,
    "bands": True,
    "fixed": None,  # {parameter: value} held fixed in the fit
}
_SINGLE_RUN_BLOCKS = 4
_SCOUT_EVALS = 40  # evaluations per start before the best start is refined
_REFIT_EVALS = 100  # evaluations per warm-started jackknife refit
_TINY = 1e-300

Progress = Callable[[str], None]
_Part = tuple[np.ndarray, np.ndarray, np.ndarray]  # lr, steps, loss of a run or part of one


def register(cls: type[Law]) -> type[Law]:
    """Class decorator: list a law under its `name` (for ``lrlab laws`` and loading fits)."""
    REGISTRY[cls.name] = cls
    return cls


def check_curve_input(lr: np.ndarray, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate a per-step LR array and the steps to predict at."""
    lr = np.asarray(lr, dtype=np.float64)
    steps_in = np.asarray(steps)
    if lr.ndim != 1 or lr.size == 0:
        raise LrlabError("lr must be a non-empty one-dimensional per-step array")
    if not np.all(np.isfinite(lr)) or np.any(lr < 0):
        raise LrlabError("lr must be finite and non-negative")
    if steps_in.ndim != 1 or np.any(steps_in != np.round(steps_in)):
        raise LrlabError("steps must be a one-dimensional array of whole numbers")
    steps_int = steps_in.astype(np.int64)
    if steps_int.size and (steps_int.min() < 0 or steps_int.max() >= lr.size):
        raise LrlabError(f"steps must lie in 0..{lr.size - 1}, the range the per-step lr covers")
    return lr, steps_int


class Law(abc.ABC):
    """A loss-curve law: ``loss(step) = f(per-step LR up to step; params)``."""

    name: ClassVar[str]
    summary: ClassVar[str]
    param_names: ClassVar[tuple[str, ...]]
    # How the loss responds to the schedule, as opposed to the model's scale (`laws.joint`).
    shape_params: ClassVar[tuple[str, ...]] = ()
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, **config: Any) -> None:
        allowed = {**COMMON_CONFIG, **self.defaults}
        unknown = sorted(set(config) - set(allowed))
        if unknown:
            raise LrlabError(
                f"law {self.name!r}: unknown option(s) {', '.join(unknown)} "
                f"(options: {', '.join(allowed)})"
            )
        self.config: dict[str, Any] = {**allowed, **config}
        fixed = self.config["fixed"] or {}
        if not isinstance(fixed, dict):
            raise LrlabError(f"law {self.name!r}: option fixed must map parameter names to values")
        for param, value in fixed.items():
            if param not in self.param_names:
                raise LrlabError(
                    f"law {self.name!r}: option fixed names unknown parameter {param!r} "
                    f"(parameters: {', '.join(self.param_names)})"
                )
            if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
                raise LrlabError(
                    f"law {self.name!r}: option fixed: {param} must be a finite number, got {value!r}"
                )

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

    # --- fitting --------------------------------------------------------------------------------

    def configure(self, runs: Sequence[Run]) -> None:
        """Set the options that depend on the training runs (such as a reference LR) before a
        fit; none by default."""

    def fit(
        self,
        runs: Sequence[Run],
        progress: Progress | None = None,
        start: np.ndarray | None = None,
    ) -> Law:
        """Fit the parameters to the logged losses of `runs` (steps with zero cumulative LR, where
        no law is defined, are left out). `start` (parameters in `param_names` order), if given,
        is tried first, besides the law's own starting points: a warm start, such as a joint
        fit's solution, that the fixed starts might not reach."""
        began = time.perf_counter()
        runs = list(runs)
        if not runs:
            raise LrlabError(f"law {self.name!r}: no runs to fit")
        self.configure(runs)
        groups = _fit_groups(runs)
        problems = [self._problem(run.lr, run.steps, run.loss) for run in runs]
        points = sum(problem[1].size for problem in problems)
        if points <= len(self.param_names):
            raise LrlabError(
                f"law {self.name!r}: {points} usable logged points, need more than "
                f"{len(self.param_names)}"
            )
        lower, upper = self._fit_bounds(runs)
        best = None
        candidates = self.starts(float(min(run.loss.min() for run in runs)))
        if start is not None:
            warm = np.asarray(start, dtype=np.float64)
            if warm.shape != (len(self.param_names),) or not np.all(np.isfinite(warm)):
                raise LrlabError(
                    f"law {self.name!r}: start must be {len(self.param_names)} finite numbers "
                    f"({', '.join(self.param_names)})"
                )
            candidates = [warm, *candidates]
        for index, point in enumerate(candidates, start=1):
            if progress:
                progress(f"{self.name}: start {index}/{len(candidates)}")
            # a short run from each start, then only the most promising one is refined
            result = self._solve(problems, np.clip(point, lower, upper), lower, upper, _SCOUT_EVALS)
            if best is None or result.cost < best.cost:
                best = result
        assert best is not None
        if progress:
            progress(f"{self.name}: refining the best start")
        best = self._solve(problems, best.x, lower, upper)
        self.params_ = self._exact_fixed(best.x)
        residuals = self._residuals(best.x, problems)
        free_jacobian = best.jac.copy()
        free_jacobian[:, list(self._fixed_by_index())] = 0.0  # a fixed parameter has no variance
        self.covariance_ = gauss_newton_covariance(
            free_jacobian, 2.0 * best.cost, len(self.param_names)
        )
        self.param_errors_ = np.sqrt(np.clip(np.diag(self.covariance_), 0.0, None))
        self.noise_sd_ = float(1.4826 * np.median(np.abs(residuals - np.median(residuals))))
        self.replicates_ = np.empty((0, len(self.param_names)))
        self.band_scale_ = 1.0
        if self.config["bands"]:
            if progress:
                progress(f"{self.name}: {len(groups)} jackknife refits for the band")
            self.replicates_ = np.array(
                [
                    self._exact_fixed(
                        self._solve([self._problem(*part) for part in keep], best.x, lower, upper).x
                    )
                    for keep, _ in groups
                ]
            )
            self.band_scale_ = self._calibrate_band([left for _, left in groups])
        self.fit_info_ = {
            "runs": [run.name for run in runs],
            # What the runs were trained with: the defaults for designing a schedule from this fit.
            "peak_lr": float(max(run.lr.max() for run in runs)),
            "warmup_steps": int(np.median([np.argmax(run.lr) for run in runs])),
            "points": int(points),
            "cost": float(best.cost),
            "seconds": round(time.perf_counter() - began, 4),
        }
        return self

    def _fixed_by_index(self) -> dict[int, float]:
        """The ``fixed`` option keyed by parameter index."""
        fixed = self.config["fixed"] or {}
        return {self.param_names.index(param): value for param, value in fixed.items()}

    def _fit_bounds(self, runs: Sequence[Run]) -> tuple[np.ndarray, np.ndarray]:
        """The parameter bounds for fitting `runs`, each ``fixed`` parameter pinned to its value
        (a vanishing interval, since bounded least squares needs lower < upper)."""
        losses = np.concatenate([run.loss for run in runs])
        lower, upper = self.bounds(float(losses.max()), float(losses.min()))
        for index, value in self._fixed_by_index().items():
            if not lower[index] <= value <= upper[index]:
                raise LrlabError(
                    f"law {self.name!r}: option fixed: {self.param_names[index]} = {value} is "
                    f"outside its range [{lower[index]:g}, {upper[index]:g}]"
                )
            lower[index], upper[index] = value, np.nextafter(value, np.inf)
        return lower, upper

    def _exact_fixed(self, theta: np.ndarray) -> np.ndarray:
        """`theta` with the ``fixed`` parameters exactly at their values (the solver may return
        the other end of their vanishing interval)."""
        theta = theta.copy()
        for index, value in self._fixed_by_index().items():
            theta[index] = value
        return theta

    def _problem(
        self, lr: np.ndarray, steps: np.ndarray, loss: np.ndarray
    ) -> tuple[Any, np.ndarray]:
        usable = np.cumsum(lr)[steps] > 0
        return self.features(lr, steps[usable]), np.log(loss[usable])

    def _residuals(self, theta: np.ndarray, problems: list[tuple[Any, np.ndarray]]) -> np.ndarray:
        predicted = np.concatenate([self.curve(theta, features) for features, _ in problems])
        observed = np.concatenate([log_loss for _, log_loss in problems])
        return np.log(np.maximum(predicted, _TINY)) - observed

    def _objective(self, theta: np.ndarray, problems: list[tuple[Any, np.ndarray]]) -> np.ndarray:
        """The fit's residuals: log-loss residuals of every problem, then the prior's."""
        return np.concatenate([self._residuals(theta, problems), self.penalty(theta)[0]])

    def _jacobian(self, theta: np.ndarray, problems: list[tuple[Any, np.ndarray]]) -> np.ndarray:
        """d `_objective` / d theta (analytic where the law gives it)."""
        blocks = []
        for features, _ in problems:
            predicted, block = self.curve_and_jacobian(theta, features)
            if block is None:
                return _finite_difference(lambda x: self._objective(x, problems), theta)
            blocks.append(block / np.maximum(predicted, _TINY)[:, None])  # d log(pred)
        return np.vstack([*blocks, self.penalty(theta)[1]])

    def _solve(
        self,
        problems: list[tuple[Any, np.ndarray]],
        start: np.ndarray,
        lower: np.ndarray,
        upper: np.ndarray,
        max_evals: int = 400,
    ) -> optimize.OptimizeResult:
        return robust_least_squares(
            lambda theta: self._objective(theta, problems),
            lambda theta: self._jacobian(theta, problems),
            start,
            lower,
            upper,
            self.config["huber_delta"],
            max_evals,
        )

    # --- prediction -----------------------------------------------------------------------------

    def _require_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise LrlabError(f"law {self.name!r} is not fitted yet; call fit(runs) first")

    def _curves_at(
        self, thetas: Sequence[np.ndarray], lr: np.ndarray, steps: np.ndarray
    ) -> np.ndarray:
        """The curve of each parameter vector at `steps` (one row each; NaN where no LR has been
        applied yet), all from one build of the features."""
        defined = np.cumsum(lr)[steps] > 0
        out = np.full((len(thetas), steps.size), np.nan)
        if np.any(defined):
            features = self.features(lr, steps[defined])
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                for row, theta in zip(out, thetas, strict=True):
                    row[defined] = self.curve(theta, features)
        return out

    def predict(self, lr: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """Predicted loss at `steps` for per-step LR `lr` (NaN where no LR has been applied yet)."""
        self._require_fitted()
        lr, steps = check_curve_input(lr, steps)
        return self._curves_at([self.params_], lr, steps)[0]

    def predict_interval(
        self, lr: np.ndarray, steps: np.ndarray, level: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """A `level` (default: the ``band_level`` option) band around `predict(lr, steps)`:
        ``pred * exp(+-z * band_scale_ * sd)``, ``sd^2`` = jackknife variance of the log predictions
        of the replicate fits + `noise_sd_`^2, and `band_scale_` the conformal calibration of
        `_calibrate_band`."""
        return self.predict_with_band(lr, steps, level)[1:]

    def predict_with_band(
        self, lr: np.ndarray, steps: np.ndarray, level: float | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``predict(lr, steps)`` and ``predict_interval(lr, steps, level)`` together, from one
        build of the features."""
        self._require_fitted()
        lr, steps = check_curve_input(lr, steps)
        level = float(self.config["band_level"] if level is None else level)
        if not 0 < level < 1:
            raise LrlabError(f"band level must be in (0, 1), got {level}")
        curves = self._curves_at([self.params_, *self.replicates_], lr, steps)
        log_curves = np.log(curves)
        half = stats.norm.ppf(0.5 + level / 2) * self.band_scale_ * self._log_sd(log_curves[1:])
        center = log_curves[0]
        return curves[0], np.exp(center - half), np.exp(center + half)

    def _log_sd(self, replicas: np.ndarray) -> np.ndarray:
        """Uncalibrated sd of the log prediction from the replicate fits' log predictions
        (replicates x points): their jackknife spread and the residual noise."""
        variance = np.full(replicas.shape[1], self.noise_sd_**2)
        if len(replicas) >= 2:
            count = len(replicas)
            variance += (count - 1) / count * np.sum((replicas - replicas.mean(0)) ** 2, axis=0)
        return np.sqrt(variance)

    def _calibrate_band(self, left_out: list[_Part]) -> float:
        """Conformal-style width factor: each replicate predicts the run (or block) it left out;
        the ``band_level`` quantile of ``|log pred - log loss| / sd`` over those out-of-sample
        points, divided by the normal quantile ``z``, so that the band would have covered that
        fraction of them. The jackknife spread alone ignores the law's own misfit on an unseen
        schedule, which these errors contain."""
        scores = []
        for theta, (lr, steps, loss) in zip(self.replicates_, left_out, strict=True):
            log_curves = np.log(self._curves_at([theta, *self.replicates_], lr, steps))
            scores.append(np.abs(log_curves[0] - np.log(loss)) / self._log_sd(log_curves[1:]))
        score = np.concatenate(scores)
        score = score[np.isfinite(score)]
        if score.size == 0:
            return 1.0
        level = float(self.config["band_level"])
        return float(np.quantile(score, level) / stats.norm.ppf(0.5 + level / 2))

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
            "config": self.config,
            "params": self.params_dict,
            "param_errors": dict(
                zip(self.param_names, map(float, self.param_errors_), strict=True)
            ),
            "covariance": self.covariance_.tolist(),
            "replicates": self.replicates_.tolist(),
            "noise_sd": self.noise_sd_,
            "band_scale": self.band_scale_,
            "fit": self.fit_info_,
        }

    def save(self, path: str | Path) -> Path:
        """Write the fitted law as JSON, atomically."""
        return atomic_write_text(path, json.dumps(self.to_dict(), indent=2, allow_nan=True) + "\n")

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "fit") -> Law:
        """Rebuild a fitted law from `to_dict` output."""
        try:
            law = cls(**data["config"])
            params = data["params"]
            law.params_ = np.array([float(params[name]) for name in cls.param_names])
            errors = data["param_errors"]
            law.param_errors_ = np.array([float(errors[name]) for name in cls.param_names])
            law.covariance_ = np.array(data["covariance"], dtype=np.float64)
            law.replicates_ = np.array(data["replicates"], dtype=np.float64).reshape(
                -1, len(cls.param_names)
            )
            law.noise_sd_ = float(data["noise_sd"])
            law.band_scale_ = float(data.get("band_scale", 1.0))  # absent in older fits
            law.fit_info_ = dict(data["fit"])
        except KeyError as error:
            raise LrlabError(f"{source}: field {error.args[0]!r} is missing") from None
        except (TypeError, ValueError) as error:
            raise LrlabError(f"{source}: malformed law fit ({error})") from None
        return law

    @classmethod
    def load(cls, path: str | Path) -> Law:
        """Read a law fit written by `save` (any registered law)."""
        return load_law(path)


def load_law(path: str | Path) -> Law:
    """Read a saved law fit; the law is looked up by the name stored in the file."""
    path = Path(path)
    data = read_mapping(path, "law fit")
    if data.get("format") != FORMAT:
        raise LrlabError(f"{path}: not an lrlab law fit (field 'format' is not {FORMAT!r})")
    name = data.get("law")
    if name not in REGISTRY:
        raise LrlabError(f"{path}: field 'law' names unknown law {name!r}")
    return REGISTRY[name].from_dict(data, source=str(path))


def _fit_groups(runs: list[Run]) -> list[tuple[list[_Part], _Part]]:
    """Jackknife replicates: the data each keeps and the part it leaves out (one run, or for a
    single run one contiguous block of its points)."""
    parts = [(run.lr, run.steps, run.loss) for run in runs]
    if len(runs) >= 2:
        return [(parts[:i] + parts[i + 1 :], parts[i]) for i in range(len(parts))]
    lr, steps, loss = parts[0]
    blocks = np.array_split(np.arange(steps.size), _SINGLE_RUN_BLOCKS)
    return [
        ([(lr, np.delete(steps, block), np.delete(loss, block))], (lr, steps[block], loss[block]))
        for block in blocks
        if steps.size - block.size > 0
    ]


def robust_least_squares(
    objective: Callable[[np.ndarray], np.ndarray],
    jacobian: Callable[[np.ndarray], np.ndarray],
    start: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    huber_delta: float,
    max_evals: int,
) -> optimize.OptimizeResult:
    """Bounded trust-region least squares with a Huber loss of scale `huber_delta` on the
    residuals: the one solver of every fit."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return optimize.least_squares(
            objective,
            start,
            jac=jacobian,
            bounds=(lower, upper),
            loss="huber",
            f_scale=huber_delta,
            x_scale="jac",
            method="trf",
            ftol=1e-10,
            xtol=1e-10,
            gtol=1e-10,
            max_nfev=max_evals,
        )


def gauss_newton_covariance(jacobian: np.ndarray, residual_sum: float, n_params: int) -> np.ndarray:
    """Gauss-Newton covariance ``s^2 (J^T J)^+`` with ``s^2`` the residual variance."""
    dof = max(jacobian.shape[0] - n_params, 1)
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
