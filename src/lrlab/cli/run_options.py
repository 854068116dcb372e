"""Options shared by the commands that read training logs (`fit`, `predict`, `evaluate`,
`study`)."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable

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
