"""Sweeps: a grid of runs (peak LR x schedule x seed x width) trained by worker processes.

A sweep file holds ``base`` (a run config), ``grid`` (``peak``, ``schedules`` and optionally
``seeds`` and ``widths``), ``workers``, ``threads_per_worker``, ``resources`` and ``out``. Each
schedule spec's ``peak`` is replaced by each peak LR (so write it with any peak, e.g.
``peak=1``). Each run trains in ``OUT/runs/NAME``; a run whose record says finished or diverged
is skipped and a killed one resumes from its checkpoint, so running a sweep again completes it.
A run whose config changed since (``steps``, a schedule...) is refused before anything trains,
unless the change only extends it (`lrlab.tunnel.train.plan_resume`). Names are unique: the
peak LR is written to three significant digits, or in full where that would give two runs one
name; two grid points that make the same run are an error. The sweep holds ``OUT``'s lock while
it runs (`lrlab.locks`).

The runs train in the pool of `lrlab.tunnel.pool`: by default one worker process per usable core,
each run choosing its threads for its share of the cores (`lrlab.tunnel.threads`);
``threads_per_worker`` sets ``train.threads`` of every run whose base config does not, and then
fewer workers start. On the ``ray`` backend (`lrlab.tunnel.pool.Backend`) each run is a task of
a Ray cluster instead, reserving ``resources`` (``num_cpus``, ``num_gpus``; by default its
``train.threads`` CPUs, or one, and a GPU when its ``train.device`` is ``cuda``: see
`lrlab.tunnel.pool.resources_for`); ``workers`` then does not apply. Both backends write the same
files.

The results table (``results.csv``, ``results.json``) lists every run and, per schedule and width,
the LR sensitivity of Wortsman et al. 2023 (arXiv:2309.14322, Sec. 3.1):
``E_lr[min(L(lr), L0) - min_lr L(lr)]`` over the swept peak LRs, where ``L(lr)`` is the final
validation loss (averaged over seeds), ``L0`` the loss at initialisation, and a diverged run counts
as ``L0``. Lower means the final loss depends less on the choice of LR.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import io
import json
import math
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lrlab.atomic import atomic_write_text
from lrlab.errors import LrlabError, SpecError, brief
from lrlab.locks import FolderLock
from lrlab.mapping_file import read_mapping
from lrlab.schedules import from_spec
from lrlab.tunnel.config import config_from_dict
from lrlab.tunnel.pool import Backend, Job, Resources, parse_resources, train_jobs
from lrlab.tunnel.threads import plan_workers

DONE = ("finished", "diverged")
RESULT_COLUMNS = [
    "name",
    "schedule",
    "peak",
    "seed",
    "width",
    "status",
    "steps_done",
    "final_val_loss",
    "best_val_loss",
    "final_train_loss",
    "initial_val_loss",
    "elapsed_s",
    "error",
]


@dataclasses.dataclass
class Sweep:
    """A parsed sweep file."""

    base: dict[str, Any]
    peaks: list[float]
    schedules: list[dict[str, Any]]
    seeds: list[int]
    widths: list[int | None]
    workers: int | None = None  # None: one per usable core
    threads_per_worker: int | None = None  # None: each run chooses (lrlab.tunnel.threads)
    out: str | None = None
    resources: Resources | None = None  # what each run reserves on Ray (None: from its config)

    def runs(self) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
        """``(name, run config mapping, grid point)`` for every point of the grid. The peak LR is
        named to three significant digits (the names of earlier versions), or exactly
        (``repr``) where two peaks would share a name; two points with one name are an
        `LrlabError` (a duplicate grid point)."""
        runs = []
        for index, schedule in enumerate(self.schedules):
            for peak in self.peaks:
                for seed in self.seeds:
                    for width in self.widths:
                        spec = {**schedule, "peak": peak}
                        data = json.loads(json.dumps(self.base))
                        train = data["train"] = data.get("train") or {}
                        train.update(schedule=spec, seed=seed)
                        if self.threads_per_worker is not None:
                            train.setdefault("threads", self.threads_per_worker)
                        if width is not None:
                            data["model"] = {**(data.get("model") or {}), "d_model": width}
                        point = {
                            "schedule": f"{index}:{schedule['name']}",
                            "peak": peak,
                            "seed": seed,
                            "width": width,
                        }
                        runs.append((_name(point, f"{peak:.3g}"), data, point))
        # Peaks that .3g cannot tell apart are named exactly: repr is unique per float, and no
        # exact name can equal another point's short one (that point would share its .3g).
        short = collections.Counter(name for name, _, _ in runs)
        runs = [
            (_name(point, repr(point["peak"])) if short[name] > 1 else name, data, point)
            for name, data, point in runs
        ]
        seen: dict[str, dict[str, Any]] = {}
        for name, _data, point in runs:
            if name in seen:
                raise LrlabError(
                    f"grid: duplicate grid point {point} (run {name}): each run must differ"
                )
            seen[name] = point
        return runs


def _name(point: dict[str, Any], peak: str) -> str:
    """A run's folder name: schedule index and name, peak LR (as given), seed, width."""
    width = "" if point["width"] is None else f"_d{point['width']}"
    name = f"{point['schedule'].replace(':', '-', 1)}_lr{peak}_seed{point['seed']}{width}"
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", name)


