"""Does a shape prior learnt on other data sets make `auto` forecast better? Training-only folds
and the wind tunnel only (docs/laws.md, "Tenth round", has the rule and the outcome).

    python benchmarks/shape_prior.py --json out/shape_prior/select.json
    python benchmarks/shape_prior.py --strengths 1e-4 1e-3 --samples out/shape_prior/select.json

1. **The prior's data**: `auto`'s three members (`momentum`, `mpl`, `lrlab`) fitted, without
   bands, to the training runs of each data set: the multi-power-law curves' 3-run task per
   size, the 124M curves' 2-run pair per peak LR, the wind tunnel's 3-run split at every width
   trained (`out/laws_tunnel`, reused). Each fit's shape coordinates are kept
   (`shape_prior_fit.sample`).
2. **The comparison**: every task of `benchmarks/auto_law.py --phase select` (folds of training
   runs, and the tunnel's width-96 splits), with the prior learnt from the *other* data sets
   (`shape_prior.learn(..., leave_out=)`): the equal average of the members fitted without the
   prior (today's `auto`) and with it at each strength, and the anchors (`momentum`, `mpl` as
   fitted without the prior, `bound`). Prints each task's PredE ratio to the best anchor, the
   geometric means, each strength's worst ratio to the baseline, the decision rule's verdict,
   and the members' fit seconds with and without the prior (measured in this run, alternating).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

import auto_law as bench
import shared_data as shared
from lrlab.errors import LrlabError
from lrlab.laws import get_law
from lrlab.laws.metrics import pred_e
from lrlab.runs import Run
from shape_prior_fit import ShapePrior, ShapeSample, learn, sample, shaped

MEMBERS = ("momentum", "mpl", "lrlab")
STRENGTHS = (0.01, 0.1, 1.0)  # the first run's; the second's were 1e-4 and 1e-3
TUNNEL_WIDTHS = (32, 48, 64, 96, 128)
# The decision rule, fixed before the first run (docs/laws.md, "Tenth round").
MIN_GAIN = 0.95  # the geometric mean with the prior over the baseline's, at most
MAX_WORSE = 1.1  # any task's PredE with the prior over without, at most


def source_fits() -> list[tuple[str, str, list[Run]]]:
    """(data set, label, training runs) of every fit the prior learns from."""
    fits = [("mpl", f"mpl {size}", bench._mpl(size, shared.TRAIN)) for size in shared.SIZES]
    for peak in bench.PEAKS:
        names = bench._wsd_names(peak)
        fits.append(("124M", f"124M {peak}", bench._wsd((names["stable"], names["cos10"]))))
    for width in TUNNEL_WIDTHS:
        if (bench.TUNNEL / f"d{width}" / "wsdcon_9" / "eval.csv").is_file():
            fits.append(("tunnel", f"tunnel d{width}", bench._tunnel(width, shared.TRAIN)))
    return fits


def learn_samples() -> list[ShapeSample]:
    """Every member fitted to every source's training runs: their shape coordinates."""
    samples = []
    for dataset, label, runs in source_fits():
        for member in MEMBERS:
            law = get_law(member, bands=False).fit(runs)
            samples.append(sample(dataset, law, runs))
            values = ", ".join(f"{v:.3f}" for v in samples[-1].values)
            print(f"# prior data: {label} {member}: {values}", flush=True)
    return samples


def average_pred_e(laws: Sequence, targets: list[Run]) -> float:
    """Mean PredE over `targets` of the equal average of `laws`' forecasts (as `auto`'s)."""
    scores = []
    for run in targets:
        pred = np.mean([law.predict_run(run) for law in laws], axis=0)
        ok = np.isfinite(pred)
        scores.append(pred_e(run.loss[ok], pred[ok]))
    return float(np.mean(scores))


def fit_members(
    runs: list[Run], prior: ShapePrior | None, strength: float, seconds: list[float]
) -> list:
    """The members fitted to `runs` (with the prior at `strength`); those that cannot be fitted
    are dropped, as `auto` drops them. Appends each fit's seconds to `seconds`."""
    fitted = []
    for member in MEMBERS:
        law = get_law(member, bands=False)
        began = time.perf_counter()
        try:
            with shaped(law, prior, strength, runs):
                law.fit(runs)
        except LrlabError:
            continue
        seconds.append(time.perf_counter() - began)
        fitted.append(law)
    return fitted


