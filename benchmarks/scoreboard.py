"""The scoreboard: every registered law on every task of three independent data sets, scored as a
user would run it (issue 13).

A task fits some runs and forecasts others, through the code paths of ``lrlab fit`` / ``lrlab
predict``: each run is read by `lrlab.runs.read_run`, the per-step LR from the logged ``lr``
column (given the warmup that a log starting after its warmup cannot show, as ``--warmup N``),
or from the schedule sidecar the wind tunnel writes beside its logs. The tasks:

- ``mpl-<size>/...`` (the multi-power-law curves, 25M / 100M / 400M): ``3-run`` (the published
  split), ``2-run`` (``constant_24000`` + ``cosine_24000``), ``1-run-cosine`` (``cosine_24000``
  alone) and ``1-run-wsd`` (``wsd_20000_24000`` alone), each forecasting the other curves;
- ``wsd124-<peak>/...`` (the 124M WSD-cooldown curves, peak LR 5e-4 / 1e-4): ``2-run``
  (``stable-124m`` + ``cos-10-124m`` T=25000) and ``1-run`` (``ann124-0.2`` linear T=25000),
  forecasting every other curve at that peak; ``wsd124/<a>-to-<b>``: the 2-run pair at peak a
  forecasting every curve at peak b;
- ``tunnel-d<width>/...`` (`benchmarks/laws_tunnel.py`'s runs in ``out/laws_tunnel``, widths
  64, 96 and 128 by default): its ``3-run`` and ``2-run`` splits. Missing runs are trained with
  ``--train-tunnel``, else the task is left out (and the printout says so).

Per law and task: PredE and WorstE (per forecast curve, averaged over the curves, as the published
tables), the 90% band's coverage and mean relative width ``(high - low) / pred`` (both over all
forecast points), and the seconds of the point fit and of the fit with bands. The anchors are the
published predictors (`ANCHORS`: ``momentum``, ``mpl``, ``bound``, those registered); per task a
law's PredE is divided by the best anchor's, and per law the summary gives the geometric mean of
those ratios, the worst, and on how many tasks its WorstE is below the lowest WorstE of the
anchors.

``--folds`` scores the training-only folds instead (`training_folds`): within each task's fitted
runs, leave one run out (fit the others, forecast it) and fit the first half of every fitted run
(forecast the rest of each). A choice made on folds (a default law, an option) never sees a held-out
curve; the summary there is the geometric mean over tasks of each task's geometric mean fold ratio.

    python benchmarks/scoreboard.py [--laws a,b] [--tasks PATTERN[,PATTERN]] [--folds]
        [--widths 64,96] [--json FILE] [--train-tunnel]

From other code (run from the repository root, with ``benchmarks/`` on the path)::

    import sys; sys.path.insert(0, "benchmarks")
    from scoreboard import TASKS, score_law, select_tasks, training_folds, scoreboard
    task = TASKS["mpl-100M/2-run"]
    row = score_law("lrlab", task)                 # a Score: pred_e, worst_e, coverage, width, ...
    quick = score_law("lrlab", task, bands=False)  # point fit only (coverage and width NaN)
    folds = [score_law("lrlab", fold, bands=False) for fold in training_folds(task)]
    board = scoreboard(["lrlab", "momentum", "mpl"], select_tasks("mpl-*/2-run"))

`scoreboard` returns the scores and the summary (as ``--json`` writes them). A law adapting its own
complexity is scored like any other: it is given the fitted runs only.
"""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import numpy as np

import shared_data as shared
from lrlab.atomic import atomic_write_text
from lrlab.errors import LrlabError
from lrlab.laws import LAW_NAMES, evaluate, get_law
from lrlab.laws.metrics import coverage as band_coverage
from lrlab.laws.registry import warn_if_unpinned
from lrlab.runs import Run, read_run

