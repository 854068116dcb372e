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

**Scoring other trees** (the twelfth round's band candidates): ``--tree LABEL=SRC[@CAPS]``, given
once or more, scores the package in the directory `SRC` (a scratch copy of ``src`` with its band
changed) instead of this tree's, at the caps `CAPS` (comma-separated; default ``--caps``). Each
tree is copied under ``--scratch``/LABEL and given the cap as above, and each tree and cap runs in
its own process with ``LRLAB_FIT_WORKERS=1``, all side by side. A tree whose
``lrlab.laws.base`` names several bands in ``BAND_VARIANTS`` (calibrated from the same fits) is
scored once per band, the worker setting ``base.BAND_VARIANT`` to each in turn, as LABEL/band;
its laws then report in ``band_seconds_`` the CPU seconds each band's calibration took, so that
a band's fit time is the fit's less the other bands' calibrations. The tables: for `auto` and
each member, per band and cap, the coverage and width summary, the same per data set (mpl,
wsd124, tunnel), the twelfth round's rule (docs/laws.md; its (c) between the two highest caps
of a tree, or met by a tree whose fits solve no jackknife refit), and the CPU seconds of the 58
banded fits as a ratio to the first tree's:

    python benchmarks/jackknife_cap.py --tree today=src@400 \\
        --tree cands=/tmp/s11_band/cands/src@2000,10000 --json FILE

``--only TEXT`` keeps the jobs whose name contains TEXT (a quick check).
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


def scratch_copy(scratch: Path, source: Path = REPO / "src") -> Path:
    """A copy of `source` (by default this tree's ``src``) under `scratch`, its jackknife refits'
    budget read from ``LRLAB_JACKKNIFE_EVALS``; returns the copy's ``src``."""
    target = scratch / "src"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
    base = target / "lrlab" / "laws" / "base.py"
    text = base.read_text()
    if source != REPO / "src" and REFIT_CALL not in text:  # a candidate without capped refits
        print(f"{source}: no capped jackknife refit ({REFIT_CALL!r}): the cap changes nothing")
        return target
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


def worker(cap: int, out: Path, only: str = "") -> None:
    """Score every job (whose name contains `only`) with the jackknife cap `cap` (this process
    runs the scratch copy), one JSON line per job appended to `out` as it is done; with the
    tree's `BAND_VARIANTS` (module docstring), each band's scores too, under ``bands``."""
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
    variants = getattr(base, "BAND_VARIANTS", ())
    for job in (job for job in jobs() if only in job.name):
        refits.clear()
        row: dict[str, Any] = {"job": job.name, "cap": cap}
        began = time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                fitted = get_law("auto").fit(job.fit_runs())
                row["fit_seconds"] = round(time.process_time() - began, 3)
                runs = job.predict_runs()
                row.update(law_scores(fitted, runs))
                if variants:
                    row["bands"], row["band_seconds"] = {}, {}
                    for variant in variants:
                        base.BAND_VARIANT = variant
                        try:  # a band that fails is that band's failure, not the fit's
                            row["bands"][variant] = law_scores(fitted, runs)
                        except LrlabError as error:
                            row["bands"][variant] = {"error": str(error)}
                        row["band_seconds"][variant] = sum(
                            law.band_seconds_[variant] for law in fitted.members_.values()
                        )
                    base.BAND_VARIANT = variants[0]
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


def law_scores(fitted: Any, runs: list[Any]) -> dict[str, dict[str, float]]:
    """`band_scores` of a fitted `auto` and of each of its members."""
    scores = {"auto": band_scores(fitted, runs)}
    for member, law in fitted.members_.items():
        scores[member] = band_scores(law, runs)
    return scores


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


DATA_SETS = (("mpl", "mpl-"), ("wsd124", "wsd124"), ("tunnel", "tunnel-"))
RULE_LEAST, RULE_MEAN, RULE_MEDIAN, RULE_MOVE = 0.85, 0.163, 0.084, 0.05  # docs/laws.md


def band_rows(results: dict[tuple[str, int], list[dict]]) -> dict[str, dict[int, dict]]:
    """Each band's rows, keyed by cap, then by job: a tree's own band as its label, each of a
    tree's `BAND_VARIANTS` as LABEL/band, each row with the band's scores per law and its fit's
    CPU seconds (less the other bands' calibrations), `fit_seconds`."""
    bands: dict[str, dict[int, dict]] = {}
    for (label, cap), rows in results.items():
        names = next((list(row["bands"]) for row in rows if "bands" in row), [""])
        for row in rows:
            if "error" in row:  # the fit failed: so did each of its bands
                variants = {name: {"error": row["error"]} for name in names}
                row = {**row, "fit_seconds": row.get("fit_seconds", row["cpu_seconds"])}
            else:
                variants = row.get("bands") or {"": {law: row[law] for law in LAWS if law in row}}
            spent = sum(row.get("band_seconds", {}).values())
            for variant, scores in variants.items():
                if "error" in scores:  # no band: counted as covering nothing, infinitely wide
                    scores = {law: {"coverage": 0.0, "width": math.inf} for law in LAWS}
                own = row.get("band_seconds", {}).get(variant, 0.0)
                name = f"{label}/{variant}" if variant else label
                refits = sum(count["refits"] for count in row["refits"].values())
                scored = {
                    **scores,
                    "fit_seconds": row["fit_seconds"] - spent + own,
                    "jackknife_refits": refits,
                }
                bands.setdefault(name, {}).setdefault(cap, {})[row["job"]] = scored
    return bands


