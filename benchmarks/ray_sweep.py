"""An 8-run sweep on the local pool and on a local Ray instance: wall time and their ratio.

The sweep: the default study's model (`lrlab.study.StudyConfig`: d_model 64, 2 layers, batch
16 x 64) for ``--steps`` steps, 4 peak LRs x 2 seeds of a cosine schedule, one thread a run
(``threads_per_worker: 1``). Each backend runs it as a user would, ``lrlab sweep --config FILE
--out DIR [--backend ray]`` in a fresh process, so the times include starting the workers (and,
on Ray, starting the Ray instance and connecting to it): ``--reps`` times each, alternating which
goes first. The local pool has as many workers as usable cores; the Ray instance as many CPUs,
each run reserving one. The figure is the pool's median wall time over Ray's (Ray's throughput
relative to the pool's: 1.0 is as fast, the goal is at least 0.9), and every sweep's results are
checked to be the same as the first one's (but for the timing columns).

    python benchmarks/ray_sweep.py [--steps 1000] [--reps 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from lrlab.study import StudyConfig
from lrlab.tunnel.threads import usable_cores


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1000, help="steps of each run (1000)")
    parser.add_argument("--reps", type=int, default=2, help="sweeps per backend (median shown)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    return parser.parse_args()


def sweep_config(steps: int, cache: Path) -> dict[str, Any]:
    """8 runs of the default study's model: 4 peak LRs x 2 seeds, one thread each."""
    base = {section: dict(values) for section, values in StudyConfig().tunnel.items()}
    base["data"]["cache_dir"] = str(cache)
    base["train"].update(steps=steps, progress="off")
    base["train"].pop("schedule", None)
    return {
        "threads_per_worker": 1,
        "base": base,
        "grid": {
            "peak": [1e-3, 2e-3, 3e-3, 5e-3],
            "seeds": [0, 1],
            "schedules": [f"cosine(peak=1, total={steps}, warmup={steps // 10})"],
        },
    }


def run_sweep(config: Path, out: Path, backend: str) -> float:
    """Wall seconds of ``lrlab sweep`` on `backend`, in a fresh process."""
    command = [sys.executable, "-m", "lrlab", "sweep", "--config", str(config), "--out", str(out)]
    command += ["--backend", backend]
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - began
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return seconds


def untimed(out: Path) -> list[dict[str, Any]]:
    rows = json.loads((out / "results.json").read_text())["runs"]
    return [{k: v for k, v in row.items() if k != "elapsed_s"} for row in rows]


def main() -> None:
    args = parse_args()
    env_threads = {name: os.environ.get(name) for name in ("LRLAB_THREADS", "OMP_NUM_THREADS")}
    figures: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "cores": usable_cores().count,
        "steps": args.steps,
        "load_before": os.getloadavg(),
        "thread_variables": env_threads,
    }
    times: dict[str, list[float]] = {"local": [], "ray": []}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config = folder / "sweep.json"
        config.write_text(json.dumps(sweep_config(args.steps, folder / "cache")))
        # Tokenise the corpus into the cache first, so that no timed sweep does.
        warm = folder / "warm.json"
        warm.write_text(json.dumps({**sweep_config(2, folder / "cache"), "workers": 1}))
        run_sweep(warm, folder / "warm", "local")
        reference = None
        for rep in range(args.reps):
            for backend in ("local", "ray") if rep % 2 == 0 else ("ray", "local"):
                out = folder / f"{backend}-{rep}"
                seconds = run_sweep(config, out, backend)
                times[backend].append(seconds)
                results = untimed(out)
                reference = reference or results
                same = results == reference
                print(f"{backend:>5} rep {rep}: {seconds:.1f} s, results as the first: {same}")
                if not same:
                    raise SystemExit(f"{out}: results differ from the first sweep's")
    local, ray = statistics.median(times["local"]), statistics.median(times["ray"])
    figures.update(times=times, local_s=local, ray_s=ray, ratio=local / ray)
    figures["load_after"] = os.getloadavg()
    print(
        f"8 runs x {args.steps} steps, {figures['cores']} cores: local pool {local:.1f} s, "
        f"Ray {ray:.1f} s (medians of {args.reps}); Ray's throughput {local / ray:.2f}x "
        "the pool's (goal >= 0.9)"
    )
    print(f"load average before {figures['load_before']}, after {figures['load_after']}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
