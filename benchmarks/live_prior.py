"""Build the decay prior (`lrlab.laws.prior`) from the three data sets, and choose its time unit on
training-only cells.

    python benchmarks/live_prior.py [--write] [--cells] [--against-old [--old SRC]] [--fits FILE]

The sources, one multi-power-law fit each (cached in ``--fits``):

- ``mpl``: the shared multi-power-law curves' three *training* runs at each size (25M/100M/400M);
- ``124M``: at each of the two peak LRs of the 124M WSD-cooldown set, its stable run, its
  cosine-to-10% run of 25000 steps and its WSD run of 25000 steps cooling down linearly over 20%;
- ``tunnel``: the wind-tunnel runs of ``benchmarks/laws_tunnel.py`` (``out/laws_tunnel/d*``), the
  same three training schedules at each width whose three runs are finished.

``--write`` saves the prior of all three (time unit ``run``) as lrlab's default,
``src/lrlab/laws/decay_prior.json``, and ``out/live/prior_<unit>.json`` for both time units.

``--cells`` scores the prior, leave-one-data-set-out, on training-only cells: cuts where the run
has not begun its planned decay of

- the shared data's training curves (cosine_24000 at 10 and 25%, wsdcon_9 at 25%), with the
  prior of the 124M set and the tunnel;
- every wind-tunnel run of ``out/laws_tunnel`` (widths 32-96) at 25, 50 and 75%, and the
  ``benchmarks/live.py`` tunnel runs it does not report (constant, cosine, two-stage), with the
  prior of the two real sets.

Printed per group: cells, the mean error of the final-loss forecast for each time unit, the band's
coverage, and a power law in steps on the same cells. No held-out curve (the shared data's six,
the 124M set's, live.py's reported tunnel runs) is scored here.

``--against-old`` compares the forecasts of two trees on the same cells (docs/laws.md, "Eleventh
round, live prior speed", where it checked a change to the prior's fits), with the shipped prior
less the cell's own data set: at each cell with ``n`` usable points at its cut, the
forecast at every count from ``0.8 n`` to ``n``, by the old tree (``--old``) and by the new one
(``--new``, default this one's), each in a subprocess. Printed: each count's status and CPU time
per tree, then the rule's figures.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

import live as bench
import shared_data as shared
from lrlab.atomic import atomic_write_text
from lrlab.laws import get_law
from lrlab.laws.prior import DEFAULT_PRIOR_FILE, TIME_UNITS, DecayPrior
from lrlab.live import LiveForecaster
from lrlab.runs import Run, read_run
from lrlab.schedules import parse

TUNNEL = Path("out/laws_tunnel")
LIVE_TUNNEL = Path("out/live/tunnel")


def tunnel_run(folder: Path) -> tuple[Run, str] | None:
    """A finished tunnel run's eval curve and schedule spec (None: absent or unfinished)."""
    record_file = folder / "record.json"
    if not record_file.is_file():
        return None
    record = json.loads(record_file.read_text())
    if record.get("status") != "finished":
        return None
    return read_run(folder / "eval.csv", schedule=record["schedule"]), record["schedule"]


def sources() -> dict[str, tuple[str, list[Run]]]:
    """``{source: (data set, runs)}``: the runs each source's fit is made from."""
    found: dict[str, tuple[str, list[Run]]] = {}
    for size in shared.SIZES:
        found[f"mpl {size}"] = ("mpl", shared.load_shared_runs(size, shared.TRAIN))
    records = json.loads((bench.DATA_124M / "runs.json").read_text())
    for peak in sorted({record["peak_lr"] for record in records}):
        at_peak = [r for r in records if r["peak_lr"] == peak]
        stable_record = next(r for r in at_peak if r["kind"].startswith("stable"))
        stable = bench.load_124m(stable_record, None)
        chosen = [
            r
            for r in at_peak
            if r["total_steps"] == 25000
            and (
                r["kind"].startswith("cos-10")
                or (r["cooldown_fraction"] == 0.2 and r["decay"] == "linear")
            )
        ]
        runs = [stable, *(bench.load_124m(r, stable) for r in chosen)]
        found[f"124M {peak:g}"] = ("124M", runs)
    for folder in sorted(TUNNEL.glob("d*")):
        loaded = [tunnel_run(folder / name) for name in shared.TRAIN]
        if all(item is not None for item in loaded):
            found[f"tunnel {folder.name}"] = ("tunnel", [item[0] for item in loaded])
    return found