def tree_report(results: dict[tuple[str, int], list[dict]]) -> dict:
    """Print, for every band, the summary tables, the per data set ones, the rule's verdict and
    the CPU ratio; return them for ``--json``."""
    bands = band_rows(results)
    common = set.intersection(*(set(rows) for caps in bands.values() for rows in caps.values()))
    names = sorted(common)
    print(f"\n{len(names)} jobs scored by every band at every cap (a failed fit or band: no band)")
    for band, caps in bands.items():
        for cap, rows in sorted(caps.items()):
            failed = [name for name in names if math.isinf(rows[name]["auto"]["width"])]
            if failed:
                print(f"{band} at {cap}: no band on {len(failed)} jobs: {', '.join(failed)}")
    summary: dict[str, Any] = {}
    print("\n| band | law | cap | mean cover | least | < 0.85 | > 0.95 | mean width | median |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for band, caps in bands.items():
        for law in LAWS:
            for cap, rows in sorted(caps.items()):
                s = summarise([rows[name] for name in names if law in rows[name]], law)
                summary[f"{band}:{law}@{cap}"] = dataclasses.asdict(s)
                print(
                    f"| {band} | {law} | {cap} | {s.coverage_mean:.3f} | {s.coverage_least:.3f} "
                    f"| {s.below_085} | {s.above_095} | {s.width_mean:.4f} | "
                    f"{s.width_median:.4f} |"
                )
    print("\n`auto` per data set: mean cover / least / mean width / median width")
    print("| band | cap | " + " | ".join(name for name, _ in DATA_SETS) + " |")
    print("|---|---:|" + "---|" * len(DATA_SETS))
    for band, caps in bands.items():
        for cap, rows in sorted(caps.items()):
            parts = []
            for data_set, prefix in DATA_SETS:
                chosen = [rows[name] for name in names if name.startswith(prefix)]
                if not chosen:
                    parts.append("-")
                    continue
                s = summarise(chosen, "auto")
                summary[f"{band}:auto@{cap}:{data_set}"] = dataclasses.asdict(s)
                parts.append(
                    f"{s.coverage_mean:.3f} / {s.coverage_least:.3f} / {s.width_mean:.3f} / "
                    f"{s.width_median:.3f}"
                )
            print(f"| {band} | {cap} | " + " | ".join(parts) + " |")
    first = next(iter(bands))  # the first tree's (first) band, at its lowest cap
    low_cap = min(bands[first])
    baseline = sum(bands[first][low_cap][name]["fit_seconds"] for name in names)
    print(
        f"\nthe rule on `auto` (docs/laws.md, twelfth round); CPU as a ratio to {first}@{low_cap}"
    )
    print(
        "| band | caps | least cover | mean / median width | largest width move | passes | "
        "fit CPU s (ratio) |"
    )
    print("|---|---|---:|---:|---:|---|---|")
    for band, caps in bands.items():
        order = sorted(caps)
        low, high = order[-2:] if len(order) > 1 else (order[0], order[0])
        least = min(caps[cap][name]["auto"]["coverage"] for cap in (low, high) for name in names)
        s = summarise([caps[high][name] for name in names], "auto")
        moves = [
            abs(caps[high][name]["auto"]["width"] / caps[low][name]["auto"]["width"] - 1)
            for name in names
        ]
        # a job without a band at both caps moves by nan: (a) fails it already
        move = max((m for m in moves if not math.isnan(m)), default=math.nan)
        move = move if len(order) > 1 else math.nan  # one cap: nothing to move between
        solved = sum(caps[cap][name]["jackknife_refits"] for cap in order for name in names)
        verdict = {
            "a": least >= RULE_LEAST,
            "b": s.width_mean <= RULE_MEAN and s.width_median <= RULE_MEDIAN,
            "c": solved == 0 or (len(order) > 1 and move <= RULE_MOVE),  # or no refit at all
        }
        missed = "".join(key for key, passed in verdict.items() if not passed)
        seconds = {cap: sum(caps[cap][name]["fit_seconds"] for name in names) for cap in order}
        summary[f"{band}:rule"] = {
            "caps": [low, high],
            "least": least,
            "mean": s.width_mean,
            "median": s.width_median,
            "largest_move": move,
            "jackknife_refits": solved,
            "moved_over_5pc": sum(m > RULE_MOVE for m in moves),
            **verdict,
            "fit_seconds": seconds,
        }
        print(
            f"| {band} | {low} / {high} | {least:.3f} | {s.width_mean:.4f} / "
            f"{s.width_median:.4f} | {move:.3f} ({sum(m > RULE_MOVE for m in moves)} jobs > 5%)"
            f" | {'yes' if all(verdict.values()) else 'no: ' + missed}"
            " | "
            + ", ".join(f"{cap}: {sec:.0f} ({sec / baseline:.2f})" for cap, sec in seconds.items())
            + " |"
        )
    return {"jobs": {f"{label}@{cap}": rows for (label, cap), rows in results.items()}, **summary}


def run_trees(args: argparse.Namespace) -> None:
    """``--tree`` mode (module docstring): every tree at each of its caps, side by side."""
    children = {}
    began = time.perf_counter()
    for spec in args.tree:
        label, _, rest = spec.partition("=")
        source, _, caps = rest.partition("@")
        if not label or not source or "/" in label:
            raise SystemExit(f"--tree {spec!r}: expected LABEL=SRC[@CAPS]")
        src = scratch_copy(args.scratch / label, Path(source).resolve())
        for cap in [int(cap) for cap in (caps or args.caps).split(",")]:
            out = args.scratch / label / f"cap{cap}.jsonl"
            children[label, cap] = (start_worker(src, cap, out, args.only), out)
    save(tree_report(finished(children, began)), args.json)


def start_worker(src: Path, cap: int, out: Path, only: str) -> subprocess.Popen:
    """A child process scoring the jobs (those matching `only`) with the package at `src` and the
    jackknife refits' cap `cap`, every solve in that process, appending its rows to `out`."""
    out.unlink(missing_ok=True)
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(src), str(REPO / "benchmarks")]),
        CAP_VARIABLE: str(cap),
        "LRLAB_FIT_WORKERS": "1",
    }
    command = [sys.executable, __file__, "--worker", str(cap), "--out", str(out)]
    return subprocess.Popen([*command, "--only", only], env=environment)