ANCHORS = ("momentum", "mpl", "bound")
LEVEL = 0.9
REPO = Path(__file__).resolve().parents[1]
TUNNEL_OUT = REPO / "out" / "laws_tunnel"
# laws_tunnel.py's default widths are 64 and 128, the issue's; 96 is trained too (all nine runs,
# for benchmarks/sizes.py) and kept, as the first scoreboard scored it before 128 was trained.
TUNNEL_WIDTHS = (64, 96, 128)
MPL_ALL = shared.TRAIN + shared.HELD_OUT
WSD_PEAKS = {"5e-4": 0.0005, "1e-4": 0.0001}
WSD_PAIR = ("stable-124m", "cos-10-124m")
WSD_ONE = "ann124-0.2_linear_0.2_T25000"


@dataclasses.dataclass(frozen=True)
class RunRef:
    """One curve of a task: its data set (``mpl``, ``wsd124``, ``tunnel``), group (size, peak LR
    or width folder), file name, and which `part` of it: ``all``, ``first-half`` (logged steps up
    to half the last one) or ``second-half`` (the later steps, with the whole per-step LR)."""

    source: str
    group: str
    name: str
    part: str = "all"

    @property
    def label(self) -> str:
        """Short, for fold names and tables."""
        return self.name if self.part == "all" else f"{self.name}[{self.part}]"


@dataclasses.dataclass(frozen=True)
class Task:
    """Fit the `fit` curves, forecast the `predict` curves."""

    name: str
    fit: tuple[RunRef, ...]
    predict: tuple[RunRef, ...]

    @property
    def source(self) -> str:
        return self.fit[0].source

    def fit_runs(self) -> list[Run]:
        return [load(ref) for ref in self.fit]

    def predict_runs(self) -> list[Run]:
        return [load(ref) for ref in self.predict]


@dataclasses.dataclass
class Score:
    """One law on one task. `pred_e`/`worst_e`: per forecast curve, averaged over the curves;
    `coverage`/`width`: over all forecast points (NaN without bands); seconds of the point fit
    and of the fit with bands (NaN without), wall-clock and CPU (this process's, all threads: on
    a shared machine the wall time grows with the load, the CPU time much less); `warnings`:
    what the fits warned; `error`: why the law could not be fitted, if it could not (the numbers
    are then NaN)."""

    task: str
    law: str
    pred_e: float = math.nan
    worst_e: float = math.nan
    coverage: float = math.nan
    width: float = math.nan
    fit_seconds: float = math.nan
    band_seconds: float = math.nan
    fit_cpu_seconds: float = math.nan
    band_cpu_seconds: float = math.nan
    curves: dict[str, float] = dataclasses.field(default_factory=dict)
    warnings: list[str] = dataclasses.field(default_factory=list)
    error: str | None = None


# -- reading the curves ---------------------------------------------------------------------------


def _wsd_file(peak: str, kind: str, total: int | None = None) -> str:
    """The file name of the 124M run of `kind` (a prefix of the name before ``_lr``, then any
    suffix such as ``_linear_0.2_T25000``) at `peak`."""
    head, _, tail = kind.partition("_")
    for record in shared.wsd_cooldown_records().values():
        name = record["name"]
        if record["peak_lr"] != WSD_PEAKS[peak] or name.split("_lr")[0] != head:
            continue
        if tail and not name.endswith(tail):
            continue
        if total is not None and record["total_steps"] != total:
            continue
        return name
    raise LrlabError(f"wsd-cooldown-124m: no run {kind!r} at peak {peak}")


@cache
def _read(source: str, group: str, name: str) -> Run:
    if source == "mpl":
        return shared.load_logged_run(group, name)
    if source == "wsd124":
        return shared.load_wsd_cooldown_run(name)
    if source == "tunnel":
        return read_run(TUNNEL_OUT / group / name / "eval.csv", name=name)
    raise LrlabError(f"unknown data set {source!r}")


def load(ref: RunRef) -> Run:
    """The run `ref` names, read once (cached), cut to its part."""
    run = _read(ref.source, ref.group, ref.name)
    if ref.part == "all":
        return run
    cut = int(run.steps[-1]) // 2
    if ref.part == "first-half":
        return run.until(cut)
    later = run.steps > cut
    return dataclasses.replace(run, steps=run.steps[later], loss=run.loss[later])


