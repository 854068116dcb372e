"""Does the 90% band's calibration rest on the jackknife refits' evaluation cap? (issue 13)

A diagnostic on development data only. A banded fit (`lrlab.laws.base.Law.fit`) refits the law
once per left-out run or block, warm-started at the fit, for at most 400 evaluations of the
solver (`Law._solve`'s default); many of those refits stop at that cap without converging. This
script scores the band with the cap at each of ``--caps`` (default 400, today's, and 2000, where
nearly every refit converges) on:

- the training-only folds of the scoreboard's mpl and wsd124 tasks (`scoreboard.training_folds`:
  within each task's *fitted* runs, leave one out, and fit the first halves forecasting the rest;
  no held-out curve of a task is read);
- the training-only folds of the wind tunnel's widths 32, 48 and 96, and the 3-run and 2-run
  splits of width 96 (a development set: the scoreboard reports widths 64 and 128).

The cap is changed in a scratch copy of the package only (``--scratch``, default under /tmp):
``src`` copied there, with the jackknife refit's `_solve` call given a budget read from the
environment variable ``LRLAB_JACKKNIFE_EVALS``; the tree's own package is never changed. Each cap
runs in its own process, with that copy first on the path and ``LRLAB_FIT_WORKERS=1`` (so that
every solve runs in the process, where it is counted); the two run side by side.

Per job: `auto` fitted with bands to the fitted runs; coverage of the 90% band over the forecast
points and its mean relative width ``(high - low) / pred``, for `auto` and for each of its members
(`momentum`, `mpl`, `lrlab`: the same fits as those laws' own with their default options); and
the members' jackknife refits, and how many stopped at the cap (the solver's status 0).

    python benchmarks/jackknife_cap.py [--caps 400,2000,10000] [--json FILE]

``--from-json FILE`` prints the tables of an earlier ``--json`` again, without fitting.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CAP_VARIABLE = "LRLAB_JACKKNIFE_EVALS"
# The jackknife refit in `Law.fit` (laws/base.py), and what the scratch copy makes of it.
REFIT_CALL = "return self._exact_fixed(self._solve(refit, best.x).x)"
CAPPED_CALL = (
    "return self._exact_fixed(\n"
    f"                    self._solve(refit, best.x, int(os.environ['{CAP_VARIABLE}'])).x\n"
    "                )"
)
MEMBERS = ("momentum", "mpl", "lrlab")
LAWS = ("auto", *MEMBERS)
LEVEL = 0.9
TUNNEL_WIDTHS = (32, 48, 96)
TUNNEL_SPLITS = ("tunnel-d96/3-run", "tunnel-d96/2-run")  # whole splits: development width


def scratch_copy(scratch: Path) -> Path:
    """A copy of this tree's ``src`` under `scratch`, its jackknife refits' budget read from
    ``LRLAB_JACKKNIFE_EVALS``; returns the copy's ``src``."""
    target = scratch / "src"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(REPO / "src", target, ignore=shutil.ignore_patterns("__pycache__"))
    base = target / "lrlab" / "laws" / "base.py"
    text = base.read_text()
    if text.count(REFIT_CALL) != 1:
        raise SystemExit(f"{base}: the jackknife refit call is not found once: {REFIT_CALL!r}")
    text = text.replace(REFIT_CALL, CAPPED_CALL).replace("import abc\n", "import abc\nimport os\n")
    base.write_text(text)
    return target


def jobs() -> list[Any]:
    """The development jobs (module docstring), each a `scoreboard.Task`, every one once."""
    import scoreboard

    tasks = scoreboard.select_tasks("mpl-*,wsd124*")
    tunnel = scoreboard.all_tasks(TUNNEL_WIDTHS)
    tasks += [task for name, task in tunnel.items() if name.startswith("tunnel-")]
    seen: dict[tuple, Any] = {}
    for task in tasks:
        for fold in scoreboard.training_folds(task):
            seen.setdefault((fold.fit, fold.predict), fold)
    for name in TUNNEL_SPLITS:
        seen.setdefault((tunnel[name].fit, tunnel[name].predict), tunnel[name])
    return list(seen.values())