def _renamed_peak(source: str, grid: dict[str, Any]) -> dict[str, Any]:
    """`grid` with the peak LRs under ``peak``, the one name lrlab uses for the peak LR (schedule
    specs, fits, the CLI); ``peak_lr``, the name of earlier versions, still works, with a
    deprecation message on stderr."""
    if "peak_lr" not in grid:
        return grid
    if "peak" in grid:
        raise LrlabError(f"{source}: give grid.peak only (grid.peak_lr is its old name)")
    print(f"lrlab: {source}: grid.peak_lr is deprecated: call it grid.peak", file=sys.stderr)
    return {("peak" if key == "peak_lr" else key): value for key, value in grid.items()}


def load_sweep(path: str | Path) -> Sweep:
    """Read and check a sweep file; every run config is validated before anything trains."""
    source = str(path)
    data = read_mapping(path)
    known = {"base", "grid", "workers", "threads_per_worker", "resources", "out"}
    for key in data:
        if key not in known:
            fields = ", ".join(sorted(known))
            raise LrlabError(f"{source}: unknown field {key!r} (fields: {fields})")
    base = data.get("base") or {}
    if not isinstance(base, dict):
        raise LrlabError(f"{source}: base must be a run config mapping")
    config_from_dict(base, f"{source}: base")  # sections of the wrong type fail here, named
    out = data.get("out")
    if out is not None and not isinstance(out, str):
        raise LrlabError(f"{source}: out={brief(out)} must be a folder path")
    grid = data.get("grid")
    if not isinstance(grid, dict):
        raise LrlabError(f"{source}: grid is required (peak, schedules, seeds, widths)")
    for key in grid:
        if key not in ("peak", "peak_lr", "schedules", "seeds", "widths"):
            raise LrlabError(f"{source}: unknown field grid.{key}")
    grid = _renamed_peak(source, grid)
    peaks = _list(source, grid, "peak", required=True)
    for i, lr in enumerate(peaks):
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr < math.inf:
            raise LrlabError(f"{source}: grid.peak[{i}]={lr!r} must be a positive number")
    schedules = []
    for i, spec in enumerate(_list(source, grid, "schedules", required=True)):
        try:
            schedule = from_spec(spec).to_spec()
        except SpecError as error:
            raise LrlabError(f"{source}: grid.schedules[{i}]: {error}") from None
        if "peak" not in schedule:
            raise LrlabError(
                f"{source}: grid.schedules[{i}]: schedule {schedule['name']!r} has "
                "no 'peak' field to sweep"
            )
        schedules.append(schedule)
    seeds = _list(source, grid, "seeds") or [(base.get("train") or {}).get("seed", 0)]
    widths = _list(source, grid, "widths") or [None]
    sweep = Sweep(
        base,
        [float(lr) for lr in peaks],
        schedules,
        seeds,
        widths,
        _count(source, data, "workers"),
        _count(source, data, "threads_per_worker"),
        out,
        parse_resources(data.get("resources"), source),
    )
    try:
        runs = sweep.runs()
    except LrlabError as error:
        raise LrlabError(f"{source}: {error}") from None
    # Two points may still make one run (seeds 1 and 1.0, a schedule listed twice in two
    # spellings): compare the resolved configs.
    made: dict[str, str] = {}
    for name, run_data, _point in runs:
        config = config_from_dict(run_data, f"{source} (run {name})")
        key = json.dumps(config.to_dict(), sort_keys=True)
        if key in made:
            raise LrlabError(
                f"{source}: duplicate grid point: runs {made[key]} and {name} are the same run"
            )
        made[key] = name
    return sweep


def _list(source: str, grid: dict[str, Any], key: str, *, required: bool = False) -> list[Any]:
    value = grid.get(key)
    if value is None and not required:
        return []
    if not isinstance(value, list) or not value:
        raise LrlabError(f"{source}: grid.{key} must be a non-empty list")
    return value


