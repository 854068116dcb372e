"""What the commands share: the options of those that read training logs (`fit`, `predict`,
`evaluate`, `study`), and the check of every command's output paths before it does any work."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from lrlab.errors import LrlabError
from lrlab.runs import Run, RunWarning, read_run
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


def with_run_warnings(handler: Callable[[argparse.Namespace], int]) -> Callable[..., int]:
    """Show warnings from reading runs as one ``lrlab: warning:`` line each on stderr."""

    def wrapped(args: argparse.Namespace) -> int:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RunWarning)
            try:
                return handler(args)
            finally:
                for warning in caught:
                    print(f"lrlab: warning: {warning.message}", file=sys.stderr)

    return wrapped


def report_progress(message: str) -> None:
    """Progress of a long command, one ``lrlab:`` line on stderr (stdout stays for results)."""
    print(f"lrlab: {message}", file=sys.stderr, flush=True)


def read_runs_from_args(args: argparse.Namespace) -> list[Run]:
    """The runs named on the command line, with per-run or shared schedules."""
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
    return [
        read_run(path, schedule=spec, columns=mapping)
        for path, spec in zip(args.runs, per_run, strict=True)
    ]


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
