"""Which law forecasts a run whose decay has begun but not finished? Development cells only.

    python benchmarks/live_partial.py [--laws lrlab,mpl,momentum,auto] [--cuts 0.5,0.75,0.9]
    python benchmarks/live_partial.py --timing [--rounds 3]

A cosine run at half its length has lowered its LR to about 60% of the peak and will go to 10%:
`LiveForecaster` forecasts it by extrapolating its law to LRs it has not seen. Which law (with
the smaller laws of `FALLBACK_LAWS` behind it) does that best is scored here on cells that no
benchmark reports, chosen by the rule in docs/laws.md ("Tenth round, live"):

- ``tunnel``: every run of ``out/laws_tunnel`` (widths 32-128, the nine shared schedules scaled to
  800 steps, eval curves) cut at each of ``--cuts``;
- ``124M``: the 124M WSD-cooldown runs that ``benchmarks/live.py`` does not score (cooldown
  fractions 0.1, 0.6, 0.9 at T=25000/50000, and every run of T=15000/35000), cut likewise, a
  WSD branch with the stable run's points before its own.

A cell is kept where the run has begun its decay (its LR is below 90% of its peak) and the plan
goes lower than the run has by more than `UNSEEN_DECAY` of the peak: the law's extrapolation.
Printed per group and law: cells given a forecast, mean and median ``|forecast / final - 1|``,
90% band coverage, on the cells every law forecast (like for like) and on all its own.

``--timing``: what the decay law costs a forecast with what-ifs (the work of ``lrlab watch
--once`` after reading the log): the tunnel's width-64 ``cosine_72000`` run at half its length,
forecast with the default (`DECAY_LAW`) and with ``decay_law=None`` (the old chain, lrlab first),
alternating; wall time and CPU time including the fits' worker processes, and their ratio.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import warnings
from pathlib import Path

import numpy as np

import shared_data as shared
from lrlab.live import LiveForecaster
from lrlab.live.forecaster import UNSEEN_DECAY
from lrlab.runs import Run, read_run
from lrlab.schedules import parse

TUNNEL = Path("out/laws_tunnel")
DATA_124M = shared.shared_data_dir().parent / "wsd-cooldown-124m"
REPORTED_124M = {(25000, 0.2), (25000, 0.4), (25000, 0.8), (50000, 0.2), (50000, 0.4), (50000, 0.8)}


def tunnel_cells() -> list[tuple[str, str, Run, str]]:
    """``(group, name, run, spec)`` of every finished run of ``out/laws_tunnel``."""
    found = []
    for folder in sorted(TUNNEL.glob("d*/*")):
        record_file = folder / "record.json"
        if not record_file.is_file():
            continue
        record = json.loads(record_file.read_text())
        if record.get("status") != "finished":
            continue
        run = read_run(folder / "eval.csv", schedule=record["schedule"])
        found.append(("tunnel", f"{folder.parent.name}/{folder.name}", run, record["schedule"]))
    return found


def spec_124m(record: dict) -> str:
    """A 124M run's schedule as a spec (as `benchmarks/live.py` builds it)."""
    peak, total, warmup = record["peak_lr"], record["total_steps"], record["warmup"]
    decay = "1-sqrt" if record["decay"] == "sqrt" else "linear"
    fraction = record["cooldown_fraction"]
    return (
        f"wsd(peak={peak}, total={total}, warmup={warmup}, cooldown_fraction={fraction}, "
        f"decay={decay})"
    )


def cells_124m() -> list[tuple[str, str, Run, str]]:
    """The WSD runs of the 124M set that `benchmarks/live.py` does not score."""
    records = json.loads((DATA_124M / "runs.json").read_text())
    found = []
    for peak in sorted({record["peak_lr"] for record in records}):
        at_peak = [record for record in records if record["peak_lr"] == peak]
        stable_record = next(r for r in at_peak if r["kind"].startswith("stable"))
        stable = read_run(
            DATA_124M / f"{stable_record['name']}.csv",
            schedule=f"constant(peak={peak}, warmup={stable_record['warmup']})",
        )
        for record in at_peak:
            if not record["kind"].startswith("ann"):
                continue
            if (record["total_steps"], record["cooldown_fraction"]) in REPORTED_124M:
                continue
            spec = spec_124m(record)
            own = read_run(DATA_124M / f"{record['name']}.csv", schedule=spec)
            before = stable.steps < own.steps[0]
            steps = np.concatenate([stable.steps[before], own.steps])
            loss = np.concatenate([stable.loss[before], own.loss])
            lr = parse(spec)(np.arange(int(steps[-1]) + 1))
            found.append(("124M", record["name"], Run(record["name"], lr, steps, loss), spec))
    return found


