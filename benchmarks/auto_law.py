"""Choose the adaptive law's `sharpness` and the default law on training-only folds and the wind
tunnel, then score the choice once on the scoreboard's held-out tasks.

    python benchmarks/auto_law.py --phase select            # training runs and the tunnel only
    python benchmarks/auto_law.py --phase held-out          # once: the default auto

A task's score of a law is its PredE on the task's forecast curves over the best anchor's
(`momentum`, `mpl`, `bound`; the issue's ratio); a rule's summary is the geometric mean of those
ratios over the tasks. Results are in docs/laws.md ("Eighth round") and BENCHMARKS.md.

- ``select``: each task fits ``auto`` once with every law a member and kept (``min_weight=0``),
  so that each member's own fit is that law's, and the weights of any rule and sharpness follow
  from the members' out-of-run errors (`AutoLaw.weights_for`) without refitting. The tasks are
  folds of each scoreboard task's own training runs (one fitted, another forecast;
  or fitted up to a third of their steps and forecast to the end), never a curve the task
  forecasts, and the wind-tunnel runs of `benchmarks/laws_tunnel.py` (a development set;
  runs reused from ``out/laws_tunnel``, never trained here). Prints every sharpness.
- ``held-out``: the scoreboard's multi-power-law and 124M tasks, for the default ``auto`` (the
  rule chosen), `lrlab` and the anchors; ``auto`` with its band (90% coverage).

Curves are read as a user's ``lrlab fit`` reads them: per-step LR from the logged ``lr`` column
(`shared_data.load_logged_run`, `load_wsd_cooldown_run`).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import shared_data as shared
from lrlab.errors import LrlabError
from lrlab.laws import get_law
from lrlab.laws.auto_law import MEMBERS, AutoLaw
from lrlab.laws.metrics import pred_e, worst_e
from lrlab.runs import Run, read_run

ANCHORS = ("momentum", "mpl", "bound")
SHARPNESS = (0.0, 1.0, 2.0, 4.0, 8.0, 16.0, math.inf)
SIZES = shared.SIZES
PEAKS = {"5e-4": "0.0005", "1e-4": "0.0001"}
# The runs of benchmarks/laws_tunnel.py (width 96 has all nine schedules)
TUNNEL = Path(__file__).resolve().parents[1] / "out" / "laws_tunnel"

Task = tuple[str, Callable[[], tuple[list[Run], list[Run]]]]


def _mpl(size: str, names: Sequence[str]) -> list[Run]:
    return [shared.load_logged_run(size, name) for name in names]


def _tail(run: Run, fraction: float) -> tuple[Run, Run]:
    """The run up to `fraction` of its last step, and the rest of it."""
    cut = int(run.steps[-1] * fraction)
    after = run.steps > cut
    rest = dataclasses.replace(run, steps=run.steps[after], loss=run.loss[after])
    return run.until(cut), rest


def _wsd_names(peak: str) -> dict[str, str]:
    lr = PEAKS[peak]
    return {
        "stable": f"stable-124m_lr{lr}_linear_0.0_T50000",
        "cos10": f"cos-10-124m_lr{lr}_sqrt_0.0_T25000",
        "ann": f"ann124-0.2_lr{lr}_linear_0.2_T25000",
    }


def _wsd_all(peak: str) -> list[str]:
    return sorted(
        name
        for name, record in shared.wsd_cooldown_records().items()
        if math.isclose(float(record["peak_lr"]), float(PEAKS[peak]))
    )


def _wsd(names: Sequence[str], _: None = None) -> list[Run]:
    return [shared.load_wsd_cooldown_run(name) for name in names]


def _split(read: Callable, where: Any, fitted: Sequence[str], forecast: Sequence[str]) -> Callable:
    """A task's loader: the runs `fitted` and `forecast`, read by `read` (at size `where`)."""
    if where is None:
        return lambda: (read(fitted), read(forecast))
    return lambda: (read(where, fitted), read(where, forecast))


def _others(every: Sequence[str], fitted: Sequence[str]) -> tuple[str, ...]:
    return tuple(name for name in every if name not in fitted)


