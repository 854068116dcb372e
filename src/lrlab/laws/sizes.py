"""The size-aware law: any law fitted across model sizes, its scale parameters smooth functions of
the parameter count ``N``, its shape parameters shared, so that it forecasts a size it has no runs
of.

A joint fit (`lrlab.laws.joint`) shares a law's shape parameters (`Law.shape_params`: how the loss
responds to the schedule) across sizes but fits the scale parameters (``L0``, ``A``, ``alpha``,
the size of the annealing benefit) per size, so it says nothing about a size it has not seen.
Here each scale parameter is a function of ``N`` instead (`forms`, by name):

- "offset", ``L0(N) = E + a N^-b`` (the default for ``L0``): the loss of a model of ``N``
  parameters trained on unlimited data, as Hoffmann et al. (2022, arXiv:2203.15556, "Chinchilla")
  write it; the exponent ``b`` is held at their fitted ``0.34`` (option `exponent`; Besiroglu et
  al. 2024, arXiv:2404.10102, refit it as 0.35), since two sizes cannot pin three numbers.
- "power", ``s(N) = c N^e`` (the default for the annealing scale): a power law in ``N``, the
  form Kaplan et al. (2020, arXiv:2001.08361) give the loss itself; the fitted values of these
  parameters drift with size in Luo et al.'s separate fits.
- "shared" (the default for ``alpha``): one value for every size, fitted like a shape parameter.
- "level" (the default for ``A``) and "level-power": ``A`` (or ``L0``) is not extrapolated by
  itself but derived from the loss of a constant run at the reference LR area ``S_ref`` (the
  largest the fitted runs reach), ``L_ref = L0 + A S_ref^-alpha``, which follows the offset law
  ("level": Chinchilla's ``E + A N^-0.34 + B D^-0.28`` at a fixed amount of data ``D``) or a
  power law in ``N`` ("level-power": Kaplan et al.'s ``L(N)``). Why: within one size
  ``L0`` and ``A`` trade off (the runs pin down the loss along the curve, not its split into a
  floor and a falling part: per-size fits in the wind tunnel put ``L0`` anywhere in 0-0.16), so
  extrapolating both carries that trade-off into the forecast's level, while ``L_ref`` is what
  the runs determine. Chosen on the wind tunnel's folds (docs/laws.md, "Ninth round, sizes").
  Laws without ``L0``, ``A`` and ``alpha`` (`bound`) get "power" for ``A`` instead.
- "held": power between the fitted sizes, constant beyond (an option, and an alternative of the
  band).

Each function is parametrised by its values at the smallest and largest fitted sizes (the
*anchors*), within the law's own bounds there, so with two sizes the fit is exactly a joint fit
and with more the middle sizes lie on the curves. All groups' runs are one robust least-squares
problem (`lrlab.laws.joint.JointProblem`, the per-group problems stacked, each group's parameter
vector a function of the anchors), started from the joint fit (from each size's own fit for a
law without shape parameters, `power`).

`SizeLaw.at(N)` is an ordinary fitted `Law` for a model of ``N`` parameters: predict, evaluate,
bands, `compare_final`, schedule design all work on it. Its band has three parts, each in the
replicate parameter vectors the `Law` band is made of:

- the jackknife: the size-aware fit refitted with each run left out (a run that is its size's only
  run stays), each refit's functions evaluated at ``N``; their spread grows with the distance in
  ``log N`` from the fitted sizes, as the refits' slopes in ``log N`` differ;
- the functional form: ``N``-forms the literature offers besides the chosen ones, through the
  same anchors - ``L_ref`` as a power law for "level" and the reverse (or, without a
  level form, ``L0`` as a pure power law for "offset" and the reverse), and the other power-law
  parameters held at the nearest anchor's value beyond the fitted sizes (Chinchilla's data
  term, which does not depend on ``N``) - each alternative's deviation from the chosen form
  counted as one standard deviation. They agree at the fitted sizes (with two sizes, exactly),
  differ a little between them and more and more beyond: a forecast 4x beyond the largest
  fitted size is less certain than one between two fitted sizes;
- the residual noise and the conformal scale (`Law.band_scale_`), calibrated as a `Law`'s is, on
  each jackknife refit's error on the run it left out, at that run's size.

Saved (`save`) as its own format and read back by `lrlab.laws.load_law`, like any fitted law.

Evidence (docs/laws.md, "Fifth round" and "Ninth round, sizes"; `benchmarks/sizes.py`): with the
fifth round's forms (``A`` a power law), fitted at 25M and 100M on the shared curves, the 400M
curves were forecast about 2% too high (PredE 0.0185; the level of the loss, not the response
to the schedule); the ninth round's figures are in docs/laws.md.
"""

from __future__ import annotations