def fitted(path: Path) -> dict[str, tuple[str, list[Run], object]]:
    """Each source's multi-power-law fit, made once and cached in `path`."""
    cache = json.loads(path.read_text()) if path.is_file() else {}
    result = {}
    for source, (dataset, runs) in sources().items():
        if source not in cache:
            began = time.perf_counter()
            law = get_law("mpl", bands=False).fit(runs)
            cache[source] = law.to_dict()
            print(f"fit {source}: {time.perf_counter() - began:.0f} s", file=sys.stderr)
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, json.dumps(cache))
        mpl = type(get_law("mpl"))
        result[source] = (dataset, runs, mpl.from_dict(cache[source], f"{path}: {source}"))
    return result


def build(fits: dict, time_unit: str) -> DecayPrior:
    members = tuple(
        DecayPrior.member(law, runs, source, dataset, time_unit)
        for source, (dataset, runs, law) in fits.items()
    )
    return DecayPrior(members, time_unit)


def cells() -> list[tuple[str, str, Run, str, float, str]]:
    """``(group, name, run, spec, cut, left-out data set)`` of every training-only cell whose run
    has not begun its planned decay at the cut."""
    found = []
    for size in shared.SIZES:
        for name, cuts in (("cosine_24000", (0.1, 0.25)), ("wsdcon_9", (0.25,))):
            run = shared.load_shared_run(size, name)
            for cut in cuts:
                found.append((f"mpl {size}", name, run, shared.SCHEDULE_SPECS[name], cut, "mpl"))
    folders = [*sorted(TUNNEL.glob("d*/*")), *(LIVE_TUNNEL / n for n in ("constant", "cosine"))]
    folders.append(LIVE_TUNNEL / "two-stage")
    for folder in folders:
        if folder.parent.name == "d128":
            continue  # being trained now, and not a source
        loaded = tunnel_run(folder)
        if loaded is None:
            continue
        run, spec = loaded
        for cut in (0.25, 0.5, 0.75):
            found.append(
                ("tunnel", f"{folder.parent.name}/{folder.name}", run, spec, cut, "tunnel")
            )
    kept = []
    for group, name, run, spec, cut, left in found:
        final_step = int(run.steps[-1])
        lr = parse(spec)(np.arange(final_step + 1))
        seen = lr[: int(cut * final_step) + 1]
        peak = float(seen.max())
        after = float(seen[int(np.argmax(seen)) :].min()) / peak
        wanted = float(lr[seen.size :].min(initial=peak)) / peak
        if after > 0.9 and wanted < after - 0.1:  # `LiveForecaster`'s unseen decay
            kept.append((group, name, run, spec, cut, left))
    return kept


def score(priors: dict[str, DecayPrior]) -> None:
    rows = []
    for group, name, run, spec, cut, left in cells():
        final_step, final = int(run.steps[-1]), float(run.loss[-1])
        part = run.until(int(cut * final_step))
        row = {"group": group, "curve": name, "cut": cut, "final": final}
        row["power_steps"] = bench.power_in_steps(part, final_step)
        for unit, prior in priors.items():
            forecaster = LiveForecaster(
                schedule=spec, total_steps=final_step + 1, whatifs=False, prior=prior.without(left)
            )
            result = forecaster.forecast(part)
            row[unit] = result.final_loss if result.status == "forecast" else None
            row[f"{unit}_band"] = (result.final_low, result.final_high)
        rows.append(row)
        text = " ".join(
            f"{unit} {row[unit]:.4f}" if row[unit] is not None else f"{unit} -" for unit in priors
        )
        print(f"{group:9} {name:28} {cut:4.0%} final {final:.4f} {text}", flush=True)
    print("\ngroup, cells, per time unit: given, mean error, coverage (power law in steps)")
    for group in sorted({row["group"] for row in rows}):
        chosen = [row for row in rows if row["group"] == group]
        line = f"{group:9} n={len(chosen):3}"
        for unit in priors:
            given = [row for row in chosen if row[unit] is not None]
            errors = [abs(row[unit] / row["final"] - 1) for row in given]
            band = [row[f"{unit}_band"] for row in given]
            covered = [lo <= row["final"] <= hi for (lo, hi), row in zip(band, given, strict=True)]
            power = [abs(row["power_steps"] / row["final"] - 1) for row in given]
            mean = f"{np.mean(errors):.4f}" if errors else "-"
            cover = f"{np.mean(covered):.2f}" if covered else "-"
            base = f"{np.nanmean(power):.4f}" if power else "-"
            line += f" | {unit} {len(given):3} {mean} cover {cover} ({base})"
        print(line)