# -- the tasks ------------------------------------------------------------------------------------


def _mpl_tasks() -> list[Task]:
    def refs(size: str, names: Iterable[str]) -> tuple[RunRef, ...]:
        return tuple(RunRef("mpl", size, name) for name in names)

    tasks = []
    for size in shared.SIZES:
        splits = {
            "3-run": shared.TRAIN,
            "2-run": shared.TRAIN_TWO,
            "1-run-cosine": ("cosine_24000",),
            "1-run-wsd": ("wsd_20000_24000",),
        }
        for label, fitted in splits.items():
            rest = tuple(name for name in MPL_ALL if name not in fitted)
            tasks.append(Task(f"mpl-{size}/{label}", refs(size, fitted), refs(size, rest)))
    return tasks


def _wsd_tasks() -> list[Task]:
    def ref(name: str) -> RunRef:
        return RunRef("wsd124", "124M", name)

    def pair(peak: str) -> tuple[RunRef, ...]:
        return (ref(_wsd_file(peak, "stable-124m")), ref(_wsd_file(peak, "cos-10-124m", 25000)))

    def every(peak: str, but: tuple[RunRef, ...] = ()) -> tuple[RunRef, ...]:
        records = shared.wsd_cooldown_records().values()
        names = sorted(r["name"] for r in records if r["peak_lr"] == WSD_PEAKS[peak])
        return tuple(ref(name) for name in names if ref(name) not in but)

    tasks = []
    for peak in WSD_PEAKS:
        fitted = pair(peak)
        tasks.append(Task(f"wsd124-{peak}/2-run", fitted, every(peak, fitted)))
        one = (ref(_wsd_file(peak, WSD_ONE)),)
        tasks.append(Task(f"wsd124-{peak}/1-run", one, every(peak, one)))
    for peak, other in (("5e-4", "1e-4"), ("1e-4", "5e-4")):
        tasks.append(Task(f"wsd124/{peak}-to-{other}", pair(peak), every(other)))
    return tasks


def _tunnel_tasks(widths: Sequence[int]) -> list[Task]:
    tasks = []
    for width in widths:
        group = f"d{width}"
        for label, fitted, rest in (
            ("3-run", shared.TRAIN, shared.HELD_OUT),
            ("2-run", shared.TRAIN_TWO, shared.HELD_OUT_TWO),
        ):
            tasks.append(
                Task(
                    f"tunnel-{group}/{label}",
                    tuple(RunRef("tunnel", group, name) for name in fitted),
                    tuple(RunRef("tunnel", group, name) for name in rest),
                )
            )
    return tasks


def all_tasks(widths: Sequence[int] = TUNNEL_WIDTHS) -> dict[str, Task]:
    """Every task whose data is here, by name (the shared data sets' when found; the tunnel's at
    `widths`, whether or not its runs are trained yet: see `missing_tunnel_runs`)."""
    tasks = []
    if shared.shared_data_available():
        tasks += _mpl_tasks()
    if shared.wsd_cooldown_available():
        tasks += _wsd_tasks()
    tasks += _tunnel_tasks(widths)
    return {task.name: task for task in tasks}


TASKS = all_tasks()


def select_tasks(patterns: str | None, tasks: dict[str, Task] | None = None) -> list[Task]:
    """The tasks whose names match any of the comma-separated shell-style `patterns`
    (``mpl-*/2-run``; a pattern without ``*?[`` matches as a substring); all when None."""
    tasks = TASKS if tasks is None else tasks
    if not patterns:
        return list(tasks.values())
    chosen = []
    for name, task in tasks.items():
        for pattern in patterns.split(","):
            glob = pattern if any(c in pattern for c in "*?[") else f"*{pattern}*"
            if fnmatch.fnmatchcase(name, glob):
                chosen.append(task)
                break
    if not chosen:
        raise LrlabError(f"--tasks {patterns}: no task matches (tasks: {', '.join(tasks)})")
    return chosen