def _tunnel(width: int, names: Sequence[str]) -> list[Run]:
    folder = TUNNEL / f"d{width}"
    return [read_run(folder / name / "eval.csv", name=name) for name in names]


def select_tasks() -> list[Task]:
    """Folds of training runs only, and the tunnel's splits."""
    tasks: list[Task] = []
    one, two, wsd = ("cosine_24000",), shared.TRAIN_TWO, ("wsd_20000_24000",)
    for size in SIZES:  # the 3-run task's runs; the 2-run task's; the 1-run wsd task's
        tasks += [
            (f"mpl {size} 3-run: 2 -> wsdcon_9", _split(_mpl, size, two, ("wsdcon_9",))),
            (f"mpl {size} 3-run: cosine -> 2", _split(_mpl, size, one, shared.TRAIN[1:])),
            (f"mpl {size} 3-run: to 1/3 -> end", lambda s=size: _cut(_mpl(s, shared.TRAIN))),
            (f"mpl {size} 2-run: constant -> cos", _split(_mpl, size, two[:1], one)),
            (f"mpl {size} 1-run wsd: to 1/3 -> end", lambda s=size: _cut(_mpl(s, wsd))),
        ]  # fmt: skip
    for peak in PEAKS:  # the 2-run task's runs; the 1-run task's
        n = _wsd_names(peak)
        pair, single = (n["stable"], n["cos10"]), (n["ann"],)
        tasks += [
            (f"124M {peak} 2-run: stable -> cos10", _split(_wsd, None, pair[:1], pair[1:])),
            (f"124M {peak} 2-run: cos10 -> stable", _split(_wsd, None, pair[1:], pair[:1])),
            (f"124M {peak} 2-run: to 1/3 -> end", lambda p=pair: _cut(_wsd(p))),
            (f"124M {peak} 1-run: to 1/3 -> end", lambda p=single: _cut(_wsd(p))),
        ]
    every = (*shared.TRAIN, *shared.HELD_OUT)
    if (TUNNEL / "d96" / "wsd_20000_24000" / "eval.csv").is_file():
        for label, fitted in [
            ("3-run", shared.TRAIN),
            ("2-run", shared.TRAIN_TWO),
            ("1-run cosine", ("cosine_24000",)),
            ("1-run wsd", ("wsd_20000_24000",)),
        ]:
            tasks.append(
                (f"tunnel d96 {label}", _split(_tunnel, 96, fitted, _others(every, fitted)))
            )
    return tasks


def _cut(runs: list[Run], fraction: float = 1 / 3) -> tuple[list[Run], list[Run]]:
    pairs = [_tail(run, fraction) for run in runs]
    return [head for head, _ in pairs], [rest for _, rest in pairs]


def held_out_tasks() -> list[Task]:
    """The scoreboard's tasks on the multi-power-law and 124M curves (issue 13)."""
    tasks: list[Task] = []
    every = (*shared.TRAIN, *shared.HELD_OUT)
    for size in SIZES:
        for label, fitted in [
            ("3-run", shared.TRAIN),
            ("2-run", shared.TRAIN_TWO),
            ("1-run cosine_24000", ("cosine_24000",)),
            ("1-run wsd_20000_24000", ("wsd_20000_24000",)),
        ]:
            tasks.append(
                (f"mpl {size} {label}", _split(_mpl, size, fitted, _others(every, fitted)))
            )
    for peak, other in (("5e-4", "1e-4"), ("1e-4", "5e-4")):
        n = _wsd_names(peak)
        pair, single = (n["stable"], n["cos10"]), (n["ann"],)
        everything = _wsd_all(peak)
        tasks += [
            (f"124M {peak} 2-run", _split(_wsd, None, pair, _others(everything, pair))),
            (f"124M {peak} 1-run", _split(_wsd, None, single, _others(everything, single))),
            (f"124M {peak} -> {other}", _split(_wsd, None, pair, _wsd_all(other))),
        ]
    return tasks


