"""Benchmark schedule design: `optimize_schedule` with the trust region on and off, this tree
against an older one (`--old`), in fresh processes alternating in one run, on the same fits.

Fits (written once by this tree, loaded by both):

- ``mpl-25M``: the multi-power law fitted to the first 12000 steps of the 25M ``constant_24000``
  and ``cosine_24000`` curves (the fit of tests/test_design.py), designs of 12000 steps, peak
  3e-4, warmup 500;
- ``auto-400M`` (``--real``): ``lrlab fit`` (law ``auto``, with bands, ``--warmup 2160``) on the
  three 400M training curves, designs of 24000 steps (their length), peak 3e-4, warmup 2160.

For each fit, family (``--families``, by default all: ``free``, ``wsd``, ``cosine``, ``linear``,
``two_stage``, ``infinite``) and trust region (on, off) it prints the wall seconds, the number of
forecasts (calls of `Law.final_loss_and_gradient`, the work that does not depend on the machine),
the designed schedule's forecast final loss (what the search minimises, so comparing it between
trees says which search found the better design, and is no look at held-out curves) and its
excess fall over the envelope; then on / off and new / old ratios of the seconds.

    mkdir -p /tmp/s10_old && git archive 6f26ebb | tar -x -C /tmp/s10_old
    python benchmarks/design_speed.py --old /tmp/s10_old/src --old-families [--real] [--repeats 2]

The old tree designs only the free form with the region on unless ``--old-families``; its law
code is its own, so the forecast count, not only the seconds, is compared.

``--in-process N`` instead designs each family N times in one process of this tree, the region
on and off alternating, after one design to import and warm everything, and prints the median
seconds and on / off ratios: a family's own search, without a process's start or the first
design's imports, which dominate a design of a few tenths of a second.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import shared_data as shared

HERE = Path(__file__).resolve().parent
FITS = {  # name: (steps, peak, warmup)
    "mpl-25M": (12000, 3e-4, 500),
    "auto-400M": (24000, 3e-4, shared.LOGGED_WARMUP),
}
FAMILIES = ("free", "wsd", "cosine", "linear", "two_stage", "infinite")


def write_fits(folder: Path, real: bool) -> dict[str, Path]:
    """The fits the designs start from, as files in `folder` (module docstring)."""
    from lrlab.laws import REGISTRY

    steps = FITS["mpl-25M"][0]
    runs = [r.until(steps - 1) for r in shared.load_shared_runs("25M", shared.TRAIN_TWO)]
    files = {"mpl-25M": REGISTRY["mpl"](bands=False).fit(runs).save(folder / "mpl-25M.json")}
    if real:
        curves = [shared.shared_data_dir() / "400M" / f"{name}.csv" for name in shared.TRAIN]
        files["auto-400M"] = folder / "auto-400M.json"
        command = [sys.executable, "-m", "lrlab", "fit", *map(str, curves)]
        command += ["--warmup", str(shared.LOGGED_WARMUP), "-o", str(files["auto-400M"])]
        subprocess.run(command, check=True, capture_output=True)
    return files


def worker(fit: str, path: str, family: str, region: bool) -> None:
    """(In a fresh process of one tree.) Design once and print the figures as one JSON line."""
    import numpy as np

    import lrlab
    from lrlab.design.optimize import optimize_schedule
    from lrlab.laws import load_law

    steps, peak, warmup = FITS[fit]
    law = load_law(path)
    lr = np.full(steps, peak)
    law.final_loss_and_gradient(lr)  # imports and caches, outside the timing
    forecasts = [0]
    exact = law.final_loss_and_gradient

    def counted(values: np.ndarray) -> tuple[float, np.ndarray]:
        forecasts[0] += 1
        return exact(values)

    law.final_loss_and_gradient = counted
    began, cpu = time.perf_counter(), time.process_time()
    design = optimize_schedule(
        law, steps, peak=peak, warmup=warmup, family=family, trust_region=region
    )
    seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
    lr = design.best.schedule(np.arange(steps))
    record = {
        "seconds": seconds,
        "cpu": cpu,
        "forecasts": forecasts[0],
        "final_loss": design.best.final_loss,
        "excess": None if design.excess is None else design.excess["best"],
        "lowest_share": float(lr[warmup:].min() / peak),
        "source": str(Path(lrlab.__file__).parent),
    }
    print(json.dumps(record))


def in_process(fit: str, path: Path, families: list[str], repeats: int) -> None:
    """Design each of `families` `repeats` times with the region on and off, alternating which
    goes first, in this process; print a table of median wall and CPU seconds and ratios."""
    from lrlab.design.optimize import optimize_schedule
    from lrlab.laws import load_law

    steps, peak, warmup = FITS[fit]
    law = load_law(path)
    optimize_schedule(law, steps, peak=peak, warmup=warmup, family="cosine")  # imports, caches
    times: dict[tuple[str, bool], list[tuple[float, float]]] = {}
    for repeat in range(repeats):
        for family in families:
            for region in (True, False) if repeat % 2 == 0 else (False, True):
                began, cpu = time.perf_counter(), time.process_time()
                optimize_schedule(
                    law, steps, peak=peak, warmup=warmup, family=family, trust_region=region
                )
                seconds = (time.perf_counter() - began, time.process_time() - cpu)
                times.setdefault((family, region), []).append(seconds)
    print(
        f"| fit | family | on, wall s | off, wall s | on / off, wall (CPU), medians of {repeats} |"
    )
    print("|---|---|---|---|---|")
    for family in families:
        on, off = _medians_of(times[family, True]), _medians_of(times[family, False])
        print(f"| {fit} | {family} | {on[0]:.3f} | {off[0]:.3f} | {_ratio(on, off)} |")


def _medians_of(seconds: list[tuple[float, float]]) -> tuple[float, float]:
    """The median wall and CPU seconds of (wall, CPU) pairs."""
    return statistics.median(s[0] for s in seconds), statistics.median(s[1] for s in seconds)


def run_case(source: str | None, fit: str, path: Path, family: str, region: bool) -> dict:
    """One design in a fresh process of the tree at `source` (None: this tree)."""
    environment = dict(os.environ)
    if source is not None:
        environment["PYTHONPATH"] = os.pathsep.join(
            [source, *filter(None, [environment.get("PYTHONPATH")])]
        )
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", fit, str(path)]
    command += [family, "on" if region else "off"]
    done = subprocess.run(command, check=True, capture_output=True, text=True, env=environment)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", help="the src folder of the lrlab to compare with")
    parser.add_argument("--real", action="store_true", help="add the 400M `lrlab fit` (slow)")
    parser.add_argument(
        "--old-families", action="store_true", help="every case in the old tree too"
    )
    parser.add_argument("--repeats", type=int, default=1, help="designs per case (median)")
    parser.add_argument(
        "--families",
        nargs="+",
        default=list(FAMILIES),
        choices=FAMILIES,
        help="the families to design (default: all)",
    )
    parser.add_argument(
        "--in-process", type=int, metavar="N", help="N designs a case in one process (above)"
    )
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        fit, path, family, region = args.worker
        worker(fit, path, family, region == "on")
        return
    if args.in_process:
        with tempfile.TemporaryDirectory() as folder:
            files = write_fits(Path(folder), args.real)
            for fit, path in files.items():
                in_process(fit, path, args.families, args.in_process)
        return
    trees = {"new": None, **({"old": args.old} if args.old else {})}
    results: dict[tuple[str, str, str, bool], list[dict]] = {}
    with tempfile.TemporaryDirectory() as folder:
        files = write_fits(Path(folder), args.real)
        cases = [
            (fit, family, region)
            for fit in files
            for family in args.families
            for region in (True, False)
        ]
        for repeat in range(args.repeats):
            for fit, family, region in cases:
                order = list(trees.items())
                for tree, source in order if repeat % 2 == 0 else order[::-1]:
                    wanted = args.old_families or (family == "free" and region)
                    if tree == "old" and not wanted:
                        continue
                    record = run_case(source, fit, files[fit], family, region)
                    results.setdefault((fit, family, tree, region), []).append(record)
                    print(
                        f"  {fit} {family} {tree} region={'on' if region else 'off'}: "
                        f"{record['seconds']:.2f} s ({record['cpu']:.2f} s CPU), "
                        f"{record['forecasts']} forecasts, "
                        f"final loss {record['final_loss']:.6f} ({record['source']})",
                        file=sys.stderr,
                        flush=True,
                    )
    print(
        "| fit | family | tree | region | seconds | CPU s | forecasts | forecast final loss | "
        "excess | lowest LR / peak | on / off, wall (CPU) | new / old, wall (CPU) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for (fit, family, tree, region), records in results.items():
        seconds, cpu = _medians(records)
        forecasts = statistics.median(r["forecasts"] for r in records)
        last = records[-1]
        off = results.get((fit, family, tree, False))
        old = results.get((fit, family, "old", region))
        on_off = _ratio((seconds, cpu), _medians(off)) if region and off else "-"
        new_old = _ratio((seconds, cpu), _medians(old)) if tree == "new" and old else "-"
        excess = "-" if last["excess"] is None else f"{last['excess']:.1e}"
        print(
            f"| {fit} | {family} | {tree} | {'on' if region else 'off'} | {seconds:.2f} | "
            f"{cpu:.2f} | {forecasts:.0f} | {last['final_loss']:.6f} | {excess} | "
            f"{last['lowest_share']:.3f} | {on_off} | {new_old} |"
        )


def _medians(records: list[dict]) -> tuple[float, float]:
    """The median wall and CPU seconds of `records`."""
    return (
        statistics.median(r["seconds"] for r in records),
        statistics.median(r["cpu"] for r in records),
    )


def _ratio(new: tuple[float, float], old: tuple[float, float]) -> str:
    return f"{new[0] / old[0]:.2f} ({new[1] / old[1]:.2f})"


if __name__ == "__main__":
    main()