def partial_decay(run: Run, spec: str, cut_step: int) -> bool:
    """Whether at `cut_step` the run has begun its decay and the plan goes lower than it has."""
    lr = parse(spec)(np.arange(int(run.steps[-1]) + 1))
    seen = lr[: cut_step + 1]
    peak = float(seen.max())
    after = float(seen[int(np.argmax(seen)) :].min()) / peak
    wanted = float(lr[seen.size :].min(initial=peak)) / peak
    return after <= 1 - UNSEEN_DECAY and wanted < after - UNSEEN_DECAY


def cpu_seconds() -> float:
    """User + system CPU time of this process and its reaped children (the fits' workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timing(rounds: int) -> None:
    """Wall and CPU seconds of one forecast with what-ifs, decay law against none (docstring)."""
    folder = TUNNEL / "d64" / "cosine_72000"
    record = json.loads((folder / "record.json").read_text())
    run = read_run(folder / "eval.csv", schedule=record["schedule"])
    total = int(run.steps[-1]) + 1
    part = run.until(total // 2)
    seconds: dict[str, list[tuple[float, float]]] = {"auto": [], "none": []}
    for _ in range(rounds):
        for label, option in (("auto", {}), ("none", {"decay_law": None})):
            began, cpu = time.perf_counter(), cpu_seconds()
            forecaster = LiveForecaster(schedule=record["schedule"], total_steps=total, **option)
            result = forecaster.forecast(part)
            seconds[label].append((time.perf_counter() - began, cpu_seconds() - cpu))
            print(
                f"decay law {label:4s}: {result.status} with {result.law_name}, "
                f"wall {seconds[label][-1][0]:.2f} s, cpu {seconds[label][-1][1]:.2f} s",
                flush=True,
            )
    wall = [np.median([item[0] for item in seconds[label]]) for label in seconds]
    cpu = [np.median([item[1] for item in seconds[label]]) for label in seconds]
    print(
        f"median over {rounds}: wall {wall[0]:.2f} s against {wall[1]:.2f} s "
        f"(ratio {wall[0] / wall[1]:.2f}), cpu {cpu[0]:.2f} s against {cpu[1]:.2f} s "
        f"(ratio {cpu[0] / cpu[1]:.2f})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--laws", default="lrlab,mpl,momentum,auto")
    parser.add_argument("--cuts", default="0.5,0.75,0.9")
    parser.add_argument("--parts", default="tunnel,124M")
    parser.add_argument("--timing", action="store_true", help="time a forecast (docstring)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # logged-LR mismatches, fit warnings
    if args.timing:
        timing(args.rounds)
        return 0
    laws = args.laws.split(",")
    cuts = [float(cut) for cut in args.cuts.split(",")]
    began = time.perf_counter()
    runs = []
    if "tunnel" in args.parts:
        runs += tunnel_cells()
    if "124M" in args.parts and (DATA_124M / "runs.json").is_file():
        runs += cells_124m()
    rows = []
    for group, name, run, spec in runs:
        final_step, final = int(run.steps[-1]), float(run.loss[-1])
        for cut in cuts:
            cut_step = int(cut * final_step)
            if not partial_decay(run, spec, cut_step):
                continue
            part = run.until(cut_step)
            row = {"group": group, "name": name, "cut": cut}
            for law in laws:
                result = LiveForecaster(
                    schedule=spec, total_steps=final_step + 1, law=law, whatifs=False
                ).forecast(part)
                if result.status == "forecast":
                    inside = result.final_low <= final <= result.final_high
                    row[law] = (abs(result.final_loss / final - 1), inside, result.law_name)
                else:
                    row[law] = None
            rows.append(row)
            print(
                f"{group:7s} {name:42s} {cut:4.0%} "
                + " ".join(
                    f"{law}={'-' if row[law] is None else f'{row[law][0]:.4f}/{row[law][2]}'}"
                    for law in laws
                ),
                flush=True,
            )
    for group in sorted({row["group"] for row in rows}):
        mine = [row for row in rows if row["group"] == group]
        common = [row for row in mine if all(row[law] is not None for law in laws)]
        print(f"\n{group}: {len(mine)} cells, {len(common)} forecast by every law")
        print(f"{'law':10s} {'given':>5s} {'mean':>7s} {'median':>7s} {'cover':>5s}   same cells:")
        for law in laws:
            given = [row[law] for row in mine if row[law] is not None]
            same = [row[law] for row in common]
            if not given:
                print(f"{law:10s} {0:>5d}")
                continue
            errors = np.array([item[0] for item in given])
            cover = np.mean([item[1] for item in given])
            same_errors = np.array([item[0] for item in same]) if same else np.array([np.nan])
            same_cover = np.mean([item[1] for item in same]) if same else np.nan
            print(
                f"{law:10s} {len(given):>5d} {errors.mean():>7.4f} {np.median(errors):>7.4f} "
                f"{cover:>5.2f}   {same_errors.mean():>7.4f} {np.median(same_errors):>7.4f} "
                f"{same_cover:>5.2f}"
            )
    print(f"\ntotal {time.perf_counter() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
