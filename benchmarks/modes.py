"""Does averaging each member's forecast over its fit's minima make `auto` forecast better?
Training-only folds and the wind tunnel only (docs/laws.md, "Tenth round, second idea", has the
rule and the outcome).

    python benchmarks/modes.py --json out/modes/select.json

Every task of `benchmarks/auto_law.py --phase select` (folds of training runs, and the tunnel's
width-96 splits): `auto`'s three members (`momentum`, `mpl`, `lrlab`) fitted as they are now, and
their equal average (today's `auto`); then each member's distinct minima
(`find_minima`, below) and, per rule of `RULES`, the equal average of
the members' forecasts each averaged over its minima with that rule's weights. Prints each task's
PredE ratio to the best anchor (`momentum`, `mpl` as fitted now, `bound`), the geometric means,
each candidate's worst ratio to today's `auto`, the decision rule's verdict (`laplace` and `chi2`
are the candidates; `best` and `all` are reported only), how many minima each fit had and how
much weight left the default fit's minimum, and the member fits' seconds with and without the
extra solves, measured in this run.

The minima and their weights (tried and not kept, so they live here rather than in the
package):

- `find_minima`: the default fit's minimum, and a full solve from each of the law's fixed starts
  and from `extra` jittered copies of them (seeded, so the result is deterministic);
- `weights`: with the fit's residual variance ``s^2 = 2 C_min / (n - p)``, rule ``laplace``
  weighs minimum ``i`` by its relative likelihood ``exp(-(C_i - C_min) / s^2)``; rule ``chi2``
  weighs alike the minima whose likelihood-ratio statistic ``2 (C_i - C_min) / s^2`` is within the
  chi-square 95% quantile with ``p`` degrees of freedom; ``best`` keeps the lowest cost only and
  ``all`` weighs every minimum alike (the two limits, for comparison);
- `ModeAverage`: the weighted average of the minima's forecasts.

``C_i`` is the solver's cost: half the Huber sum of the log-loss residuals (half their sum of
squares inside the Huber scale), so ``-C / s^2`` is a Gaussian log-likelihood up to a constant.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

import auto_law as bench
from lrlab.errors import LrlabError
from lrlab.laws import get_law
from lrlab.laws.base import Law
from lrlab.laws.metrics import pred_e
from lrlab.runs import Run

RULES = ("laplace", "chi2", "best", "all")
EXTRA_STARTS = 3  # jittered copies of the fixed starts, beyond them
JITTER = 0.5  # log-sd of the jitter: a start's parameters scaled by up to about e^1 either way
CONFIDENCE = 0.95  # of the `chi2` rule's set of minima
# Two solutions closer than this (relative, or absolute near 0) in every parameter are one minimum.
SAME_RELATIVE = 1e-3
SAME_ABSOLUTE = 1e-6


@dataclasses.dataclass(frozen=True)
class Minimum:
    """One local minimum of a fit: its parameters (in `param_names` order) and its cost."""

    params: np.ndarray
    cost: float


@dataclasses.dataclass(frozen=True)
class Minima:
    """The distinct minima of one fit (lowest cost first), which of them the law's own fit
    reached (`default`), and what the weights need: the logged points fitted and the free
    parameters."""

    minima: tuple[Minimum, ...]
    default: int
    points: int
    free: int

    def weights(self, rule: str) -> np.ndarray:
        """Each minimum's weight under `rule` (`RULES`; module docstring), summing to 1."""
        if rule not in RULES:
            raise LrlabError(f"modes: unknown rule {rule!r} (one of {', '.join(RULES)})")
        costs = np.array([m.cost for m in self.minima])
        excess = costs - costs.min()
        variance = 2.0 * costs.min() / max(self.points - self.free, 1)
        if rule == "best":
            chosen = (np.arange(costs.size) == np.argmin(costs)).astype(float)
        elif rule == "all":
            chosen = np.ones(costs.size)
        elif variance <= 0.0:  # a perfect fit: only the minima as good as the best count
            chosen = (excess <= 0.0).astype(float)
        elif rule == "laplace":
            chosen = np.exp(-excess / variance)
        else:
            from scipy import stats

            threshold = stats.chi2.ppf(CONFIDENCE, self.free)
            chosen = (2.0 * excess / variance <= threshold).astype(float)
        return chosen / chosen.sum()