def score(law, targets: list[Run], bands: bool = False) -> dict[str, float]:
    """Mean PredE and WorstE (and 90% coverage with `bands`) over the target curves."""
    rows = []
    for run in targets:
        if bands:
            pred, low, high = law.predict_with_band(run.lr, run.steps, 0.9)
        else:
            pred = law.predict_run(run)
        ok = np.isfinite(pred)
        row = [pred_e(run.loss[ok], pred[ok]), worst_e(run.loss[ok], pred[ok])]
        if bands:
            row.append(float(np.mean((run.loss[ok] >= low[ok]) & (run.loss[ok] <= high[ok]))))
        rows.append(row)
    names = ("PredE", "WorstE", "coverage")[: len(rows[0])]
    return dict(zip(names, np.mean(rows, axis=0), strict=False))


def reweighted(law: AutoLaw, sharpness: float, members: Sequence[str] = MEMBERS) -> AutoLaw:
    """The fitted average with the weights of another sharpness, over `members` only (from the
    same out-of-run errors; the members are fits to the same runs)."""
    errors = np.array(
        [law.fit_info_["out_of_run_error"].get(m, math.nan) if m in members else math.inf
         for m in MEMBERS]
    )  # fmt: skip
    other = copy.copy(law)
    other.sharpness = sharpness
    other.min_weight = AutoLaw().min_weight
    other.params_ = law.weights_for(errors, sharpness)
    other.params_ = _dropped(other.params_, other.min_weight)
    other.members_ = {m: law.members_[m] for m, w in zip(MEMBERS, other.params_) if w > 0}
    return other


def _dropped(weights: np.ndarray, floor: float) -> np.ndarray:
    weights = np.where(weights < floor, 0.0, weights)
    return weights / weights.sum()


# The rules compared: every member, or the three laws with an annealing term fitted per schedule.
RULE_MEMBERS = {"auto": MEMBERS, "auto3": ("momentum", "mpl", "lrlab")}


def run_task(load: Callable, bands: bool, sharpness: tuple[float, ...]) -> dict:
    """Fit ``auto`` (every member kept) and score each member, each rule and sharpness."""
    fitted, targets = load()
    began = time.perf_counter()
    # sharpness 1: any above 0 scores every member on the folds
    law = get_law("auto", members=MEMBERS, sharpness=1.0, min_weight=0.0, bands=bands).fit(fitted)
    seconds = time.perf_counter() - began
    result: dict[str, Any] = {"members": {}, "seconds": seconds}
    for member in MEMBERS:
        if member not in law.members_:  # no finite out-of-run error: fitted here for its score
            try:
                law.members_[member] = get_law(member, bands=bands).fit(fitted)
            except LrlabError as error:
                result["members"][member] = {"error": str(error)}
                continue
        result["members"][member] = score(law.members_[member], targets)
    for rule, members in RULE_MEMBERS.items():
        for k in sharpness:
            try:
                chosen = reweighted(law, k, members)
            except LrlabError as error:
                result[f"{rule} k={k:g}"] = {"error": str(error)}
                continue
            result[f"{rule} k={k:g}"] = score(chosen, targets, bands)
            result[f"{rule} k={k:g}"]["weights"] = {
                m: round(float(w), 3) for m, w in zip(MEMBERS, chosen.params_) if w > 0
            }
    return result


def ratio_table(results: dict[str, dict], rules: list[str]) -> None:
    """`anchor_ratios` of this script's results (a rule that could not be fitted has no PredE:
    counted as no forecast)."""
    scores = {}
    for task, result in results.items():
        rows = {**result["members"], **{rule: result[rule] for rule in rules if rule in result}}
        scores[task] = {name: row["PredE"] for name, row in rows.items() if "PredE" in row}
    anchor_ratios(scores, rules)


