"""Does the law-optimised schedule really train best? A check in the wind tunnel (CPU).

Trains a constant and a cosine run, fits the laws on them (the study picks the law by
leave-one-run-out error), optimises a free-form schedule for the same budget and peak LR, then
trains it and cosine-to-10%, WSD-20%-linear and linear-to-zero, and prints each schedule's forecast
(with its band) against the measured final validation loss.

    python benchmarks/design_verify.py [--out DIR] [--budget STEPS]

Takes about 10 minutes on 2 CPU cores; re-running reuses finished runs.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time

from lrlab.study import study_default

VERIFY = ["recommended", "cosine-10%", "wsd-20%-linear", "linear-to-zero"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out/design_verify")
    parser.add_argument("--budget", type=int, default=1500)
    args = parser.parse_args()
    config = {
        "budget": args.budget,
        "peak": 3e-3,
        "warmup": 75,
        "verify": VERIFY,
        "tunnel": {
            "model": {"d_model": 96, "n_layers": 3, "n_heads": 4},
            "data": {"corpus": "stdlib"},
            "train": {
                "batch_size": 16,
                "seq_len": 128,
                "eval_interval": 15,
                "eval_batches": 16,
                "checkpoint_interval": 250,
                "seed": 0,
            },
        },
    }
    began = time.perf_counter()
    summary = study_default(args.out, config, progress=lambda m: print(m, file=sys.stderr))
    rows = sorted(summary["verification"], key=lambda v: v["measured"])
    print(
        f"machine: {platform.machine()} {platform.processor() or ''}, python "
        f"{platform.python_version()}; law {summary['chosen_law']}; budget {args.budget} "
        f"steps; {time.perf_counter() - began:.0f} s"
    )
    print("| schedule | forecast final val loss | band | measured | inside band |")
    print("|---|---|---|---|---|")
    for v in rows:
        low, high = v["band"]
        print(
            f"| {v['name']} | {v['final_loss']:.4f} | [{low:.4f}, {high:.4f}] | "
            f"{v['measured']:.4f} | {'yes' if v['inside_band'] else 'no'} |"
        )
    lowest = rows[0]["name"]
    inside = sum(v["inside_band"] for v in rows)
    print(
        f"lowest measured: {lowest} (goal: recommended); forecasts inside their band: "
        f"{inside}/{len(rows)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