def _starts(law: Law, runs: Sequence[Run], extra: int, seed: int) -> list[np.ndarray]:
    """The law's fixed starts, then `extra` of them (cycling) with every parameter scaled by
    ``exp(JITTER * z)``, `z` from a generator seeded `seed`."""
    fixed = law.starts(float(min(run.loss.min() for run in runs)))
    rng = np.random.default_rng(seed)
    jittered = [
        fixed[index % len(fixed)] * np.exp(JITTER * rng.standard_normal(fixed[0].size))
        for index in range(extra)
    ]
    return [*fixed, *jittered]


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(
        np.all(np.abs(a - b) <= SAME_RELATIVE * np.maximum(np.abs(a), np.abs(b)) + SAME_ABSOLUTE)
    )


def find_minima(law: Law, runs: Sequence[Run], extra: int = EXTRA_STARTS, seed: int = 0) -> Minima:
    """The distinct minima of fitting `law` to `runs`: that of `law`'s own fit (`law` must be
    fitted to `runs`) and those of full solves from its fixed and `extra` jittered starts."""
    if not hasattr(law, "params_"):
        raise LrlabError(f"modes: law {law.name!r} must be fitted to the runs first")
    problem = law.fit_problem(runs)
    found = [Minimum(law.params_.copy(), float(law.fit_info_["cost"]))]
    for start in _starts(law, runs, extra, seed):
        result = law._solve(problem, np.clip(start, problem.lower, problem.upper))
        found.append(Minimum(law._exact_fixed(result.x), float(result.cost)))
    distinct: list[Minimum] = []
    for minimum in sorted(found, key=lambda m: m.cost):
        if not any(_same(minimum.params, kept.params) for kept in distinct):
            distinct.append(minimum)
    default = next(i for i, m in enumerate(distinct) if _same(found[0].params, m.params))
    free = len(law.param_names) - len(law.fixed_parameters())
    return Minima(tuple(distinct), default, problem.points, free)


