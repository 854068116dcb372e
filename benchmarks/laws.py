"""Benchmark the loss-curve laws on the shared multi-power-law data (Luo et al. 2025).

For each model size and law: fit seconds, held-out PredE / WorstE / R2 (mean over the six
held-out curves of the published split) beside the published multi-power-law figures, and the
coverage of the 90% band (jackknife, conformally calibrated on left-out training runs); then the
two-run split (fit on constant_24000 + cosine_24000, predict the other seven). Rows
"LAW/joint" are one joint fit over all the sizes given (`lrlab.laws.joint`: shape parameters
shared across sizes, fitted on the same training schedules of every size); their "fit s" and
"+band s" are for the whole joint fit, all sizes together. Also the cost of the naive
(steps x points) multi-power-law evaluation relative to lrlab's quadrature, measured on the
same training runs.

    python benchmarks/laws.py [--sizes 25M,100M,400M] [--laws power,momentum,mpl,lrlab]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import numpy as np

import shared_data as shared
from lrlab.laws import REGISTRY, get_law
from lrlab.laws.joint import fit_joint
from lrlab.laws.kernel import exact_drop_sum
from lrlab.laws.metrics import coverage, evaluate, mean_metrics


def score(law, runs) -> dict[str, float]:
    """Mean metrics and band coverage over `runs`."""
    bands = [law.predict_with_band(run.lr, run.steps) for run in runs]
    table = mean_metrics(
        evaluate(run.loss, pred) for run, (pred, _, _) in zip(runs, bands, strict=True)
    )
    table["coverage"] = float(
        np.mean(
            [coverage(run.loss, low, high) for run, (_, low, high) in zip(runs, bands, strict=True)]
        )
    )
    return table


def fit_and_score(name: str, train, held_out) -> tuple[float, float, dict[str, float]]:
    """Seconds of the point fit, seconds including the jackknife band refits, and scores."""
    began = time.perf_counter()
    get_law(name, bands=False).fit(train)
    point_seconds = time.perf_counter() - began
    began = time.perf_counter()
    law = get_law(name).fit(train)
    return point_seconds, time.perf_counter() - began, score(law, held_out)


def joint_fit_and_score(
    name: str, train: dict[str, list], held_out: dict[str, list]
) -> tuple[float, float, dict[str, dict[str, float]]]:
    """Seconds of the joint point fit over all sizes, with bands, and scores per size."""
    began = time.perf_counter()
    fit_joint(name, train, bands=False)
    point_seconds = time.perf_counter() - began
    began = time.perf_counter()
    laws = fit_joint(name, train)
    full_seconds = time.perf_counter() - began
    return point_seconds, full_seconds, {s: score(laws[s], held_out[s]) for s in train}


def naive_ratio(size: str) -> tuple[float, float]:
    """Seconds of one multi-power-law evaluation on the three training runs: naive, fast."""
    train = shared.load_shared_runs(size, shared.TRAIN)
    theta = shared.published_parameters()[size]
    fast = get_law("mpl")
    features = [fast.features(run.lr, run.steps) for run in train]
    began = time.perf_counter()
    for _ in range(20):
        for item in features:
            fast.curve(theta, item)
    fast_seconds = (time.perf_counter() - began) / 20
    began = time.perf_counter()
    for run in train:
        exact_drop_sum(run.lr, run.steps, *theta[4:7])
    return time.perf_counter() - began, fast_seconds


SPLITS = (
    (
        "3-run split: fit cosine_24000, constant_24000, wsdcon_9; predict the other six",
        shared.TRAIN,
        shared.HELD_OUT,
    ),
    (
        "2-run split: fit constant_24000, cosine_24000; predict the other seven",
        shared.TRAIN_TWO,
        shared.HELD_OUT_TWO,
    ),
)


def print_splits(
    groups: list[str],
    load: Callable[[str, tuple[str, ...]], list],
    laws: list[str],
    header: str,
    row: Callable[..., None],
) -> None:
    """For each split: every law fitted per group, then jointly over the groups (laws with shape
    parameters), each result printed by ``row(group, law, fit s, +band s, scores)``.
    ``load(group, names)`` gives a group's runs."""
    for title, train_names, held_out_names in SPLITS:
        print(title)
        print(header)
        train = {group: load(group, train_names) for group in groups}
        held_out = {group: load(group, held_out_names) for group in groups}
        for group in groups:
            for name in laws:
                row(group, name, *fit_and_score(name, train[group], held_out[group]))
        if len(groups) >= 2:
            for name in laws:
                if REGISTRY[name].shape_params:
                    point, full, tables = joint_fit_and_score(name, train, held_out)
                    for group in groups:
                        row(group, f"{name}/joint", point, full, tables[group])
        print()


def sizes_and_laws(description: str, default_laws: str) -> tuple[list[str], list[str]] | None:
    """The ``--sizes`` and ``--laws`` of a shared-data benchmark; None (after saying so) when the
    shared data is missing."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--sizes", default=",".join(shared.SIZES))
    parser.add_argument("--laws", default=default_laws)
    args = parser.parse_args()
    if not shared.shared_data_available():
        print(f"shared data not found at {shared.shared_data_dir()}", file=sys.stderr)
        return None
    return args.sizes.split(","), args.laws.split(",")


def main() -> int:
    chosen = sizes_and_laws(__doc__.splitlines()[0], ",".join(REGISTRY))
    if chosen is None:
        return 1
    sizes, laws = chosen
    published = shared.published_results()
    header = (
        f"{'size':<5} {'law':<9} {'fit s':>6} {'+band s':>7} {'PredE':>8} {'WorstE':>8} "
        f"{'R2':>7} {'cover90':>7}   published MPL: PredE / WorstE / R2"
    )

    def row(size: str, name: str, point: float, full: float, table: dict[str, float]) -> None:
        ref = published[size]
        print(
            f"{size:<5} {name:<9} {point:>6.2f} {full:>7.2f} {table['PredE']:>8.5f} "
            f"{table['WorstE']:>8.5f} {table['R2']:>7.4f} {table['coverage']:>7.2f}   "
            f"{ref['PredE']:.5f} / {ref['WorstE']:.5f} / {ref['R2']:.4f}",
            flush=True,
        )

    print_splits(sizes, shared.load_shared_runs, laws, header, row)
    print("multi-power-law evaluation on the 3 training runs (published parameters)")
    for size in sizes:
        naive, fast = naive_ratio(size)
        print(
            f"{size:<5} naive {naive * 1e3:8.1f} ms   lrlab {fast * 1e3:6.2f} ms   "
            f"x{naive / fast:.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