def dump_forecasts(path: Path) -> None:
    """``--dump FILE``: the forecast at every count of ``--against-old``'s cells, by the lrlab on
    ``PYTHONPATH``, with the shipped prior less each cell's data set, as JSON."""
    prior = DecayPrior.load(DEFAULT_PRIOR_FILE)
    rows = []
    for group, name, run, spec, cut, left in cells():
        final_step = int(run.steps[-1])
        part = run.until(int(cut * final_step))
        usable = part.steps[np.cumsum(part.lr)[part.steps] > 0]
        n = usable.size
        options = {"schedule": spec, "total_steps": final_step + 1, "whatifs": False}
        for count in range(math.ceil(0.8 * n), n + 1):
            seen = run.until(int(usable[count - 1]))
            began = time.process_time()
            result = LiveForecaster(**options, prior=prior.without(left)).forecast(seen)
            seconds = time.process_time() - began
            rows.append(
                {
                    "cell": f"{group} {name} {cut:.0%} {count}",
                    "status": result.status,
                    "final": result.final_loss,
                    "band": [result.final_low, result.final_high],
                    "seconds": seconds,
                }
            )
            print(f"{rows[-1]['cell']:48} {result.status:9} {seconds:5.2f} s", flush=True)
    atomic_write_text(path, json.dumps(rows))


def against_old(old_src: str, new_src: str) -> None:
    """``--against-old`` (module docstring): `dump_forecasts` by the old tree and by the new one,
    each in a subprocess, compared."""
    here = Path(__file__).resolve()
    found = {}
    for tree, src in (("old", old_src), ("new", new_src)):
        out = Path(f"out/live/against_old_{tree}.json")
        path = os.pathsep.join([src, str(here.parent)])
        command = [sys.executable, str(here), "--dump", str(out)]
        subprocess.run(command, env={**os.environ, "PYTHONPATH": path}, check=True)
        found[tree] = json.loads(out.read_text())
    pairs = list(zip(found["old"], found["new"], strict=True))
    fitted = [(old, new) for old, new in pairs if old["status"] != "waiting"]
    agree = [old["status"] == new["status"] for old, new in fitted]
    both = [(o, n) for o, n in fitted if o["status"] == n["status"] == "forecast"]
    same = sum(o["final"] == n["final"] for o, n in both)
    edges = [abs(n["band"][i] / o["band"][i] - 1) for o, n in both for i in (0, 1)]
    old_cpu = sum(o["seconds"] for o, _ in fitted)
    new_cpu = sum(n["seconds"] for _, n in fitted)
    print(f"\ncounts fitted: {len(fitted)}; status agrees in {np.mean(agree):.3f}")
    print(f"both forecast: {len(both)}; final loss the same to the bit in {same}")
    if edges:
        print(f"band edges |new/old - 1|: median {np.median(edges):.2e}, max {max(edges):.2e}")
    print(
        f"CPU s, all fitted counts: old {old_cpu:.1f}, new {new_cpu:.1f}, "
        f"ratio {new_cpu / old_cpu:.3f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fits", default="out/live/prior_fits.json")
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--cells", action="store_true")
    parser.add_argument(
        "--against-old", action="store_true", help="two trees' forecasts on the cells, compared"
    )
    parser.add_argument("--old", default="/tmp/s10_old/src", help="--against-old: the old src")
    here = Path(__file__).resolve().parents[1] / "src"
    parser.add_argument("--new", default=str(here), help="--against-old: the new src")
    parser.add_argument("--dump", help=argparse.SUPPRESS)
    parser.add_argument("--units", default=",".join(TIME_UNITS), help="the time units scored")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # logged-LR mismatches of the 124M logs, fit warnings
    if args.dump:
        dump_forecasts(Path(args.dump))
        return 0
    fits = fitted(Path(args.fits))
    priors = {unit: build(fits, unit) for unit in TIME_UNITS}
    for unit, prior in priors.items():
        print(f"\ntime unit {unit}:")
        for item in prior.members:
            print(
                f"  {item.source:12} b {item.b:.4f} c {item.c:10.4g} beta {item.beta:.3f} "
                f"gamma {item.gamma:.3f}"
            )
    if args.write:
        for unit, prior in priors.items():
            prior.save(f"out/live/prior_{unit}.json")
        priors["run"].save(DEFAULT_PRIOR_FILE)
    if args.cells:
        score({unit: priors[unit] for unit in args.units.split(",")})
    if args.against_old:
        against_old(args.old, args.new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
