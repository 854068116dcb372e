"""How long a live forecast with the decay prior takes, old tree against new, and without the prior.

    python benchmarks/live_prior_speed.py [--old SRC] [--new SRC] [--cases NAMES] [--refits R]
        [--every K]

Each case is a real run still at its peak LR, cut where its planned decay has not begun: the
shared 24000-step WSD curves (``wsd_20000_24000``) at 25% and 50% of their steps, and the
wind-tunnel runs of the same schedule (``out/laws_tunnel/d*/wsd_20000_24000``) at 50%.
For each, in a fresh subprocess per tree (``PYTHONPATH`` = the tree's ``src``; the old tree, the
session's starting point, is ``/tmp/s10_old/src``), the trees taking turns (old first for the
first case, new first for the next, ...):

- the first forecast with ``prior="default"`` (a fresh `LiveForecaster`, what-ifs on, as
  ``lrlab watch --prior default``), its CPU and wall time split by phase: the fit that finds the
  stable scale (the old tree's; in the new one the centre's fit gives it), the centre with bands,
  the member fits, and the rest (the what-ifs' scoring);
- `--refits` successive refits of the same forecaster, each `--every` points later (as ``lrlab
  watch --every K`` refits);
- the same first forecast and refits without the prior: the plan held at the run's LR (so there
  is no decay to forecast and the run's own law is fitted, with bands, warm-started as ``lrlab
  watch`` does): what a refit costs without the prior, measured in the same process.

Printed: per case and tree the CPU seconds of each phase, of the first forecast and the mean
refit; the new/old ratios; the new tree's refit with the prior over its refit without; and every
forecast (final loss and band) of both trees side by side. Only forecasts are printed, never a
curve's final loss: the shared WSD curves are held out. CPU time counts forked workers (a fit
made in one is counted in the rest, not its phase: the phases time the fits in this process).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OLD = Path("/tmp/s10_old/src")
# The cases run by default: every shared size at 50%, 25M at 25%, two tunnel widths (others, such
# as 400M@0.25 or d128@0.5, by --cases).
CASES = ("25M@0.25", "25M@0.5", "100M@0.5", "400M@0.5", "d64@0.5", "d96@0.5")
CURVE = "wsd_20000_24000"
PHASES = ("scale", "centre", "members", "rest")


def cpu_seconds() -> float:
    """CPU seconds of this process and its waited-for children (forked fit workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def load_case(case: str) -> tuple[object, str, int, int]:
    """``(run, schedule spec, total steps, cut step)`` of a case ``WHERE@FRACTION``."""
    import shared_data as shared
    from lrlab.runs import read_run

    where, fraction = case.split("@")
    if where.startswith("d"):
        folder = ROOT / "out" / "laws_tunnel" / where / CURVE
        record = json.loads((folder / "record.json").read_text())
        if record.get("status") != "finished":
            raise SystemExit(f"{folder}: not a finished tunnel run")
        spec = record["schedule"]
        run = read_run(folder / "eval.csv", schedule=spec)
        total = int(run.steps[-1]) + 1
    else:
        run = shared.load_shared_run(where, CURVE)
        spec, total = shared.SCHEDULE_SPECS[CURVE], shared.TOTAL_STEPS[CURVE]
    return run, spec, total, int(float(fraction) * (total - 1))


def measure(case: str, refits: int, every: int) -> dict:
    """One tree's figures for `case` (module docstring): run in the subprocess."""
    from lrlab.laws import base
    from lrlab.live import LiveForecaster

    run, spec, total, cut = load_case(case)
    fits: list[tuple[bool, float]] = []  # (with bands, CPU seconds) of each fit, in order
    plain_fit = base.Law.fit

    def timed_fit(self, *args, **kwargs):
        began = time.process_time()
        try:
            return plain_fit(self, *args, **kwargs)
        finally:
            fits.append((bool(self.bands), time.process_time() - began))

    base.Law.fit = timed_fit  # every law's fit, the old tree's and the new's

    def forecast(forecaster: LiveForecaster, step: int) -> dict:
        fits.clear()
        cpu, wall = cpu_seconds(), time.perf_counter()
        result = forecaster.forecast(run.until(step))
        cpu, wall = cpu_seconds() - cpu, time.perf_counter() - wall
        phases = dict.fromkeys(PHASES, 0.0)
        for index, (bands, seconds) in enumerate(fits):
            phases["centre" if bands else "scale" if index == 0 else "members"] += seconds
        phases["rest"] = cpu - sum(phases.values())
        return {
            "step": int(result.step),
            "points": result.points,
            "status": result.status,
            "final": result.final_loss,
            "band": [result.final_low, result.final_high],
            "cpu": cpu,
            "wall": wall,
            "phases": phases,
            "fits": len(fits),
        }

    lr = np.asarray(run.lr)
    usable = run.steps[np.cumsum(lr)[run.steps] > 0]
    first = int(np.count_nonzero(usable <= cut))
    # The refits' steps, every `every` points, while the run is still at its peak LR.
    peak_at = int(np.argmax(lr))
    below = np.flatnonzero(lr[peak_at:] < lr[peak_at])
    decay = peak_at + int(below[0]) if below.size else lr.size
    indices = [first - 1 + every * k for k in range(refits + 1)]
    steps = [int(usable[i]) for i in indices if i < usable.size and usable[i] < decay]
    out: dict = {"case": case, "prior": [], "plain": []}
    for key, options in (("prior", {"prior": "default"}), ("plain", {})):
        schedule = spec if key == "prior" else None  # plain: the LR held, no decay ahead
        forecaster = LiveForecaster(schedule=schedule, total_steps=total, **options)
        out[key] = [forecast(forecaster, step) for step in steps]
    return out


def worker(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    warnings.simplefilter("ignore")
    print(json.dumps(measure(args.worker, args.refits, args.every)))
    return 0


def run_tree(src: Path, case: str, args: argparse.Namespace) -> dict:
    """`measure` of `case` in a subprocess that imports lrlab from `src`."""
    command = [sys.executable, __file__, "--worker", case]
    command += ["--refits", str(args.refits), "--every", str(args.every)]
    environment = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{ROOT / 'benchmarks'}"}
    done = subprocess.run(command, env=environment, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{src} {case}: failed\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def shown(item: dict) -> str:
    if item["status"] != "forecast":
        return f"{item['status']:>24}"
    low, high = item["band"]
    return f"{item['final']:.5f} [{low:.4f}, {high:.4f}]"


def report(results: dict[str, dict[str, dict]]) -> None:
    print("\nCPU seconds, first forecast with the prior, by phase (old -> new)")
    print(f"{'case':10} " + " ".join(f"{phase:>15}" for phase in PHASES) + f" {'total':>15}")
    for case, trees in results.items():
        old, new = trees["old"]["prior"][0], trees["new"]["prior"][0]
        cells = [f"{old['phases'][p]:6.2f} ->{new['phases'][p]:6.2f}" for p in PHASES]
        total = f"{old['cpu']:6.2f} ->{new['cpu']:6.2f}"
        print(f"{case:10} " + " ".join(f"{cell:>15}" for cell in cells) + f" {total:>15}")
    print("\nCPU seconds, a refit with the prior by phase, mean of the later ones (old -> new)")
    for case, trees in results.items():
        means = {}
        for tree in ("old", "new"):
            later = trees[tree]["prior"][1:] or trees[tree]["prior"]
            means[tree] = {p: float(np.mean([item["phases"][p] for item in later])) for p in PHASES}
        cells = [f"{means['old'][p]:6.2f} ->{means['new'][p]:6.2f}" for p in PHASES]
        print(f"{case:10} " + " ".join(f"{cell:>15}" for cell in cells))
    print(
        "\nCPU seconds (wall) per forecast; refit = mean of the later ones; ratios new/old, "
        "and the new tree's refit with the prior / without"
    )
    header = f"{'case':10} {'first old':>13} {'first new':>13} {'ratio':>6}"
    header += f" {'refit old':>13} {'refit new':>13} {'ratio':>6} {'no prior':>13} {'prior/no':>8}"
    print(header)
    ratios: dict[str, list[float]] = {"first": [], "refit": [], "against": []}
    for case, trees in results.items():
        line = f"{case:10}"
        figures = {}
        for tree in ("old", "new"):
            items = trees[tree]["prior"]
            later = items[1:] or items
            figures[tree] = (
                items[0]["cpu"],
                items[0]["wall"],
                float(np.mean([item["cpu"] for item in later])),
                float(np.mean([item["wall"] for item in later])),
            )
        plain = trees["new"]["plain"]
        plain_later = plain[1:] or plain
        plain_cpu = float(np.mean([item["cpu"] for item in plain_later]))
        plain_wall = float(np.mean([item["wall"] for item in plain_later]))
        old, new = figures["old"], figures["new"]
        ratios["first"].append(new[0] / old[0])
        ratios["refit"].append(new[2] / old[2])
        ratios["against"].append(new[2] / plain_cpu)
        line += (
            f" {old[0]:5.2f} ({old[1]:5.2f}) {new[0]:5.2f} ({new[1]:5.2f}) {new[0] / old[0]:6.2f}"
        )
        line += (
            f" {old[2]:5.2f} ({old[3]:5.2f}) {new[2]:5.2f} ({new[3]:5.2f}) {new[2] / old[2]:6.2f}"
        )
        line += f" {plain_cpu:5.2f} ({plain_wall:5.2f}) {new[2] / plain_cpu:8.2f}"
        print(line)
    geo = {key: float(np.exp(np.mean(np.log(values)))) for key, values in ratios.items()}
    print(
        f"geometric means: first new/old {geo['first']:.2f}, refit new/old {geo['refit']:.2f}, "
        f"refit with the prior / without {geo['against']:.2f}"
    )
    print("\nforecasts with the prior, old | new (final loss [band]); * where they differ")
    for case, trees in results.items():
        for old, new in zip(trees["old"]["prior"], trees["new"]["prior"], strict=True):
            same = (old["status"], old["final"], old["band"]) == (
                new["status"],
                new["final"],
                new["band"],
            )
            mark = " " if same else "*"
            print(f"{case:10} step {old['step']:6} {shown(old)} | {shown(new)} {mark}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", default=str(OLD), help="the old tree's src folder")
    parser.add_argument("--new", default=str(ROOT / "src"), help="the new tree's src folder")
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--refits", type=int, default=2, help="refits after the first forecast")
    parser.add_argument("--every", type=int, default=5, help="points between refits")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    trees = {"old": Path(args.old), "new": Path(args.new)}
    results: dict[str, dict[str, dict]] = {}
    for index, case in enumerate(args.cases.split(",")):
        order = ("old", "new") if index % 2 == 0 else ("new", "old")
        results[case] = {tree: run_tree(trees[tree], case, args) for tree in order}
        print(f"{case}: done", file=sys.stderr, flush=True)
    report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
