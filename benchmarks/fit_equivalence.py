"""Do two versions of lrlab fit the same? The fitted parameters, band calibration and forecasts of
every law of `auto` (its members `momentum`, `mpl`, `lrlab` and the average) on every scoreboard
task of the shared data sets (the multi-power-law and 124M WSD-cooldown curves), written by one
version and compared with another's: a change made for speed must not move them beyond the
solvers' tolerance.

What is compared is what the fits give, never their scores against the held-out losses: the
forecasts (``pred``, and the band's ``low``/``high``) of each task's target schedules at their
logged steps, and the parameters of each fit and each jackknife replicate; and per task and law
the mean relative band width ``(high - low) / pred`` over those forecasts, and how far it moved.

    PYTHONPATH=/tmp/old/src python benchmarks/fit_equivalence.py dump /tmp/old.npz
    python benchmarks/fit_equivalence.py dump /tmp/new.npz
    python benchmarks/fit_equivalence.py compare /tmp/old.npz /tmp/new.npz

``--tasks`` takes the scoreboard's task patterns (default: every mpl and wsd124 task).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import numpy as np

import scoreboard
from lrlab.laws import get_law

MEMBERS = ("momentum", "mpl", "lrlab")


def dump(path: str, patterns: str) -> None:
    """Fit `auto` with bands on each task and save every number to compare, as .npz."""
    arrays: dict[str, np.ndarray] = {}
    tasks = [t for t in scoreboard.select_tasks(patterns) if t.source in ("mpl", "wsd124")]
    began = time.perf_counter()
    for task in tasks:
        fitted = get_law("auto").fit(task.fit_runs())
        laws = {"auto": fitted, **fitted.members_}
        for name, law in laws.items():
            key = f"{task.name}|{name}"
            arrays[f"{key}|params"] = law.params_
            if name != "auto":
                arrays[f"{key}|replicates"] = law.replicates_
                arrays[f"{key}|band"] = np.array([law.band_scale_, law.band_growth_, law.noise_sd_])
            for run in task.predict_runs():
                arrays[f"{key}|{run.name}"] = np.array(law.predict_with_band(run.lr, run.steps))
        print(f"{task.name}: {time.perf_counter() - began:.0f} s", file=sys.stderr, flush=True)
    np.savez(path, **arrays)


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    """The largest ``|a - b| / max(|a|, |b|)`` (0 where both are 0)."""
    scale = np.maximum(np.abs(a), np.abs(b))
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(scale > 0, np.abs(a - b) / scale, 0.0)
    return float(np.nanmax(ratio)) if ratio.size else 0.0


def compare(old_path: str, new_path: str) -> None:
    """Print, per law, the largest relative difference of each kind of number, and where."""
    old, new = np.load(old_path), np.load(new_path)
    if set(old.files) != set(new.files):
        print(f"different keys: {sorted(set(old.files) ^ set(new.files))[:10]}")
    worst: dict[tuple[str, str], tuple[float, str]] = {}
    for key in sorted(set(old.files) & set(new.files)):
        task, law, what = key.split("|")
        if what in ("params", "replicates", "band"):
            kinds = {what: (old[key], new[key])}
        else:  # a forecast: pred, low, high
            kinds = {kind: (old[key][i], new[key][i]) for i, kind in enumerate(("pred", "band"))}
            kinds["band"] = (old[key][1:], new[key][1:])
        for kind, (a, b) in kinds.items():
            difference = _relative(a, b) if a.shape == b.shape else float("inf")
            if difference >= worst.get((law, kind), (-1.0, ""))[0]:
                worst[(law, kind)] = (difference, f"{task} {what}")
    print("| law | numbers | largest relative difference | where |")
    print("|---|---|---:|---|")
    for (law, kind), (difference, where) in sorted(worst.items()):
        print(f"| {law} | {kind} | {difference:.2e} | {where} |")
    compare_widths(old, new)


def mean_widths(arrays: Any) -> dict[tuple[str, str], float]:
    """Per task and law: the mean relative band width ``(high - low) / pred`` over every forecast
    point of the task's target schedules (as `benchmarks/bands.py` reports a band's width)."""
    widths: dict[tuple[str, str], list[np.ndarray]] = {}
    for key in arrays.files:
        task, law, what = key.split("|")
        if what not in ("params", "replicates", "band"):
            pred, low, high = arrays[key]
            widths.setdefault((task, law), []).append((high - low) / pred)
    return {where: float(np.nanmean(np.concatenate(parts))) for where, parts in widths.items()}


def compare_widths(old: Any, new: Any) -> None:
    """Print, per law, how far the tasks' mean relative band widths moved (new / old - 1): the
    largest move, where, and the median over the tasks."""
    before, after = mean_widths(old), mean_widths(new)
    moves: dict[str, list[tuple[float, str]]] = {}
    for (task, law), width in sorted(before.items()):
        if (task, law) in after:
            moves.setdefault(law, []).append((after[(task, law)] / width - 1.0, task))
    print()
    print("| law | tasks | mean width, old | largest width move | where | median abs move |")
    print("|---|---:|---:|---:|---|---:|")
    for law, changes in sorted(moves.items()):
        largest, where = max(changes, key=lambda change: abs(change[0]))
        median = float(np.median([abs(change) for change, _ in changes]))
        mean_old = np.mean([before[(task, law)] for _, task in changes])
        print(
            f"| {law} | {len(changes)} | {mean_old:.4f} | {largest:+.2%} | {where} | {median:.2%} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    dumping = commands.add_parser("dump")
    dumping.add_argument("output")
    dumping.add_argument("--tasks", default="mpl-*,wsd124*")
    comparing = commands.add_parser("compare")
    comparing.add_argument("old")
    comparing.add_argument("new")
    args = parser.parse_args()
    if args.command == "dump":
        dump(args.output, args.tasks)
    else:
        compare(args.old, args.new)


if __name__ == "__main__":
    main()
