"""Benchmark the point fits' evaluations: this tree's law code against an older tree's (`--old`,
its ``src``), in fresh processes that alternate, on the scoreboard's slowest point fits.

For each law and task, a worker process of one tree reads the task's runs, fits once (imports,
workspaces), then times `--fits` point fits (``bands=False``, no fit workers: one core) and the
law's evaluation at the fitted parameters on the fit's own rows (the parts merged where the law
merges them, `Law.merged_features`): the curve and its Jacobian (``curve_and_jacobian``) and the
curve alone (``curve``), each the least of five blocks of `--calls` calls. It also counts the
solver's calls for residuals and for a Jacobian in one fit, and prints the fitted parameters,
so that the two trees' fits can be checked for identity (the numbers a speed change must not
move; `benchmarks/fit_equivalence.py` checks every task, band and forecast).

The trees' workers alternate (old, new, new, old, ...) for `--rounds` rounds, and each figure is
the least over the rounds (CPU seconds of the process: on a shared machine, wall time measures
the other work too); the ratio new / old is the speed-up of this tree, measured in the same run.

    python benchmarks/point_fit_speed.py --old /tmp/s10_old/src
    python benchmarks/point_fit_speed.py --old /tmp/s10_old/src --laws mpl --tasks 'mpl-400M/*'
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

TASKS = "mpl-100M/3-run,mpl-100M/2-run,mpl-400M/2-run,mpl-25M/2-run,tunnel-d128/3-run"


def worker(law_name: str, patterns: str, fits: int, calls: int) -> None:
    """(In a fresh process of one tree.) Time `law_name`'s point fits and evaluations on the
    tasks matching `patterns`; print them as JSON."""
    import scoreboard
    from lrlab.laws import base, get_law

    counts = {"residuals": 0, "jacobian": 0}
    objective, jacobian = base.FitProblem.objective, base.FitProblem.jacobian

    def counted_objective(self, theta):
        counts["residuals"] += 1
        return objective(self, theta)

    def counted_jacobian(self, theta):
        counts["jacobian"] += 1
        return jacobian(self, theta)

    tasks = scoreboard.select_tasks(patterns)
    missing = set(scoreboard.missing_tunnel_runs(tasks))
    out = {}
    for task in tasks:
        if missing & set(task.fit):
            continue
        runs = task.fit_runs()
        law = get_law(law_name, bands=False).fit(runs)  # imports and workspaces, untimed
        cpu = []
        for _ in range(fits):
            began = time.process_time()
            law = get_law(law_name, bands=False).fit(runs)
            cpu.append(time.process_time() - began)
        base.FitProblem.objective, base.FitProblem.jacobian = counted_objective, counted_jacobian
        counts.update(residuals=0, jacobian=0)
        get_law(law_name, bands=False).fit(runs)
        base.FitProblem.objective, base.FitProblem.jacobian = objective, jacobian
        problem = law.fit_problem(runs)
        merged = getattr(problem, "merged", None)
        parts = [merged[0]] if merged else [features for features, _ in problem.parts]
        theta = law.params_

        def timed(function) -> float:
            function()
            best = float("inf")
            for _ in range(5):
                began = time.process_time()
                for _ in range(calls):
                    function()
                best = min(best, (time.process_time() - began) / calls)
            return best

        both = timed(
            lambda law=law, theta=theta, parts=parts: [
                law.curve_and_jacobian(theta, part) for part in parts
            ]
        )
        curve = timed(
            lambda law=law, theta=theta, parts=parts: [law.curve(theta, part) for part in parts]
        )
        out[task.name] = {
            "fit": min(cpu),
            "both": both,
            "curve": curve,
            **counts,
            "params": [float(value) for value in law.params_],
        }
    print(json.dumps(out))


def _run_worker(source: str | None, law: str, args: argparse.Namespace) -> dict:
    environment = dict(os.environ, LRLAB_FIT_WORKERS="1")
    if source:
        environment["PYTHONPATH"] = os.pathsep.join(
            filter(None, [source, environment.get("PYTHONPATH")])
        )
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", law]
    command += ["--tasks", args.tasks, "--fits", str(args.fits), "--calls", str(args.calls)]
    done = subprocess.run(command, check=True, capture_output=True, text=True, env=environment)
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", help="the src folder of the lrlab to compare with")
    parser.add_argument("--laws", default="lrlab,mpl")
    parser.add_argument("--tasks", default=TASKS, help="scoreboard task patterns")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--fits", type=int, default=2, help="timed fits per task and worker")
    parser.add_argument("--calls", type=int, default=40, help="evaluations per timed block")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.tasks, args.fits, args.calls)
        return
    began = time.perf_counter()
    trees = {"old": args.old, "new": None} if args.old else {"new": None}
    results: dict[tuple[str, str], list[dict]] = {}
    for law in [name for name in args.laws.split(",") if name]:
        for round_index in range(args.rounds):
            order = list(trees.items())
            for tree, source in order if round_index % 2 == 0 else order[::-1]:
                results.setdefault((law, tree), []).append(_run_worker(source, law, args))
    print(
        f"point fits and evaluations, least CPU over {args.rounds} rounds (trees alternating), "
        f"{args.fits} fits a round; ms per evaluation; residual / Jacobian calls of one fit"
    )
    print(
        "| law | task | old fit s | new fit s | new / old | old eval+jac | new eval+jac | "
        "new / old | old curve | new curve | calls | params equal |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for law in [name for name in args.laws.split(",") if name]:
        new_rounds = results[(law, "new")]
        old_rounds = results.get((law, "old"))
        for task in new_rounds[0]:

            def least(rounds, key, task=task):
                return min(r[task][key] for r in rounds)

            new_fit, new_both, new_curve = (least(new_rounds, k) for k in ("fit", "both", "curve"))
            calls = f"{new_rounds[0][task]['residuals']} / {new_rounds[0][task]['jacobian']}"
            if old_rounds:
                old_fit, old_both, old_curve = (
                    least(old_rounds, k) for k in ("fit", "both", "curve")
                )
                equal = np.array_equal(old_rounds[0][task]["params"], new_rounds[0][task]["params"])
                print(
                    f"| {law} | {task} | {old_fit:.3f} | {new_fit:.3f} | "
                    f"{new_fit / old_fit:.2f} | {old_both * 1e3:.3f} | {new_both * 1e3:.3f} | "
                    f"{new_both / old_both:.2f} | {old_curve * 1e3:.3f} | "
                    f"{new_curve * 1e3:.3f} | {calls} | {'yes' if equal else 'NO'} |"
                )
            else:
                print(
                    f"| {law} | {task} | - | {new_fit:.3f} | - | - | {new_both * 1e3:.3f} | - | "
                    f"- | {new_curve * 1e3:.3f} | {calls} | - |"
                )
    print(f"\nbenchmark took {time.perf_counter() - began:.0f} s; load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