def anchor_ratios(
    scores: dict[str, dict[str, float]], rules: list[str], width: int = 11
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Print, per task (`scores`: task -> law or rule -> PredE), the PredE x1e-3 of the best
    anchor and each rule's ratio to it ("failed" where the rule has no PredE); then each rule's
    geometric mean and largest ratio. Returns each rule's ratios, task by task (NaN where it
    failed), and their geometric means over the tasks it did not fail."""
    ratios = {rule: np.full(len(scores), np.nan) for rule in rules}
    print(f"{'task':<36} {'best anchor':>16} " + " ".join(f"{r:>{width}}" for r in rules))
    for index, (task, score) in enumerate(scores.items()):
        best = min((a for a in ANCHORS if a in score), key=score.get)
        cells = []
        for rule in rules:
            if rule not in score:
                cells.append(f"{'failed':>{width}}")
                continue
            ratios[rule][index] = score[rule] / score[best]
            cells.append(f"{ratios[rule][index]:>{width}.3f}")
        print(f"{task:<36} {best:>8} {score[best] * 1e3:>7.3f} " + " ".join(cells), flush=True)
    kept = {rule: values[np.isfinite(values)] for rule, values in ratios.items()}
    means = {rule: math.exp(float(np.mean(np.log(values)))) for rule, values in kept.items()}
    print(f"{'geometric mean':<36} {'':>16} " + " ".join(f"{means[r]:>{width}.3f}" for r in rules))
    print(f"{'largest':<36} {'':>16} " + " ".join(f"{max(kept[r]):>{width}.3f}" for r in rules))
    return ratios, means


def against_auto(
    ratios: dict[str, np.ndarray], means: dict[str, float], rule: str, tasks: Sequence[str]
) -> tuple[float, np.ndarray, str]:
    """A candidate `rule` against today's `auto` (`anchor_ratios`' results): its geometric mean
    over `auto`'s, each task's PredE over `auto`'s, and the task where that is largest."""
    worse = ratios[rule] / ratios["auto"]
    return means[rule] / means["auto"], worse, tasks[int(np.argmax(worse))]


def held_out_task(load: Callable) -> dict:
    """The default ``auto`` (with its band) and each anchor on one scoreboard task."""
    fitted, targets = load()
    began = time.perf_counter()
    law = get_law("auto").fit(fitted)
    result: dict[str, Any] = {"seconds": time.perf_counter() - began, "members": {}}
    result["auto"] = score(law, targets, bands=True)
    result["auto"]["weights"] = {
        m: round(float(w), 3) for m, w in zip(MEMBERS, law.params_) if w > 0
    }
    for member in ("lrlab", *ANCHORS):
        try:
            one = law.members_.get(member) or get_law(member, bands=False).fit(fitted)
        except LrlabError as error:
            result["members"][member] = {"error": str(error)}
            continue
        result["members"][member] = score(one, targets)
    return result


def _cell(key: str, value: dict) -> str:
    if "PredE" not in value:
        return f"{key} failed"
    cover = f" cov {value['coverage']:.2f}" if "coverage" in value else ""
    return f"{key} {value['PredE'] * 1e3:.3f}/{value['WorstE'] * 1e3:.2f}{cover}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phase", choices=("select", "held-out"), required=True)
    parser.add_argument("--only", default="", help="run only tasks whose name contains this")
    parser.add_argument("--json", help="also write every task's scores to this file")
    args = parser.parse_args()
    began = time.perf_counter()
    select = args.phase == "select"
    tasks = select_tasks() if select else held_out_tasks()
    results = {}
    for name, load in tasks:
        if args.only not in name:
            continue
        r = run_task(load, False, SHARPNESS) if select else held_out_task(load)
        results[name] = r
        rules = [(k, v) for k, v in r.items() if k.startswith("auto")]
        line = "  ".join(_cell(k, v) for k, v in [*r["members"].items(), *rules])
        print(f"# {name} ({r['seconds']:.1f} s fit): {line}", flush=True)
        for key, value in rules:
            print(f"#   {key} weights {value.get('weights')}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    if select:
        rules = [f"{rule} k={k:g}" for rule in RULE_MEMBERS for k in SHARPNESS]
    else:
        rules = ["auto"]
    rules += ["lrlab", *ANCHORS]
    print(f"\nPredE ratio to the best anchor ({', '.join(ANCHORS)}) per task:")
    ratio_table(results, rules)
    if not select:
        print("\nWorstE x1e-3 of auto and the best anchor's (the lowest of the anchors):")
        for task, r in results.items():
            chosen = r["auto"]
            worst = min(r["members"][a].get("WorstE", math.inf) for a in ANCHORS)
            print(
                f"{task:<36} {chosen['WorstE'] * 1e3:7.3f}  best anchor {worst * 1e3:7.3f}  "
                f"cover90 {chosen['coverage']:.2f}"
            )
    print(f"total {time.perf_counter() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
