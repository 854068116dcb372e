"""Benchmark the loss-curve laws on wind-tunnel runs: a second development set, independent of the
shared data.

Trains the nine schedules of the shared benchmark (Luo et al. 2025), scaled to the tunnel by
`shared_data.benchmark_schedules` (a short run of `--total` steps, 9% warmup, peak 3e-3,
end 3e-4; long runs 3x), with the study's byte-level transformer on the Python standard library's
source, at each model width in `--widths`. Then, like `benchmarks/laws.py`, it fits every law on
the 3-run split (`cosine_24000, constant_24000, wsdcon_9`, named for the roles they play) and the
2-run split, per width and jointly over the widths, and prints the held-out PredE / WorstE / R2
and the coverage of the 90% band.

    python benchmarks/laws_tunnel.py [--out DIR] [--total STEPS] [--widths 64,128] [--laws ...]

Re-running reuses finished runs (about 10 minutes of training on 2 CPU cores the first time).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import shared_data as shared
from laws import print_splits  # benchmarks/laws.py
from lrlab.laws import REGISTRY
from lrlab.schedules import from_spec
from lrlab.study import StudyConfig, train_tunnel_run

PEAK = 3e-3


def tunnel_setup(width: int) -> dict:
    """The study's tunnel at model width `width`, evaluated on more batches (a smoother curve)."""
    setup = {section: dict(values) for section, values in StudyConfig().tunnel.items()}
    setup["model"]["d_model"] = width
    setup["train"].update(eval_interval=20, eval_batches=16)
    return setup


def train_all(out: Path, total: int, width: int) -> dict:
    """The nine runs at one width, trained or reused."""
    schedules = shared.benchmark_schedules(total, round(0.09 * total), PEAK, PEAK / 10)
    runs = {}
    for index, (name, (spec, steps)) in enumerate(schedules.items(), start=1):
        config = {"budget": steps, "tunnel": tunnel_setup(width)}
        runs[name] = train_tunnel_run(
            config,
            out / f"d{width}" / name,
            name,
            from_spec(spec),
            lambda message: print(message, file=sys.stderr, flush=True),
            f"[d{width} {index}/{len(schedules)}]",
        )
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out/laws_tunnel")
    parser.add_argument("--total", type=int, default=800)
    parser.add_argument("--widths", default="64,128")
    parser.add_argument("--laws", default=",".join(REGISTRY))
    args = parser.parse_args()
    began = time.perf_counter()
    widths = [int(width) for width in args.widths.split(",")]
    laws = args.laws.split(",")
    runs = {f"d{width}": train_all(Path(args.out), args.total, width) for width in widths}
    trained = time.perf_counter() - began
    print(
        f"machine: {platform.machine()} {platform.processor() or ''}, "
        f"python {platform.python_version()}; training (or reuse) took {trained:.0f} s"
    )
    header = (
        f"{'width':<5} {'law':<15} {'fit s':>6} {'+band s':>7} {'PredE':>8} {'WorstE':>8} "
        f"{'R2':>7} {'cover90':>7}"
    )

    def row(group: str, name: str, point: float, full: float, table: dict) -> None:
        print(
            f"{group:<5} {name:<15} {point:>6.2f} {full:>7.2f} {table['PredE']:>8.5f} "
            f"{table['WorstE']:>8.5f} {table['R2']:>7.4f} {table['coverage']:>7.2f}",
            flush=True,
        )

    print_splits(
        list(runs), lambda group, names: [runs[group][n] for n in names], laws, header, row
    )
    print(f"total {time.perf_counter() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
