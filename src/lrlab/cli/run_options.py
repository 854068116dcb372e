"""What the commands share: the options of those that read training logs (`fit`, `predict`,
`evaluate`, `study`), the check of every command's output paths before it does any work, and how
they report: progress, warnings and the files written as ``lrlab:`` lines on stderr, numbers in
CSV and JSON output in one format."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import numpy as np

from lrlab.cli import arguments
from lrlab.errors import LrlabError, LrlabWarning
from lrlab.laws import Law, evaluate
from lrlab.runs import Run, read_run, unique_run_names
from lrlab.runs.columns import parse_column_mapping


def add_run_options(parser: argparse.ArgumentParser, required: bool = True) -> None:
    """The RUN arguments and the --schedule/--columns options of every command reading logs."""
    parser.add_argument(
        "runs",
        metavar="RUN",
        nargs="+" if required else "*",
        help="log files (CSV, TSV, "
        "JSONL, Parquet, W&B CSV export, TensorBoard event file or log directory)",
    )
    parser.add_argument(
        "--schedule",
        action="append",
        metavar="SPEC",
        help="schedule spec giving the per-step LR: once for all runs, or once per run",
    )
    parser.add_argument("--columns", help="column names, e.g. step=_step,loss=train/loss,lr=lr")


def add_warmup_option(parser: argparse.ArgumentParser) -> None:
    """``--warmup N``: the runs' warmup, where their logs do not show it."""
    parser.add_argument(
        "--warmup",
        type=arguments.steps(0),
        metavar="N",
        help="the runs' warmup in steps (default: where the schedule's or the logged LR first "
        "peaks; a log starting after its warmup does not show it); also shapes an "
        "interpolated LR before the peak",
    )


def with_run_warnings(handler: Callable[[argparse.Namespace], int]) -> Callable[..., int]:
    """Show warnings from reading runs and fitting laws (`LrlabWarning`) as one
    ``lrlab: warning:`` line each on stderr."""

    def wrapped(args: argparse.Namespace) -> int:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", LrlabWarning)
            try:
                return handler(args)
            finally:
                for warning in caught:
                    print(f"lrlab: warning: {warning.message}", file=sys.stderr)

    return wrapped


def report_progress(message: str) -> None:
    """Progress of a long command, one ``lrlab:`` line on stderr (stdout stays for results)."""
    print(f"lrlab: {message}", file=sys.stderr, flush=True)


def report_written(path: str | Path) -> None:
    """Say that a file was written: one ``lrlab: wrote PATH`` line on stderr, so that no output
    appears unannounced, and standard output, which may be data (a CSV), stays clean."""
    report_progress(f"wrote {path}")


def strided_steps(steps: int, every: int) -> np.ndarray:
    """Steps ``0, K, 2K, ...`` of a run of `steps` steps (``K`` = `every`), and always its last,
    ``steps - 1``: the step whose loss is the run's final loss, which a stride would skip."""
    picked = np.arange(0, steps, every)
    return picked if picked[-1] == steps - 1 else np.append(picked, steps - 1)


def number_text(value: float) -> str:
    """A number as CSV and JSON outputs write it: at most 10 significant digits, in the shortest
    form (``7e-05``, not the ``7.000000000000001e-05`` that float arithmetic leaves; more
    digits than an LR or a loss is known to)."""
    return format(float(value), ".10g")


# How a fit's warmup was found (`lrlab.runs.warmup`), in the words of the command line.
_WARMUP_SOURCES = {
    "given": "--warmup",
    "schedule": "from the schedule",
    "logged LR": "from the logged LR",
    "per-step LR": "where the per-step LR first peaks",
    "first logged step": (
        "the first logged step: the logs start after their warmup ended; give --warmup N"
    ),
}


