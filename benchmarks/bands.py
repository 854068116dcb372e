"""Do the laws' 90% bands cover held-out curves, how wide are they, and what do they cost?

For each task (a set of fitted runs and the held-out runs forecast from them) and law: the
coverage of the nominal band over the held-out points, its mean relative width
``(high - low) / pred`` (so a band can not buy coverage unseen), the coverage of the points
beyond 1.5x the longest fitted run's last step ("far"), the fit seconds with bands, and, as a
baseline in the same run, the seconds of the same fit without bands; and the same figures for the
same fit's band without its widening with the schedule's distance (columns ending in 1: the
seventh round's band) and without that and its growth with the extrapolation (ending in 0).

Tasks (those whose data is absent are skipped, saying so):

- multi-power-law curves (`../shared/data/mpl-loss-curves`), each size: the 3-run split, the
  2-run split (`constant_24000`, `cosine_24000`), and 1-run fits of `cosine_24000` alone and
  `wsd_20000_24000` alone, each predicting the other eight curves; and the 3-run and 2-run joint
  fits over the sizes (`lrlab.laws.joint`, laws with shape parameters);
- wsd-cooldown-124m (`../shared/data/wsd-cooldown-124m`), each peak LR: 2-run (`stable-124m` +
  `cos-10-124m` T=25000, predict the rest), 1-run (`ann124-0.2` linear T=25000 alone), and
  across peaks (the 2-run pair at one peak predicting every curve of the other);
- the wind-tunnel benchmark's runs (`out/laws_tunnel`, trained by `benchmarks/laws_tunnel.py`;
  never trained here): the 3-run and 2-run splits of every width whose runs are there.

Runs are read from their files with the per-step LR of the logged `lr` column (124M) or the
schedule (shared curves and tunnel runs), as a user's `lrlab fit` would.

    python benchmarks/bands.py [--laws lrlab] [--tasks mpl,124m,tunnel,joint] [--json FILE]
    python benchmarks/bands.py --cost 5   # the growth calibration's cost on the 400M 3-run fit
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import shared_data as shared
from lrlab.laws import REGISTRY, base, get_law
from lrlab.laws.joint import fit_joint
from lrlab.laws.metrics import pred_e, relative_widths
from lrlab.runs import Run, read_run

DATA_124M = shared.shared_data_dir().parent / "wsd-cooldown-124m"
TUNNEL = Path(__file__).resolve().parents[1] / "out" / "laws_tunnel"
FAR = 1.5  # "far" points: beyond this multiple of the longest fitted run's last step

Task = tuple[str, list[Run], list[Run]]


def mpl_tasks() -> list[Task]:
    """The multi-power-law splits of every size."""
    if not shared.shared_data_available():
        print(f"(skipped: no multi-power-law curves at {shared.shared_data_dir()})")
        return []
    every = shared.TRAIN + shared.HELD_OUT
    tasks = []
    for size in shared.SIZES:
        runs = {name: shared.load_shared_run(size, name) for name in every}
        for label, fitted in (
            ("3-run", shared.TRAIN),
            ("2-run", shared.TRAIN_TWO),
            ("1-run cos", ("cosine_24000",)),
            ("1-run wsd", ("wsd_20000_24000",)),
        ):
            train = [runs[name] for name in fitted]
            held = [runs[name] for name in every if name not in fitted]
            tasks.append((f"mpl {size} {label}", train, held))
    return tasks


def tasks_124m() -> list[Task]:
    """The 124M tasks of each peak LR, and across peaks."""
    if not (DATA_124M / "runs.json").is_file():
        print(f"(skipped: no 124M curves at {DATA_124M})")
        return []
    records = json.loads((DATA_124M / "runs.json").read_text())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # notes on the logged LR's rounding, not the point here
        runs = {r["name"]: read_run(DATA_124M / f"{r['name']}.csv") for r in records}
    peaks = sorted({r["peak_lr"] for r in records}, reverse=True)
    at_peak = {p: [r["name"] for r in records if r["peak_lr"] == p] for p in peaks}
    pairs, tasks = {}, []
    for peak in peaks:
        pair = (
            f"stable-124m_lr{peak:g}_linear_0.0_T50000",
            f"cos-10-124m_lr{peak:g}_sqrt_0.0_T25000",
        )
        pairs[peak] = pair
        one = f"ann124-0.2_lr{peak:g}_linear_0.2_T25000"
        for label, fitted in (("2-run", pair), ("1-run", (one,))):
            held = [runs[n] for n in at_peak[peak] if n not in fitted]
            tasks.append((f"124M {peak:g} {label}", [runs[n] for n in fitted], held))
    for peak, other in ((peaks[0], peaks[1]), (peaks[1], peaks[0])):
        train = [runs[n] for n in pairs[peak]]
        tasks.append((f"124M {peak:g}->{other:g}", train, [runs[n] for n in at_peak[other]]))
    return tasks


def tunnel_tasks() -> list[Task]:
    """The 3-run and 2-run splits of every tunnel width whose training and held-out runs exist."""
    tasks = []
    for folder in sorted(TUNNEL.glob("d*"), key=lambda path: int(path.name[1:])):
        runs = {}
        for name in shared.TRAIN + shared.HELD_OUT:
            record = folder / name / "record.json"
            finished = record.is_file() and json.loads(record.read_text())["status"] == "finished"
            if finished:  # not one that is being trained now
                runs[name] = read_run(folder / name / "eval.csv", name=name)
        for label, fitted, held_out in (
            ("3-run", shared.TRAIN, shared.HELD_OUT),
            ("2-run", shared.TRAIN_TWO, shared.HELD_OUT_TWO),
        ):
            held = [runs[name] for name in held_out if name in runs]
            if all(name in runs for name in fitted) and held:
                train = [runs[name] for name in fitted]
                tasks.append((f"tunnel {folder.name} {label} ({len(held)} held)", train, held))
    if not tasks:
        print(f"(skipped: no tunnel runs at {TUNNEL}; benchmarks/laws_tunnel.py trains them)")
    return tasks


def score(law, train: list[Run], held: list[Run]) -> dict[str, float]:
    """`band_scores` of the fitted band; (keys ending in 1) of the same fit's band without its
    widening with the schedule's distance from the fitted runs' (``band_distance_sd_ = 0``): the
    band of the seventh round; and (keys ending in 0) without that and without its growth beyond
    the fitted runs (``band_growth_ = 0``): the band before it. Each also in the members of an
    averaging law such as `auto`, whose band is made of theirs. `growth` and `distance` are the
    largest rate and spread per unit of distance of the law and its members."""
    table = band_scores(law, train, held)
    laws = [law, *getattr(law, "members_", {}).values()]
    rates = [(each.band_growth_, each.band_distance_sd_) for each in laws]
    try:
        for each in laws:
            each.band_distance_sd_ = 0.0
        before = band_scores(law, train, held)
        for each in laws:
            each.band_growth_ = 0.0
        flat = band_scores(law, train, held)
    finally:
        for each, (growth, distance) in zip(laws, rates, strict=True):
            each.band_growth_, each.band_distance_sd_ = growth, distance
    return {
        **table,
        **{f"{key}1": before[key] for key in ("coverage", "width", "far")},
        **{f"{key}0": flat[key] for key in ("coverage", "width", "far")},
        "growth": max(growth for growth, _ in rates),
        "distance": max(distance for _, distance in rates),
    }


def band_scores(law, train: list[Run], held: list[Run]) -> dict[str, float]:
    """PredE (mean over the curves), and over the held-out points: the band's coverage, its mean
    relative width, and its coverage beyond `FAR` times the longest fitted run."""
    reach = max(int(run.steps[-1]) for run in train)
    inside, widths, far, errors = [], [], [], []
    for run in held:
        pred, low, high = law.predict_with_band(run.lr, run.steps)
        ok = np.isfinite(pred)  # no forecast where no LR has been applied yet
        inside.append((run.loss >= low) & (run.loss <= high))
        widths.append(relative_widths(pred[ok], low[ok], high[ok]))
        far.append(inside[-1][run.steps > FAR * reach])
        errors.append(pred_e(run.loss[ok], pred[ok]))
    far_points = np.concatenate(far)
    return {
        "PredE": float(np.mean(errors)),
        "coverage": float(np.mean(np.concatenate(inside))),  # of the held-out points, pooled
        "width": float(np.mean(np.concatenate(widths))),
        "far": float(np.mean(far_points)) if far_points.size else float("nan"),
        "far_points": int(far_points.size),
    }


def timed(fit: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[float, Any]:
    """Seconds of ``fit(*args, **kwargs)``, and its result."""
    began = time.perf_counter()
    result = fit(*args, **kwargs)
    return time.perf_counter() - began, result


def growth_cost(name: str, size: str, repeats: int) -> None:
    """Seconds of the fit with bands of `size`'s three training runs, with and without the
    band's growth calibration, alternating, `repeats` times each: the median of each and their
    ratio. Without it is the fit as it was before (`lrlab.laws.base._GROWTH_FOLDS` emptied for
    the measurement only)."""
    train = shared.load_shared_runs(size, shared.TRAIN)
    seconds: dict[str, list[tuple[float, float]]] = {"with": [], "without": []}
    folds = base._GROWTH_FOLDS
    for _ in range(repeats):
        for key, times in seconds.items():
            base._GROWTH_FOLDS = folds if key == "with" else ()
            cpu = time.process_time()
            try:
                wall = timed(get_law(name).fit, train)[0]
            finally:
                base._GROWTH_FOLDS = folds
            times.append((wall, time.process_time() - cpu))
    # CPU seconds beside wall: on a shared machine the wall time also measures the neighbours.
    for unit, column in (("wall", 0), ("CPU", 1)):
        with_, without = (
            float(np.median([t[column] for t in seconds[key]])) for key in ("with", "without")
        )
        print(
            f"fit with bands, {name} {size} 3-run, median of {repeats}, {unit}: {with_:.2f} s "
            f"with the growth calibration, {without:.2f} s without: x{with_ / without:.2f}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--laws", default="lrlab")
    parser.add_argument("--tasks", default="mpl,124m,tunnel,joint")
    parser.add_argument("--json", help="also write the rows here")
    parser.add_argument(
        "--cost", type=int, default=0, help="time the 400M 3-run fit this many times instead"
    )
    args = parser.parse_args()
    laws, kinds = args.laws.split(","), args.tasks.split(",")
    print(f"machine: {platform.machine()}, python {platform.python_version()}")
    if args.cost:
        for name in laws:
            growth_cost(name, "400M", args.cost)
        return 0
    tasks = []
    tasks += mpl_tasks() if "mpl" in kinds else []
    tasks += tasks_124m() if "124m" in kinds else []
    tasks += tunnel_tasks() if "tunnel" in kinds else []
    header = (
        f"{'task':<32} {'law':<9} {'fit s':>6} {'+band s':>7} {'PredE':>8} {'growth':>6} "
        f"{'dist':>5} {'cover':>6} {'width':>7} {'far':>5} {'cover1':>6} {'width1':>7} "
        f"{'cover0':>6} {'width0':>7} {'far0':>5} {'(n)':>5}"
    )
    print(header)
    rows = []

    def row(task: str, name: str, point: float, full: float, table: dict) -> None:
        rows.append({"task": task, "law": name, "fit_s": point, "band_s": full, **table})
        print(
            f"{task:<32} {name:<9} {point:>6.2f} {full:>7.2f} {table['PredE']:>8.5f} "
            f"{table['growth']:>6.2f} {table['distance']:>5.3f} {table['coverage']:>6.3f} "
            f"{table['width']:>7.4f} {table['far']:>5.2f} {table['coverage1']:>6.3f} "
            f"{table['width1']:>7.4f} {table['coverage0']:>6.3f} {table['width0']:>7.4f} "
            f"{table['far0']:>5.2f} {table['far_points']:>5}",
            flush=True,
        )

    for task, train, held in tasks:
        for name in laws:
            point, _ = timed(get_law(name, bands=False).fit, train)
            full, law = timed(get_law(name).fit, train)
            row(task, name, point, full, score(law, train, held))
    if "joint" in kinds and shared.shared_data_available():
        for label, fitted, held_out in (
            ("3-run", shared.TRAIN, shared.HELD_OUT),
            ("2-run", shared.TRAIN_TWO, shared.HELD_OUT_TWO),
        ):
            train = {s: shared.load_shared_runs(s, fitted) for s in shared.SIZES}
            held = {s: shared.load_shared_runs(s, held_out) for s in shared.SIZES}
            for name in laws:
                if not REGISTRY[name].shape_params:
                    continue
                point, _ = timed(fit_joint, name, train, bands=False)
                full, fitted_laws = timed(fit_joint, name, train)
                for size in shared.SIZES:
                    table = score(fitted_laws[size], train[size], held[size])
                    row(f"mpl {size} {label} joint", name, point, full, table)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
