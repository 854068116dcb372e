"""The adaptive law ``auto``: an average of other laws' forecasts, optionally weighted by how
well each forecasts what it was not fitted on, within the runs it is given.

Which law forecasts best depends on the data and on how many runs there are: on the
multi-power-law curves `lrlab` is the most accurate from three runs, `momentum` from two at some
sizes, `mpl` on the 124M curves (docs/laws.md). No rule may look at the curves to be forecast,
so `auto` uses the fitted runs alone:

- **Members** (`members`, default `momentum`, `mpl`, `lrlab`: the laws with an annealing term).
  Each is fitted to all the runs; one that cannot be fitted to them is dropped.
- **Weights.** With `sharpness` 0 (the default) the members weigh alike. Above 0, each member's
  out-of-run error ``E`` (its mean PredE over folds of the fitted runs: each run left out in turn
  and forecast from a fit to the others, with two or more runs; and for each fraction of `cuts`,
  every run fitted up to that fraction of its last step and forecast to its end) gives it a weight
  proportional to ``E^-sharpness`` (a large value picks the best); members below `min_weight` are
  dropped. The default was chosen on training-only folds and the wind tunnel (docs/laws.md,
  "Eighth round"): there, weighting by these folds forecast worse than weighing alike, as
  training-run cross-validation has ranked laws unlike held-out curves before.
- **The forecast** is the weighted mean of the members' forecasts; a schedule's final loss and its
  gradient by every step's LR likewise (so `lrlab optimize` descends on it).
- **The band** is the mixture's: in log-loss, ``sd^2 = sum_j w_j (sd_j^2 + (log f_j - log f)^2)``,
  each member's own calibrated band (its half-width over the normal quantile, widening with the
  extrapolation by the member's own calibration and with the schedule's distance from the fitted
  runs', `Law.band_distance_spread`, which the mixture then carries unchanged) plus the spread
  between the members' forecasts ``f_j`` about the average ``f``.
  `compare_final` combines the members' jackknife replicates (the same run or block is left out
  in each member) with the same weights.

The parameters of ``auto`` are its weights, ``w_<law>`` for every law of `MEMBERS` (0 for those not
averaged); with folds, their errors are the jackknife spread of the weights over the folds. `fixed`
holds a weight; the free ones share what the fixed ones leave. The fit costs the members' fits
(with `sharpness` above 0, one more per member and fold, without bands). A joint or size-aware fit
of ``auto`` is refused: it has no least-squares problem of its own.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from lrlab.errors import LrlabError
from lrlab.laws.base import Law, Progress, check_curve_input, import_solver
from lrlab.laws.metrics import pred_e
from lrlab.laws.parallel import fork_map
from lrlab.runs.model import Run
from lrlab.runs.regime import regime_info
from lrlab.settings import real, reals, texts

# The laws averaged, by registered name: every published predictor and `lrlab`.
MEMBERS = ("power", "momentum", "mpl", "lrlab", "bound")
# The options of `Law` that every member shares with the average.
_SHARED_OPTIONS = ("huber_delta", "band_level", "bands", "coarse")

Fold = tuple[list[Run], list[Run]]  # the runs fitted, the runs (or parts) forecast


@dataclasses.dataclass(kw_only=True, eq=False)
class AutoLaw(Law):
    """An average of the laws `members`, weighted alike or by their out-of-run forecast error on
    folds of the fitted runs (module docstring)."""

    name: ClassVar[str] = "auto"
    summary: ClassVar[str] = (
        "average of the momentum, mpl and lrlab laws' forecasts, with the mixture's band"
    )
    param_names: ClassVar[tuple[str, ...]] = tuple(f"w_{member}" for member in MEMBERS)

    members: tuple[str, ...] = texts(
        ("momentum", "mpl", "lrlab"), help=f"the laws averaged, of {', '.join(MEMBERS)}"
    )
    sharpness: float = real(
        0.0, help="weight ~ out-of-run error^-sharpness (0: all alike; large: the best)", low=0
    )
    cuts: tuple[float, ...] = reals(
        (1 / 3, 2 / 3), help="time folds: fit each run up to these fractions, forecast the rest"
    )
    min_weight: float = real(0.01, help="members weighted below this are dropped", low=0, high=0.5)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.cuts = tuple(self.cuts)
        self.members = tuple(self.members)
        unknown = [m for m in self.members if m not in MEMBERS]
        if unknown or not self.members or len(set(self.members)) < len(self.members):
            raise LrlabError(
                f"law 'auto': members must name different laws of {', '.join(MEMBERS)}, got "
                f"{list(self.members)}"
            )
        if not all(0 < cut < 1 for cut in self.cuts):
            raise LrlabError(f"law 'auto': cuts must lie in (0, 1), got {list(self.cuts)}")

    def fixed_parameters(self) -> dict[str, float]:
        """`fixed`, and a weight of 0 for every law not among `members`."""
        absent = {f"w_{m}": 0.0 for m in MEMBERS if m not in self.members}
        return {**absent, **(self.fixed or {})}

    # --- the Law interface: the weights are the parameters, the members' forecasts the features

    def features(self, lr: np.ndarray, steps: np.ndarray) -> Any:
        """The kept members' forecasts at `steps` (members x steps)."""
        return np.array(
            [member._curves_at([member.params_], lr, steps)[0] for member in self._kept()]
        )

    def curve(self, theta: np.ndarray, features: Any) -> np.ndarray:
        return theta[self._kept_index()] @ features

    def bounds(self, max_loss: float, min_loss: float) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros(len(MEMBERS)), np.ones(len(MEMBERS))

    def starts(self, min_loss: float) -> list[np.ndarray]:
        return [np.full(len(MEMBERS), 1 / len(MEMBERS))]

    def prepare(self, runs: Sequence[Run]) -> None:
        """Refuse: a joint or size-aware fit (the only callers, `fit` does not prepare) stacks
        the least-squares problems of one law's fits, and the average has none of its own."""
        raise LrlabError(
            "law 'auto' averages the other laws' fits and has no least-squares problem of its "
            "own: fit a joint or size-aware law with one of them (--law lrlab, momentum, ...)"
        )

    # --- fitting --------------------------------------------------------------------------------

    def fit(
        self,
        runs: Sequence[Run],
        progress: Progress | None = None,
        start: np.ndarray | None = None,
    ) -> Law:
        """Weigh the members by their error on folds of `runs` (unless `sharpness` is 0: then
        they weigh alike, and no fold is fitted), then fit the kept ones to all of `runs`; a
        member that cannot be fitted to them is dropped (``fit_info_["dropped"]``). `start` (a
        warm start of one least-squares fit) has no meaning here and is ignored."""
        from lrlab.laws.registry import REGISTRY

        began = time.perf_counter()
        runs = list(runs)
        if not runs:
            raise LrlabError("law 'auto': no runs to fit")
        fixed = self.fixed_parameters()
        free = [m for m in MEMBERS if f"w_{m}" not in fixed]
        absent = [m for m in MEMBERS if m not in REGISTRY and fixed.get(f"w_{m}", 1) != 0]
        if absent:
            raise LrlabError(f"law 'auto': member law(s) {', '.join(absent)} are not registered")
        folds = cv_folds(runs, self.cuts) if self.sharpness > 0 else []
        errors = np.array(
            [
                [self._fold_error(member, fold, progress) for fold in folds]
                if member in free
                else [math.nan] * len(folds)
                for member in MEMBERS
            ]
        ).reshape(len(MEMBERS), len(folds))
        mean_errors = (
            errors.mean(axis=1) if folds else np.where([m in free for m in MEMBERS], 1.0, math.nan)
        )
        weights = self.weights_for(mean_errors)
        self.param_errors_ = self._weight_errors(errors)
        self.covariance_ = np.diag(self.param_errors_**2)
        self.members_: dict[str, Law] = {}
        dropped = {}
        weighted = [(m, w) for m, w in zip(MEMBERS, weights, strict=True) if w > 0]

        def fit_member(member_weight: tuple[str, float]) -> Law | str:
            """The member fitted to `runs`, or why it cannot be: its LrlabError's message."""
            member, _ = member_weight
            try:
                return self._member(member).fit(runs, progress=progress)
            except LrlabError as error:  # it cannot forecast from these runs: no weight
                return str(error)

        # The members' fits are independent: side by side in worker processes where the machine
        # has the cores (`lrlab.laws.parallel`), with the serial fits' results to the bit.
        import_solver()  # here, once, rather than in every worker
        for member, weight in weighted:  # here: a worker's output may be captured
            if progress:
                progress(f"fitting law 'auto': member {member!r} (weight {weight:.3f})")
        for (member, _), fitted in zip(
            weighted, fork_map(fit_member, weighted, all_at_once=True), strict=True
        ):
            if isinstance(fitted, str):
                dropped[member] = fitted
            else:
                self.members_[member] = fitted
        if not self.members_:
            raise LrlabError(
                f"law 'auto': no member law could be fitted ({'; '.join(dropped.values())})"
            )
        weights[[MEMBERS.index(m) for m in dropped]] = 0.0
        self.params_ = weights / weights.sum()
        first = next(iter(self.members_.values()))
        kept = self._kept_weights()
        self.noise_sd_ = float(kept @ [m.noise_sd_ for m in self.members_.values()])
        # The members' bands are calibrated each; the mixture adds only the spread between them.
        self.replicates_ = np.empty((0, len(MEMBERS)))
        self.band_scale_ = 1.0
        # Each member's band widens with the extrapolation and with the schedule's distance from
        # the fitted runs'; not again here.
        self.band_growth_ = 0.0
        self.band_reach_ = max(int(run.steps[-1]) for run in runs)
        self.band_distance_sd_ = 0.0
        self.band_schedules_ = []
        self.fit_info_ = {
            "runs": [run.name for run in runs],
            "peak": first.fit_info_["peak"],
            "warmup": first.fit_info_["warmup"],
            "warmup_from": first.fit_info_.get("warmup_from"),
            **regime_info(runs),
            "points": first.fit_info_["points"],
            "unpinned": [],
            "folds": len(folds),
            "dropped": dropped,
            "seconds": round(time.perf_counter() - began, 4),
        }
        if folds:
            self.fit_info_["out_of_run_error"] = {
                member: float(error)
                for member, error in zip(MEMBERS, mean_errors)
                if member in free
            }
        return self

    def _member(self, name: str, **overrides: Any) -> Law:
        """A new member law `name` with the average's shared options."""
        from lrlab.laws.registry import get_law

        options = {option: getattr(self, option) for option in _SHARED_OPTIONS}
        return get_law(name, **{**options, **overrides})

    def _fold_error(self, name: str, fold: Fold, progress: Progress | None) -> float:
        """Member `name`'s mean PredE on the forecast runs of `fold` from a fit (without band) to
        its fitted runs; infinite where it cannot be fitted or gives no finite forecast."""
        fitted, targets = fold
        if progress:
            progress(f"fitting law 'auto': scoring {name!r} on {len(fitted)} run(s)")
        try:
            law = self._member(name, bands=False).fit(fitted)
            scores = []
            for target in targets:
                pred = law.predict_run(target)
                defined = np.isfinite(pred)
                if np.any(defined):
                    scores.append(pred_e(target.loss[defined], pred[defined]))
        except LrlabError:  # a law these runs cannot pin down scores no weight
            return math.inf
        return float(np.mean(scores)) if scores else math.inf

    def weights_for(self, errors: np.ndarray, sharpness: float | None = None) -> np.ndarray:
        """Weights (in `MEMBERS` order) from the members' out-of-run errors (NaN for a fixed
        weight): ``E^-sharpness`` (default: the law's `sharpness`; ``inf`` picks the best) among
        the free members, scaled to what the fixed weights leave; members below `min_weight`
        dropped. `fit` uses it; benchmarks/auto_law.py compares sharpnesses with it."""
        sharpness = self.sharpness if sharpness is None else sharpness
        fixed = self.fixed_parameters()
        weights = np.array([fixed.get(f"w_{m}", 0.0) for m in MEMBERS], dtype=np.float64)
        left = 1.0 - weights.sum()
        if left < -1e-9:
            raise LrlabError(f"law 'auto': the fixed weights sum to {weights.sum():g}, above 1")
        free = np.array([f"w_{m}" not in fixed for m in MEMBERS])
        usable = free & np.isfinite(errors)
        if left > 1e-12:
            if not np.any(usable):
                raise LrlabError("law 'auto': no member law could forecast a fold of these runs")
            # relative to the best, so that no power of a small error underflows
            error = np.maximum(errors[usable], 1e-12)  # an exact forecast: no division by 0
            score = (np.min(error) / error) ** sharpness
            share = score / score.sum()
            share[share < self.min_weight] = 0.0
            weights[usable] = left * share / share.sum()
        if weights.sum() <= 0:
            raise LrlabError("law 'auto': every weight is 0 (fixed); free at least one member")
        return weights

    def _weight_errors(self, errors: np.ndarray) -> np.ndarray:
        """The jackknife sd of each weight over the folds, each left out in turn (0 with one
        fold)."""
        count = errors.shape[1]
        if count < 2:
            return np.zeros(len(MEMBERS))
        replicas = np.array(
            [
                self.weights_for(np.delete(errors, fold, axis=1).mean(axis=1))
                for fold in range(count)
            ]
        )
        spread = (count - 1) / count * np.sum((replicas - replicas.mean(0)) ** 2, axis=0)
        return np.sqrt(spread)

    # --- prediction -----------------------------------------------------------------------------

    def _kept(self) -> list[Law]:
        return list(self.members_.values())

    def _kept_index(self) -> list[int]:
        return [MEMBERS.index(name) for name in self.members_]

    def _kept_weights(self) -> np.ndarray:
        weights = self.params_[self._kept_index()]
        return weights / weights.sum()

    def predict_with_band(
        self, lr: np.ndarray, steps: np.ndarray, level: float | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The weighted forecast and the mixture's band (module docstring)."""
        from scipy import stats  # costs 0.3 s to import: only bands need it, not listing laws

        self._require_fitted()
        lr, steps = check_curve_input(lr, steps)
        level = float(self.band_level if level is None else level)
        if not 0 < level < 1:
            raise LrlabError(f"band level must be in (0, 1), got {level}")
        z = float(stats.norm.ppf(0.5 + level / 2))
        weights = self._kept_weights()
        bands = np.array([member.predict_with_band(lr, steps, level) for member in self._kept()])
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            pred = weights @ bands[:, 0]
            log_sd = (np.log(bands[:, 2]) - np.log(bands[:, 1])) / (2 * z)
            between = np.log(bands[:, 0]) - np.log(pred)
            half = z * np.sqrt(weights @ (log_sd**2 + between**2))
            low, high = pred * np.exp(-half), pred * np.exp(half)
        self._check_predicted(lr, steps, pred)
        self._check_predicted(lr, steps, low, high, what="the band around")
        return pred, low, high

    def final_replicas(self, lr: np.ndarray) -> np.ndarray:
        """The weighted final loss from the members' fits, then from their replicate fits, the
        ``i``-th of each member combined (each left out the same run or block); the final loss
        alone where the members' replicates do not line up (a member fitted without bands)."""
        self._require_fitted()
        finals = [member.final_replicas(lr) for member in self._kept()]
        weights = self._kept_weights()
        if len({f.size for f in finals}) == 1:
            return weights @ np.array(finals)
        return np.array([weights @ [f[0] for f in finals]])

    def final_loss_and_gradient(self, lr: np.ndarray) -> tuple[float, np.ndarray]:
        """The weighted sum of the members' final losses and gradients."""
        self._require_fitted()
        weights = self._kept_weights()
        parts = [member.final_loss_and_gradient(lr) for member in self._kept()]
        value = float(sum(w * loss for w, (loss, _) in zip(weights, parts, strict=True)))
        gradient = sum(w * grad for w, (_, grad) in zip(weights, parts, strict=True))
        return value, np.asarray(gradient)

    # --- persistence ----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The fit's description with each kept member's own, under "members"."""
        return {
            **super().to_dict(),
            "members": {name: member.to_dict() for name, member in self.members_.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "fit") -> Law:
        """Rebuild the average and its members; every member with a weight above 0 must be
        there, and no other."""
        from lrlab.laws.registry import REGISTRY

        law = super().from_dict(data, source)
        assert isinstance(law, AutoLaw)
        members = data.get("members")
        if not isinstance(members, dict):
            raise LrlabError(f"{source}: field 'members' is missing or not a mapping")
        weighted = [m for m, w in zip(MEMBERS, law.params_, strict=True) if w > 0]
        if sorted(members) != sorted(weighted):
            raise LrlabError(
                f"{source}: members {sorted(members)} are not the laws weighted above 0 "
                f"({', '.join(weighted)})"
            )
        if not math.isclose(float(law.params_.sum()), 1.0, abs_tol=1e-6):
            raise LrlabError(f"{source}: the weights sum to {law.params_.sum():g}, not 1")
        law.members_ = {}
        for name in weighted:  # in MEMBERS order, as the fit keeps them
            member = members[name]
            if not isinstance(member, dict) or member.get("law") != name:
                raise LrlabError(f"{source}: members {name} is not a fit of law {name!r}")
            law.members_[name] = REGISTRY[name].from_dict(member, f"{source}: members {name}")
        return law


def cv_folds(runs: Sequence[Run], cuts: Sequence[float]) -> list[Fold]:
    """The folds `AutoLaw` scores its members on: with two or more runs each run left out in
    turn; then, per fraction of `cuts`, every run fitted up to that fraction of its last step and
    forecast after it (runs too short to cut are left out of that fold)."""
    folds: list[Fold] = []
    if len(runs) >= 2:
        folds += [([r for j, r in enumerate(runs) if j != i], [run]) for i, run in enumerate(runs)]
    for cut in cuts:
        fitted, targets = [], []
        for run in runs:
            step = int(run.steps[-1] * cut)
            after = run.steps > step
            if np.sum(run.steps <= step) < 2 or not np.any(after):
                continue
            fitted.append(run.until(step))
            targets.append(dataclasses.replace(run, steps=run.steps[after], loss=run.loss[after]))
        if fitted:
            folds.append((fitted, targets))
    if not folds:
        raise LrlabError("law 'auto': the runs are too short to leave any part out")
    return folds
