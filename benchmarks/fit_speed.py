"""Benchmark fit speed: ``lrlab fit`` on the three 400M training runs with bands, and the point fits
of every scoreboard task, this tree against an older one (`--old`), alternating fresh processes in
the same run, and against the reference multi-power-law fitting procedure.

- CLI: ``lrlab fit <runs> --law L --warmup 2160 -o FILE`` as a user runs it (a fresh process:
  start-up, imports, reading, the fit with its jackknife band, scoring, writing), wall and CPU
  seconds (the process and its fit workers), the median of `--repeats`, the old tree's and this
  tree's runs alternating; and ``lrlab laws`` in a fresh process, the start-up floor.
- Point fits (``bands=False``) of every task of `benchmarks/scoreboard.py` (its multi-power-law,
  124M WSD-cooldown and wind-tunnel tasks, as they are found here), timed as the scoreboard times
  them: runs read first, scipy imported by a first fit, then each fit alone; wall and CPU (this
  process and its fit workers). One fresh process per law and tree, the trees alternating; the
  slowest task per law, and new / old for it and for the sum over the tasks.
- Reference: Luo et al.'s (2025, arXiv:2503.12811) fitting procedure re-implemented from their
  published code: a grid of 5 x 3 x 3 x 3 starting points for ``(L0, A, alpha, B)``, each
  refined with L-BFGS-B on a surrogate (``L0 + A S^-alpha - B (3e-4 - lr)``, Huber 1e-3 on
  log-loss), then AdamW (learning rates 5e-2 for L0, A, B, C and 5e-3 for alpha, beta, gamma)
  on the Huber loss of the full law, its drop sum summed term by term (every logged step times
  every step before it), for up to 200 steps (their ``FIT_MAX_STEPS``; they stop earlier only
  after 20 steps without improvement). Running it whole would take minutes of a shared machine,
  so `--reference-inits` of the 135 starts and `--reference-steps` AdamW steps are timed, and
  the total is EXTRAPOLATED to 135 starts and 200 steps (printed as such); `--reference-inits 0`
  skips it.

The old tree is a source folder of another version of lrlab (its ``src``), put first on
``PYTHONPATH`` of its processes; the tasks are this tree's scoreboard's either way:

    git archive e4750c1 | tar -x -C /tmp/h1_old
    python benchmarks/fit_speed.py --old /tmp/h1_old/src [--serial] [--laws auto] [--repeats 3]

``--serial`` adds this tree fitting without workers (``LRLAB_FIT_WORKERS=1``), to tell what the
workers buy from what the rest of the changes do; ``--tree LABEL=SRC`` (repeatable) adds another
source folder to the CLI fits' alternation (such as the old tree with one change applied).

``--jackknife`` instead counts, for each member of `auto` on every mpl and wsd124 task of the
scoreboard (its fitted runs only), the banded fit's jackknife refits and those that stop at the
solver's evaluation cap rather than converging; ``--blas`` times this tree's serial banded fits of
the 400M runs with the solver's BLAS limit as it is (`lrlab.laws.base._blas`, looked up once per
process) against looked up at every solve (``threadpool_limits``, as before), alternating,
`--repeats` each.

``--timeline`` instead shows where the wall time of one ``lrlab fit --law auto`` of the three
400M runs goes, in a fresh process of each tree, `--repeats` times, trees alternating: when the
command line is parsed and its modules imported, the runs read, the solver imported, the fit
workers forked, each worker's result back, the fit written and the process ended, with the
CPU seconds of the process and of its workers (the medians):

    python benchmarks/fit_speed.py --timeline --old /tmp/s10_old/src --repeats 5

``--phases LAWS`` instead profiles this tree's banded fit of each law on the 400M training runs,
in this process and without workers: the CPU seconds, solver evaluations and count of each phase
(the multi-start scouts, the refinement of the best start, the jackknife refits, the refits of
the band's growth calibration), the features built, and the fit with the features of the parts it
refits and predicts built once (as this tree does) against built afresh each time (as before),
and for a law that merges a fit's parts into one evaluation (`Law.merged_features`: `lrlab`) the
banded and the point fit with the parts evaluated at once against one by one; alternating, the
least of `--repeats` each:

    python benchmarks/fit_speed.py --phases lrlab,mpl,momentum --repeats 4
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import shared_data as shared

HERE = Path(__file__).resolve().parent
SERIAL = "(this tree, LRLAB_FIT_WORKERS=1)"
CLI_LAWS = ("auto", "lrlab", "mpl", "momentum")
HUBER = 1e-3
REFERENCE_STARTS = 5 * 3 * 3 * 3
REFERENCE_STEPS = 200


def _environment(source: str | None) -> dict[str, str]:
    """The environment of a process of the tree at `source` (None: this tree, as installed;
    `SERIAL`: this tree, fitting without workers)."""
    environment = dict(os.environ)
    if source == SERIAL:
        environment["LRLAB_FIT_WORKERS"] = "1"
    elif source is not None:
        paths = [source, *filter(None, [environment.get("PYTHONPATH")])]
        environment["PYTHONPATH"] = os.pathsep.join(paths)
    return environment


def _timed(command: list[str], source: str | None = None) -> tuple[float, float, str]:
    """Wall and CPU (user + system, with every process it waited for) seconds of `command` in a
    fresh process of the tree at `source`, and its standard output."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = subprocess.run(
        command, check=True, capture_output=True, text=True, env=_environment(source)
    )
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, cpu, done.stdout


