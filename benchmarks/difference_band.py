"""Does the band of a forecast *difference* (`Law.compare_final`) cover measured differences, and
how much narrower is it than each schedule's own band?

A study compares schedules by their forecast final losses. Each forecast's band is wide, but much
of its error is shared by the two forecasts (a fit that forecasts one schedule high forecasts the
other high too), so the band of their difference can be narrower. This script fits a law to a
few real runs, forecasts every pair of held-out runs of the same length, and scores the band of
the forecast difference against the pair's measured difference. The band is ``d +- q * sd``,
``sd`` the jackknife sd of the replicate fits' differences, in five variants of ``q``:

- ``z``: the normal quantile; ``z*scale``: that times the fit's `band_scale_` (as single bands);
- ``t`` (what `compare_final` gives): the Student quantile with ``n - 1`` degrees of freedom,
  ``n`` the replicate fits; ``t*scale``: that times `band_scale_`;
- ``t+noise``: ``t`` plus the residual noise of two separate final measurements,
  ``z * sqrt(2) * noise_sd_ * loss``, in quadrature.

For each: coverage of the measured differences, the median width over the mean width of the two
single bands, and how many pairs the band separates (excludes 0) with how many of those the
forecast ranked as measured. The baseline, ``every gain``, is the report before the band: every
forecast difference shown as a gain, and how often its sign was the measured one.

Data: the 124M WSD-cooldown set (`../shared/data/wsd-cooldown-124m`; the law fitted to the stable
run and one more run at each peak LR, the 25000-step cosine or the 25000-step WSD-20%) and the
multi-power-law set (`../shared/data/mpl-loss-curves`; the benchmark's three training runs per
size, and its two-run split).

    python benchmarks/difference_band.py [--laws lrlab,momentum,mpl] [--level 0.9]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
import sys
import time
import warnings

import numpy as np
from scipy import stats

import shared_data as shared
from live import DATA_124M, load_124m  # benchmarks/live.py
from lrlab.laws import get_law
from lrlab.runs import Run
from lrlab.runs.model import RunWarning


def held_out_sets() -> list[tuple[str, list[Run], list[Run]]]:
    """``(name, training runs, held-out runs)`` for every data set found."""
    sets = []
    if (DATA_124M / "runs.json").is_file():
        records = json.loads((DATA_124M / "runs.json").read_text())
        for peak in sorted({record["peak_lr"] for record in records}):
            at_peak = {record["name"]: record for record in records if record["peak_lr"] == peak}
            stable_name = next(name for name in at_peak if name.startswith("stable"))
            stable = load_124m(at_peak[stable_name], None)
            runs = {stable_name: stable}
            runs |= {name: load_124m(r, stable) for name, r in at_peak.items() if r is not stable}
            for partner in (
                f"cos-10-124m_lr{peak:g}_sqrt_0.0_T25000",
                f"ann124-0.2_lr{peak:g}_linear_0.2_T25000",
            ):
                train = [stable, runs[partner]]
                held = [run for name, run in runs.items() if name not in (stable_name, partner)]
                sets.append((f"124M {peak:g} +{partner.split('_')[0]}", train, held))
    if shared.shared_data_available():
        for size in shared.SIZES:
            for train, held in (
                (shared.TRAIN, shared.HELD_OUT),
                (shared.TRAIN_TWO, shared.HELD_OUT_TWO),
            ):
                sets.append(
                    (
                        f"mpl {size} {len(train)} runs",
                        shared.load_shared_runs(size, train),
                        shared.load_shared_runs(size, held),
                    )
                )
    return sets


VARIANTS = ("z", "z*scale", "t", "t*scale", "t+noise")


def score(law, held: list[Run], level: float) -> list[dict]:
    """One row per pair of held-out runs with the same last step: whether each variant's band
    covers the measured difference, and its width over the mean width of the two single bands."""
    z = float(stats.norm.ppf(0.5 + level / 2))
    t = float(stats.t.ppf(0.5 + level / 2, len(law.replicates_) - 1))
    rows = []
    for a, b in itertools.combinations(held, 2):
        if a.steps[-1] != b.steps[-1]:
            continue
        found = law.compare_final(a.lr, b.lr, level)
        singles = [law.predict_with_band(run.lr, run.steps[-1:], level) for run in (a, b)]
        single_width = statistics.mean(float(high[0] - low[0]) for _, low, high in singles)
        noise = z * np.sqrt(2) * law.noise_sd_ * float(a.loss[-1] + b.loss[-1]) / 2
        halves = {
            "z": z * found.sd,
            "z*scale": z * law.band_scale_ * found.sd,
            "t": t * found.sd,
            "t*scale": t * law.band_scale_ * found.sd,
        }
        halves["t+noise"] = float(np.hypot(halves["t"], noise))
        assert math.isclose(halves["t"], found.high - found.difference)  # what the law gives
        measured = float(a.loss[-1] - b.loss[-1])
        miss = abs(measured - found.difference)
        rows.append(
            {
                "pair": f"{a.name} - {b.name}",
                "covered": {variant: miss <= half for variant, half in halves.items()},
                "width": {v: 2 * half / single_width for v, half in halves.items()},
                "separated": {v: abs(found.difference) > half for v, half in halves.items()},
                "ranking_right": np.sign(measured) == np.sign(found.difference),
            }
        )
    return rows


def summary(rows: list[dict]) -> str:
    """Per variant: coverage, median width ratio, separated pairs and how many of them the
    forecast ranked right."""
    cells = []
    for variant in VARIANTS:
        cover = np.mean([row["covered"][variant] for row in rows])
        ratio = statistics.median(row["width"][variant] for row in rows)
        separated = [row for row in rows if row["separated"][variant]]
        right = sum(row["ranking_right"] for row in separated)
        cells.append(f"{cover:4.2f} {ratio:4.2f} {right:3d}/{len(separated):<3d}")
    right = sum(row["ranking_right"] for row in rows)
    return f"{len(rows):3d}  {right:3d}/{len(rows):<3d}  " + "  ".join(cells)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--laws", default="lrlab,momentum,mpl", help="comma-separated laws")
    parser.add_argument("--level", type=float, default=0.9, help="band level (default 0.9)")
    args = parser.parse_args()
    # The 124M cosine-to-zero logs round their last LRs: the schedule is used, as it should be.
    warnings.simplefilter("ignore", RunWarning)
    sets = held_out_sets()
    if not sets:
        print("no shared data found (set LRLAB_SHARED_DATA)", file=sys.stderr)
        return 1
    totals: dict[str, list[dict]] = {}
    head = "  ".join(f"{variant:>18s}" for variant in VARIANTS)
    print(f"{'data set':24s} {'law':9s} pairs  every gain  {head}")
    columns = "  ".join(["cover width right/sep"] * len(VARIANTS))
    print(f"{'':24s} {'':9s} {'':5s}  {'right/all':10s}  {columns}")
    for name, train, held in sets:
        for law_name in args.laws.split(","):
            began = time.perf_counter()
            law = get_law(law_name).fit(train)
            rows = score(law, held, args.level)
            totals.setdefault(law_name, []).extend(rows)
            seconds = time.perf_counter() - began
            print(f"{name:24s} {law_name:9s} {summary(rows)}  ({seconds:.0f} s)", flush=True)
    for law_name, rows in totals.items():
        print(f"{'all':24s} {law_name:9s} {summary(rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
