"""Cost of driving a PyTorch optimizer's LR with an lrlab schedule, and of evaluating schedules.

    python benchmarks/schedule_overhead.py [--steps 20000] [--repeats 7]

Prints two markdown tables:

1. Per-step cost of ``scheduler.step()`` plus reading the LRs (``get_last_lr()``), without
   ``optimizer.step()``, for `LRLabScheduler` and for `LambdaLR` with a lambda calling the same
   schedule. Both run in the same process, interleaved, on fresh schedulers (so the adapter's chunk
   evaluations are included); the median over the repeats is reported. Goal: ratio <= 1.
2. Time to evaluate 1,000,000 steps vectorised, ``schedule(np.arange(1_000_000))``, median over
   the repeats. Goal: < 50 ms.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable

import numpy as np
import torch

from lrlab.adapters.torch_scheduler import LRLabScheduler
from lrlab.schedules import Schedule, parse

SCHEDULES = {
    "cosine": "cosine(peak=3e-4, total=100000, warmup=2000, end_ratio=0.1)",
    "wsd (1-sqrt)": "wsd(peak=3e-4, total=100000, warmup=2000, cooldown_fraction=0.2, "
    "decay=1-sqrt)",
    "cosine_restarts": "cosine_restarts(peak=3e-4, cycle=5000, cycle_mult=1.5, warmup=1000)",
    "join (linear, cosine, constant)": "join(schedules=[linear(peak=3e-4, total=2000, "
    "warmup=1999), cosine(peak=3e-4, total=90000, end=3e-5), constant(peak=3e-5)], "
    "boundaries=[2000, 92000])",
}
GROUP_COUNTS = (1, 4)


def microseconds_per_step(scheduler: torch.optim.lr_scheduler.LRScheduler, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        scheduler.step()
        scheduler.get_last_lr()
    return (time.perf_counter() - start) / steps * 1e6


def fresh_optimizer(group_count: int) -> torch.optim.Optimizer:
    groups = [{"params": [torch.nn.Parameter(torch.zeros(1))]} for _ in range(group_count)]
    return torch.optim.SGD(groups, lr=1.0)  # LambdaLR multiplies 1.0 by the schedule


def ready(scheduler: torch.optim.lr_scheduler.LRScheduler) -> torch.optim.lr_scheduler.LRScheduler:
    # No gradients, so no update; it silences "lr_scheduler.step() before optimizer.step()".
    scheduler.optimizer.step()
    return scheduler


def stepping_row(name: str, schedule: Schedule, group_count: int, steps: int, repeats: int) -> str:
    builders: dict[str, Callable[[], torch.optim.lr_scheduler.LRScheduler]] = {
        "lrlab": lambda: ready(LRLabScheduler(fresh_optimizer(group_count), schedule)),
        "lambda": lambda: ready(
            torch.optim.lr_scheduler.LambdaLR(
                fresh_optimizer(group_count), lambda step: schedule(step)
            )
        ),
    }
    times: dict[str, list[float]] = {key: [] for key in builders}
    for _ in range(repeats):  # interleaved, so that drifts in machine speed hit both alike
        for key, build in builders.items():
            times[key].append(microseconds_per_step(build(), steps))
    lrlab_us = statistics.median(times["lrlab"])
    lambda_us = statistics.median(times["lambda"])
    return (
        f"| {name} | {group_count} | {lrlab_us:.2f} | {lambda_us:.2f} | "
        f"{lrlab_us / lambda_us:.3f} |"
    )


def vectorised_row(name: str, schedule: Schedule, repeats: int) -> str:
    steps = np.arange(1_000_000)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        schedule(steps)
        times.append((time.perf_counter() - start) * 1e3)
    return f"| {name} | {statistics.median(times):.1f} |"


def machine() -> str:
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(
            line.split(":", 1)[1].strip()
            for line in lscpu.splitlines()
            if line.startswith("Model name")
        )
    except (OSError, subprocess.CalledProcessError, StopIteration):
        model = platform.processor() or "unknown CPU"
    return f"{model}, {os.cpu_count()} cores"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=20_000, help="scheduler steps per timing")
    parser.add_argument("--repeats", type=int, default=7, help="timings per figure (median)")
    args = parser.parse_args()
    schedules = {name: parse(spec) for name, spec in SCHEDULES.items()}

    print(
        f"Machine: {machine()}; Python {platform.python_version()}, numpy {np.__version__}, "
        f"torch {torch.__version__}; {datetime.date.today().isoformat()}"
    )
    print(f"\nScheduler stepping, {args.steps} steps, median of {args.repeats}:\n")
    print("| schedule | groups | LRLabScheduler (µs/step) | LambdaLR (µs/step) | ratio |")
    print("|---|---:|---:|---:|---:|")
    for name, schedule in schedules.items():
        for group_count in GROUP_COUNTS:
            print(stepping_row(name, schedule, group_count, args.steps, args.repeats))
    print(f"\nVectorised evaluation of 1,000,000 steps, median of {args.repeats}:\n")
    print("| schedule | ms |")
    print("|---|---:|")
    for name, schedule in schedules.items():
        print(vectorised_row(name, schedule, args.repeats))


if __name__ == "__main__":
    main()
