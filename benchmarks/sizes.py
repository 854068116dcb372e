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

    python benchmarks/sizes.py [--part shared,tunnel,select] [--law lrlab]
        [--widths 32,48,64,96] [--out out/laws_tunnel] [--figure out/sizes_tunnel.png]
        [--folds 32+48:64,32+48+64:96,48+64:96] [--nine] [--candidates TEXT]

``--part select`` scores the candidate forms on folds of the tunnel widths (``--folds``), as
docs/laws.md's "Ninth round, sizes" chose the default forms.
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
from lrlab.schedules import parse

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


def baseline_forms(law: str) -> dict[str, str]:
    """The fifth round's forms for `law`: ``L0`` offset, every other scale parameter power."""
    return {name: "offset" if name == "L0" else "power" for name in SizeLaw(law).forms}


#: The candidate size extrapolations of the selection (docs/laws.md, "Ninth round, sizes"):
#: ``{label: SizeLaw forms}``, each on top of the fifth round's forms (`baseline_forms`), which
#: the first is: the baseline.
CANDIDATES = {
    "baseline: L0 offset, rest power": {},
    "L0 power (Kaplan), rest power": {"L0": "power"},
    "L0 from L_ref offset, rest power": {"L0": "level"},
    "L0 from L_ref power, rest power": {"L0": "level-power"},
    "A from L_ref offset, rest power": {"A": "level"},
    "A from L_ref power, rest power": {"A": "level-power"},
    "L0 offset, alpha shared": {"alpha": "shared"},
    "L0 from L_ref offset, alpha shared": {"L0": "level", "alpha": "shared"},
    "L0 from L_ref power, alpha shared": {"L0": "level-power", "alpha": "shared"},
    "A from L_ref offset, alpha shared": {"A": "level", "alpha": "shared"},
    "A from L_ref power, alpha shared": {"A": "level-power", "alpha": "shared"},
    "L0 offset, rest held": {"A": "held", "alpha": "held", "B": "held"},
    "L0 from L_ref offset, rest held": {"L0": "level", "A": "held", "alpha": "held", "B": "held"},
    "A from L_ref offset, rest held": {"A": "level", "alpha": "held", "B": "held"},
}


def load_tunnel_width(out: Path, width: int) -> tuple[dict, float]:
    """The finished runs of one width of `benchmarks/laws_tunnel.py`'s folders, read only (a run
    not finished is left out, and said so), and the width's parameter count."""
    from lrlab.runs import read_run

    runs, count = {}, None
    for folder in sorted((out / f"d{width}").iterdir()):
        try:
            record = json.loads((folder / "record.json").read_text())
        except (OSError, ValueError):
            record = {}
        if record.get("status") != "finished":
            print(f"  d{width}/{folder.name}: not finished ({record.get('status')}), left out")
            continue
        runs[folder.name] = read_run(folder / "eval.csv", name=folder.name)
        count = float(record["parameters"])
    if count is None:
        raise SystemExit(f"{out / f'd{width}'}: no finished run")
    return runs, count


def describe_widths(out: Path, widths: list[int], total: int) -> tuple[dict, dict]:
    """Each width's finished runs and parameter count, printed with its tokens per parameter."""
    from laws_tunnel import tunnel_setup  # benchmarks/laws_tunnel.py; needs torch

    runs, counts = {}, {}
    for width in widths:
        runs[width], counts[width] = load_tunnel_width(out, width)
        train = tunnel_setup(width)["train"]
        tokens = train.get("batch_size", 16) * train.get("seq_len", 64)
        print(
            f"  width {width}: {describe_count(counts[width])} parameters, "
            f"{total * tokens / counts[width]:.1f} tokens per parameter in an {total}-step run, "
            f"{3 * total * tokens / counts[width]:.1f} in a {3 * total}-step run; "
            f"{len(runs[width])} finished runs"
        )
    return runs, counts


def tunnel_part(
    law: str, widths: list[int], out: Path, figure: str | None, forms: dict[str, str]
) -> None:
    total = 800
    largest = max(widths)
    print(f"wind tunnel, law {law!r}, forms {forms or 'default'} (runs read, none trained):")
    runs, counts = describe_widths(out, widths, total)
    smaller = [w for w in widths if w != largest]
    groups = {f"d{w}": [runs[w][n] for n in shared.TRAIN] for w in smaller}
    sizes = {f"d{w}": counts[w] for w in smaller}
    target = list(runs[largest].values())
    header = f"{'fit':<34} {'fit s':>7} {'PredE':>8} {'WorstE':>8} {'R2':>7} {'cover90':>7}"
    print(f"targets: the {len(target)} finished runs at width {largest}")
    print(header)
    label = f"3 runs at d{','.join(map(str, smaller))}"
    baseline, seconds = timed(SizeLaw(law, forms=baseline_forms(law)).fit, groups, sizes)
    print_scores(f"fifth round's forms, {label}", seconds, baseline.at(counts[largest]), target)
    fitted, seconds = timed(SizeLaw(law, forms=forms).fit, groups, sizes)
    at = fitted.at(counts[largest])
    print_scores(f"size law, {label}", seconds, at, target)
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


