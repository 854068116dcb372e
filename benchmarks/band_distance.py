"""Choose the band's widening with the schedule's distance (`lrlab.laws.base.schedule_distance`)
on training-only evidence, and train the wind-tunnel runs at other peak LRs it is checked on.

A band's log half-width is ``z`` times a spread made of ``band_scale_ * (1 + c1 log r) * sd``
(docs/laws.md, "Fitting, bands, speed"; ``c1`` each fit's growth, at most `_GROWTH_CAP`) and the
schedule's distance ``D`` from the fitted runs' schedules. Two forms of the distance's part are
candidates:

- multiplied (the ninth round's first form): the spread times ``1 + c2 D``. That round fitted
  ``c2`` per fit with a floor of 2, which decided in 48 of 51 fits; fits no longer estimate
  ``c2``, so here it is the constant ``c2``. Where the jackknife ``sd`` is large the product
  explodes (a 400M one-run band 6x the loss, docs/laws.md, "Ninth round, bands (additive)").
- added in quadrature (kept, `lrlab.laws.base._DISTANCE_SD`): ``sqrt(spread^2 + (k D)^2)``,
  ``k`` a constant in log-loss per unit of ``D``: a band at most ``z k D`` wider than without the
  distance, however large ``sd`` is.

This scores candidates on data that no held-out curve enters:

- the training-only folds of every task of `benchmarks/scoreboard.py` (`training_folds`: within a
  task's fitted runs, each run left out and forecast from the others, and the first halves of
  the runs forecasting their second halves), folds with the same fitted runs scored once;
- the wind tunnel, a development set: width 32 at peak 3e-3 (`out/laws_tunnel/d32`) and the
  runs this script trains at peaks 1e-3 and 9e-3 (`--train`, into `out/h2_bands`), each peak's
  fitted runs forecasting the other peaks' runs (the shift of LR level that the 124M
  across-peak tasks make).

Every fold is fitted once with `auto` (the default law; its members `momentum`, `mpl` and
`lrlab` are full fits with bands, scored as well). A candidate changes only the band's width,
so every candidate is scored from one set of forecasts: each member's band is split into its
width without growth and widening, the log of the extrapolation ratio and the distance ``D``,
and recombined per candidate (for `auto`, as its mixture band is). Per law and candidate it
prints the number of tasks (a task's folds pooled) whose 90% band covers less than 0.85 of the
forecast points, the mean coverage, and the mean, median and largest (over tasks) relative width.
The rule, as the
seventh round's for the growth's floor (docs/laws.md): the fewest tasks under 0.85 for `auto`,
then the narrowest (mean width). A 124M across-peak task has the same fitted runs, so the same
folds, as its 2-run task; it is counted as a task of its own, as on the scoreboard.

    python benchmarks/band_distance.py --train
    python benchmarks/band_distance.py [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

import shared_data as shared
from laws_tunnel import PEAK as TUNNEL_PEAK
from laws_tunnel import tunnel_setup  # benchmarks/laws_tunnel.py
from lrlab.errors import LrlabError
from lrlab.laws import get_law
from lrlab.laws.base import _normal_quantile, schedule_distance
from lrlab.schedules import from_spec
from scoreboard import TASKS, RunRef, Task, training_folds

OUT = Path(__file__).resolve().parents[1] / "out" / "h2_bands"
WIDTH, TOTAL = 32, 800
PEAKS = (1e-3, 9e-3)  # the tunnel benchmark's runs are at 3e-3
SCHEDULES = ("constant_24000", "cosine_24000")
LEVEL = 0.9
CAP = 2.0  # the growth's cap, `_GROWTH_CAP`, chosen in the ninth round with the floors below
# Candidates ``(form, constant)``: "times", the c2 of the multiplied widening (2 was the ninth
# round's choice among 0-3, BENCHMARKS.md); "plus", the k of the widening added in quadrature
# (log-loss per unit of distance; 0: no widening).
CANDIDATES = (
    ("times", 2.0),
    *(("plus", k) for k in (0.0, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.08)),
)
MEMBERS = ("momentum", "mpl", "lrlab")


def train() -> None:
    """The runs of `SCHEDULES` at each of `PEAKS`, width `WIDTH`, trained or reused."""
    from lrlab.study import train_tunnel_run  # needs PyTorch, which scoring does not

    for peak in PEAKS:
        schedules = shared.benchmark_schedules(TOTAL, round(0.09 * TOTAL), peak, peak / 10)
        for name in SCHEDULES:
            spec, steps = schedules[name]
            config = {"budget": steps, "tunnel": tunnel_setup(WIDTH)}
            train_tunnel_run(
                config,
                OUT / f"d{WIDTH}_peak{peak:g}" / name,
                name,
                from_spec(spec),
                lambda message: print(message, file=sys.stderr, flush=True),
                f"[peak {peak:g} {name}]",
            )


def tunnel_peak_tasks() -> list[Task]:
    """Each peak's fitted runs (at 3e-3 the tunnel benchmark's 3-run split) forecasting every
    run at the other peaks; runs not trained yet leave their task out."""
    base = f"d{WIDTH}"
    groups = {TUNNEL_PEAK: (base, shared.TRAIN)}
    for peak in PEAKS:
        groups[peak] = (f"../h2_bands/{base}_peak{peak:g}", SCHEDULES)
    tasks = []
    for peak, (group, names) in groups.items():
        fitted = tuple(RunRef("tunnel", group, name) for name in names)
        others = tuple(
            RunRef("tunnel", other_group, name)
            for other, (other_group, other_names) in groups.items()
            if other != peak
            for name in other_names
        )
        refs = fitted + others
        trained = [ref for ref in refs if _finished(ref)]
        if len(trained) == len(refs):
            tasks.append(Task(f"tunnel-{base}/{peak:g}-to-others", fitted, others))
        else:
            print(f"(left out: tunnel {peak:g} to the other peaks; run --train first)")
    return tasks


def _finished(ref: RunRef) -> bool:
    record = Path(__file__).resolve().parents[1] / "out" / "laws_tunnel" / ref.group / ref.name
    path = record / "record.json"
    return path.is_file() and json.loads(path.read_text())["status"] == "finished"


def parts(law, run) -> dict[str, np.ndarray]:
    """One member's forecast of `run`: the prediction, its band's log half-width without growth
    and widening, the log of the extrapolation ratio and the schedule's distance."""
    rate, distance = law.band_growth_, law.band_distance_sd_
    law.band_growth_, law.band_distance_sd_ = 0.0, 0.0
    try:
        pred, _, high = law.predict_with_band(run.lr, run.steps, LEVEL)
    finally:
        law.band_growth_, law.band_distance_sd_ = rate, distance
    info = law.fit_info_
    return {
        "pred": pred,
        "half": np.log(high / pred),
        "log_ratio": np.log(np.maximum(run.steps / law.band_reach_, 1.0)),
        "distance": schedule_distance(
            run.lr, run.steps, law.band_schedules_, int(info["warmup"]), info["peak"]
        ),
    }


