"""Benchmark the size-aware law (`lrlab.laws.sizes`): forecast a bigger model's loss curves from
smaller models' runs.

Shared data (Luo et al. 2025, nominal sizes 25M, 100M, 400M: the data's README gives no other
counts): the size-aware law fitted on all nine curves at 25M and 100M, and on the three training
runs at 25M and 100M, each forecasting the nine 400M curves (PredE, WorstE, R2, coverage of the
90% band), beside the reference, the per-size fit of the three 400M training runs (which has seen
400M runs). Then the band's width at sizes between and beyond the fitted ones, and which schedule
wins at 400M: the WSD family's optimum under the size-aware law at 25M, 100M and 400M, and the
forecast order of the four 24000-step schedules against the order of their measured 400M finals.

Wind tunnel: the benchmark's schedules (``shared_data.benchmark_schedules``, as
`benchmarks/laws_tunnel.py` trains them and in the same folders, so runs are shared) at several
widths: the three training schedules at every width, all nine at the largest. The size-aware law
fitted on the training runs of the smaller widths forecasts the nine at the largest, beside the
per-size fit of the largest width's training runs; `--figure` draws forecast against measured.

    python benchmarks/sizes.py [--part shared,tunnel] [--law lrlab] [--widths 32,48,64,96]
        [--out out/laws_tunnel] [--figure out/sizes_tunnel.png]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

import shared_data as shared
from laws import score  # benchmarks/laws.py
from lrlab.design.optimize import forecast, optimize_schedule
from lrlab.laws import SizeLaw, get_law
from lrlab.laws.metrics import evaluate
from lrlab.laws.sizes import describe_count
from lrlab.schedules import from_spec, parse

NOMINAL = {"25M": 25e6, "100M": 1e8, "400M": 4e8}
ALL_NINE = shared.TRAIN + shared.HELD_OUT
FINALS = ("constant_24000", "cosine_24000", "wsd_20000_24000", "wsdld_20000_24000")


def timed(function, *args, **kwargs):
    began = time.perf_counter()
    value = function(*args, **kwargs)
    return value, time.perf_counter() - began


def print_scores(label: str, seconds: float, law, runs) -> None:
    """One row: mean metrics over `runs` and the band's coverage; then PredE per curve."""
    table = score(law, runs)
    print(
        f"{label:<34} {seconds:>7.1f} {table['PredE']:>8.5f} {table['WorstE']:>8.5f} "
        f"{table['R2']:>7.4f} {table['coverage']:>7.2f}",
        flush=True,
    )
    per_curve = [
        f"{run.name}={evaluate(run.loss, law.predict_run(run))['PredE']:.5f}" for run in runs
    ]
    print(f"{'':<4}PredE per curve: {', '.join(per_curve)}")


def band_widths(size_law: SizeLaw, run, counts: list[float]) -> str:
    """Mean relative half-width of the 90% band over `run`'s steps at each count."""
    cells = []
    for count in counts:
        pred, low, high = size_law.at(count).predict_with_band(run.lr, run.steps)
        cells.append(f"{describe_count(count)} {np.mean((high - low) / (2 * pred)):.4f}")
    return ", ".join(cells)