def describe_warmup(steps: int, source: object) -> str:
    """``warmup 300 steps (from the logged LR)``: a warmup and where it came from, as a fit
    records them (``fit_info_`` keys ``warmup``, ``warmup_from``; the sources of several runs
    joined by "and"). A source no fit writes is not echoed (a fit file may be edited)."""
    parts = source.split(" and ") if isinstance(source, str) else [""]
    words = [_WARMUP_SOURCES.get(part) for part in parts]
    said = "; ".join(word for word in words if word) if all(words) else "from the fit"
    return f"warmup {steps} steps ({said})"


def read_runs_from_args(args: argparse.Namespace) -> list[Run]:
    """The runs named on the command line, with per-run or shared schedules (and ``--warmup``
    where the command has it); runs of one file name are named by their folders too
    (``fit-constant-1a2b/eval``), as the study names them, so that no table merges two."""
    specs = args.schedule or []
    if len(specs) not in (0, 1, len(args.runs)):
        raise LrlabError(
            f"--schedule: give it once for all runs or once per run ({len(args.runs)}), "
            f"got {len(specs)}"
        )
    mapping = parse_column_mapping(args.columns)
    per_run = (
        specs if len(specs) == len(args.runs) else specs * len(args.runs) or [None] * len(args.runs)
    )
    warmup = getattr(args, "warmup", None)
    return unique_run_names(
        [
            read_run(path, schedule=spec, columns=mapping, warmup=warmup)
            for path, spec in zip(args.runs, per_run, strict=True)
        ]
    )


def check_outputs(
    outputs: Mapping[str, str | None], inputs: Iterable[str] = (), *, folders: Iterable[str] = ()
) -> None:
    """Refuse, before any work, output paths the command could not or should not write, each
    with a one-line error naming the option: a path that is a folder (or, for the options in
    `folders`, a file), a file whose folder does not exist (lrlab creates no folders for an
    output, so a typo cannot scatter files), a path given to two options, or one of the command's
    `inputs` (a log, a fit), which the output would overwrite."""
    folder_flags = set(folders)
    given = {flag: Path(path) for flag, path in outputs.items() if path}
    existing = [Path(path) for path in inputs if _is_file(path)]
    for flag, path in given.items():
        if flag in folder_flags and path.exists() and not path.is_dir():
            raise LrlabError(f"{flag} {path}: is a file; {flag} names a folder here")
        if flag not in folder_flags and path.is_dir():
            raise LrlabError(f"{flag} {path}: is a folder; give a file name")
        if flag not in folder_flags and path.exists() and not path.is_file():
            # A device or a pipe: the atomic write would rename a new file over it.
            raise LrlabError(f"{flag} {path}: is not a regular file (lrlab writes outputs whole)")
        parent = path.parent
        if not parent.is_dir():
            what = "is not a folder" if parent.exists() else "does not exist"
            raise LrlabError(
                f"{flag} {path}: folder {parent} {what} (lrlab does not create folders for it)"
            )
        for source in existing:
            if path.exists() and os.path.samefile(path, source):
                raise LrlabError(f"{flag} {path}: is an input of this command; it would be lost")
        try:  # the one sure test of a folder's permissions (and of file systems such as /proc)
            with tempfile.TemporaryFile(dir=parent):
                pass
        except OSError as error:
            raise LrlabError(
                f"{flag} {path}: cannot write in {parent} ({error.strerror})"
            ) from None
    paths = list(given.items())
    for index, (flag, path) in enumerate(paths):
        for other_flag, other in paths[index + 1 :]:
            if path.resolve() == other.resolve():
                raise LrlabError(f"{flag} and {other_flag} name the same file {path}")


def _is_file(path: str) -> bool:
    """Whether `path` names an existing file (an input may also be a spec string, which can be
    longer than a file name may be)."""
    try:
        return Path(path).is_file()
    except OSError:
        return False


def quality_rows(law: Law, runs: Iterable[Run]) -> dict[str, dict[str, float]]:
    """Fit quality per run, over the points a law predicts (none before the first step with a
    positive LR, such as a step 0 logged with LR 0)."""
    rows = {}
    for run in runs:
        pred = law.predict_run(run)
        defined = np.isfinite(pred)
        rows[run.name] = evaluate(run.loss[defined], pred[defined])
    return rows
