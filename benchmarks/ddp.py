"""Throughput of one run on several processes (DistributedDataParallel over gloo) against one
process, on the CPU.

Trains the same run (config, global batch, data, steps) with ``lrlab.tunnel.train.train`` in this
process and with ``train_processes(..., nproc=N)``, in turn, ``--reps`` times each:

- ``wide``: one process with ``--cores`` threads (the same cores as the N processes);
- ``narrow``: one process with ``--cores / N`` threads (each of the N processes' share);
- ``several``: N processes with ``--cores / N`` threads each.

Two figures per run:

- **step tokens/s**: tokens over the wall time of the training steps after the first
  ``--warmup`` (from the cumulative ``tokens_per_s`` of ``train.csv``), so start-up, the first
  steps and the final evaluation and checkpoint are left out: what more processes buy per step;
- **end-to-end s**: the wall time of the whole call, start-up of the processes included: what a
  user waits for.

Before them it times ``--launches`` calls of ``train_processes`` in a row on a one-step run of the
same model (the start-up: the first call starts the fork server the later ones reuse).

The ratios are medians over the repetitions of N processes' step tokens/s over each one-process
side's in the same repetition (the sides run back to back, in a rotating order), so a machine that
slows down or speeds up (other jobs on a shared CPU) affects the sides of a repetition alike. The
losses of the runs are compared too (they agree to about 1e-6).

    python benchmarks/ddp.py                     # 2 processes against 1, on 2 cores
    python benchmarks/ddp.py --nproc 4 --cores 4
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from lrlab.tunnel.config import Config, config_from_dict
from lrlab.tunnel.threads import usable_cores
from lrlab.tunnel.train import train, train_processes


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nproc", type=int, default=2, help="processes of the run (2)")
    parser.add_argument(
        "--cores", type=int, help="threads of the one process, shared by the N (usable cores)"
    )
    parser.add_argument("--steps", type=int, default=40, help="steps of each run (40)")
    parser.add_argument("--warmup", type=int, default=5, help="first steps not timed (5)")
    parser.add_argument("--reps", type=int, default=3, help="runs of each side (3)")
    parser.add_argument("--d-model", type=int, default=256, help="width (256)")
    parser.add_argument("--n-layers", type=int, default=4, help="depth (4)")
    parser.add_argument("--batch-size", type=int, default=16, help="global batch (16)")
    parser.add_argument("--seq-len", type=int, default=128, help="sequence length (128)")
    parser.add_argument("--launches", type=int, default=4, help="start-up calls timed (4)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    return parser.parse_args()


def make_config(
    args: argparse.Namespace, threads: int, cache: Path, steps: int | None = None
) -> Config:
    steps = args.steps if steps is None else steps
    warmup = min(args.warmup, steps - 1)
    return config_from_dict(
        {
            "model": {"d_model": args.d_model, "n_layers": args.n_layers, "n_heads": 4},
            "data": {"corpus": "stdlib", "max_bytes": 4_000_000, "cache_dir": str(cache)},
            "train": {
                "steps": steps,
                "batch_size": args.batch_size,
                "seq_len": args.seq_len,
                "eval_interval": steps,
                "eval_batches": 2,
                "checkpoint_interval": steps,
                "threads": threads,
                "device": "cpu",
                "progress": "off",
                "schedule": f"cosine(peak=1e-3, total={steps}, warmup={warmup})",
            },
        }
    )


def step_rate(out: Path, warmup: int) -> float:
    """Tokens per second of the steps after `warmup`, from train.csv's cumulative rates."""
    with (out / "train.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    per_step = json.loads((out / "record.json").read_text())["tokens"] / len(rows)

    def seconds(row: dict[str, str]) -> float:  # since the loop began, at the end of this row
        return (int(row["step"]) + 1) * per_step / float(row["tokens_per_s"])

    first, last = rows[warmup - 1], rows[-1]
    return (len(rows) - warmup) * per_step / (seconds(last) - seconds(first))


def losses(out: Path) -> list[float]:
    with (out / "train.csv").open(newline="") as file:
        return [float(row["loss"]) for row in csv.DictReader(file)]


def main() -> None:
    args = parse_args()
    cores = args.cores or usable_cores().count
    if cores % args.nproc:
        raise SystemExit(f"--cores={cores} must be a multiple of --nproc={args.nproc}")
    threads = {"wide": cores, "narrow": cores // args.nproc, "several": cores // args.nproc}
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in threads}
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        configs = {
            side: make_config(args, count, root / "cache") for side, count in threads.items()
        }
        train(configs["narrow"], root / "warm")  # tokenise the corpus, warm the caches
        one_step = make_config(args, threads["several"], root / "cache", steps=1)
        launches = []
        for number in range(args.launches):
            began = time.perf_counter()
            train_processes(one_step, root / f"launch-{number}", nproc=args.nproc)
            launches.append(time.perf_counter() - began)
        for rep in range(args.reps):
            order = list(threads)[rep % 3 :] + list(threads)[: rep % 3]
            for side in order:
                out = root / f"{side}-{rep}"
                began = time.perf_counter()
                if side == "several":
                    record = train_processes(configs[side], out, nproc=args.nproc)
                else:
                    record = train(configs[side], out)
                runs[side].append(
                    {
                        "end_to_end_s": time.perf_counter() - began,
                        "step_tokens_per_s": step_rate(out, args.warmup),
                        "threads": record["threads"],
                        "losses": losses(out),
                    }
                )
    figures: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {cores} cores used",
        "torch": torch.__version__,
        "model": f"d_model={args.d_model}, n_layers={args.n_layers}",
        "batch": f"{args.batch_size} x {args.seq_len} tokens (global)",
        "steps": f"{args.steps} ({args.warmup} not timed)",
        "processes": args.nproc,
        "first_launch_s": launches[0],
        "later_launches_s": launches[1:],
    }
    for side, done in runs.items():
        figures[f"{side}_threads"] = done[0]["threads"]
        figures[f"{side}_step_tokens_per_s"] = statistics.median(
            r["step_tokens_per_s"] for r in done
        )
        figures[f"{side}_end_to_end_s"] = statistics.median(r["end_to_end_s"] for r in done)
    several = runs["several"]
    for side in ("wide", "narrow"):
        ratios = [
            s["step_tokens_per_s"] / o["step_tokens_per_s"]
            for o, s in zip(runs[side], several, strict=True)
        ]
        figures[f"ratio_to_{side}"] = statistics.median(ratios)
        figures[f"ratios_to_{side}"] = ratios
    figures["max_relative_loss_difference"] = max(
        abs(a - b) / abs(b)
        for one, many in zip(runs["wide"], several, strict=True)
        for a, b in zip(many["losses"], one["losses"], strict=True)
    )
    for key, value in figures.items():
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        if isinstance(value, list):
            text = ", ".join(f"{item:.3f}" for item in value)
        print(f"{key:>28}: {text}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