import json
import math
import re
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lrlab.atomic import atomic_write_text
from lrlab.errors import LrlabError, LrlabWarning, brief
from lrlab.laws.base import (
    FORMAT,
    FORMAT_VERSION,
    Law,
    Progress,
    gauss_newton_covariance,
)
from lrlab.laws.joint import JointProblem, fit_joint
from lrlab.laws.points import point_residuals
from lrlab.laws.registry import DEFAULT_SINGLE_LAW, REGISTRY, get_law, register_format
from lrlab.runs.model import Run
from lrlab.runs.regime import regime_info
from lrlab.runs.warmup import fitted_warmup

SIZE_FORMAT = "lrlab-size-law-fit"
SIZE_FORMAT_VERSION = 1
#: Hoffmann et al. (2022) fit the model-size term of the loss as ``A / N^0.34``.
CHINCHILLA_EXPONENT = 0.34
FORMS = ("offset", "power", "held", "level", "level-power", "shared")
#: The forms that derive ``L0`` or ``A`` from the loss level at the reference area.
LEVEL_FORMS = ("level", "level-power")
#: The default forms (docs/laws.md, "Ninth round, sizes"); scale parameters not named: "power".
DEFAULT_FORMS = {"L0": "offset", "A": "level", "alpha": "shared"}
_SUFFIXES = {"k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}
_COUNT_NAME = re.compile(r"^(\d+(?:\.\d+)?)([kmbt])$", re.IGNORECASE)
_POSITIVE = 1e-12  # the least value of a power-law parameter at an anchor (its log is taken)
_REPLICATE_EVALS = 200


def count_in_name(name: str) -> float | None:
    """The parameter count a name such as a directory's spells (``25M``, ``124m``, ``1.3B``,
    ``350K``: a number and a suffix K, M, B or T, nothing else), or None."""
    match = _COUNT_NAME.match(name.strip())
    if match is None:
        return None
    count = float(match.group(1)) * _SUFFIXES[match.group(2).lower()]
    return count if count > 0 else None


def parse_count(text: str, where: str | None = None) -> float:
    """A parameter count given as text (``25M``, ``1.3B``, ``350K``, ``2.5e7``, ``124000000``),
    or an `LrlabError` naming `where` (the option or field it came from), if given."""
    prefix = f"{where}: " if where else ""
    match = _COUNT_NAME.match(text.strip())
    try:
        if match is not None:
            count = float(match.group(1)) * _SUFFIXES[match.group(2).lower()]
        else:
            count = float(text)
    except ValueError:
        raise LrlabError(
            f"{prefix}{brief(text)} is not a parameter count (a number such as 25M, 1.3B, "
            "350K or 2.5e7)"
        ) from None
    if not math.isfinite(count) or count <= 0:
        raise LrlabError(f"{prefix}the parameter count must be a number above 0, got {brief(text)}")
    return count


def describe_count(count: float) -> str:
    """A parameter count in the short form the names use: ``25M``, ``1.3B``, ``350K``; from ten
    thousand T on, a plain number (``1e+30``, not ``1e+18T``)."""
    for suffix, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if count >= scale:
            text = f"{count / scale:.4g}"
            return f"{count:.4g}" if "e" in text else f"{text}{suffix}"
    return f"{count:.4g}"


def describe_form(form: str, exponent: float) -> str:
    """A scale parameter's form as the fit's summary prints it."""
    offset = f"E + a N^-{exponent:g}"
    return {
        "offset": offset,
        "power": "c N^e",
        "held": "c N^e, held beyond the sizes",
        "shared": "one value",
        "level": f"from L_ref(N) = {offset}",
        "level-power": "from L_ref(N) = c N^e",
    }[form]


def log_distance(count: float, sizes: Sequence[float]) -> float:
    """How far `count` lies outside the fitted `sizes`, in ``log N`` (0 between them)."""
    low, high = min(sizes), max(sizes)
    return max(0.0, math.log(count / high), math.log(low / count))


class SizeWarning(LrlabWarning):
    """A forecast at a size went through, but rests on a parameter held at the law's bound."""


class SizeLaw:
    """A law fitted across model sizes (module docstring): `fit`, then `at` a parameter count.

    ``SizeLaw("lrlab").fit({"25M": runs_25m, "100M": runs_100m}, {"25M": 25e6, "100M": 1e8})``;
    the keyword `config` is the law's (as for `get_law`), `exponent` the ``b`` of the offset form
    and `forms` the form of each scale parameter by name (default: "offset" for ``L0``, "power"
    for the others)."""

    def __init__(
        self,
        law: str = DEFAULT_SINGLE_LAW,
        *,
        exponent: float = CHINCHILLA_EXPONENT,
        forms: Mapping[str, str] | None = None,
        **config: Any,
    ) -> None:
        template = get_law(law, **config)  # checks the law's name and its parameters
        if not (_is_real(exponent) and 0 < exponent <= 5):
            raise LrlabError(f"size law: exponent={brief(exponent)} must be a number in (0, 5]")
        scale = [name for name in template.param_names if name not in template.shape_params]
        chosen = {name: DEFAULT_FORMS.get(name, "power") for name in scale}
        if template.param_names[:3] != ("L0", "A", "alpha"):  # no level: power laws instead
            chosen = {name: "power" if f in LEVEL_FORMS else f for name, f in chosen.items()}
        for name, form in (forms or {}).items():
            if name not in chosen:
                raise LrlabError(
                    f"size law: forms names {brief(name)}, not a scale parameter of law {law!r} "
                    f"({', '.join(scale)})"
                )
            if form not in FORMS:
                raise LrlabError(
                    f"size law: form of {name} is {brief(form)}; choose from {', '.join(FORMS)}"
                )
            chosen[name] = form
        derived = [name for name, form in chosen.items() if form in LEVEL_FORMS]
        if derived and (
            template.param_names[:3] != ("L0", "A", "alpha") or derived not in (["L0"], ["A"])
        ):
            raise LrlabError(
                f"size law: the forms {', '.join(LEVEL_FORMS)} are for one of L0 and A of a law "
                f"with L0, A and alpha (law {law!r}: forms {brief(chosen, 100)})"
            )
        self.law = law
        self.exponent = float(exponent)
        self.forms = chosen
        self.config = template.get_params()

    # --- fitting --------------------------------------------------------------------------------

    def fit(
        self,
        groups: Mapping[str, Sequence[Run]],
        sizes: Mapping[str, float],
        progress: Progress | None = None,
    ) -> SizeLaw:
        """Fit the runs of each group (e.g. each directory of runs), whose models have
        ``sizes[group]`` parameters, and return this size law."""
        began = time.perf_counter()
        groups = {name: list(runs) for name, runs in groups.items()}
        self._check_groups(groups, sizes)
        runs = [run for members in groups.values() for run in members]
        point_config = {**self.config, "bands": False}
        template = get_law(self.law, **point_config)
        template.prepare(runs)
        # Values a law learns from its runs (lrlab's reference LR) must be one for every size,
        # or the same parameter would mean different things at different sizes: the value
        # learned from all the runs is the groups' parameter of that name, where it has one.
        for name in template.learned:
            if name in point_config and point_config[name] is None:
                point_config[name] = getattr(template, f"{name}_")
        self.learned = {name: float(getattr(template, f"{name}_")) for name in template.learned}
        self.fit_config_ = point_config
        self.sizes_ = {name: float(sizes[name]) for name in groups}
        # The level forms' reference: the largest LR area the fitted runs reach (their horizon,
        # where the runs pin the loss level down best).
        self.reference_area_ = float(max(np.sum(run.lr[: run.steps[-1] + 1]) for run in runs))
        shared = self.shared_names = self._shared_names(template)
        # The joint fit shares the law's shape parameters; a law with none (`power`, whose
        # alpha may still be one value for every size) starts from each size's own fit.
        if progress:
            how = "a joint fit" if template.shape_params else "a fit per group"
            progress(f"size law: starting point, {how} over {len(groups)} groups")
        if template.shape_params:
            start = fit_joint(self.law, groups, progress=progress, **point_config)
        else:
            start = {name: get_law(self.law, **point_config).fit(m) for name, m in groups.items()}
        problem = _SizeProblem(self, template, shared, start, groups)
        if progress:
            progress(f"size law: {len(groups)} groups at sizes {self._describe_sizes()}")
        result = problem.solve(template.huber_delta, max_evals=600)
        self.x_ = result.x.copy()
        rows = result.jac.shape[0] - sum(p.weights.size - p.points for p in problem.problems)
        self.covariance_ = gauss_newton_covariance(
            result.jac, 2.0 * result.cost, result.x.size, rows
        )
        residuals = [
            point_residuals(part.data, part.log_curve(theta))
            for (theta, _), part in zip(
                problem.group_parameters(self.x_), problem.problems, strict=True
            )
        ]
        residual = np.concatenate(residuals)
        self.noise_sd_ = float(1.4826 * np.median(np.abs(residual - np.median(residual))))
        self.replicates_ = np.empty((0, self.x_.size))
        self.band_scale_ = 1.0
        left_out: list[tuple[str, Run]] = []
        if self.config["bands"]:
            replicates = []
            for name in groups:
                if len(groups[name]) < 2:
                    continue  # its size's only run: without it the size has no curve to fit
                for index, run in enumerate(groups[name]):
                    if progress:
                        progress(f"size law: band refit without run {run.name!r} of {name!r}")
                    kept = {**groups, name: groups[name][:index] + groups[name][index + 1 :]}
                    refit = _SizeProblem(self, template, shared, start, kept)
                    solution = refit.solve(
                        template.huber_delta, max_evals=_REPLICATE_EVALS, start=self.x_
                    )
                    replicates.append(solution.x)
                    left_out.append((name, run))
            if replicates:
                self.replicates_ = np.array(replicates)
                self.band_scale_ = self._calibrate_band(template, left_out)
        self.fit_info_ = {
            "runs": {name: [run.name for run in members] for name, members in groups.items()},
            "peak": float(max(run.lr.max() for run in runs)),
            **fitted_warmup(runs),
            **regime_info(runs),
            "points": int(sum(p.points for p in problem.problems)),
            "cost": float(result.cost),
            "seconds": round(time.perf_counter() - began, 4),
        }
        return self

    def _check_groups(self, groups: Mapping[str, Sequence[Run]], sizes: Mapping[str, float]):
        if not groups:
            raise LrlabError("size law: no runs to fit")
        for name, members in groups.items():
            if not members:
                raise LrlabError(f"size law: group {name!r} has no runs")
            if name not in sizes:
                raise LrlabError(f"size law: group {name!r} has no parameter count")
            count = sizes[name]
            if not (_is_real(count) and math.isfinite(count) and count > 0):
                raise LrlabError(
                    f"size law: group {name!r} has parameter count {brief(count)}; it must be a "
                    "number above 0"
                )
        distinct = {float(sizes[name]) for name in groups}
        if len(distinct) < 2:
            count = describe_count(next(iter(distinct)))
            raise LrlabError(
                f"size law: every group has {count} parameters; fitting across sizes needs runs "
                "of at least two model sizes"
            )

    def _describe_sizes(self) -> str:
        return ", ".join(f"{name} = {describe_count(n)}" for name, n in self.sizes_.items())

    def _calibrate_band(self, template: Law, left_out: list[tuple[str, Run]]) -> float:
        """`Law._calibrate_band` for the size law: each jackknife refit forecasts the run it left
        out, at that run's size; the `band_level` quantile of ``|log error| / sd`` over those
        points, divided by the normal quantile. The form alternatives are left out: at a fitted
        size they agree."""
        from scipy import stats  # costs 0.3 s to import: only bands need it

        scores = []
        for (name, run), x in zip(left_out, self.replicates_, strict=True):
            count = self.sizes_[name]
            defined = np.cumsum(run.lr)[run.steps] > 0
            steps = run.steps[defined]
            features = template.features(run.lr, steps)
            thetas = [self._theta(x, count)] + [self._theta(r, count) for r in self.replicates_]
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                logs = np.log([template.curve(theta, features) for theta in thetas])
                spread = _jackknife_variance(logs[1:]) + self.noise_sd_**2
                scores.append(np.abs(logs[0] - np.log(run.loss[defined])) / np.sqrt(spread))
        score = np.concatenate(scores)
        score = score[np.isfinite(score)]
        if score.size == 0:
            return 1.0
        level = float(self.config.get("band_level", 0.9))
        return float(np.quantile(score, level) / stats.norm.ppf(0.5 + level / 2))

    # --- the law at one size --------------------------------------------------------------------

    @property
    def anchors(self) -> tuple[float, float]:
        """The smallest and largest fitted parameter counts."""
        if not hasattr(self, "sizes_"):
            raise LrlabError("size law is not fitted yet; call fit(groups, sizes) first")
        return min(self.sizes_.values()), max(self.sizes_.values())

    def _scale_names(self) -> list[str]:
        """The scale parameters that are functions of ``N`` (all but those of form "shared")."""
        return [name for name, form in self.forms.items() if form != "shared"]

    def _shared_names(self, template: Law) -> tuple[str, ...]:
        """The parameters one value for every size: the law's shape parameters, then the scale
        parameters of form "shared"."""
        chosen = [name for name, form in self.forms.items() if form == "shared"]
        return (*template.shape_params, *chosen)

    def _theta(
        self, x: np.ndarray, count: float, forms: Mapping[str, str] | None = None
    ) -> np.ndarray:
        """The law's parameter vector at `count` parameters from the solution `x` (the scale
        parameters at the two anchors, then the shared ones)."""
        return _map_parameters(self, x, count, forms)[0]

    def at(self, params: float) -> Law:
        """The fitted law for a model of `params` parameters: an ordinary `Law` whose band holds
        the jackknife spread, the spread of the alternative forms and the residual noise
        (module docstring)."""
        self._require_fitted()
        if not (_is_real(params) and math.isfinite(params) and params > 0):
            raise LrlabError(f"size law: a parameter count must be a number above 0, got {params}")
        count = float(params)
        cls = REGISTRY[self.law]
        names = cls.param_names
        theta, derivative = _map_parameters(self, self.x_, count)
        lower, upper = get_law(self.law, **self.config).bounds(math.inf, math.inf)
        low, high = self.anchors
        fitted = f"the fitted sizes ({describe_count(low)} to {describe_count(high)})"
        if not np.all(np.isfinite(theta)):
            index = int(np.argmax(~np.isfinite(theta)))
            raise LrlabError(
                f"size law: at {describe_count(count)} parameters the law's {names[index]} would "
                f"be {theta[index]:g}: too far from {fitted}"
            )
        # A function of size extrapolated past the law's range (a loss floor L0 below 0) is
        # held at the bound, and said so: the forecast rests on the bound there, not the fit.
        held = [
            name
            for name, v, a, b in zip(names, theta, lower, upper, strict=True)
            if not a <= v <= b
        ]
        for name in held:
            index = names.index(name)
            warnings.warn(
                f"size law: at {describe_count(count)} parameters the law's {name} would be "
                f"{theta[index]:g}, held at its bound ({lower[index]:g} to {upper[index]:g}), "
                f"{math.exp(log_distance(count, list(self.sizes_.values()))):.3g}x beyond {fitted}",
                SizeWarning,
                stacklevel=2,
            )
        theta = np.clip(theta, lower, upper)
        replicates = self._replicates_at(count, theta)
        replicates = np.clip(replicates, lower, upper) if len(replicates) else replicates
        covariance = derivative @ self.covariance_ @ derivative.T
        errors = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
        size_info = {
            "params": count,
            "fitted": dict(self.sizes_),
            "log_distance": log_distance(count, list(self.sizes_.values())),
            "held_at_bound": held,
            "forms": dict(self.forms),
            "exponent": self.exponent,
        }
        data = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "law": self.law,
            "config": self.config,
            "learned": self.learned,
            "params": dict(zip(names, map(float, theta), strict=True)),
            "param_errors": dict(zip(names, map(float, errors), strict=True)),
            "covariance": covariance.tolist(),
            "replicates": replicates.tolist(),
            "noise_sd": self.noise_sd_,
            "band_scale": self.band_scale_,
            "fit": {
                **self.fit_info_,
                "runs": [run for members in self.fit_info_["runs"].values() for run in members],
                "unpinned": [],
                "size": size_info,
            },
        }
        return cls.from_dict(data, source=f"size law at {describe_count(count)} parameters")

    def _replicates_at(self, count: float, center: np.ndarray) -> np.ndarray:
        """Replicate parameter vectors at `count` whose jackknife variance (the formula of
        `Law`'s band, ``(m - 1) / m * sum (r - mean)^2`` over ``m`` replicates) is, to first order,
        that of the ``n`` jackknife refits plus the sum of the squared deviations of the
        alternative forms: ``mean + f d_i`` for each refit's deviation ``d_i`` from the refits'
        mean, and ``mean +- g e_k`` for each alternative's deviation ``e_k`` from `center`, with
        ``f`` and ``g`` chosen for that. Both sit around the refits' mean, not `center`: a refit's
        deviation from `center` can be large in a parameter the curves hardly depend on (the
        kernel's ``C``), and moved about `center` it could leave the law's bounds."""
        refits = np.array([self._theta(x, count) for x in self.replicates_])
        alternatives = [
            self._theta(self.x_, count, forms) - center for forms in self._alternatives()
        ]
        n, pairs = len(refits), len(alternatives)
        total = n + 2 * pairs
        if total < 2:
            return np.empty((0, center.size))
        middle = refits.mean(axis=0) if n else center
        factor = math.sqrt((n - 1) / n * total / (total - 1)) if n >= 2 else 0.0
        rows = [middle + factor * (row - middle) for row in refits]
        scale = math.sqrt(total / (2 * (total - 1)))
        for deviation in alternatives:
            rows += [middle + scale * deviation, middle - scale * deviation]
        return np.array(rows)

    def _alternatives(self) -> list[dict[str, str]]:
        """The alternative forms of the band: ``L0``'s (offset <-> power), and the power-law
        parameters held constant beyond the fitted sizes ("held")."""
        out = []
        swapped = {
            "offset": "power",
            "power": "offset",
            "held": "held",
            "shared": "shared",
            "level": "level-power",
            "level-power": "level",
        }
        swapped = {n: swapped[f] for n, f in self.forms.items()}
        level = [name for name, form in self.forms.items() if form in LEVEL_FORMS]
        if level:
            out.append({**self.forms, level[0]: swapped[level[0]]})
        elif any(form == "offset" for form in self.forms.values()):
            out.append({n: swapped[n] if f == "offset" else f for n, f in self.forms.items()})
        elif "L0" in self.forms:
            out.append({**self.forms, "L0": "offset"})
        if any(form == "power" and name != "L0" for name, form in self.forms.items()):
            out.append(
                {n: "held" if f == "power" and n != "L0" else f for n, f in self.forms.items()}
            )
        return out

    def _require_fitted(self) -> None:
        if not hasattr(self, "x_"):
            raise LrlabError("size law is not fitted yet; call fit(groups, sizes) first")

    # Law methods that need a size: named in one line, not an AttributeError deep in a command.
    _NEEDS_SIZE = frozenset(
        {
            "predict",
            "predict_interval",
            "predict_with_band",
            "predict_run",
            "compare_final",
            "compare_finals",
            "final_replicas",
            "final_loss_and_gradient",
            "params_",
            "params_dict",
            "param_names",
        }
    )

    def __getattr__(self, name: str) -> Any:
        if name in SizeLaw._NEEDS_SIZE:
            raise LrlabError(
                f"a size-aware fit (law {self.law!r} across sizes) has no {name} of its own: "
                "choose a size first (SizeLaw.at(N); on the command line, --params COUNT)"
            )
        raise AttributeError(name)

    # --- persistence ----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description of the fitted size law."""
        self._require_fitted()
        scale = self._scale_names()
        k = len(scale)
        return {
            "format": SIZE_FORMAT,
            "format_version": SIZE_FORMAT_VERSION,
            "law": self.law,
            "config": self.config,
            "learned": self.learned,
            "exponent": self.exponent,
            "forms": dict(self.forms),
            "sizes": dict(self.sizes_),
            "reference_area": self.reference_area_,
            "scale": {
                name: {"low": float(self.x_[j]), "high": float(self.x_[k + j])}
                for j, name in enumerate(scale)
            },
            "shared": dict(zip(self.shared_names, map(float, self.x_[2 * k :]), strict=True)),
            "covariance": self.covariance_.tolist(),
            "replicates": self.replicates_.tolist(),
            "noise_sd": self.noise_sd_,
            "band_scale": self.band_scale_,
            "fit": self.fit_info_,
        }

    def save(self, path: str | Path) -> Path:
        """Write the fitted size law as JSON, atomically."""
        return atomic_write_text(path, json.dumps(self.to_dict(), indent=2, allow_nan=True) + "\n")

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "size law fit") -> SizeLaw:
        """Rebuild a fitted size law from `to_dict` output, every number checked."""
        version = data.get("format_version")
        if version != SIZE_FORMAT_VERSION:
            raise LrlabError(
                f"{source}: field 'format_version' is {brief(version)}; this lrlab reads "
                f"{SIZE_FORMAT_VERSION}"
            )
        try:
            name = data["law"]
            if not isinstance(name, str) or name not in REGISTRY:
                raise LrlabError(
                    f"{source}: field 'law' names unknown law {brief(name)} "
                    f"(laws: {', '.join(REGISTRY)})"
                )
            config = data["config"]
            if not isinstance(config, dict):
                raise LrlabError(f"{source}: field 'config' must be a mapping")
            law = cls(name, exponent=data["exponent"], forms=data["forms"], **config)
            if set(data["forms"]) != set(law.forms):
                raise LrlabError(f"{source}: field 'forms' must name {', '.join(law.forms)}")
            law.learned = {
                key: _number(data["learned"][key], f"{source}: learned {key}", positive=True)
                for key in REGISTRY[name].learned
            }
            sizes = data["sizes"]
            if not isinstance(sizes, dict):
                raise LrlabError(f"{source}: field 'sizes' must be a mapping")
            law.sizes_ = {
                str(key): _number(value, f"{source}: sizes {key}", positive=True)
                for key, value in sizes.items()
            }
            if len(set(law.sizes_.values())) < 2:
                raise LrlabError(f"{source}: field 'sizes' must hold at least two sizes")
            # Files written before the level forms have no reference area and need none.
            area = data.get("reference_area")
            if area is not None or any(f in LEVEL_FORMS for f in law.forms.values()):
                area = _number(area, f"{source}: reference_area", positive=True)
            law.reference_area_ = area
            template = get_law(name, **config)
            law.shared_names = law._shared_names(template)
            scale = law._scale_names()
            low = [_number(data["scale"][p]["low"], f"{source}: scale {p} low") for p in scale]
            high = [_number(data["scale"][p]["high"], f"{source}: scale {p} high") for p in scale]
            shared = [_number(data["shared"][p], f"{source}: shared {p}") for p in law.shared_names]
            law.x_ = np.array(low + high + shared)
            law.covariance_ = np.array(data["covariance"], dtype=np.float64)
            law.replicates_ = np.array(data["replicates"], dtype=np.float64).reshape(
                -1, law.x_.size
            )
            law.noise_sd_ = _number(data["noise_sd"], f"{source}: noise_sd")
            law.band_scale_ = _number(data["band_scale"], f"{source}: band_scale", positive=True)
            law.fit_info_ = dict(data["fit"])
        except KeyError as error:
            raise LrlabError(f"{source}: field {brief(error.args[0])} is missing") from None
        except LrlabError:
            raise
        except (TypeError, ValueError, OverflowError, AttributeError) as error:
            raise LrlabError(
                f"{source}: malformed size law fit ({brief(str(error), 100)})"
            ) from None
        size = law.x_.size
        if law.covariance_.shape != (size, size) or np.any(np.isnan(law.covariance_)):
            raise LrlabError(f"{source}: covariance must be {size} x {size} numbers")
        if not np.all(np.isfinite(law.replicates_)):
            raise LrlabError(f"{source}: replicates must be finite numbers")
        if law.noise_sd_ < 0:
            raise LrlabError(f"{source}: noise_sd = {law.noise_sd_:g} must be >= 0")
        if not isinstance(law.fit_info_.get("runs"), dict):
            raise LrlabError(f"{source}: fit runs must map each group to its runs")
        lower, upper = template.bounds(math.inf, math.inf)
        names = REGISTRY[name].param_names
        for end, count in zip(("low", "high"), law.anchors, strict=True):
            theta = law._theta(law.x_, count)
            for param, value, least, most in zip(names, theta, lower, upper, strict=True):
                if not least <= value <= most:
                    field = f"scale {param} {end}" if param in scale else f"shared {param}"
                    raise LrlabError(
                        f"{source}: {field} = {value:g} is outside [{least:g}, {most:g}] "
                        f"(law {name!r})"
                    )
        return law