def shared_part(law: str) -> None:
    sizes = {"25M": 25e6, "100M": 1e8}
    print(
        f"shared data, law {law!r}: nominal sizes {', '.join(NOMINAL)} (the README gives no "
        "other counts); targets: the nine 400M curves"
    )
    target = shared.load_shared_runs("400M", ALL_NINE)
    header = f"{'fit':<34} {'fit s':>7} {'PredE':>8} {'WorstE':>8} {'R2':>7} {'cover90':>7}"
    print(header)
    fits = {}
    for label, names in (
        ("size law, nine curves 25M+100M", ALL_NINE),
        ("size law, 3 training runs 25M+100M", shared.TRAIN),
    ):
        groups = {size: shared.load_shared_runs(size, names) for size in sizes}
        fitted, seconds = timed(SizeLaw(law).fit, groups, sizes)
        fits[label] = fitted
        print_scores(label, seconds, fitted.at(NOMINAL["400M"]), target)
    reference, seconds = timed(get_law(law).fit, shared.load_shared_runs("400M", shared.TRAIN))
    print_scores("reference: per-size 3-run fit, 400M", seconds, reference, target)
    print()
    nine = fits["size law, nine curves 25M+100M"]
    cosine = shared.load_shared_run("100M", "cosine_24000")  # the schedule: 400M data unused
    counts = [25e6, 50e6, 1e8, 2e8, 4e8, 1.6e9]
    print("band: mean relative half-width of the 90% band on cosine_24000's steps")
    for label, fitted in fits.items():
        print(f"  {label}: {band_widths(fitted, cosine, counts)}")
    print()
    print("which schedule wins (24000 steps, peak 3e-4, warmup 2160), nine-curve size law:")
    for size, count in NOMINAL.items():
        at = nine.at(count)
        design = optimize_schedule(at, 24000, peak=3e-4, warmup=2160, family="wsd")
        spec = design.best.schedule.to_spec()
        print(
            f"  {size}: best WSD cooldown_fraction {spec['cooldown_fraction']:.3f}, decay "
            f"{spec['decay']}, final {design.best.final_loss:.4f}; gain over cosine-10% "
            f"{design.gain('cosine-10%'):+.4f}, over wsd-20%-linear "
            f"{design.gain('wsd-20%-linear'):+.4f}"
        )
    measured = {run.name: float(run.loss[-1]) for run in target if run.name in FINALS}
    forecasts = {
        name: forecast(nine.at(NOMINAL["400M"]), parse(shared.SCHEDULE_SPECS[name]), 24000)
        for name in FINALS
    }
    print(
        "  400M, the four 24000-step schedules, forecast final [90% band] vs measured last point:"
    )
    for name in sorted(FINALS, key=lambda n: forecasts[n].final_loss):
        f = forecasts[name]
        band = f"[{f.low:.4f}, {f.high:.4f}]"
        print(f"    {name:<18} {f.final_loss:.4f} {band}  measured {measured[name]:.4f}")
    order = sorted(FINALS, key=lambda n: forecasts[n].final_loss)
    print(f"  forecast order: {' < '.join(order)}")
    print(f"  measured order: {' < '.join(sorted(FINALS, key=measured.get))}")
    print()


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def tunnel_part(law: str, widths: list[int], out: Path, figure: str | None) -> None:
    from laws_tunnel import PEAK, tunnel_setup  # benchmarks/laws_tunnel.py; needs torch
    from lrlab.study import TunnelRun, train_tunnel_runs

    total = 800
    schedules = shared.benchmark_schedules(total, round(0.09 * total), PEAK, PEAK / 10)
    largest = max(widths)
    began = time.perf_counter()
    runs, counts, tokens = {}, {}, {}
    for width in widths:
        names = tuple(schedules) if width == largest else shared.TRAIN
        by_steps: dict[int, list] = {}
        for name in names:
            spec, steps = schedules[name]
            folder = out / f"d{width}" / name
            by_steps.setdefault(steps, []).append(
                TunnelRun(name, from_spec(spec), folder, f"[d{width}]")
            )
        runs[width] = {}
        for steps, batch in sorted(by_steps.items()):
            config = {"budget": steps, "tunnel": tunnel_setup(width)}
            for run in train_tunnel_runs(config, batch, _progress):
                runs[width][run.name] = run
        record = json.loads((out / f"d{width}" / shared.TRAIN[0] / "record.json").read_text())
        counts[width] = float(record["parameters"])
        train = tunnel_setup(width)["train"]
        batch_size = train.get("batch_size", 16)
        seq_len = train.get("seq_len", 64)
        tokens[width] = total * batch_size * seq_len
    print(f"wind tunnel, law {law!r}: training (or reuse) took {time.perf_counter() - began:.0f} s")
    for width in widths:
        print(
            f"  width {width}: {describe_count(counts[width])} parameters, "
            f"{tokens[width] / counts[width]:.1f} tokens per parameter in an {total}-step run"
        )
    smaller = [w for w in widths if w != largest]
    groups = {f"d{w}": [runs[w][n] for n in shared.TRAIN] for w in smaller}
    sizes = {f"d{w}": counts[w] for w in smaller}
    target = [runs[largest][name] for name in schedules]
    header = f"{'fit':<34} {'fit s':>7} {'PredE':>8} {'WorstE':>8} {'R2':>7} {'cover90':>7}"
    print(f"targets: the nine runs at width {largest}")
    print(header)
    fitted, seconds = timed(SizeLaw(law).fit, groups, sizes)
    at = fitted.at(counts[largest])
    print_scores(f"size law, 3 runs at d{','.join(map(str, smaller))}", seconds, at, target)
    reference, seconds = timed(get_law(law).fit, [runs[largest][n] for n in shared.TRAIN])
    print_scores(f"reference: per-size 3-run fit, d{largest}", seconds, reference, target)
    probe = runs[largest]["cosine_24000"]
    grid = sorted({*counts.values(), 2 * counts[largest]})
    print(f"band half-width on cosine_24000: {band_widths(fitted, probe, grid)}")
    if figure:
        from lrlab.report.plots import LossCurve, plot_loss_curves

        curves = []
        for run in target:
            pred, low, high = at.predict_with_band(run.lr, run.steps)
            curves.append(LossCurve(run.name, run.steps, pred, low, high, run.loss))
        title = (
            f"size law from widths {', '.join(map(str, smaller))}: forecast of width {largest} "
            f"({describe_count(counts[largest])} parameters) vs measured"
        )
        plot_loss_curves(curves, figure, title=title)
        print(f"figure: {figure}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", default="shared,tunnel")
    parser.add_argument("--law", default="lrlab")
    parser.add_argument("--widths", default="32,48,64,96")
    parser.add_argument("--out", default="out/laws_tunnel")
    parser.add_argument("--figure", default="out/sizes_tunnel.png")
    args = parser.parse_args()
    parts = args.part.split(",")
    if "shared" in parts:
        if not shared.shared_data_available():
            print(f"shared data not found at {shared.shared_data_dir()}", file=sys.stderr)
            return 1
        shared_part(args.law)
    if "tunnel" in parts:
        widths = [int(width) for width in args.widths.split(",")]
        tunnel_part(args.law, widths, Path(args.out), args.figure)
    return 0


if __name__ == "__main__":
    sys.exit(main())