def run_task(
    load, prior: ShapePrior, strengths: Sequence[float], timing: dict[str, list[float]]
) -> dict:
    """One select task: anchors, the baseline average and the average at each strength."""
    fitted, targets = load()
    result: dict[str, float] = {}
    base = fit_members(fitted, None, 0.0, timing["without"])
    for law in base:
        if law.name in bench.ANCHORS:
            result[law.name] = average_pred_e([law], targets)
    try:
        result["bound"] = average_pred_e([get_law("bound", bands=False).fit(fitted)], targets)
    except LrlabError:
        pass
    result["auto"] = average_pred_e(base, targets)
    for strength in strengths:
        members = fit_members(fitted, prior, strength, timing[f"with {strength:g}"])
        result[f"prior {strength:g}"] = average_pred_e(members, targets)
    return result


def dataset_of(task: str) -> str:
    """The data set a select task's runs come from (its name's first word)."""
    return task.split()[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the samples, priors and every task's scores here")
    parser.add_argument("--samples", help="reuse the prior's data from this --json file")
    parser.add_argument(
        "--strengths", type=float, nargs="+", default=STRENGTHS, help="the prior's strengths"
    )
    parser.add_argument("--only", default="", help="run only tasks whose name contains this")
    args = parser.parse_args()
    began = time.perf_counter()
    if args.samples:
        saved = json.loads(Path(args.samples).read_text(encoding="utf-8"))["samples"]
        samples = [ShapeSample(s["dataset"], s["law"], tuple(s["values"])) for s in saved]
    else:
        samples = learn_samples()
    print(f"# prior data: {time.perf_counter() - began:.0f} s", flush=True)
    priors = {d: learn(samples, leave_out=d) for d in sorted({s.dataset for s in samples})}
    for dataset, prior in priors.items():
        print(f"# prior for {dataset} tasks (from {', '.join(prior.sources)}):")
        for law, table in prior.laws.items():
            cells = ", ".join(f"{n} {m:.2f}+-{s:.2f}" for n, (m, s) in table.items())
            print(f"#   {law}: {cells}", flush=True)
    timing: dict[str, list[float]] = {"without": [], **{f"with {k:g}": [] for k in args.strengths}}
    results = {}
    for name, load in bench.select_tasks():
        if args.only not in name:
            continue
        results[name] = run_task(load, priors[dataset_of(name)], args.strengths, timing)
        cells = "  ".join(f"{k} {v * 1e3:.3f}" for k, v in results[name].items())
        print(f"# {name}: {cells}", flush=True)
    rules = ["auto", *(f"prior {k:g}" for k in args.strengths)]
    print(f"\nPredE ratio to the best anchor ({', '.join(bench.ANCHORS)}):")
    ratios, means = bench.anchor_ratios(results, rules, width=10)
    print("\nDecision rule: geomean / baseline's <= 0.95, every task's PredE / baseline's <= 1.1")
    qualifying = []
    for strength in args.strengths:
        rule = f"prior {strength:g}"
        gain, worse, worst_task = bench.against_auto(ratios, means, rule, list(results))
        passes = gain <= MIN_GAIN and worse.max() <= MAX_WORSE
        qualifying += [strength] if passes else []
        print(
            f"strength {strength:g}: geomean ratio {gain:.3f}, worst task {worse.max():.3f} "
            f"({worst_task}), better on {int(np.sum(worse < 1))} of {worse.size}: "
            f"{'qualifies' if passes else 'does not qualify'}"
        )
    chosen = min(qualifying, key=lambda k: means[f"prior {k:g}"]) if qualifying else None
    print(f"adopted strength: {chosen if chosen is not None else 'none (prior not kept)'}")
    print("\nMember fit seconds (point fits, median / total):")
    for key, values in timing.items():
        print(f"  {key:<12} {np.median(values):.3f} / {np.sum(values):.1f} ({len(values)} fits)")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "samples": [vars(s) | {"values": list(s.values)} for s in samples],
            "priors": {d: p.to_dict() for d, p in priors.items()},
            "results": results,
            "geomean": means,
            "adopted": chosen,
            "timing": timing,
        }
        Path(args.json).write_text(json.dumps(payload, indent=1))
    print(f"total {time.perf_counter() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