def _count(source: str, data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise LrlabError(f"{source}: {key}={value!r} must be an integer >= 1")
    return value


def run_sweep(
    sweep: Sweep,
    out: str | Path,
    *,
    log: Callable[[str], None] = print,
    backend: Backend | None = None,
) -> dict[str, Any]:
    """Train every run not yet finished on `backend` (default: the local pool), then write and
    return the results; `log` gets a line as each run ends and the pool's progress lines. Holds
    `out`'s lock (`lrlab.locks`); a run whose folder holds a run of another config is refused
    first."""
    out = Path(out)
    with FolderLock(out, "lrlab sweep"):
        return _run_sweep(sweep, out, log, backend or Backend())


def _run_sweep(
    sweep: Sweep, out: Path, log: Callable[[str], None], backend: Backend
) -> dict[str, Any]:
    # Needs PyTorch, as training does; reading and checking a sweep file does not.
    from lrlab.tunnel.train import plan_resume

    runs = sweep.runs()
    folders = {name: out / "runs" / name for name, _, _ in runs}
    errors: dict[str, str] = {}
    pending = []
    for name, data, _ in runs:
        try:
            plan = plan_resume(config_from_dict(data, f"run {name}"), folders[name])
        except LrlabError as error:
            raise LrlabError(f"run {name}: {error}") from None
        if plan.ended is None:
            pending.append(Job(name, data, folders[name], sweep.resources))
    threads = sweep.threads_per_worker or (sweep.base.get("train") or {}).get("threads")
    workers = plan_workers(len(pending), workers=sweep.workers, threads=threads)
    if backend.name == "ray":
        cluster = backend.address or "$RAY_ADDRESS or a local instance"
        how = f"as Ray tasks ({cluster})"
    else:
        how = f"with {workers} worker(s)"
    log(
        f"sweep {out}: {len(runs)} runs, {len(runs) - len(pending)} already done, "
        f"{len(pending)} to train {how}"
    )
    outcomes = train_jobs(pending, workers, keep_going=True, backend=backend, log=log)
    for outcome in outcomes:
        log(f"  {outcome['name']}: {outcome['status']}")
        if "error" in outcome:
            errors[outcome["name"]] = outcome["error"]
            log(f"    {outcome['error']}")
        _write_results(out, _results(runs, folders, errors))
    results = _results(runs, folders, errors)
    _write_results(out, results)
    return results


def _results(
    runs: list[tuple[str, dict[str, Any], dict[str, Any]]],
    folders: dict[str, Path],
    errors: dict[str, str],
) -> dict[str, Any]:
    rows = []
    for name, _data, point in runs:
        path = folders[name] / "record.json"
        record = read_mapping(path, "run record") if path.is_file() else {}
        status = "failed" if name in errors else record.get("status", "pending")
        rows.append(
            {
                "name": name,
                **point,
                "status": status,
                **{
                    key: record.get(key)
                    for key in (
                        "steps_done",
                        "final_val_loss",
                        "best_val_loss",
                        "final_train_loss",
                        "initial_val_loss",
                        "elapsed_s",
                    )
                },
                "error": errors.get(name),
            }
        )
    return {"runs": rows, "lr_sensitivity": lr_sensitivity(rows)}


def lr_sensitivity(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """LR sensitivity per (schedule, width) over the peak LRs whose runs all ended (Wortsman
    et al. 2023): the mean gap of the capped final loss to the best one."""
    groups: dict[tuple[str, Any], dict[float, list[float]]] = {}
    initial: dict[tuple[str, Any], list[float]] = {}
    for row in rows:
        if row["status"] not in DONE or row["initial_val_loss"] is None:
            continue
        key = (row["schedule"], row["width"])
        initial.setdefault(key, []).append(row["initial_val_loss"])
        loss = row["final_val_loss"] if row["status"] == "finished" else None
        groups.setdefault(key, {}).setdefault(row["peak"], []).append(
            math.inf if loss is None else loss
        )
    table = []
    for key, by_lr in groups.items():
        cap = sum(initial[key]) / len(initial[key])
        capped = {lr: min(sum(losses) / len(losses), cap) for lr, losses in sorted(by_lr.items())}
        best_lr = min(capped, key=capped.get)
        best = capped[best_lr]
        table.append(
            {
                "schedule": key[0],
                "width": key[1],
                "lr_count": len(capped),
                "lr_sensitivity": sum(value - best for value in capped.values()) / len(capped),
                "best_peak": best_lr,
                "best_final_val_loss": best,
                "initial_val_loss": cap,
            }
        )
    return table


def _write_results(out: Path, results: dict[str, Any]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, RESULT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in results["runs"]:
        writer.writerow({key: "" if row[key] is None else row[key] for key in RESULT_COLUMNS})
    atomic_write_text(out / "results.csv", buffer.getvalue())
    atomic_write_text(out / "results.json", json.dumps(results, indent=2) + "\n")


def format_table(results: dict[str, Any]) -> str:
    """The results as aligned text: one line per run, then the LR sensitivity per group."""

    def number(value: Any) -> str:
        return "-" if value is None else f"{value:.4f}"

    lines = [f"{'run':<44} {'status':<9} {'steps':>6} {'val loss':>9} {'best':>9}"]
    for row in results["runs"]:
        steps = "-" if row["steps_done"] is None else str(row["steps_done"])
        lines.append(
            f"{row['name']:<44} {row['status']:<9} {steps:>6} "
            f"{number(row['final_val_loss']):>9} {number(row['best_val_loss']):>9}"
        )
    if results["lr_sensitivity"]:
        lines.append("")
        lines.append(
            f"{'schedule':<24} {'width':>6} {'LRs':>4} {'LR sensitivity':>15} "
            f"{'best peak LR':>13} {'best loss':>10}"
        )
        for group in results["lr_sensitivity"]:
            width = "-" if group["width"] is None else str(group["width"])
            lines.append(
                f"{group['schedule']:<24} {width:>6} {group['lr_count']:>4} "
                f"{group['lr_sensitivity']:>15.4f} {group['best_peak']:>13.3g} "
                f"{group['best_final_val_loss']:>10.4f}"
            )
    return "\n".join(lines)
