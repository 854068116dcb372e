"""Benchmark long logs: read and fit a log with a loss at every one of a million steps.

Writes a CSV of `--rows` rows (``step,lr,loss``, steps 1..rows) to a temporary folder. The loss is
SYNTHETIC, a performance test and not a realistic curve: lrlab's law, with the parameters it
fitted to the three training runs of the shared 25M data (`PARAMS`), predicting a WSD run (1%
warmup from LR 0, 20% linear decay to 0), times ``exp(noise)``, noise sd `--noise` (seeded).
Each measurement runs in a fresh process, which reports its own peak memory (``ru_maxrss``):

- read: `lrlab.runs.read_run` (the fast path), and the careful line-by-line reader on the same
  file as the baseline (the reader every file took before);
- fit: ``get_law("lrlab").fit([run])`` with bands, as ``lrlab fit`` does it (coarse-grained
  points, `lrlab.laws.points`), wall and CPU seconds with scipy already imported; and the whole
  ``lrlab fit FILE`` command in a fresh process, which also scores the fit at every logged step;
- faithfulness: on a log of `--full-rows` rows (a point-by-point fit of a million points needs
  more memory than a 23 GB machine has), the coarse fit against the point-by-point one
  (``coarse=False``). Both start at `PARAMS` and skip the bands: the law's own starting points
  stop at the 400-evaluation limit on these long synthetic runs, at points that depend on the
  path and would say nothing about coarse-graining. Both forecast a cosine run (10% floor) of
  the same length at 1001 steps: the largest relative difference is the coarse-graining's effect.

    python benchmarks/long_logs.py [--rows 1000000] [--noise 0.01] [--full-rows 100000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# lrlab's law fitted to cosine_24000, constant_24000 and wsdcon_9 of the shared 25M data.
PARAMS = [
    3.0291512450643694,
    0.4723052421607009,
    0.5484291666587559,
    959.3114772818636,
    999.9999256743523,
    0.12490256321332631,
    0.039375152134470265,
    0.6894916436021459,
    0.12059009680554941,
]
PEAK = 3e-4


def schedules(rows: int) -> tuple[str, str]:
    """The logged run's schedule and the forecast one, over steps 0..rows."""
    common = f"peak={PEAK}, total={rows + 1}, warmup={max(rows // 100, 1)}"
    return (
        f"wsd({common}, cooldown_fraction=0.2, decay=linear)",
        f"cosine({common}, end_ratio=0.1)",
    )


def write_log(path: Path, rows: int, noise: float) -> None:
    """The synthetic log (module docstring)."""
    from lrlab.laws import get_law
    from lrlab.schedules import parse

    law = get_law("lrlab")
    law.params_, law.lr_ref_ = np.array(PARAMS), PEAK
    lr = parse(schedules(rows)[0])(np.arange(rows + 1))
    steps = np.arange(1, rows + 1)
    loss = law.predict(lr, steps) * np.exp(noise * np.random.default_rng(0).normal(size=rows))
    with open(path, "w", encoding="utf-8") as file:
        file.write("step,lr,loss\n")
        np.savetxt(file, np.column_stack([steps, lr[1:], loss]), fmt="%d,%.8g,%.8g")