def load_size_law(data: dict[str, Any], source: str) -> SizeLaw:
    """`SizeLaw.from_dict`, as `lrlab.laws.load_law` calls it for a file of this format."""
    return SizeLaw.from_dict(data, source)


register_format(SIZE_FORMAT, load_size_law)


class _SizeProblem(JointProblem):
    """The stacked least-squares problem of a size law: ``x`` = the scale parameters at the
    smallest fitted size, then at the largest, then the shared ones; group g's parameter vector
    is the forms' functions of its size (`_map_parameters`)."""

    def __init__(
        self,
        size_law: SizeLaw,
        template: Law,
        shared: tuple[str, ...],
        start: dict[str, Law],
        groups: Mapping[str, Sequence[Run]],
    ) -> None:
        # Fresh laws for the groups' problems (a joint fit's laws hold the shared values fixed),
        # started where the joint fit ended.
        kept = {}
        for name in groups:
            kept[name] = get_law(size_law.law, **size_law.fit_config_)
            kept[name].params_ = start[name].params_
        # (A law without shape parameters shares none: every parameter is a function of N.)
        super().__init__(template, shared, kept, groups)
        self.size_law = size_law
        self.counts = [size_law.sizes_[name] for name in groups]
        own = len(self.own_index)
        names = list(groups)
        low = names[int(np.argmin(self.counts))]
        high = names[int(np.argmax(self.counts))]
        self.anchor_laws = (kept[low], kept[high])
        low_problem = self.problems[names.index(low)]
        high_problem = self.problems[names.index(high)]
        self.shared_slots = np.arange(2 * own, 2 * own + len(self.shared_index))
        lowers = [problem.lower for problem in self.problems]
        uppers = [problem.upper for problem in self.problems]
        positive = np.array(
            [size_law.forms[template.param_names[i]] in ("power", "held") for i in self.own_index]
        )
        anchor_lower = [
            np.where(
                positive, np.maximum(p.lower[self.own_index], _POSITIVE), p.lower[self.own_index]
            )
            for p in (low_problem, high_problem)
        ]
        self.lower = np.concatenate([*anchor_lower, np.max(lowers, 0)[self.shared_index]])
        self.upper = np.concatenate(
            [
                low_problem.upper[self.own_index],
                high_problem.upper[self.own_index],
                np.min(uppers, 0)[self.shared_index],
            ]
        )
        self.upper = np.maximum(self.upper, np.nextafter(self.lower, np.inf))

    def start(self) -> np.ndarray:
        low, high = self.anchor_laws
        shared = low.params_[self.shared_index]
        x = np.concatenate([low.params_[self.own_index], high.params_[self.own_index], shared])
        return np.clip(x, self.lower, self.upper)

    def group_parameters(self, x: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        return [_map_parameters(self.size_law, x, count) for count in self.counts]


def _map_parameters(
    size_law: SizeLaw, x: np.ndarray, count: float, forms: Mapping[str, str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The law's parameter vector at `count` parameters from ``x`` (scale parameters at the two
    anchors, then the shared ones) and its derivative by ``x``. A form is "offset" (``E + a
    N^-b``: linear between the anchors' values, with weight ``q``), "power" (linear in ``log N``
    between their logs, weight ``t``), "held" (power between the anchors, constant beyond), or
    "level"/"level-power": the parameter (``L0`` or ``A``) is what makes the loss of a constant
    run at the reference area, ``L_ref = L0 + A S_ref^-alpha``, follow an offset (a power) law
    in ``N`` through the anchors' values of ``L_ref``, the other parameters following theirs."""
    forms = size_law.forms if forms is None else forms
    names = REGISTRY[size_law.law].param_names
    scale = size_law._scale_names()
    own = [names.index(name) for name in scale]
    shared = [names.index(name) for name in size_law.shared_names]
    k = len(own)
    low, high = x[:k], x[k : 2 * k]
    n_low, n_high = size_law.anchors
    t = math.log(count / n_low) / math.log(n_high / n_low)
    q = ((count / n_low) ** -size_law.exponent - 1.0) / (
        (n_high / n_low) ** -size_law.exponent - 1.0
    )
    theta = np.empty(len(names))
    derivative = np.zeros((len(names), x.size))
    derived = None
    for j, (index, name) in enumerate(zip(own, scale, strict=True)):
        form = forms[name]
        if form in LEVEL_FORMS:
            derived = (index, form)
            continue
        if form == "offset":
            value, by_low, by_high = low[j] + (high[j] - low[j]) * q, 1.0 - q, q
        else:
            weight = min(max(t, 0.0), 1.0) if form == "held" else t
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                value = math.exp((1.0 - weight) * math.log(low[j]) + weight * math.log(high[j]))
            by_low = (1.0 - weight) * value / low[j] if low[j] > 0 else 0.0
            by_high = weight * value / high[j] if high[j] > 0 else 0.0
        theta[index] = value
        derivative[index, j] = by_low
        derivative[index, k + j] = by_high
    for slot, index in enumerate(shared):
        theta[index] = x[2 * k + slot]
        derivative[index, 2 * k + slot] = 1.0
    if derived is not None:
        _derive_from_level(size_law, x, derived, q, t, theta, derivative)
    return theta, derivative


def _derive_from_level(
    size_law: SizeLaw,
    x: np.ndarray,
    derived: tuple[int, str],
    q: float,
    t: float,
    theta: np.ndarray,
    derivative: np.ndarray,
) -> None:
    """Fill in ``L0`` (index 0) or ``A`` (index 1), the one whose form is a level form, from the
    loss level ``L_ref(N)`` at the reference area ``S_ref`` and the other two of ``L0``, ``A``,
    ``alpha`` (indices 0-2 of every law that has a level form): ``L0 = L_ref - A S^-alpha`` or
    ``A = (L_ref - L0) S^alpha``. Why: within one size ``L0`` and ``A`` trade off (the runs pin
    down the loss along them, not its split into a floor and a falling part), so their separate
    extrapolations carry that trade-off; ``L_ref`` is what the runs determine."""
    index, form = derived
    scale = size_law._scale_names()
    k = len(scale)
    log_area = math.log(size_law.reference_area_)
    ends = []
    for offset in (0, k):
        # each of L0, A, alpha at this anchor: its slot in x (a shared one's is the same at both)
        slots = [
            offset + scale.index(name)
            if name in scale
            else 2 * k + size_law.shared_names.index(name)
            for name in ("L0", "A", "alpha")
        ]
        level0, amplitude, alpha = x[slots]
        power = math.exp(-alpha * log_area)
        gradient = np.zeros(x.size)
        gradient[slots] = (
            1.0,
            power,
            -amplitude * power * log_area,
        )
        ends.append((level0 + amplitude * power, gradient))
    (level_low, grad_low), (level_high, grad_high) = ends
    if form == "level":
        level = level_low + (level_high - level_low) * q
        by = (1.0 - q) * grad_low + q * grad_high
    else:  # "level-power": linear in log N between the logs
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            level = math.exp((1.0 - t) * math.log(level_low) + t * math.log(level_high))
        by = (1.0 - t) * level / level_low * grad_low + t * level / level_high * grad_high
    alpha = theta[2]
    if index == 0:  # L0 = L_ref - A S^-alpha
        power = math.exp(-alpha * log_area)
        theta[0] = level - theta[1] * power
        derivative[0] = by - power * derivative[1] + theta[1] * power * log_area * derivative[2]
    else:  # A = (L_ref - L0) S^alpha, with L0 as `SizeLaw.at` holds it: at its bound 0
        power = math.exp(alpha * log_area)
        floor, by_floor = (theta[0], derivative[0]) if theta[0] > 0 else (0.0, 0.0)
        theta[1] = (level - floor) * power
        derivative[1] = power * (by - by_floor) + theta[1] * log_area * derivative[2]


def _jackknife_variance(replicas: np.ndarray) -> np.ndarray:
    """``(n - 1) / n * sum (r - mean)^2`` over the replicates (rows); 0 for fewer than two."""
    if len(replicas) < 2:
        return np.zeros(replicas.shape[1])
    count = len(replicas)
    return (count - 1) / count * np.sum((replicas - replicas.mean(0)) ** 2, axis=0)


def _is_real(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(value: Any, where: str, positive: bool = False) -> float:
    """A finite number of a size-law file (above 0 where `positive`), or an error naming it."""
    if not _is_real(value) or not math.isfinite(value) or (positive and value <= 0):
        need = "a finite number above 0" if positive else "a finite number"
        raise LrlabError(f"{where} = {brief(value)} is not {need}")
    return float(value)
