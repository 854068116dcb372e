"""Progress and silence: the longest time long commands go without a word on a piped stderr.

Runs each command with stderr a pipe (as under CI, ``2> log`` or ``| tee``), stamps every line
as it arrives, and prints per command: wall time, the stderr lines, and the longest silence (the
longest gap between the start, two lines, or the last line and the exit) with the line that
ended it. The commands:

- ``train``: ``lrlab train`` of the default study's model for ``--train-steps`` steps;
- ``optimize``: ``lrlab optimize`` of a free-form schedule for ``--budget`` steps under lrlab's
  law fitted to three 25M runs of the shared data (skipped without it);
- ``study``: the default ``lrlab study`` (``--study-budget`` shortens it).

``--src DIR`` runs them a second time on another checkout's ``src`` folder (e.g. the code before
a change, from ``git archive``) in the same session, and prints the ratio of the two silences.

    python benchmarks/silence.py --src /tmp/before/src
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from shared_data import load_shared_runs, shared_data_available

SRC = Path(__file__).resolve().parents[1] / "src"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, help="also run on this src folder (the baseline)")
    parser.add_argument("--train-steps", type=int, default=3000, help="steps of `train` (3000)")
    parser.add_argument("--budget", type=int, default=48000, help="budget of `optimize`")
    parser.add_argument("--study-budget", type=int, help="budget of the study (default: its own)")
    parser.add_argument(
        "--only", nargs="+", choices=("train", "optimize", "study"), help="run only these"
    )
    return parser.parse_args()


def timed(command: list[str], src: Path, cwd: Path) -> tuple[float, list[tuple[float, str]], int]:
    """Run `command` with `src` first on the path; (wall s, [(s since start, stderr line)], rc)."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    began = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    lines: list[tuple[float, str]] = []

    def read() -> None:
        for line in process.stderr:
            lines.append((time.perf_counter() - began, line.rstrip("\n")))

    reader = threading.Thread(target=read)
    reader.start()
    code = process.wait()
    reader.join()
    return time.perf_counter() - began, lines, code


def longest_silence(wall: float, lines: list[tuple[float, str]]) -> tuple[float, str]:
    """The longest gap without a line, and the line that ended it (``(exit)`` at the end)."""
    stamps = [(0.0, "(start)"), *lines, (wall, "(exit)")]
    gaps = [(later[0] - earlier[0], later[1]) for earlier, later in itertools.pairwise(stamps)]
    return max(gaps)


def commands(args: argparse.Namespace, work: Path) -> dict[str, list[str]]:
    lrlab = [sys.executable, "-m", "lrlab"]
    found: dict[str, list[str]] = {}
    found["train"] = [
        *lrlab,
        "train",
        "--corpus",
        "stdlib",
        "--steps",
        str(args.train_steps),
        "--d-model",
        "64",
        "--n-layers",
        "2",
        "--batch-size",
        "16",
        "--seq-len",
        "64",
        "--schedule",
        f"cosine(peak=3e-3, total={args.train_steps}, warmup=40)",
        "--set",
        "data.max_bytes=8000000",
        "--out",
    ]
    if shared_data_available():
        from lrlab.laws import get_law

        runs = load_shared_runs("25M", ("constant_24000", "cosine_24000", "wsdcon_9"))
        get_law("lrlab").fit(runs).save(work / "fit.json")
        found["optimize"] = [
            *lrlab,
            "optimize",
            str(work / "fit.json"),
            "--budget",
            str(args.budget),
        ]
    study = [*lrlab, "study"]
    if args.study_budget:
        budget = args.study_budget
        (work / "study.yaml").write_text(f"budget: {budget}\nwarmup: {budget // 20}\n")
        study += ["--config", str(work / "study.yaml")]
    found["study"] = [*study, "--out"]
    return {name: command for name, command in found.items() if name in (args.only or found)}


def main() -> int:
    args = parse_args()
    trees = {"now": SRC} | ({"before": args.src.resolve()} if args.src else {})
    results: dict[tuple[str, str], float] = {}
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        for name, command in commands(args, work).items():
            for tree, src in trees.items():
                full = (
                    command + [str(work / f"{name}-{tree}")] if command[-1] == "--out" else command
                )
                wall, lines, code = timed(full, src, work)
                silence, ended_by = longest_silence(wall, lines)
                results[(name, tree)] = silence
                print(
                    f"{name:9s} {tree:7s} exit {code}, {wall:6.1f} s, {len(lines):4d} stderr "
                    f"lines, longest silence {silence:6.1f} s, ended by: {ended_by[:100]}",
                    flush=True,
                )
    if args.src:
        for name in sorted({name for name, _ in results}):
            before, now = results[(name, "before")], results[(name, "now")]
            print(f"{name}: longest silence now / before = {now / before:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