class ModeAverage:
    """The forecast of fitted `law` averaged over `minima` with the weights of `rule`. Minima
    whose forecast is not finite and positive for a schedule are left out of it (the others'
    weights renormalised); if none is left, the error of `law.predict`."""

    def __init__(self, law: Law, minima: Minima, rule: str) -> None:
        self.law = law
        self.minima = minima
        self.rule = rule
        self.weights = minima.weights(rule)

    def predict(self, lr: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """The weighted average of the minima's forecasts at `steps` of a run with LR `lr`."""
        kept = [(w, m) for w, m in zip(self.weights, self.minima.minima, strict=True) if w > 0]
        curves = self.law._curves_at([m.params for _, m in kept], np.asarray(lr), np.asarray(steps))
        weights = np.array([w for w, _ in kept])
        usable = np.all(np.isfinite(curves) | np.isnan(curves), axis=1)
        usable &= ~np.any(curves <= 0, axis=1)
        if not np.any(usable):
            return self.law.predict(lr, steps)
        weights = weights[usable] / weights[usable].sum()
        return weights @ curves[usable]

    def predict_run(self, run: Run) -> np.ndarray:
        """The averaged forecast at a run's logged steps."""
        return self.predict(run.lr, run.steps)


MEMBERS = ("momentum", "mpl", "lrlab")
CANDIDATES = ("laplace", "chi2")  # the adoptable rules; "best" and "all" are reported only
# The decision rule, fixed before the run (docs/laws.md, "Tenth round, second idea").
MIN_GAIN = 0.95  # a candidate's geometric mean over today's auto's, at most
MAX_WORSE = 1.1  # any task's PredE with the candidate over today's auto's, at most


def average_pred_e(forecasters: Sequence, targets: list[Run]) -> float:
    """Mean PredE over `targets` of the equal average of the forecasters' forecasts."""
    scores = []
    for run in targets:
        pred = np.mean([f.predict_run(run) for f in forecasters], axis=0)
        ok = np.isfinite(pred)
        scores.append(pred_e(run.loss[ok], pred[ok]))
    return float(np.mean(scores))


def run_task(load, timing: dict[str, list[float]]) -> dict:
    """One select task: the anchors, today's auto, and auto with each rule's mode averages."""
    fitted, targets = load()
    result: dict = {"scores": {}, "minima": {}}
    members = []
    for member in MEMBERS:
        law = get_law(member, bands=False)
        began = time.perf_counter()
        try:
            law.fit(fitted)
        except LrlabError:
            continue
        timing["plain fit"].append(time.perf_counter() - began)
        began = time.perf_counter()
        minima = find_minima(law, fitted)
        timing["extra solves"].append(time.perf_counter() - began)
        members.append((law, minima))
        if member in bench.ANCHORS:
            result["scores"][member] = average_pred_e([law], targets)
        default = minima.default
        costs = [m.cost for m in minima.minima]
        result["minima"][member] = {
            "count": len(costs),
            "default_rank": default,
            "relative_costs": [c / costs[0] - 1.0 for c in costs],
            "weight_off_default": {
                rule: float(1.0 - minima.weights(rule)[default]) for rule in RULES
            },
        }
    try:
        bound = get_law("bound", bands=False).fit(fitted)
        result["scores"]["bound"] = average_pred_e([bound], targets)
    except LrlabError:
        pass
    result["scores"]["auto"] = average_pred_e([law for law, _ in members], targets)
    for rule in RULES:
        averaged = [ModeAverage(law, minima, rule) for law, minima in members]
        result["scores"][rule] = average_pred_e(averaged, targets)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write every task's scores and minima here")
    parser.add_argument("--only", default="", help="run only tasks whose name contains this")
    args = parser.parse_args()
    began = time.perf_counter()
    timing: dict[str, list[float]] = {"plain fit": [], "extra solves": []}
    results = {}
    for name, load in bench.select_tasks():
        if args.only not in name:
            continue
        results[name] = run_task(load, timing)
        cells = "  ".join(f"{k} {v * 1e3:.3f}" for k, v in results[name]["scores"].items())
        counts = ", ".join(
            f"{m} {v['count']} (default #{v['default_rank']}, off "
            f"{v['weight_off_default']['laplace']:.2f}/{v['weight_off_default']['chi2']:.2f})"
            for m, v in results[name]["minima"].items()
        )
        print(f"# {name}: {cells}\n#   minima: {counts}", flush=True)
    rules = ["auto", *RULES]
    print(f"\nPredE ratio to the best anchor ({', '.join(bench.ANCHORS)}):")
    scores = {task: result["scores"] for task, result in results.items()}
    ratios, means = bench.anchor_ratios(scores, rules, width=8)
    print("\nDecision rule: geomean / auto's <= 0.95, every task's PredE / auto's <= 1.1")
    qualifying = []
    for rule in RULES:
        gain, worse, worst_task = bench.against_auto(ratios, means, rule, list(results))
        passes = gain <= MIN_GAIN and worse.max() <= MAX_WORSE
        if rule in CANDIDATES and passes:
            qualifying.append(rule)
        verdict = ("qualifies" if passes else "does not qualify") if rule in CANDIDATES else ""
        print(
            f"{rule:<8} geomean ratio {gain:.3f}, worst task {worse.max():.3f} ({worst_task}), "
            f"better on {int(np.sum(worse < 1))}, worse on {int(np.sum(worse > 1))} of "
            f"{worse.size} {verdict or '(reported only)'}"
        )
    chosen = min(qualifying, key=means.get) if qualifying else None
    print(f"adopted: {chosen or 'none (not kept)'}")
    counts = [v["count"] for r in results.values() for v in r["minima"].values()]
    moved = [v["default_rank"] > 0 for r in results.values() for v in r["minima"].values()]
    print(
        f"\nMinima per member fit: median {np.median(counts):.0f}, range {min(counts)}-"
        f"{max(counts)}; a lower minimum than the default fit's in {sum(moved)} of {len(moved)}"
    )
    print("Member fit seconds (point fits, median / total):")
    for key, values in timing.items():
        print(f"  {key:<13} {np.median(values):.3f} / {np.sum(values):.1f} ({len(values)} fits)")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        payload = {"results": results, "geomean": means, "adopted": chosen, "timing": timing}
        Path(args.json).write_text(json.dumps(payload, indent=1))
    print(f"total {time.perf_counter() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