def training_folds(task: Task) -> list[Task]:
    """Folds within `task`'s fitted runs only: with two or more, each run left out in turn (fit
    the others, forecast it); and always the first half of every fitted run, forecasting the
    rest of each. Fold names are the task's with ``:loo-RUN`` or ``:first-half``."""
    folds = []
    if len(task.fit) >= 2:
        for left in task.fit:
            others = tuple(ref for ref in task.fit if ref != left)
            folds.append(Task(f"{task.name}:loo-{left.label}", others, (left,)))
    firsts = tuple(dataclasses.replace(ref, part="first-half") for ref in task.fit)
    rests = tuple(dataclasses.replace(ref, part="second-half") for ref in task.fit)
    folds.append(Task(f"{task.name}:first-half", firsts, rests))
    return folds


def missing_tunnel_runs(tasks: Iterable[Task]) -> list[RunRef]:
    """The tunnel runs the `tasks` need that have no finished log (``eval.csv``) yet."""
    refs = {ref for task in tasks for ref in (*task.fit, *task.predict) if ref.source == "tunnel"}
    return sorted(
        (ref for ref in refs if not (TUNNEL_OUT / ref.group / ref.name / "record.json").is_file()),
        key=lambda ref: (ref.group, ref.name),
    )


# -- scoring --------------------------------------------------------------------------------------