def band(member: dict, growth: float, form: str, constant: float, z: float) -> np.ndarray:
    """A member's log half-width with growth rate `growth` and the distance's part of candidate
    ``(form, constant)``."""
    grown = member["half"] * (1 + growth * member["log_ratio"])
    if form == "times":
        return grown * (1 + constant * member["distance"])
    return np.sqrt(grown**2 + (z * constant * member["distance"]) ** 2)


def candidate_bands(fit, runs) -> dict:
    """For each law, each run: the loss, and per candidate ``(form, constant)`` the prediction
    and the band's log half-width."""
    laws = fit.members_
    weights = fit._kept_weights()
    z = _normal_quantile(0.5 + LEVEL / 2)
    out: dict = {}
    for run in runs:
        members = {name: parts(law, run) for name, law in laws.items()}
        for form, constant in CANDIDATES:
            halves = {}
            for name, law in laws.items():
                growth = min(CAP, law.band_growth_)
                halves[name] = band(members[name], growth, form, constant, z)
                key = (name, form, constant)
                out.setdefault(key, []).append((run.loss, members[name]["pred"], halves[name]))
            preds = np.array([members[name]["pred"] for name in laws])
            pred = weights @ preds
            between = np.log(preds) - np.log(pred)
            sds = np.array([halves[name] / z for name in laws])
            half = z * np.sqrt(weights @ (sds**2 + between**2))
            out.setdefault(("auto", form, constant), []).append((run.loss, pred, half))
    return out