def select_part(
    law: str, out: Path, folds: list[tuple[list[int], int]], nine: bool, only: str | None
) -> None:
    """The selection of the size extrapolation (development data only: the wind tunnel). Each
    candidate of `CANDIDATES`, fitted on the three training runs of each fold's smaller widths
    (and, with `nine`, on all nine runs where every fitted width has them), forecasts every
    finished run of the fold's target width; the per-size 3-run fit of the target is the
    reference. The table: PredE and 90% coverage per fold, then each candidate's geometric mean
    of its PredE ratio to the baseline's, over the folds. `only`: the candidates whose label
    holds it, and the baseline."""
    import warnings

    from lrlab.laws.sizes import SizeWarning

    total = 800
    widths = sorted({w for fitted, target in folds for w in (*fitted, target)})
    print(f"selection on the wind tunnel, law {law!r} (runs read, none trained):")
    runs, counts = describe_widths(out, widths, total)
    tasks = []
    for fitted, target in folds:
        label = f"{'+'.join(map(str, fitted))}->{target}"
        tasks.append((f"{label} 3-run", fitted, target, shared.TRAIN))
        if nine and all(set(ALL_NINE) <= set(runs[w]) for w in fitted):
            tasks.append((f"{label} 9-run", fitted, target, ALL_NINE))
    table: dict[str, dict[str, tuple[float, float, float]]] = {}
    for task, fitted, target, names in tasks:
        targets = list(runs[target].values())
        reference = score(get_law(law).fit([runs[target][n] for n in shared.TRAIN]), targets)
        print(
            f"{task}: {len(targets)} target runs; reference (per-size 3-run fit of d{target}) "
            f"PredE {reference['PredE']:.5f}, coverage {reference['coverage']:.2f}",
            flush=True,
        )
        groups = {f"d{w}": [runs[w][n] for n in names] for w in fitted}
        sizes = {f"d{w}": counts[w] for w in fitted}
        for label, forms in CANDIDATES.items():
            if only and only not in label and label != next(iter(CANDIDATES)):
                continue
            forms = {**baseline_forms(law), **forms}  # unnamed: the baseline's, not the default
            size_law, seconds = timed(SizeLaw(law, forms=forms).fit, groups, sizes)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", SizeWarning)
                at = size_law.at(counts[target])
            held = ",".join(at.fit_info_["size"]["held_at_bound"]) or "-"
            result = score(at, targets)
            table.setdefault(label, {})[task] = (result["PredE"], result["coverage"], seconds)
            print(
                f"  {label:<36} PredE {result['PredE']:.5f} WorstE {result['WorstE']:.5f} "
                f"cover90 {result['coverage']:.2f} fit {seconds:5.1f} s held {held}"
                f"{' (warned)' if caught else ''}",
                flush=True,
            )
    baseline = table[next(iter(CANDIDATES))]
    print()
    print("summary: geometric mean over the tasks of PredE / baseline's; mean PredE; least cover")
    for label, cells in table.items():
        ratios = [cells[task][0] / baseline[task][0] for task in cells]
        print(
            f"  {label:<36} ratio {np.exp(np.mean(np.log(ratios))):.3f}  mean PredE "
            f"{np.mean([c[0] for c in cells.values()]):.5f}  least cover "
            f"{min(c[1] for c in cells.values()):.2f}"
        )


def parse_folds(text: str) -> list[tuple[list[int], int]]:
    """``32+48:64,48+64:96`` -> ``[([32, 48], 64), ([48, 64], 96)]``."""
    folds = []
    for item in text.split(","):
        fitted, target = item.split(":")
        folds.append(([int(w) for w in fitted.split("+")], int(target)))
    return folds


def main() -> int:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument(
        "--part",
        default="shared,tunnel",
        help="comma-separated: shared (forecasts the 400M curves: held out), tunnel (the "
        "smaller widths forecast the largest), select (the forms' candidates on tunnel folds)",
    )
    parser.add_argument("--law", default="lrlab", help="the law fitted across sizes")
    parser.add_argument(
        "--widths", default="32,48,64,96", help="tunnel: the widths; the largest is forecast"
    )
    parser.add_argument("--out", default="out/laws_tunnel", help="the tunnel runs' folder (read)")
    parser.add_argument("--figure", default="out/sizes_tunnel.png", help="tunnel: the figure")
    parser.add_argument(
        "--folds",
        default="32+48:64,32+48+64:96,48+64:96",
        help="select: the folds, FITTED+WIDTHS:TARGET, comma-separated",
    )
    parser.add_argument("--nine", action="store_true", help="select: also nine-run fits")
    parser.add_argument("--candidates", help="select: only the candidates whose label holds this")
    args = parser.parse_args()
    parts = args.part.split(",")
    unknown = sorted(set(parts) - {"shared", "tunnel", "select"})
    if unknown:
        parser.error(
            f"--part {args.part}: unknown {', '.join(unknown)}; parts: shared, tunnel, select"
        )
    if "shared" in parts:
        if not shared.shared_data_available():
            print(f"shared data not found at {shared.shared_data_dir()}", file=sys.stderr)
            return 1
        shared_part(args.law)
    if "tunnel" in parts:
        widths = [int(width) for width in args.widths.split(",")]
        tunnel_part(args.law, widths, Path(args.out), args.figure, {})
    if "select" in parts:
        select_part(args.law, Path(args.out), parse_folds(args.folds), args.nine, args.candidates)
    return 0


if __name__ == "__main__":
    sys.exit(main())