def finished(children: dict[Any, tuple[subprocess.Popen, Path]], began: float) -> dict:
    """Wait for every `start_worker` child (keyed as the caller keys its results); print the wall
    time since `began`; return each child's rows, read from its file, under its key."""
    for key, (child, _) in children.items():
        if child.wait() != 0:
            raise SystemExit(f"the worker for {key} failed (exit status {child.returncode})")
    print(f"wall {time.perf_counter() - began:.0f} s")
    return {
        key: [json.loads(line) for line in out.read_text().splitlines()]
        for key, (_, out) in children.items()
    }


def save(everything: dict, path: str | None) -> None:
    """Write a report's tables to `path` as JSON (``--json``), if one is given."""
    if path:
        from lrlab.atomic import atomic_write_text

        atomic_write_text(Path(path), json.dumps(everything, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--caps", default="400,2000,10000", help="comma-separated jackknife budgets"
    )
    parser.add_argument("--scratch", default="/tmp/lrlab_jackknife_cap", type=Path)
    parser.add_argument("--json", metavar="FILE", help="also write everything as JSON")
    parser.add_argument("--from-json", metavar="FILE", help="print an earlier --json's tables")
    parser.add_argument(
        "--tree", action="append", metavar="LABEL=SRC[@CAPS]", help="score this package instead"
    )
    parser.add_argument("--only", default="", help="only the jobs whose name contains this")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)  # a cap, in a child
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        worker(args.worker, args.out, args.only)
        return
    if args.tree:
        run_trees(args)
        return
    if args.from_json:
        jobs_by_cap = json.loads(Path(args.from_json).read_text())["jobs"]
        if any("@" in key for key in jobs_by_cap):  # a --tree run's
            tree_report(
                {
                    (key.rpartition("@")[0], int(key.rpartition("@")[2])): rows
                    for key, rows in jobs_by_cap.items()
                }
            )
            return
        report({int(cap): rows for cap, rows in jobs_by_cap.items()}, sorted(map(int, jobs_by_cap)))
        return
    caps = [int(cap) for cap in args.caps.split(",")]
    src = scratch_copy(args.scratch)
    began = time.perf_counter()
    children = {}
    for cap in caps:
        out = args.scratch / f"cap{cap}.jsonl"
        children[cap] = (start_worker(src, cap, out, args.only), out)
    save(report(finished(children, began), caps), args.json)


if __name__ == "__main__":
    main()
