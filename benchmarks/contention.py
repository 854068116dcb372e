"""The wind tunnel on a shared machine: training time by thread count, idle and under contention.

Trains the default study's model (`lrlab.study.StudyConfig`: d_model 64, 2 layers, batch 16 x 64)
for ``--steps`` steps with ``lrlab train`` in a fresh process, under each thread setting:

- ``default``: no ``train.threads`` (lrlab chooses, `lrlab.tunnel.threads`);
- ``1``: ``train.threads=1``;
- ``N``: ``train.threads=N`` for N usable cores, which is PyTorch's own default and so what
  lrlab did before it chose.

in each situation: alone on the machine, beside one and two busy processes (``while True: pass``,
started and stopped here), and as one of two trainings started at once. The time is the training
time of the run's record (``elapsed_s``, evaluations and checkpoints included), the median of
``--reps`` runs (``--all-cores-reps`` for the all-cores setting, which contention slows 10-30x),
in alternating order; "x best" is that time over the fastest setting's in the same situation, so
the ratios of one run of this script compare like with like. The thread counts the default runs
used are shown from their records. With ``--study`` it then times the whole default
``lrlab study`` alone and beside a second study started at the same moment (``--study-budget``
shortens both; ``--study-only`` skips the trainings).

Run it on a machine where nothing else runs: other work is a contention this script does not
control. ``LRLAB_THREADS`` and ``OMP_NUM_THREADS`` are removed from the runs' environment.
``--src`` times another checkout (its ``src`` folder), e.g. the code before a change.

    python benchmarks/contention.py --study
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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lrlab.study import StudyConfig

SRC = Path(__file__).resolve().parents[1] / "src"
BUSY = "while True: pass"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=100, help="steps of each run (100)")
    parser.add_argument("--reps", type=int, default=3, help="runs per cell (median shown)")
    parser.add_argument(
        "--all-cores-reps",
        type=int,
        default=1,
        help="runs of the all-cores setting per situation (under contention each takes 10-30x "
        "longer than the others)",
    )
    parser.add_argument("--study", action="store_true", help="also time whole default studies")
    parser.add_argument("--study-only", action="store_true", help="only time the studies")
    parser.add_argument("--study-budget", type=int, help="budget of those studies (default 800)")
    parser.add_argument("--src", type=Path, default=SRC, help="lrlab source folder to time")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    return parser.parse_args()


def environment(src: Path) -> dict[str, str]:
    """The runs' environment: this Python, lrlab from `src`, no thread overrides."""
    env = dict(os.environ)
    env.pop("LRLAB_THREADS", None)
    env.pop("OMP_NUM_THREADS", None)
    env["PYTHONPATH"] = str(src)
    return env


def run_config(steps: int) -> dict[str, object]:
    """The default study's wind-tunnel setup, trained for `steps` steps."""
    tunnel = {section: dict(values) for section, values in StudyConfig().tunnel.items()}
    tunnel["train"].update(
        steps=steps,
        schedule=f"cosine(peak=3e-3, total={steps}, warmup={steps // 10})",
        progress="off",
    )
    return tunnel


@contextmanager
def busy(count: int) -> Iterator[None]:
    """`count` processes that keep one core each busy while the block runs."""
    processes = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(count)]
    try:
        time.sleep(0.5 if count else 0.0)  # let them start spinning
        yield
    finally:
        for process in processes:
            process.kill()
            process.wait()


def run_together(commands: list[list[str]], folder: Path, env: dict[str, str]) -> list[float]:
    """Start `commands` at the same moment; return each one's wall seconds. Their output goes to
    log files in `folder`, shown when one fails."""
    began = time.perf_counter()
    logs = [folder / f"log-{time.monotonic_ns()}-{index}.txt" for index in range(len(commands))]
    processes = []
    for command, log in zip(commands, logs, strict=True):
        with log.open("w") as output:
            processes.append(
                subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
            )
    ended: dict[int, float] = {}
    while len(ended) < len(processes):
        for index, process in enumerate(processes):
            if index not in ended and process.poll() is not None:
                ended[index] = time.perf_counter() - began
                if process.returncode:
                    tail = logs[index].read_text()[-2000:]
                    raise SystemExit(f"{' '.join(command[:4])} failed:\n{tail}")
        time.sleep(0.05)
    return [ended[index] for index in range(len(processes))]