def summarise(cells: list) -> tuple[float, float]:
    """Coverage and mean relative width over the defined points of `cells`."""
    inside, widths = [], []
    for loss, pred, half in cells:
        ok = np.isfinite(pred)
        low, high = pred[ok] * np.exp(-half[ok]), pred[ok] * np.exp(half[ok])
        inside.append((loss[ok] >= low) & (loss[ok] <= high))
        widths.append((high - low) / pred[ok])
    return float(np.mean(np.concatenate(inside))), float(np.mean(np.concatenate(widths)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", action="store_true", help="train the tunnel runs, then stop")
    parser.add_argument("--tasks", help="only tasks whose name contains this")
    parser.add_argument("--json", help="also write the per-task figures here")
    args = parser.parse_args()
    if args.train:
        train()
        return 0
    began = time.perf_counter()
    print(f"machine: {platform.machine()}, python {platform.python_version()}")
    folds: dict[tuple, list[tuple[str, Task]]] = {}  # fitted runs -> (task, fold) forecasting
    for task in [*TASKS.values(), *tunnel_peak_tasks()]:
        if args.tasks and args.tasks not in task.name:
            continue
        kinds = training_folds(task) if not task.name.endswith("-to-others") else [task]
        for fold in kinds:
            folds.setdefault(fold.fit, []).append((task.name, fold))
    cells: dict[str, dict] = {}  # task -> (law, form, constant) -> [(loss, pred, half)]
    raw: list[dict] = []
    for index, (fitted, uses) in enumerate(folds.items(), start=1):
        fold = uses[0][1]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit = get_law("auto").fit(fold.fit_runs())
        except LrlabError as error:
            print(f"({fold.name}: not fitted: {error})")
            continue
        rates = {n: law.band_growth_ for n, law in fit.members_.items()}
        raw.append({"fold": fold.name, "growth": rates})
        print(
            f"[{index}/{len(folds)}] {fold.name}: "
            + ", ".join(f"{n} c1 {g:.2f}" for n, g in rates.items()),
            flush=True,
        )
        for task, each in uses:
            forecast = candidate_bands(fit, each.predict_runs())
            for key, values in forecast.items():
                cells.setdefault(task, {}).setdefault(key, []).extend(values)
    print(f"\n{len(cells)} tasks, {len(folds)} fits, {time.perf_counter() - began:.0f} s")
    print(
        f"{'law':<9} {'form':>5} {'const':>6} {'under 0.85':>10} {'mean cover':>10} "
        f"{'mean width':>10} {'median width':>12} {'max width':>10}"
    )
    table = []
    for name in ("auto", *MEMBERS):
        for form, constant in CANDIDATES:
            rows = [summarise(by_key[(name, form, constant)]) for by_key in cells.values()]
            under = [t for t, row in zip(cells, rows, strict=True) if row[0] < 0.85]
            cover = float(np.mean([row[0] for row in rows]))
            widths = [row[1] for row in rows]
            table.append(
                {
                    "law": name,
                    "form": form,
                    "constant": constant,
                    "under": under,
                    "cover": cover,
                    "width": float(np.mean(widths)),
                    "median_width": float(np.median(widths)),
                    "max_width": float(np.max(widths)),
                    "tasks": {t: row for t, row in zip(cells, rows, strict=True)},
                }
            )
            print(
                f"{name:<9} {form:>5} {constant:>6.4g} {len(under):>10} {cover:>10.3f} "
                f"{np.mean(widths):>10.4f} {np.median(widths):>12.4f} {np.max(widths):>10.4f}"
            )
    if args.json:
        Path(args.json).write_text(json.dumps({"table": table, "raw": raw}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
