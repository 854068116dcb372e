"""``lrlab schedules`` and ``lrlab schedule show|compare``."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import difflib
import json
import sys
import textwrap
from typing import Any

import numpy as np

from lrlab.cli import arguments
from lrlab.cli.run_options import check_outputs, number_text, report_written, strided_steps
from lrlab.errors import LrlabError, brief
from lrlab.schedules import REGISTRY, Schedule, parse


def register(subparsers: argparse._SubParsersAction) -> None:
    listing = subparsers.add_parser(
        "schedules", help="list every schedule with its parameters and paper reference"
    )
    listing.add_argument("name", nargs="?", help="show only this schedule")
    listing.set_defaults(handler=list_schedules)

    schedule = subparsers.add_parser("schedule", help="show or compare schedules")
    actions = schedule.add_subparsers(dest="action", metavar="ACTION", required=True)

    show = actions.add_parser(
        "show",
        help="print or plot the LR of one schedule",
        description="Print the LR of a schedule at steps 0 to N-1 (--steps N): every K-th step "
        "from step 0 (--every K), and always the last step, N-1.",
    )
    show.add_argument("spec", help="schedule spec: 'name(field=value, ...)', JSON, or a spec file")
    _add_steps(show)
    show.add_argument(
        "--every",
        type=arguments.count(1),
        default=1,
        metavar="K",
        help="print every K-th step from step 0, and the last step N-1 (default 1)",
    )
    show.add_argument("--format", choices=("csv", "json"), default="csv")
    show.add_argument("--plot", metavar="FILE.png", help="also plot the schedule to a PNG file")
    show.set_defaults(handler=show_schedule)

    compare = actions.add_parser("compare", help="overlay several schedules in one plot")
    compare.add_argument("specs", nargs="+", metavar="SPEC", help="schedule specs")
    _add_steps(compare)
    compare.add_argument("--plot", metavar="FILE.png", help="write the overlay to a PNG file")
    compare.set_defaults(handler=compare_schedules)


def _add_steps(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--steps",
        type=arguments.steps(),
        required=True,
        metavar="N",
        help="number of steps to evaluate: steps 0 to N-1",
    )


def list_schedules(args: argparse.Namespace) -> int:
    names = sorted(REGISTRY)
    if args.name:
        if args.name not in REGISTRY:
            close = difflib.get_close_matches(args.name, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise LrlabError(
                f"unknown schedule {brief(args.name)}{hint} (`lrlab schedules` lists them all)"
            )
        names = [args.name]
    for name in names:
        print(describe(REGISTRY[name]))
        print()
    return 0


def describe(cls: type[Schedule]) -> str:
    """A schedule's name, summary, reference and parameters, as `lrlab schedules` prints it."""
    summary = (cls.__doc__ or "").strip().split("\n\n")[0]
    lines = [cls.name, textwrap.indent(textwrap.fill(" ".join(summary.split()), 96), "  ")]
    lines.append(f"  reference: {cls.reference}")
    for field_name, rule, default in cls.parameters():
        if default is dataclasses.MISSING:
            shown = "(required)"
        elif default is None:
            shown = "(optional)"
        else:
            shown = f"= {default}"
        lines.append(f"    {field_name} {shown}: {rule.help}; {rule.describe()}")
    return "\n".join(lines)


def show_schedule(args: argparse.Namespace) -> int:
    check_outputs({"--plot": args.plot}, [args.spec])
    schedule = parse(args.spec)
    step_index = strided_steps(args.steps, args.every)
    lrs = [number_text(lr) for lr in schedule(step_index)]
    if args.format == "json":
        values = [float(lr) for lr in lrs]  # Python's shortest repr of the rounded value
        json.dump(
            {"spec": schedule.to_spec(), "steps": step_index.tolist(), "lr": values}, sys.stdout
        )
        print()
    else:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["step", "lr"])
        writer.writerows(zip(step_index.tolist(), lrs))
    if args.plot:
        report_written(_plot([schedule], args.steps, args.plot))
    return 0


def compare_schedules(args: argparse.Namespace) -> int:
    check_outputs({"--plot": args.plot}, args.specs)
    schedules = [parse(spec) for spec in args.specs]
    steps = args.steps
    lrs = [schedule(np.arange(steps)) for schedule in schedules]
    print(_summary_table(schedules, lrs))
    if args.plot:
        report_written(_plot(schedules, steps, args.plot))
    return 0


def _summary_table(schedules: list[Schedule], lrs: list[np.ndarray]) -> str:
    """Per schedule: LR at quarters of the run, and the LR area (sum of LRs, the 'S1' of the
    loss-curve laws, which sets how far a run travels)."""
    rows = [("schedule", "lr@0", "lr@25%", "lr@50%", "lr@75%", "lr@end", "sum(lr)")]
    for schedule, values in zip(schedules, lrs):
        last = len(values) - 1
        picks = [values[round(fraction * last)] for fraction in (0.0, 0.25, 0.5, 0.75, 1.0)]
        rows.append((_label(schedule), *(f"{v:.3g}" for v in picks), f"{values.sum():.4g}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in rows)


def _label(schedule: Schedule, width: int = 60) -> str:
    text = str(schedule)
    return text if len(text) <= width else text[: width - 3] + "..."


def _plot(schedules: list[Schedule], steps: int, path: str) -> Any:
    from lrlab.report.plots import plot_schedules

    curves = [(_label(schedule, 80), schedule(np.arange(steps))) for schedule in schedules]
    return plot_schedules(curves, path)