def _median(pairs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)


def _trees(old: str | None, serial: bool, others: list[str]) -> dict[str, str | None]:
    """The trees timed, by label: `old`, this tree ("new"), this tree without workers, and
    `others` (``LABEL=SRC`` each)."""
    trees: dict[str, str | None] = {"old": old} if old else {}
    trees["new"] = None
    if serial:
        trees["new serial"] = SERIAL
    for other in others:
        label, _, source = other.partition("=")
        if not label or not source or label in trees:
            sys.exit(f"--tree {other!r}: expected LABEL=SRC, a label not yet used")
        trees[label] = source
    return trees


def cli_seconds(
    laws: list[str], files: list[Path], trees: dict[str, str | None], repeats: int
) -> dict[tuple[str, str], tuple[float, float]]:
    """Median wall and CPU seconds of ``lrlab fit`` on `files` per law and tree, the trees'
    processes alternating (so that a change of the machine's load falls on both)."""
    samples: dict[tuple[str, str], list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for repeat in range(repeats):
            for law in laws:
                order = list(trees.items())
                for tree, source in order if repeat % 2 == 0 else order[::-1]:
                    command = [sys.executable, "-m", "lrlab", "fit", *map(str, files)]
                    command += ["--law", law, "--warmup", str(shared.LOGGED_WARMUP)]
                    command += ["-o", str(Path(folder) / f"{tree}-{law}.json")]
                    wall, cpu, _ = _timed(command, source)
                    samples.setdefault((law, tree), []).append((wall, cpu))
    return {key: _median(pairs) for key, pairs in samples.items()}


def point_worker(law: str, patterns: str | None) -> None:
    """(In a fresh process of one tree.) Time the point fit of `law` on every scoreboard task
    and print ``{task: [wall, cpu]}`` as JSON; a task the law cannot fit is left out."""
    import scoreboard
    from lrlab.errors import LrlabError
    from lrlab.laws import get_law

    tasks = scoreboard.select_tasks(patterns)
    missing = set(scoreboard.missing_tunnel_runs(tasks))
    tasks = [task for task in tasks if not missing & set(task.fit)]
    runs = {task.name: task.fit_runs() for task in tasks}
    get_law(law, bands=False).fit(runs[tasks[0].name])  # imports, as the scoreboard does first
    seconds = {}
    for task in tasks:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        began, cpu = time.perf_counter(), time.process_time()
        try:
            get_law(law, bands=False).fit(runs[task.name])
        except LrlabError:
            continue
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        workers = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        seconds[task.name] = [time.perf_counter() - began, time.process_time() - cpu + workers]
    print(json.dumps(seconds))


def point_seconds(
    laws: list[str], trees: dict[str, str | None], patterns: str | None
) -> dict[tuple[str, str], dict[str, list[float]]]:
    """`point_worker`'s timings per law and tree, the trees alternating from law to law."""
    out = {}
    for index, law in enumerate(laws):
        order = list(trees.items())
        for tree, source in order if index % 2 == 0 else order[::-1]:
            command = [sys.executable, str(Path(__file__).resolve()), "--point-worker", law]
            command += ["--tasks", patterns] if patterns else []
            out[(law, tree)] = json.loads(_timed(command, source)[2])
    return out


def _phase_profile(law: str, runs: list) -> None:
    """Print the CPU seconds, evaluations and count of each phase of `law`'s banded fit of
    `runs` in this process, and of the features it builds."""
    from lrlab.laws import base, get_law

    kind = type(get_law(law))
    solve, features = base.Law._solve, kind.features
    solves: list[tuple[int, int, float]] = []
    built: list[float] = []

    def timed_solve(self, problem, start, max_evals=400):
        began = time.process_time()
        result = solve(self, problem, start, max_evals)
        solves.append((max_evals, int(result.nfev), time.process_time() - began))
        return result

    def timed_features(self, lr, steps):
        began = time.process_time()
        out = features(self, lr, steps)
        built.append(time.process_time() - began)
        return out

    base.Law._solve, kind.features = timed_solve, timed_features
    try:
        began = time.process_time()
        get_law(law).fit(runs)
        total = time.process_time() - began
    finally:
        base.Law._solve, kind.features = solve, features
    names = {base._SCOUT_EVALS: "scouts", base._GROWTH_EVALS: "growth refits"}
    print(f"\n{law}: banded fit of the 400M training runs, {total:.3f} s CPU, by phase:")
    print("| phase | count | evaluations | CPU s |")
    print("|---|---:|---:|---:|")
    phase_of = [names.get(evals, "jackknife refits") for evals, _, _ in solves]
    phase_of[phase_of.index("jackknife refits")] = "refinement"  # the first full solve
    for phase in ("scouts", "refinement", "jackknife refits", "growth refits"):
        mine = [solved for solved, name in zip(solves, phase_of, strict=True) if name == phase]
        evaluations = "+".join(str(nfev) for _, nfev, _ in mine)
        print(f"| {phase} | {len(mine)} | {evaluations} | {sum(c for *_, c in mine):.3f} |")
    print(f"| features built | {len(built)} | - | {sum(built):.3f} |")


def jackknife_census() -> None:
    """Print `--jackknife`'s count of jackknife refits at the evaluation cap (module docstring)."""
    import scoreboard
    from lrlab.laws import base, get_law

    os.environ["LRLAB_FIT_WORKERS"] = "1"  # every solve in this process, where it is recorded
    solve, cap = base.Law._solve, 400  # `Law._solve`'s default: the fit's and the jackknife's
    solves: list[tuple[int, int]] = []

    def recorded(self, problem, start, max_evals=cap):
        result = solve(self, problem, start, max_evals)
        solves.append((max_evals, int(result.nfev)))
        return result

    base.Law._solve = recorded
    counts: dict[str, list[tuple[str, int]]] = {}
    try:
        for task in scoreboard.select_tasks("mpl-*,wsd124*"):
            for member in ("momentum", "mpl", "lrlab"):
                solves.clear()
                get_law(member).fit(task.fit_runs())
                # the first solve with the full budget refines the fit; the others are the refits
                refits = [evals for budget, evals in solves if budget == cap][1:]
                counts.setdefault(member, []).extend((task.name, evals) for evals in refits)
    finally:
        base.Law._solve = solve
    print(f"jackknife refits of the members' banded fits, 18 tasks; the cap: {cap} evaluations")
    print("| law | refits | at the cap | median evaluations | tasks with one at the cap |")
    print("|---|---:|---:|---:|---|")
    for member, refits in counts.items():
        capped = [task for task, evals in refits if evals >= cap]
        median = statistics.median(evals for _, evals in refits)
        print(
            f"| {member} | {len(refits)} | {len(capped)} | {median:.0f} | "
            f"{', '.join(sorted(set(capped)))} |"
        )


def blas_ab(repeats: int) -> None:
    """Print `--blas`' comparison (module docstring): CPU seconds of serial banded fits of the
    three members on the 400M runs, the BLAS limit looked up once against at every solve."""
    import threadpoolctl

    from lrlab.laws import base, get_law

    os.environ["LRLAB_FIT_WORKERS"] = "1"
    runs = [shared.load_logged_run("400M", name) for name in shared.TRAIN]
    base.import_solver()
    once = base._blas

    class EverySolve:
        def limit(self, **limits):
            return threadpoolctl.threadpool_limits(**limits)

    ways = {"looked up once": once, "at every solve": EverySolve}
    seconds: dict[str, list[float]] = {way: [] for way in ways}
    try:
        for repeat in range(repeats):
            order = list(ways.items())
            for way, blas in order if repeat % 2 == 0 else order[::-1]:
                base._blas = blas
                began = time.process_time()
                for law in ("lrlab", "mpl", "momentum"):
                    get_law(law).fit(runs)
                seconds[way].append(time.process_time() - began)
    finally:
        base._blas = once
    for way, values in seconds.items():
        print(f"{way}: median {statistics.median(values):.3f} s CPU, least {min(values):.3f}")
    ratio = statistics.median(seconds["looked up once"]) / statistics.median(
        seconds["at every solve"]
    )
    least = min(seconds["looked up once"]) / min(seconds["at every solve"])
    print(f"once / at every solve: {ratio:.3f} (medians), {least:.3f} (least of {repeats})")


def phases(laws: list[str], repeats: int) -> None:
    """Print `--phases`' profile of the banded fit of each of `laws` (module docstring)."""
    from lrlab.laws import base, get_law

    os.environ["LRLAB_FIT_WORKERS"] = "1"  # every phase in this process, where it is timed
    runs = [shared.load_logged_run("400M", name) for name in shared.TRAIN]
    base.import_solver()
    problem, curves_at = base.Law._problem, base.Law._curves_at

    def fresh_problem(self, parts, lower, upper, built=None):
        return problem(self, parts, lower, upper)

    def fresh_curves(self, thetas, lr, steps, features=None):
        return curves_at(self, thetas, lr, steps)

    for law in laws:
        _phase_profile(law, runs)
        seconds: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(repeats):
            for reuse in (True, False):
                base.Law._problem = problem if reuse else fresh_problem
                base.Law._curves_at = curves_at if reuse else fresh_curves
                began = time.process_time()
                get_law(law).fit(runs)
                seconds[reuse].append(time.process_time() - began)
        base.Law._problem, base.Law._curves_at = problem, curves_at
        once, afresh = min(seconds[True]), min(seconds[False])
        print(
            f"features built once {once:.3f} s CPU, afresh {afresh:.3f} s (least of {repeats}): "
            f"once / afresh {once / afresh:.3f}"
        )
        kind = type(get_law(law))
        if kind.merged_features is base.Law.merged_features:
            continue
        merge = kind.merged_features
        for bands in (True, False):
            seconds = {True: [], False: []}
            for _ in range(repeats):
                for merged in (True, False):
                    kind.merged_features = merge if merged else base.Law.merged_features
                    began = time.process_time()
                    get_law(law, bands=bands).fit(runs)
                    seconds[merged].append(time.process_time() - began)
            kind.merged_features = merge
            at_once, each = min(seconds[True]), min(seconds[False])
            print(
                f"{'banded' if bands else 'point'} fit, the parts evaluated at once "
                f"{at_once:.3f} s CPU, one by one {each:.3f} s: at once / one by one "
                f"{at_once / each:.3f}"
            )


def _huber(residuals):
    """The reference's Huber loss (delta `HUBER`), on numpy arrays or torch tensors."""
    small = abs(residuals) < HUBER
    quadratic = 0.5 * residuals**2
    linear = HUBER * (abs(residuals) - 0.5 * HUBER)
    return quadratic * small + linear * ~small


def reference_seconds(runs: list, inits: int, steps: int) -> tuple[float, float, float, float]:
    """Seconds per surrogate start, per AdamW step, and the extrapolated total of the reference
    procedure (module docstring) on `runs`, wall; and the extrapolated total in CPU seconds."""
    import torch
    from scipy import optimize, stats

    min_loss = min(run.loss.min() for run in runs)
    log_x = np.concatenate([np.log(np.cumsum(run.lr)[run.steps]) for run in runs])
    log_y = np.concatenate([np.log(run.loss - min_loss + 0.01) for run in runs])
    slope, intercept = stats.linregress(log_x, log_y)[:2]

    def surrogate(params: np.ndarray) -> float:
        L0, A, alpha, B = params
        total = 0.0
        for run in runs:
            pred = L0 + A * np.cumsum(run.lr)[run.steps] ** -alpha - B * (3e-4 - run.lr[run.steps])
            with np.errstate(invalid="ignore", divide="ignore"):
                total += _huber(np.log(run.loss) - np.log(pred)).sum()
        return total

    grid = list(
        itertools.product(
            np.linspace(min_loss - 0.2, min_loss + 0.2, 5),
            np.linspace(np.exp(intercept) - 0.1, np.exp(intercept) + 0.1, 3),
            np.linspace(-slope - 0.1, -slope + 0.1, 3),
            np.linspace(100, 1000, 3),
        )
    )
    options = {"maxiter": 100000, "ftol": 1e-9, "gtol": 1e-6, "eps": 1e-8}
    began, cpu = time.perf_counter(), time.process_time()
    best = min(
        (
            optimize.minimize(
                surrogate, start, method="L-BFGS-B", bounds=[(0, None)] * 4, options=options
            )
            for start in grid[:: max(len(grid) // inits, 1)][:inits]
        ),
        key=lambda result: result.fun,
    )
    per_start = (time.perf_counter() - began) / inits
    cpu_per_start = (time.process_time() - cpu) / inits

    torch.set_num_threads(1)  # as lrlab's fits run (one BLAS thread)
    data = []
    for run in runs:
        lr = torch.tensor(run.lr, dtype=torch.float64)
        area = torch.cumsum(lr, 0)
        points = torch.tensor(run.steps, dtype=torch.long)
        data.append((lr, area, points, torch.tensor(np.log(run.loss), dtype=torch.float64)))
    params = [torch.tensor(float(v), dtype=torch.float64, requires_grad=True) for v in best.x]
    params += [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (1.0, 0.5, 0.5)]
    L0, A, alpha, B, C, beta, gamma = params
    adam = torch.optim.AdamW(
        [{"params": [L0, A, B, C], "lr": 5e-2}, {"params": [alpha, beta, gamma], "lr": 5e-3}]
    )
    began, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        adam.zero_grad()
        total = torch.zeros((), dtype=torch.float64)
        for lr, area, points, log_loss in data:
            k = torch.arange(1, lr.numel())
            gap = (area[points][:, None] - area[k - 1][None, :]).clamp(min=0)  # S_t - S_{k-1}
            kernel = 1 - (C * lr[k][None, :] ** -gamma * gap + 1) ** -beta
            drops = ((lr[k - 1] - lr[k])[None, :] * kernel * (k[None, :] <= points[:, None])).sum(1)
            pred = L0 + A * area[points] ** -alpha - B * drops
            total = total + _huber(log_loss - torch.log(pred)).sum()
        total.backward()
        adam.step()
    per_step = (time.perf_counter() - began) / steps
    cpu_per_step = (time.process_time() - cpu) / steps
    total = per_start * REFERENCE_STARTS + per_step * REFERENCE_STEPS
    return (
        per_start,
        per_step,
        total,
        cpu_per_start * REFERENCE_STARTS + cpu_per_step * REFERENCE_STEPS,
    )


TIMELINE = (
    ("imported", "command line parsed, modules imported"),
    ("read", "runs read"),
    ("solver", "solver imported"),
    ("forked", "fit workers forked (the last)"),
    ("first back", "first worker's result back"),
    ("last back", "last worker's result back"),
    ("written", "fit written"),
    ("ended", "process ended"),
)


def timeline_worker(files: list[str]) -> None:
    """(In a fresh process of one tree.) ``lrlab fit FILES --law auto``, instrumented: print the
    `time.time` and this process's CPU seconds at each event of `TIMELINE` (but the last) as
    JSON."""
    from lrlab import cli
    from lrlab.cli import law_commands
    from lrlab.laws import auto_law, base, parallel

    main_pid = os.getpid()
    events: dict[str, list[float]] = {}

    def stamp(event: str) -> None:
        if os.getpid() == main_pid:  # not in a worker
            events[event] = [time.time(), time.process_time()]

    def after(function, event: str, first: str | None = None):
        """`function`, stamping `event` when it returns (and `first` when it is called)."""

        def wrapped(*args, **kwargs):
            if first:
                stamp(first)
            result = function(*args, **kwargs)
            stamp(event)
            return result

        return wrapped

    law_commands.read_runs_from_args = after(law_commands.read_runs_from_args, "read", "imported")
    auto_law.import_solver = base.import_solver = after(base.import_solver, "solver")
    parallel._start = after(parallel._start, "forked")
    collect = parallel._collect

    def collected(*args):
        result = collect(*args)
        stamp("last back")
        events.setdefault("first back", events["last back"])
        return result

    parallel._collect = collected
    base.Law.save = after(base.Law.save, "written")
    command = ["fit", *files, "--law", "auto", "--warmup", str(shared.LOGGED_WARMUP)]
    with tempfile.TemporaryDirectory() as folder, contextlib.redirect_stdout(io.StringIO()):
        cli.main([*command, "-o", str(Path(folder) / "fit.json")])
    print(json.dumps(events))


def timeline(trees: dict[str, str | None], files: list[Path], repeats: int) -> None:
    """Print `timeline_worker`'s events per tree: seconds since the process was started, and
    CPU seconds of the process by then (the median of `repeats`, the trees alternating); the
    workers' CPU in all; and the fit's share of the wall time."""
    samples: dict[str, list[dict[str, list[float]]]] = {tree: [] for tree in trees}
    command = [sys.executable, str(Path(__file__).resolve()), "--timeline-worker"]
    command += [str(file) for file in files]
    for repeat in range(repeats):
        order = list(trees.items())
        for tree, source in order if repeat % 2 == 0 else order[::-1]:
            started = time.time()
            wall, cpu, output = _timed(command, source)
            events = {
                event: [at - started, process_cpu]
                for event, (at, process_cpu) in json.loads(output).items()
            }
            events["ended"] = [wall, cpu]  # CPU: the process and its workers
            samples[tree].append(events)
    print(
        f"where the wall time of `lrlab fit <the 400M runs> --law auto` goes (median of {repeats}"
    )
    print("fresh processes per tree, trees alternating): seconds since the start, wall / CPU")
    print("(the CPU of the process; at the end, of the process and its workers)")
    print("| event | " + " | ".join(trees) + " |")
    print("|---|" + "---:|" * len(trees))
    for event, label in TIMELINE:
        cells = []
        for tree in trees:
            values = [sample[event] for sample in samples[tree] if event in sample]
            if not values:
                cells.append("-")
                continue
            wall = statistics.median(value[0] for value in values)
            cpu = statistics.median(value[1] for value in values)
            cells.append(f"{wall:.3f} / {cpu:.2f}")
        print(f"| {label} | " + " | ".join(cells) + " |")


def _ratio(new: float, old: float | None) -> str:
    return f"{new / old:.2f}" if old else "-"


def main() -> None:
    from lrlab.laws import LAW_NAMES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", help="the src folder of the lrlab to compare with")
    parser.add_argument("--laws", default=",".join(CLI_LAWS), help="laws of the CLI fits")
    parser.add_argument("--point-laws", default=",".join(LAW_NAMES), help="'' for none")
    parser.add_argument("--tasks", help="scoreboard task patterns of the point fits (all)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--reference-inits", type=int, default=15)
    parser.add_argument("--reference-steps", type=int, default=8)
    parser.add_argument("--json", help="also write every timing here, as JSON")
    parser.add_argument(
        "--serial", action="store_true", help="also time this tree with LRLAB_FIT_WORKERS=1"
    )
    parser.add_argument("--phases", help="profile these laws' banded fits instead (docstring)")
    parser.add_argument("--tree", action="append", default=[], help="LABEL=SRC: one more tree")
    parser.add_argument("--timeline", action="store_true", help="where the wall time goes")
    parser.add_argument("--jackknife", action="store_true", help="refits at the evaluation cap")
    parser.add_argument("--blas", action="store_true", help="the BLAS limit's look-up, A/B")
    parser.add_argument("--point-worker", help=argparse.SUPPRESS)
    parser.add_argument("--timeline-worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.point_worker:
        point_worker(args.point_worker, args.tasks)
        return
    if args.timeline_worker:
        timeline_worker(args.timeline_worker)
        return
    if args.jackknife:
        jackknife_census()
        return
    if args.blas:
        blas_ab(args.repeats)
        return
    if args.phases:
        phases([law for law in args.phases.split(",") if law], args.repeats)
        return
    if not shared.shared_data_available():
        sys.exit(f"shared data not found at {shared.shared_data_dir()} (set LRLAB_SHARED_DATA)")
    trees = _trees(args.old, args.serial, args.tree)
    laws = [law for law in args.laws.split(",") if law]
    files = [shared.shared_data_dir() / "400M" / f"{name}.csv" for name in shared.TRAIN]
    if args.timeline:
        timeline(trees, files, args.repeats)
        return
    began = time.perf_counter()
    floor = {
        tree: _timed([sys.executable, "-m", "lrlab", "laws"], source)[:2]
        for tree, source in trees.items()
    }
    cli = cli_seconds(laws, files, trees, args.repeats)
    point_laws = [law for law in args.point_laws.split(",") if law]
    points = point_seconds(point_laws, trees, args.tasks)

    print(f"lrlab fit on the 400M training runs ({', '.join(shared.TRAIN)}), bands included, ")
    print(f"median of {args.repeats}, trees alternating; start-up floor `lrlab laws`: ", end="")
    print(
        ", ".join(
            f"{tree} {wall:.2f} s wall / {cpu:.2f} s CPU" for tree, (wall, cpu) in floor.items()
        )
    )
    print(
        "| law | old wall s | new wall s | new / old | old CPU s | new CPU s | new / old "
        "| < 2 s wall |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for law in laws:
        new_wall, new_cpu = cli[(law, "new")]
        old_wall, old_cpu = cli.get((law, "old"), (None, None))
        met = "met" if new_wall < 2 else "NOT met"
        print(
            f"| {law} | {old_wall or float('nan'):.2f} | {new_wall:.2f} | "
            f"{_ratio(new_wall, old_wall)} | {old_cpu or float('nan'):.2f} | {new_cpu:.2f} | "
            f"{_ratio(new_cpu, old_cpu)} | {met} |"
        )
    for tree in trees:
        if tree in ("old", "new"):
            continue
        print(f"\n{tree}:" if tree != "new serial" else "\nthis tree without fit workers:")
        print("| law | wall s | / old | / new | CPU s | / old | / new |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for law in laws:
            wall, cpu = cli[(law, tree)]
            old_wall, old_cpu = cli.get((law, "old"), (None, None))
            new_wall, new_cpu = cli[(law, "new")]
            print(
                f"| {law} | {wall:.2f} | {_ratio(wall, old_wall)} | {_ratio(wall, new_wall)} | "
                f"{cpu:.2f} | {_ratio(cpu, old_cpu)} | {_ratio(cpu, new_cpu)} |"
            )
    if point_laws:
        tasks = len(next(iter(points.values())))
        print(f"\npoint fits (no bands) of {tasks} scoreboard tasks: the slowest task per law ")
        print("(wall / CPU s), and the sum over the tasks; goal: every one < 1 s")
        print(
            "| law | old slowest | new slowest | where (new) | new / old, slowest wall | "
            "new / old, sum of wall | ..., sum of CPU | < 1 s wall |"
        )
        print("|---|---:|---:|---|---:|---:|---:|---|")
        for law in point_laws:
            new = points[(law, "new")]
            old = points.get((law, "old"), {})
            where = max(new, key=lambda task: new[task][0])
            slowest = [max(v[i] for v in new.values()) for i in (0, 1)]
            old_slowest = [max(v[i] for v in old.values()) for i in (0, 1)] if old else None
            sums = [sum(v[i] for v in new.values()) for i in (0, 1)]
            old_sums = [sum(v[i] for v in old.values()) for i in (0, 1)] if old else None
            old_cell = f"{old_slowest[0]:.2f} / {old_slowest[1]:.2f}" if old_slowest else "-"
            met = "met" if slowest[0] < 1 else "NOT met"
            print(
                f"| {law} | {old_cell} | {slowest[0]:.2f} / {slowest[1]:.2f} | {where} | "
                f"{_ratio(slowest[0], old_slowest and old_slowest[0])} | "
                f"{_ratio(sums[0], old_sums and old_sums[0])} | "
                f"{_ratio(sums[1], old_sums and old_sums[1])} | {met} |"
            )
        if args.serial:
            print("\nthe same without fit workers (LRLAB_FIT_WORKERS=1), against old:")
            print("| law | slowest wall / CPU s | new / old, sum of wall | ..., sum of CPU |")
            print("|---|---:|---:|---:|")
            for law in point_laws:
                serial = points[(law, "new serial")]
                old = points.get((law, "old"), {})
                slowest = [max(v[i] for v in serial.values()) for i in (0, 1)]
                sums = [sum(v[i] for v in serial.values()) for i in (0, 1)]
                old_sums = [sum(v[i] for v in old.values()) for i in (0, 1)] if old else None
                print(
                    f"| {law} | {slowest[0]:.2f} / {slowest[1]:.2f} | "
                    f"{_ratio(sums[0], old_sums and old_sums[0])} | "
                    f"{_ratio(sums[1], old_sums and old_sums[1])} |"
                )
    if args.reference_inits > 0 and laws:
        runs = [shared.load_logged_run("400M", name) for name in shared.TRAIN]
        per_start, per_step, reference, reference_cpu = reference_seconds(
            runs, args.reference_inits, args.reference_steps
        )
        wall, cpu = cli[(laws[0], "new")]
        print(
            f"\nreference procedure: {per_start:.3f} s per surrogate start (x{REFERENCE_STARTS}), ",
            end="",
        )
        print(
            f"{per_step:.3f} s per AdamW step (x{REFERENCE_STEPS}): EXTRAPOLATED {reference:.1f} s "
        )
        print(f"wall, {reference_cpu:.1f} s CPU, from {args.reference_inits} starts and ", end="")
        print(
            f"{args.reference_steps} steps; reference / `lrlab fit --law {laws[0]}`: ",
            end="",
        )
        print(f"x{reference / wall:.0f} wall, x{reference_cpu / cpu:.0f} CPU")
    print(f"\nbenchmark took {time.perf_counter() - began:.0f} s; load average {os.getloadavg()}")
    if args.json:
        timings = {
            "floor": floor,
            "cli": {f"{law} {tree}": seconds for (law, tree), seconds in cli.items()},
            "points": {f"{law} {tree}": tasks for (law, tree), tasks in points.items()},
        }
        Path(args.json).write_text(json.dumps(timings, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