def band_scores(fitted: Any, runs: list[Any]) -> dict[str, float]:
    """Coverage of `fitted`'s 90% band over the forecast points of `runs`, and its mean relative
    width, as `scoreboard.score_law` computes them."""
    from lrlab.laws.metrics import coverage

    inside = points = 0.0
    widths = []
    for run in runs:
        pred, low, high = fitted.predict_with_band(run.lr, run.steps, LEVEL)
        defined = np.isfinite(pred) & np.isfinite(low) & np.isfinite(high)
        count = int(defined.sum())
        inside += coverage(run.loss[defined], low[defined], high[defined]) * count
        points += count
        widths.append((high[defined] - low[defined]) / pred[defined])
    return {"coverage": inside / points, "width": float(np.mean(np.concatenate(widths)))}


def worker(cap: int, out: Path) -> None:
    """Score every job with the jackknife cap `cap` (this process runs the scratch copy), one JSON
    line per job appended to `out` as it is done."""
    import lrlab
    from lrlab.errors import LrlabError
    from lrlab.laws import base, get_law

    if str(REPO / "src") in lrlab.__file__:
        raise SystemExit(
            f"worker: lrlab is the tree's own ({lrlab.__file__}), not the scratch copy"
        )
    solve = base.Law._solve
    refits: list[tuple[str, int, int]] = []

    def recorded(self: Any, problem: Any, start: Any, max_evals: int = 400) -> Any:
        result = solve(self, problem, start, max_evals)
        if sys._getframe(1).f_code.co_name == "band_refit":  # a jackknife refit
            refits.append((self.name, int(result.nfev), int(result.status)))
        return result

    base.Law._solve = recorded
    for job in jobs():
        refits.clear()
        row: dict[str, Any] = {"job": job.name, "cap": cap}
        began = time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                fitted = get_law("auto").fit(job.fit_runs())
                runs = job.predict_runs()
                row["auto"] = band_scores(fitted, runs)
                for member, law in fitted.members_.items():
                    row[member] = band_scores(law, runs)
            except LrlabError as error:
                row["error"] = str(error)
        row["cpu_seconds"] = round(time.process_time() - began, 2)
        row["refits"] = {}
        for member in MEMBERS:
            mine = [(nfev, status) for name, nfev, status in refits if name == member]
            row["refits"][member] = {
                "refits": len(mine),
                "at_cap": sum(status == 0 for _, status in mine),
                "evaluations": [nfev for nfev, _ in mine],
            }
        with out.open("a") as stream:
            stream.write(json.dumps(row) + "\n")
        print(f"cap {cap}: {job.name} ({row['cpu_seconds']} s cpu)", flush=True)


@dataclasses.dataclass
class Summary:
    """One law at one cap over the jobs both caps scored."""

    coverage_mean: float
    coverage_least: float
    below_085: int
    above_095: int
    width_mean: float
    width_median: float


def summarise(rows: list[dict], law: str) -> Summary:
    cover = np.array([row[law]["coverage"] for row in rows])
    width = np.array([row[law]["width"] for row in rows])
    return Summary(
        float(cover.mean()),
        float(cover.min()),
        int(np.sum(cover < 0.85)),
        int(np.sum(cover > 0.95)),
        float(width.mean()),
        float(np.median(width)),
    )


def cells(rows: list[dict], law: str, key: str, digits: int) -> str:
    """`law`'s `key` in each of `rows` (one job at each cap), for a table cell."""
    return " / ".join(f"{row[law][key]:.{digits}f}" for row in rows)


