"""Which law a live forecast should use without a reference fit, chosen on training-only evidence.

    python benchmarks/live_rule.py [--out FILE.json] [--rows FILE.json]

Each law of `LAWS` forecasts, alone (no fallback, no reference), from a cut of:

- the shared data's three *training* curves of each size (cosine_24000, constant_24000,
  wsdcon_9), cut at 25, 50 and 75%: their final loss;
- every shared curve, and the 124M set's subset of `benchmarks/live.py`, cut at a quarter of
  their length: the loss logged at half their length ("seen": the part a live run has logged, so
  no final loss of a held-out curve is looked at). For the 124M set the final loss at 50% seen is
  scored too (another group's runs, also reported by `benchmarks/live.py`);
- the wind-tunnel runs that `benchmarks/live.py --parts tunnel` trained (five schedules, under
  ``--tunnel``), cut at 25, 50 and 75%: their final loss.

The rules compared (docs/laws.md, "Seventh round"): ``R0`` lrlab alone (the old default);
``+g`` no forecast where the plan lowers the LR and the run has not yet (by a tenth of its peak);
``Rthird`` the first law of lrlab, mpl, momentum, power that gives a forecast and is pinned down
(`lrlab.live.forecaster.pinned_down`: fewer than a third of its free parameters, or fewer than
two, with errors larger than their values); ``Rany`` the same with no parameter undetermined.
Printed: per group and cut, how many curves get a forecast and their mean error, beside a power
law in steps on the same curves. Takes about 30 minutes on two busy cores; ``--rows`` re-scores
saved rows without fitting.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np

import live as bench
import shared_data as shared
from lrlab.atomic import atomic_write_text
from lrlab.live import LiveForecaster
from lrlab.runs import Run, read_run
from lrlab.schedules import parse

LAWS = ("lrlab", "mpl", "momentum", "power")
RULES = ("R0", "R0+g", "Rthird+g", "Rany+g")


def per_law(rows: list[dict], group: str, name: str, run: Run, spec: str, cut: float, kind: str):
    """Each law's forecast of `run`'s last logged loss from its part up to `cut` of it."""
    target_step = int(run.steps[-1])
    part = run.until(int(cut * target_step))
    if part.steps.size < 4:
        return
    lr = parse(spec)(np.arange(target_step + 1)) if run.lr.size <= target_step else run.lr
    seen = lr[: int(part.steps[-1]) + 1]
    peak = float(seen.max())
    after = float(seen[int(np.argmax(seen)) :].min()) / peak
    wanted = float(lr[seen.size : target_step + 1].min(initial=peak)) / peak
    row = {
        "group": group,
        "curve": name,
        "cut": cut,
        "kind": kind,
        "target": float(run.loss[-1]),
        "power_steps": bench.power_in_steps(part, target_step),
        # what `LiveForecaster` refuses without a reference (`UNSEEN_DECAY`)
        "unseen_decay": after > 0.9 and wanted < after - 0.1,
    }
    for law in LAWS:
        forecaster = LiveForecaster(
            schedule=spec, total_steps=target_step + 1, law=law, whatifs=False, fallback=()
        )
        result = forecaster.forecast(part)
        fitted = result.law
        row[law] = {
            "status": result.status,
            "f": result.final_loss,
            "unpinned": None if fitted is None else fitted.fit_info_["unpinned"],
        }
    rows.append(row)


def collect(tunnel: Path) -> list[dict]:
    rows: list[dict] = []
    began = time.perf_counter()
    for size in shared.SIZES:
        for name in shared.TRAIN + shared.HELD_OUT:
            run, spec = shared.load_shared_run(size, name), shared.SCHEDULE_SPECS[name]
            if name in shared.TRAIN:
                for cut in (0.25, 0.5, 0.75):
                    per_law(rows, f"shared {size}", name, run, spec, cut, "final")
            half = run.until(int(0.5 * int(run.steps[-1])))
            per_law(rows, f"shared {size}", name, half, spec, 0.5, "seen")
        print(f"shared {size}: {time.perf_counter() - began:.0f} s", file=sys.stderr, flush=True)
    records = json.loads((bench.DATA_124M / "runs.json").read_text())
    for peak in sorted({record["peak_lr"] for record in records}):
        at_peak = [record for record in records if record["peak_lr"] == peak]
        stable = bench.load_124m(next(r for r in at_peak if r["kind"].startswith("stable")), None)
        for record in at_peak:
            if not (
                record["kind"].startswith(("stable", "cos"))
                or (
                    record["total_steps"] in (25000, 50000)
                    and record["cooldown_fraction"] in (0.2, 0.4, 0.8)
                )
            ):
                continue
            run, spec = bench.load_124m(record, stable), bench.spec_124m(record)
            per_law(rows, f"124M {peak:g}", record["name"], run, spec, 0.5, "final")
            half = run.until(int(0.5 * int(run.steps[-1])))
            per_law(rows, f"124M {peak:g}", record["name"], half, spec, 0.5, "seen")
        print(f"124M {peak:g}: {time.perf_counter() - began:.0f} s", file=sys.stderr, flush=True)
    for name in ("constant", "cosine", "cosine-10%", "two-stage", "wsd-20%"):
        folder = tunnel / name
        if not (folder / "record.json").is_file():
            print(f"no tunnel run {folder}: run benchmarks/live.py --parts tunnel", file=sys.stderr)
            continue
        spec = json.loads((folder / "record.json").read_text())["schedule"]
        run = read_run(folder / "eval.csv", schedule=spec)
        for cut in (0.25, 0.5, 0.75):
            per_law(rows, "tunnel", name, run, spec, cut, "final")
    return rows


def pinned(law: str, forecast: dict, every: bool) -> bool:
    """`pinned_down` (every=False) or no parameter undetermined (every=True)."""
    unpinned = forecast["unpinned"] or []
    if every:
        return not unpinned
    free = {"lrlab": 9, "mpl": 7, "momentum": 5, "power": 3}[law]
    return len(unpinned) < max(2, math.ceil(free / 3))


def rule(row: dict, name: str) -> float | None:
    """The forecast that rule `name` gives for `row` (None: none)."""
    base = name.removesuffix("+g")
    if name.endswith("+g") and row["unseen_decay"]:
        return None
    if base == "R0":
        lrlab = row["lrlab"]
        return lrlab["f"] if lrlab["status"] == "forecast" else None
    for law in LAWS:
        forecast = row[law]
        if forecast["status"] == "forecast" and pinned(law, forecast, base == "Rany"):
            return forecast["f"]
    return None


def error(value: float | None, target: float) -> float | None:
    return None if value is None or not np.isfinite(value) else abs(value / target - 1)


def report(rows: list[dict]) -> None:
    every: dict[str, list[float]] = {name: [] for name in RULES}
    for kind in ("final", "seen"):
        print(f"\n{kind}: per rule, curves given a forecast, mean error (power law in steps, same)")
        for group in sorted({row["group"] for row in rows}):
            for cut in (0.25, 0.5, 0.75):
                chosen = [
                    row
                    for row in rows
                    if row["group"] == group and row["kind"] == kind and row["cut"] == cut
                ]
                if not chosen:
                    continue
                line = f"{group:12} {cut:4.0%} n={len(chosen):2}"
                for name in RULES:
                    scored = [
                        (error(rule(row, name), row["target"]), row)
                        for row in chosen
                        if error(rule(row, name), row["target"]) is not None
                    ]
                    errors = [value for value, _ in scored]
                    power = [error(row["power_steps"], row["target"]) for _, row in scored]
                    power = [value for value in power if value is not None]
                    every[name] += errors
                    mean = f"{np.mean(errors):.4f}" if errors else "     -"
                    base = f"{np.mean(power):.4f}" if power else "     -"
                    line += f" | {name} {len(errors):2} {mean} ({base})"
                print(line)
    print("\nall cells: rule, forecasts given, mean and median error")
    for name in RULES:
        errors = every[name]
        print(f"  {name:9} {len(errors):3} {np.mean(errors):.4f} {np.median(errors):.4f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out/live/rule_rows.json", help="save the rows here")
    parser.add_argument("--rows", help="re-score rows saved by an earlier run")
    parser.add_argument("--tunnel", default="out/live/tunnel", help="the tunnel runs' folder")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # logged-LR mismatches of the 124M logs, fit warnings
    if args.rows:
        rows = json.loads(Path(args.rows).read_text())
    else:
        rows = collect(Path(args.tunnel))
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.out, json.dumps(rows))
    report(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