def train_at_once(
    folder: Path, config: Path, threads: str, copies: int, env: dict[str, str]
) -> list[tuple[float, str]]:
    """Start `copies` ``lrlab train`` runs together; return each one's training seconds and thread
    counts (``2``, or ``2>1@40`` for a run that went to 1 thread from step 40)."""
    extra = [] if threads == "default" else ["--set", f"train.threads={threads}"]
    outs = [folder / f"run-{time.monotonic_ns()}-{index}" for index in range(copies)]
    lrlab = [sys.executable, "-m", "lrlab", "train", "--config", str(config)]
    run_together([[*lrlab, "--out", str(out), *extra] for out in outs], folder, env)
    records = [json.loads((out / "record.json").read_text()) for out in outs]
    return [(record["elapsed_s"], thread_counts(record)) for record in records]


def thread_counts(record: dict[str, object]) -> str:
    """The thread counts a run used, from its record (``?`` for a record without them)."""
    text = str(record.get("threads", "?"))
    for change in record.get("threads_changes", []):  # type: ignore[union-attr]
        text += f">{change['threads']}@{change['step']}"
    return text


def study_at_once(
    folder: Path, copies: int, budget: int | None, env: dict[str, str]
) -> list[float]:
    """Start `copies` default studies together; return each one's wall seconds."""
    command = [sys.executable, "-m", "lrlab", "study"]
    if budget is not None:
        config = folder / "study.json"
        config.write_text(json.dumps({"budget": budget, "warmup": min(40, budget // 4)}))
        command += ["--config", str(config)]
    outs = [folder / f"study-{time.monotonic_ns()}-{index}" for index in range(copies)]
    return run_together([[*command, "--out", str(out)] for out in outs], folder, env)


def main() -> None:
    args = parse_args()
    env = environment(args.src.resolve())
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    settings = list(dict.fromkeys(["default", "1", str(cores)]))
    situations = [
        ("alone", 0, 1),
        ("beside 1 busy process", 1, 1),
        ("beside 2 busy processes", 2, 1),
        ("two trainings at once", 0, 2),
    ]
    figures: dict[str, object] = {
        "date": time.strftime("%Y-%m-%d"),
        "cores": cores,
        "steps": args.steps,
        "src": str(args.src),
        "load_before": os.getloadavg(),
    }
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config = folder / "run.json"
        config.write_text(json.dumps(run_config(args.steps)))
        train_at_once(folder, config, "1", 1, env)  # tokenise the corpus into the cache once
        table: dict[str, dict[str, float]] = {}
        threads: dict[str, list[str]] = {}
        for name, busy_count, copies in [] if args.study_only else situations:
            times: dict[str, list[float]] = {setting: [] for setting in settings}
            counts: dict[str, list[str]] = {setting: [] for setting in settings}
            with busy(busy_count):
                for rep in range(args.reps):
                    # Alternate the order, so a drifting machine affects every setting alike.
                    for setting in settings if rep % 2 == 0 else settings[::-1]:
                        if setting == settings[-1] != "1" and rep >= args.all_cores_reps:
                            continue
                        for seconds, used in train_at_once(folder, config, setting, copies, env):
                            times[setting].append(seconds)
                            counts[setting].append(used)
            table[name] = {setting: statistics.median(times[setting]) for setting in settings}
            threads[name] = counts["default"]
            best = min(table[name].values())
            cells = ", ".join(
                f"{setting}: {seconds:.1f} s ({seconds / best:.2f}x best)"
                for setting, seconds in table[name].items()
            )
            print(f"{name:<24} {cells}; default used {' '.join(counts['default'])}", flush=True)
        figures["train_seconds"] = table
        figures["default_threads"] = threads
        if args.study or args.study_only:
            alone = study_at_once(folder, 1, args.study_budget, env)
            paired = study_at_once(folder, 2, args.study_budget, env)
            figures["study_seconds"] = {"alone": alone[0], "beside a second study": paired}
            print(
                f"default study (budget {args.study_budget or 800}): alone {alone[0]:.0f} s; "
                f"beside a second study {paired[0]:.0f} s and {paired[1]:.0f} s "
                f"({max(paired) / alone[0]:.2f}x)",
                flush=True,
            )
    figures["total_seconds"] = time.perf_counter() - began
    print(f"total {figures['total_seconds']:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