def peak_mb() -> float:
    """This process's peak resident memory in MB (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(task: str, path: Path, out: Path) -> dict:
    """One measurement, in this (fresh) process."""
    from lrlab.laws import get_law
    from lrlab.runs import read_run
    from lrlab.schedules import parse

    if task == "careful":
        from lrlab.runs import tables

        tables._fast_delimited = lambda *args: None  # the baseline: the careful reader only
    if task == "cli":
        from lrlab.cli import main

        began = time.perf_counter()
        status = main(["fit", str(path)])
        return {"cli_s": time.perf_counter() - began, "status": status, "peak_mb": peak_mb()}
    began = time.perf_counter()
    run = read_run(path)
    result: dict = {"read_s": time.perf_counter() - began, "rows": int(run.steps.size)}
    if task in ("fit", "coarse", "full"):
        import scipy.optimize
        import scipy.signal
        import scipy.sparse
        import scipy.stats  # noqa: F401  (imported before the clock starts)

        options, start = {}, None
        if task != "fit":  # the faithfulness pair: warm-started at the truth, no bands
            options, start = {"bands": False, "coarse": task == "coarse"}, np.array(PARAMS)
        began, cpu = time.perf_counter(), time.process_time()
        law = get_law("lrlab", **options).fit([run], start=start)
        result["fit_s"] = time.perf_counter() - began
        result["fit_cpu_s"] = time.process_time() - cpu
        result["coarse"] = law.fit_info_.get("coarse")
        lr = parse(schedules(int(run.steps[-1]))[1])(np.arange(run.lr.size))
        at = np.linspace(1, run.steps[-1], 1001).astype(np.int64)
        np.save(out, law.predict(lr, at))
        result["params"] = law.params_.tolist()
    result["peak_mb"] = peak_mb()
    return result


def measure(task: str, path: Path, out: Path) -> dict:
    """Run `child` in a fresh process; its result is the last line it prints."""
    command = [sys.executable, __file__, "--child", task, str(path), str(out)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--noise", type=float, default=0.01)
    parser.add_argument("--full-rows", type=int, default=100_000, help="0: skip faithfulness")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        task, path, out = args.child
        print(json.dumps(child(task, Path(path), Path(out))))
        return
    with tempfile.TemporaryDirectory() as folder:
        path, none = Path(folder) / "long.csv", Path(folder) / "none.npy"
        began = time.perf_counter()
        write_log(path, args.rows, args.noise)
        size, seconds = path.stat().st_size / 1e6, time.perf_counter() - began
        print(f"log: {args.rows} rows, {size:.1f} MB, written in {seconds:.1f} s")
        fast = measure("read", path, none)
        careful = measure("careful", path, none)
        print(
            f"read: {fast['read_s']:.2f} s ({fast['peak_mb']:.0f} MB peak); careful reader "
            f"(baseline) {careful['read_s']:.2f} s: {careful['read_s'] / fast['read_s']:.1f}x"
        )
        fit = measure("fit", path, none)
        coarse = fit["coarse"]
        print(
            f"fit with bands: {fit['fit_s']:.2f} s ({fit['fit_cpu_s']:.2f} s CPU), process peak "
            f"{fit['peak_mb']:.0f} MB (read included); {coarse['bins']} bins, "
            f"{coarse['targets']} targets, error bound (log-loss) RMS {coarse['error_rms']:.1e}, "
            f"largest {coarse['error_max']:.1e}"
        )
        cli = measure("cli", path, none)
        print(f"`lrlab fit FILE` end to end: {cli['cli_s']:.2f} s, peak {cli['peak_mb']:.0f} MB")
        if not args.full_rows:
            return
        path = Path(folder) / "faithful.csv"
        write_log(path, args.full_rows, args.noise)
        tasks = ("coarse", "full")
        pair = {task: measure(task, path, Path(folder) / f"{task}.npy") for task in tasks}
        for task, result in pair.items():
            print(
                f"{args.full_rows} rows, {task} fit from PARAMS, no bands: "
                f"{result['fit_s']:.2f} s, peak {result['peak_mb']:.0f} MB"
            )
        forecasts = [np.load(Path(folder) / f"{task}.npy") for task in tasks]
        difference = np.abs(forecasts[0] / forecasts[1] - 1)
        print(
            f"forecast (cosine, 1001 steps): coarse vs point-by-point fit differ by at most "
            f"{difference.max():.1e} relative ({difference[-1]:.1e} at the last step)"
        )
        relative = np.abs(np.array(pair["coarse"]["params"]) / np.array(pair["full"]["params"]) - 1)
        print(f"parameters: largest relative difference {relative.max():.1e}")


if __name__ == "__main__":
    main()