def report(results: dict[int, list[dict]], caps: list[int]) -> dict:
    """Print the per-job and summary tables; return them for ``--json``."""
    low = caps[0]
    by_job = {cap: {row["job"]: row for row in rows} for cap, rows in results.items()}
    names = [name for name in by_job[low] if all(name in by_job[cap] for cap in caps)]
    both = [name for name in names if all("error" not in by_job[cap][name] for cap in caps)]
    print(f"\n{len(both)} jobs scored at every cap ({len(names) - len(both)} with a fit error)")
    heads = " / ".join(map(str, caps))
    print(
        f"| job | auto cover {heads} | auto width | lrlab cover | lrlab width | "
        "refits at the cap (momentum+mpl+lrlab) |"
    )
    print("|---|---|---|---|---|---|")
    for name in both:
        rows = [by_job[cap][name] for cap in caps]
        capped = " / ".join(
            "+".join(str(row["refits"][m]["at_cap"]) for m in MEMBERS) for row in rows
        )
        print(
            f"| {name} | {cells(rows, 'auto', 'coverage', 3)} | "
            f"{cells(rows, 'auto', 'width', 4)} | "
            f"{cells(rows, 'lrlab', 'coverage', 3)} | {cells(rows, 'lrlab', 'width', 4)} | "
            f"{capped} of {rows[0]['refits']['lrlab']['refits']} each |"
        )
    summary: dict[str, Any] = {}
    print(
        "\n| law | cap | mean cover | least | < 0.85 | > 0.95 | mean width | median width | "
        "refits at cap |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for law in LAWS:
        for cap in caps:
            rows = [by_job[cap][name] for name in both]
            s = summarise(rows, law)
            members = MEMBERS if law == "auto" else (law,)
            hit = sum(row["refits"][m]["at_cap"] for row in rows for m in members)
            total = sum(row["refits"][m]["refits"] for row in rows for m in members)
            summary[f"{law}@{cap}"] = {**dataclasses.asdict(s), "at_cap": hit, "refits": total}
            print(
                f"| {law} | {cap} | {s.coverage_mean:.3f} | {s.coverage_least:.3f} | "
                f"{s.below_085} | {s.above_095} | {s.width_mean:.4f} | {s.width_median:.4f} | "
                f"{hit} of {total} |"
            )
    for law, high in ((law, cap) for law in ("auto", "lrlab") for cap in caps[1:]):
        ratios = [
            by_job[high][name][law]["width"] / by_job[low][name][law]["width"] for name in both
        ]
        finite = [r for r in ratios if math.isfinite(r) and r > 0]
        print(
            f"{law}: width ratio {high}/{low} per job: median {np.median(finite):.3f}, "
            f"geomean {math.exp(np.mean(np.log(finite))):.3f}, largest {max(finite):.2f}, "
            f"least {min(finite):.3f}; wider by >10% on {sum(r > 1.1 for r in finite)}, "
            f"narrower by >10% on {sum(r < 1 / 1.1 for r in finite)} of {len(finite)}"
        )
    return {"jobs": {cap: [by_job[cap][name] for name in names] for cap in caps}, **summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--caps", default="400,2000,10000", help="comma-separated jackknife budgets"
    )
    parser.add_argument("--scratch", default="/tmp/lrlab_jackknife_cap", type=Path)
    parser.add_argument("--json", metavar="FILE", help="also write everything as JSON")
    parser.add_argument("--from-json", metavar="FILE", help="print an earlier --json's tables")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)  # a cap, in a child
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        worker(args.worker, args.out)
        return
    if args.from_json:
        jobs_by_cap = json.loads(Path(args.from_json).read_text())["jobs"]
        report({int(cap): rows for cap, rows in jobs_by_cap.items()}, sorted(map(int, jobs_by_cap)))
        return
    caps = [int(cap) for cap in args.caps.split(",")]
    src = scratch_copy(args.scratch)
    began = time.perf_counter()
    children = {}
    for cap in caps:
        out = args.scratch / f"cap{cap}.jsonl"
        out.unlink(missing_ok=True)
        environment = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(src), str(REPO / "benchmarks")]),
            CAP_VARIABLE: str(cap),
            "LRLAB_FIT_WORKERS": "1",
        }
        command = [sys.executable, __file__, "--worker", str(cap), "--out", str(out)]
        children[cap] = (subprocess.Popen(command, env=environment), out)
    for cap, (child, _) in children.items():
        if child.wait() != 0:
            raise SystemExit(f"the worker for cap {cap} failed (exit status {child.returncode})")
    print(f"wall {time.perf_counter() - began:.0f} s")
    results = {
        cap: [json.loads(line) for line in out.read_text().splitlines()]
        for cap, (_, out) in children.items()
    }
    everything = report(results, caps)
    if args.json:
        from lrlab.atomic import atomic_write_text

        atomic_write_text(Path(args.json), json.dumps(everything, indent=1))


if __name__ == "__main__":
    main()
