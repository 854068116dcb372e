"""Benchmark fit speed: ``lrlab fit`` on the three 400M training runs, bands included, for every
law, against the reference multi-power-law fitting procedure, measured in the same run.

- CLI: ``lrlab fit <runs> --law L --warmup 2160 -o FILE`` as a user runs it (a fresh process:
  start-up, imports, reading, the fit with its jackknife band, scoring, writing), wall seconds,
  the median of `--repeats`; and ``lrlab laws`` in a fresh process, the start-up floor.
- Point fits (``bands=False``, in this process, scipy already imported): every law on the
  scoreboard's multi-power-law tasks at each size: the 3-run split, the 2-run split
  (``constant_24000``, ``cosine_24000``) and the 1-run fits (``cosine_24000``,
  ``wsd_20000_24000``), runs read as ``lrlab fit --warmup 2160`` reads them.
- Reference: Luo et al.'s (2025, arXiv:2503.12811) fitting procedure re-implemented from their
  published code: a grid of 5 x 3 x 3 x 3 starting points for ``(L0, A, alpha, B)``, each
  refined with L-BFGS-B on a surrogate (``L0 + A S^-alpha - B (3e-4 - lr)``, Huber 1e-3 on
  log-loss), then AdamW (learning rates 5e-2 for L0, A, B, C and 5e-3 for alpha, beta, gamma)
  on the Huber loss of the full law, its drop sum summed term by term (every logged step times
  every step before it), for up to 200 steps (their ``FIT_MAX_STEPS``; they stop earlier only
  after 20 steps without improvement). Running it whole would take minutes of a shared machine,
  so `--reference-inits` of the 135 starts and `--reference-steps` AdamW steps are timed, and
  the total is EXTRAPOLATED to 135 starts and 200 steps (printed as such).

    python benchmarks/fit_speed.py [--laws lrlab,mpl] [--repeats 3] [--sizes 25M,100M,400M]
"""

from __future__ import annotations

import argparse
import itertools
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import shared_data as shared
from lrlab.laws import LAW_NAMES, get_law

SPLITS = {
    "3-run": shared.TRAIN,
    "2-run": shared.TRAIN_TWO,
    "1-run cosine": ("cosine_24000",),
    "1-run wsd": ("wsd_20000_24000",),
}
HUBER = 1e-3
REFERENCE_STARTS = 5 * 3 * 3 * 3
REFERENCE_STEPS = 200


def _timed(command: list[str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of `command` in a fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def _median(pairs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)


def cli_seconds(law: str, files: list[Path], output: Path, repeats: int) -> tuple[float, float]:
    """Median wall and CPU seconds of ``lrlab fit`` on `files` in a fresh process."""
    command = [sys.executable, "-m", "lrlab", "fit", *map(str, files), "--law", law]
    command += ["--warmup", str(shared.LOGGED_WARMUP), "-o", str(output)]
    return _median([_timed(command) for _ in range(repeats)])


def point_fit_seconds(law: str, sizes: list[str]) -> dict[str, list[tuple[float, float]]]:
    """Wall and CPU seconds of each point fit (no bands), per split, one per size."""
    seconds: dict[str, list[tuple[float, float]]] = {}
    for split, names in SPLITS.items():
        for size in sizes:
            runs = [shared.load_logged_run(size, name) for name in names]
            began, cpu = time.perf_counter(), time.process_time()
            get_law(law, bands=False).fit(runs)
            elapsed = (time.perf_counter() - began, time.process_time() - cpu)
            seconds.setdefault(split, []).append(elapsed)
    return seconds


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--laws", default=",".join(LAW_NAMES))
    parser.add_argument("--sizes", default=",".join(shared.SIZES))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reference-inits", type=int, default=15)
    parser.add_argument("--reference-steps", type=int, default=8)
    parser.add_argument("--skip-points", action="store_true", help="only the CLI and reference")
    args = parser.parse_args()
    if not shared.shared_data_available():
        sys.exit(f"shared data not found at {shared.shared_data_dir()} (set LRLAB_SHARED_DATA)")
    laws, sizes = args.laws.split(","), args.sizes.split(",")
    files = [shared.shared_data_dir() / "400M" / f"{name}.csv" for name in shared.TRAIN]

    with tempfile.TemporaryDirectory() as folder:
        floor = _median([_timed([sys.executable, "-m", "lrlab", "laws"]) for _ in range(3)])
        cli = {
            law: cli_seconds(law, files, Path(folder) / f"{law}.json", args.repeats) for law in laws
        }
    runs = [shared.load_logged_run("400M", name) for name in shared.TRAIN]
    per_start, per_step, reference, reference_cpu = reference_seconds(
        runs, args.reference_inits, args.reference_steps
    )

    print(f"lrlab fit on the 400M training runs ({', '.join(shared.TRAIN)}), bands included,")
    print(f"median of {args.repeats}; start-up floor `lrlab laws`: {floor[0]:.2f} s wall, ", end="")
    print(f"{floor[1]:.2f} s CPU")
    print(f"reference procedure: {per_start:.3f} s per surrogate start (x{REFERENCE_STARTS}),")
    print(f"  {per_step:.3f} s per AdamW step (x{REFERENCE_STEPS}): EXTRAPOLATED {reference:.1f} s")
    print(f"  wall, {reference_cpu:.1f} s CPU, from {args.reference_inits} starts and ", end="")
    print(f"{args.reference_steps} steps")
    print("| law | wall s | CPU s | goal < 2 s wall | reference / lrlab, wall | ..., CPU |")
    print("|---|---:|---:|---|---:|---:|")
    for law, (wall, cpu) in cli.items():
        met = "met" if wall < 2 else "NOT met"
        ratios = f"x{reference / wall:.0f} | x{reference_cpu / cpu:.0f}"
        print(f"| {law} | {wall:.2f} | {cpu:.2f} | {met} | {ratios} |")
    if args.skip_points:
        return
    print(f"\npoint fits (no bands), wall / CPU seconds per size ({', '.join(sizes)}); goal < 1 s")
    print("| law | " + " | ".join(SPLITS) + " | slowest wall / CPU |")
    print("|---|" + "---|" * (len(SPLITS) + 1))
    for law in laws:
        seconds = point_fit_seconds(law, sizes)
        cells = [
            ", ".join(f"{wall:.2f}/{cpu:.2f}" for wall, cpu in seconds[split]) for split in SPLITS
        ]
        slowest = [max(pair[i] for pairs in seconds.values() for pair in pairs) for i in (0, 1)]
        print(f"| {law} | " + " | ".join(cells) + f" | {slowest[0]:.2f} / {slowest[1]:.2f} |")


if __name__ == "__main__":
    main()