def cpu_seconds() -> float:
    """CPU seconds of this process and of the fit workers it has waited for
    (`lrlab.laws.parallel`), which `time.process_time` leaves out."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def score_law(law: str, task: Task, *, bands: bool = True, level: float = LEVEL) -> Score:
    """Fit the law named `law` on `task`'s fitted runs as ``lrlab fit`` does (with bands unless
    `bands` is False; the point fit is timed either way) and score its forecasts of the task's
    other runs. A fit that fails (`LrlabError`) gives a `Score` with its `error`."""
    fit_runs, predict_runs = task.fit_runs(), task.predict_runs()
    score = Score(task.name, law)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            began, cpu = time.perf_counter(), cpu_seconds()
            fitted = get_law(law, bands=False).fit(fit_runs)
            score.fit_seconds = time.perf_counter() - began
            score.fit_cpu_seconds = cpu_seconds() - cpu
            if bands:
                began, cpu = time.perf_counter(), cpu_seconds()
                fitted = get_law(law).fit(fit_runs)
                score.band_seconds = time.perf_counter() - began
                score.band_cpu_seconds = cpu_seconds() - cpu
            warn_if_unpinned(fitted)  # what `lrlab fit` warns of such a fit
        except LrlabError as error:
            score.error = str(error)
            return score
        finally:
            score.warnings = list(dict.fromkeys(str(w.message) for w in caught))
    inside = points = 0
    widths: list[np.ndarray] = []
    worst = []
    for run in predict_runs:
        if bands:
            pred, low, high = fitted.predict_with_band(run.lr, run.steps, level)
        else:
            pred = fitted.predict(run.lr, run.steps)
        defined = np.isfinite(pred)
        metrics = evaluate(run.loss[defined], pred[defined])
        score.curves[run.name] = metrics["PredE"]
        worst.append(metrics["WorstE"])
        if bands:
            count = int(defined.sum())
            inside += band_coverage(run.loss[defined], low[defined], high[defined]) * count
            points += count
            widths.append((high[defined] - low[defined]) / pred[defined])
    score.pred_e = float(np.mean(list(score.curves.values())))
    score.worst_e = float(np.mean(worst))
    if bands:
        score.coverage = inside / points
        score.width = float(np.mean(np.concatenate(widths)))
    return score


def _geomean(values: Iterable[float]) -> float:
    values = [value for value in values if np.isfinite(value)]
    return float(np.exp(np.mean(np.log(values)))) if values else math.nan


def compare(scores: Sequence[Score], group: Callable[[str], str] = lambda task: task) -> dict:
    """Ratios to the anchors and the per-law summary. Per task: each law's PredE over the best
    (lowest) anchor PredE, and whether its WorstE is below the lowest anchor WorstE. Per law: the
    geometric mean of its ratios over the groups of tasks (`group` maps a task to its group; a
    group's ratio is the geometric mean of its tasks'), the worst ratio and its task, and the
    coverage and fit-time extremes."""
    by_task: dict[str, dict[str, Score]] = {}
    for score in scores:
        by_task.setdefault(score.task, {})[score.law] = score
    ratios: dict[str, dict[str, float]] = {}
    below: dict[str, dict[str, bool]] = {}
    for task, row in by_task.items():
        anchors = [row[name] for name in ANCHORS if name in row and row[name].error is None]
        if not anchors:
            continue
        best = min(anchor.pred_e for anchor in anchors)
        lowest_worst = min(anchor.worst_e for anchor in anchors)
        ratios[task] = {law: score.pred_e / best for law, score in row.items()}
        below[task] = {law: score.worst_e < lowest_worst for law, score in row.items()}
    laws = list(dict.fromkeys(score.law for score in scores))
    summary = {}
    for law in laws:
        mine = [score for score in scores if score.law == law]
        grouped: dict[str, list[float]] = {}
        for task, row in ratios.items():
            if law in row:
                grouped.setdefault(group(task), []).append(row[law])
        per_group = {name: _geomean(values) for name, values in grouped.items()}
        finite = {task: r[law] for task, r in ratios.items() if law in r and np.isfinite(r[law])}
        worst_task = max(finite, key=finite.get) if finite else None
        covered = [score for score in mine if np.isfinite(score.coverage)]
        summary[law] = {
            "geomean_ratio": _geomean(per_group.values()),
            "worst_ratio": finite[worst_task] if worst_task else math.nan,
            "worst_ratio_task": worst_task,
            "groups_over_1.1": sum(value > 1.1 for value in per_group.values()),
            "groups": len(per_group),
            "worst_e_below_anchors": sum(below[task].get(law, False) for task in below),
            "tasks_compared": sum(law in below[task] for task in below),
            "min_coverage": min((s.coverage for s in covered), default=math.nan),
            "min_coverage_task": min(covered, key=lambda s: s.coverage).task if covered else None,
            "tasks_coverage_below_0.85": sum(s.coverage < 0.85 for s in covered),
            "mean_width": float(np.mean([s.width for s in covered])) if covered else math.nan,
            "max_fit_seconds": max((s.fit_seconds for s in mine), default=math.nan),
            "max_fit_cpu_seconds": max((s.fit_cpu_seconds for s in mine), default=math.nan),
            "max_band_seconds": max((s.band_seconds for s in mine), default=math.nan),
            "max_band_cpu_seconds": max((s.band_cpu_seconds for s in mine), default=math.nan),
            "errors": sum(score.error is not None for score in mine),
        }
    return {"ratios": ratios, "worst_e_below_anchors": below, "summary": summary}


def scoreboard(
    laws: Sequence[str],
    tasks: Sequence[Task],
    *,
    folds: bool = False,
    bands: bool = True,
    progress: Callable[[Score], None] | None = None,
) -> dict:
    """Score every law in `laws` on every task (or, with `folds`, on every training-only fold of
    every task, each fold once), and compare them (`compare`). Returns ``{"scores": [Score],
    **compare(...)}``."""
    if folds:
        seen: dict[tuple, Task] = {}
        parent: dict[str, str] = {}
        for task in tasks:
            for fold in training_folds(task):
                key = (fold.fit, fold.predict)
                first = seen.setdefault(key, fold)
                parent.setdefault(first.name, task.name)
        jobs = list(seen.values())
        group = parent.__getitem__
    else:
        jobs, group = list(tasks), None
    # One untimed fit first, so that no timed one pays for lazy imports and first calls.
    get_law(laws[0], bands=False).fit(jobs[0].fit_runs())
    scores = []
    for job in jobs:
        for law in laws:
            score = score_law(law, job, bands=bands)
            scores.append(score)
            if progress:
                progress(score)
    compared = compare(scores, group) if group else compare(scores)
    return {"scores": scores, **compared}


# -- the printout ---------------------------------------------------------------------------------


def _cell(value: float, digits: int = 5) -> str:
    return f"{value:.{digits}f}" if np.isfinite(value) else "n/a"


def score_line(score: Score, ratio: float, below: bool | None) -> str:
    """One row of the long table (markdown)."""
    flag = "" if below is None else ("yes" if below else "no")
    note = f" (error: {score.error})" if score.error else (" !" if score.warnings else "")
    return (
        f"| {score.task} | {score.law}{note} | {_cell(score.pred_e)} | {_cell(ratio, 2)} | "
        f"{_cell(score.worst_e)} | {flag} | {_cell(score.coverage, 2)} | {_cell(score.width, 3)} "
        f"| {_cell(score.fit_seconds, 2)} / {_cell(score.fit_cpu_seconds, 2)} "
        f"| {_cell(score.band_seconds, 2)} / {_cell(score.band_cpu_seconds, 2)} |"
    )


LONG_HEADER = (
    "| task | law | PredE | / best anchor | WorstE | WorstE < anchors' | cover90 | band width "
    "| fit s wall / cpu | +band s wall / cpu |\n|---|---|---:|---:|---:|---|---:|---:|---:|---:|"
)


def print_board(board: dict, laws: Sequence[str]) -> None:
    """The long table, the ratio matrix (tasks x laws) and the per-law summary, in markdown."""
    ratios, below = board["ratios"], board["worst_e_below_anchors"]
    print(LONG_HEADER)
    for score in board["scores"]:
        ratio = ratios.get(score.task, {}).get(score.law, math.nan)
        print(score_line(score, ratio, below.get(score.task, {}).get(score.law)))
    print()
    print("PredE / best anchor's PredE, per task:\n")
    print("| task | " + " | ".join(laws) + " |")
    print("|---|" + "---:|" * len(laws))
    for task, row in ratios.items():
        print(f"| {task} | " + " | ".join(_cell(row.get(law, math.nan), 2) for law in laws) + " |")
    print()
    print(
        "| law | geomean ratio | worst ratio (task) | groups > 1.1x | WorstE < anchors' | "
        "min cover90 (task) | cover90 < 0.85 | mean band width | max fit s wall / cpu | "
        "max +band s wall / cpu |"
    )
    print("|---|---:|---|---:|---:|---|---:|---:|---:|---:|")
    for law, row in board["summary"].items():
        print(
            f"| {law} | {_cell(row['geomean_ratio'], 3)} | {_cell(row['worst_ratio'], 2)} "
            f"({row['worst_ratio_task']}) | {row['groups_over_1.1']}/{row['groups']} | "
            f"{row['worst_e_below_anchors']}/{row['tasks_compared']} | "
            f"{_cell(row['min_coverage'], 2)} ({row['min_coverage_task'] or '-'}) | "
            f"{row['tasks_coverage_below_0.85']} | {_cell(row['mean_width'], 3)} | "
            f"{_cell(row['max_fit_seconds'], 2)} / {_cell(row['max_fit_cpu_seconds'], 2)} | "
            f"{_cell(row['max_band_seconds'], 2)} / {_cell(row['max_band_cpu_seconds'], 2)} |"
        )


def machine_state() -> dict[str, object]:
    """What the figures were measured on: the machine, the load, the busiest processes."""
    listing = subprocess.run(
        ["ps", "aux", "--sort=-%cpu"], capture_output=True, text=True, check=False
    ).stdout.splitlines()
    top = [line for line in listing if "ps aux" not in line][:5]  # not this listing itself
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, python "
        f"{platform.python_version()}",
        "load_average": [round(value, 2) for value in os.getloadavg()],
        "top_processes": [line[:160] for line in top],
    }


def _json_ready(value: object) -> object:
    """`value` with NaN as null (NaN is no JSON)."""
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(item) for item in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--laws", help="comma-separated laws (default: every registered law)")
    parser.add_argument("--tasks", help="comma-separated task name patterns (default: all)")
    parser.add_argument("--widths", default=",".join(map(str, TUNNEL_WIDTHS)))
    parser.add_argument("--folds", action="store_true", help="score training-only folds")
    parser.add_argument("--no-bands", action="store_true", help="point fits only")
    parser.add_argument("--train-tunnel", action="store_true", help="train missing tunnel runs")
    parser.add_argument("--json", metavar="FILE", help="also write everything as JSON")
    args = parser.parse_args()
    began, cpu = time.perf_counter(), time.process_time()
    chosen = args.laws.split(",") if args.laws else list(LAW_NAMES)
    unknown = [law for law in chosen if law not in LAW_NAMES]
    if unknown:
        raise LrlabError(f"--laws: unknown {', '.join(unknown)} (laws: {', '.join(LAW_NAMES)})")
    # The anchors are the yardstick of every ratio: always scored.
    laws = chosen + [law for law in ANCHORS if law in LAW_NAMES and law not in chosen]
    widths = [int(width) for width in args.widths.split(",")]
    tasks = select_tasks(args.tasks, all_tasks(widths))
    missing = missing_tunnel_runs(tasks)
    if missing and args.train_tunnel:
        import laws_tunnel  # torch: only when training

        for group in sorted({ref.group for ref in missing}):
            laws_tunnel.train_all(TUNNEL_OUT, 800, int(group[1:]))
        missing = missing_tunnel_runs(tasks)
    if missing:
        lacking = {ref.group for ref in missing}
        print(
            f"left out: tunnel tasks of {', '.join(sorted(lacking))} (runs not trained: "
            f"{', '.join(f'{ref.group}/{ref.name}' for ref in missing)}; --train-tunnel)"
        )
        tasks = [task for task in tasks if task.fit[0].group not in lacking]
    state = machine_state()
    print(f"{state['date']}; {state['machine']}; load average {state['load_average']}")
    print(f"laws: {', '.join(laws)}; anchors: {', '.join(a for a in ANCHORS if a in laws)}")
    print(f"{len(tasks)} tasks{' (training-only folds)' if args.folds else ''}", flush=True)

    def progress(score: Score) -> None:
        print(
            f"  {score.task} {score.law}: PredE {_cell(score.pred_e)} "
            f"({_cell(score.fit_seconds, 2)} s + {_cell(score.band_seconds, 2)} s)"
            + (f" error: {score.error}" if score.error else ""),
            file=sys.stderr,
            flush=True,
        )

    board = scoreboard(laws, tasks, folds=args.folds, bands=not args.no_bands, progress=progress)
    print()
    print_board(board, laws)
    seconds, cpu_seconds = time.perf_counter() - began, time.process_time() - cpu
    end_state = machine_state()
    print(
        f"\ntotal {seconds:.0f} s wall, {cpu_seconds:.0f} s CPU; load average at the end "
        f"{end_state['load_average']}"
    )
    print("busiest processes at the end:\n  " + "\n  ".join(end_state["top_processes"]))
    if args.json:
        report = {
            "command": " ".join(["python", "benchmarks/scoreboard.py", *sys.argv[1:]]),
            "start": state,
            "end": end_state,
            "seconds": seconds,
            "cpu_seconds": cpu_seconds,
            "laws": laws,
            "anchors": [law for law in ANCHORS if law in laws],
            "folds": args.folds,
            "tasks": {
                task.name: {
                    "fit": [ref.label for ref in task.fit],
                    "predict": [ref.label for ref in task.predict],
                }
                for task in tasks
            },
            **{key: value for key, value in board.items() if key != "scores"},
            "scores": [dataclasses.asdict(score) for score in board["scores"]],
        }
        atomic_write_text(args.json, json.dumps(_json_ready(report), indent=1) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except LrlabError as error:
        print(f"scoreboard: error: {error}", file=sys.stderr)
        sys.exit(2)
