"""``lrlab study``: the main job, from runs (trained here or logged elsewhere) to a
recommendation."""

from __future__ import annotations

import argparse
import dataclasses
import textwrap
import time

from lrlab.cli import arguments, size_options
from lrlab.cli.run_options import (
    add_run_options,
    describe_warmup,
    read_runs_from_args,
    report_progress,
    with_run_warnings,
)
from lrlab.cli.tunnel_commands import add_backend_options, backend_from_args
from lrlab.errors import LrlabError


def register(subparsers: argparse._SubParsersAction) -> None:
    study = subparsers.add_parser(
        "study",
        help="which schedule, and what loss will it reach? (report with the evidence)",
        description="Without --runs: train short wind-tunnel runs on the built-in corpus (needs "
        "PyTorch), fit the loss-curve laws, recommend a schedule and train it to check the "
        "forecast. With --runs: study your own logs instead (no training).",
    )
    add_run_options(study, required=False)
    study.add_argument(
        "--runs",
        dest="use_runs",
        action="store_true",
        help="study the RUN log files given (they may also follow --runs)",
    )
    study.add_argument(
        "--budget", type=arguments.steps(), help="step budget to design the schedule for"
    )
    study.add_argument(
        "--peak", type=arguments.number(0, low_inclusive=False), help="peak LR (default: the runs')"
    )
    study.add_argument(
        "--warmup", type=arguments.steps(0), help="warmup steps (default: the runs')"
    )
    study.add_argument(
        "--config", metavar="FILE", help="YAML/JSON study settings for the wind-tunnel study"
    )
    study.add_argument("--out", default="study", help="output folder (default: ./study)")
    size_options.add_study_options(study)
    add_backend_options(study)
    study.set_defaults(handler=with_run_warnings(run_study))


def run_study(args: argparse.Namespace) -> int:
    from lrlab.locks import FolderLock

    # The output folder first: a file in the way, or another study writing there, is an error
    # before any log is read or run trained.
    with FolderLock(args.out, "lrlab study"):
        return _study(args)


def _study(args: argparse.Namespace) -> int:
    from lrlab.report.html import describe_law
    from lrlab.study import study_default, study_runs

    began = time.perf_counter()
    target, directories = size_options.study_params(args)
    if args.runs:
        if args.config:
            raise LrlabError("--config sets up a wind-tunnel study; drop it when giving --runs")
        if args.backend != "local" or args.address is not None:
            raise LrlabError("--backend/--address say where runs train; --runs trains none")
        if args.size_law:
            from lrlab.study import study_size_runs

            runs = read_runs_from_args(args)
            groups, sizes = size_options.size_groups(args.runs, runs, directories)
            summary = study_size_runs(
                groups,
                sizes,
                args.out,
                target=target,
                budget=args.budget,
                peak=args.peak,
                warmup=args.warmup,
                progress=report_progress,
            )
        else:
            if args.params:
                raise LrlabError(
                    f"--params {args.params[0][2]}: a study of one size forecasts that size; "
                    "to forecast another, give runs of two or more sizes with --size-law"
                )
            summary = study_runs(
                read_runs_from_args(args),
                args.out,
                budget=args.budget,
                peak=args.peak,
                warmup=args.warmup,
                progress=report_progress,
            )
    else:
        if args.use_runs:
            raise LrlabError("--runs needs at least one log file")
        if args.budget or args.peak or args.warmup is not None:
            raise LrlabError(
                "--budget/--peak/--warmup apply to --runs; for the wind-tunnel "
                "study put them in --config FILE"
            )
        if args.size_law:
            raise LrlabError(
                "--size-law fits logs given as RUN...; the wind-tunnel study trains several "
                "sizes with sizes: [WIDTH, ...] in --config FILE"
            )
        if directories:
            raise LrlabError(
                f"--params {directories[0][2]}: DIR=COUNT names the size of logs in a directory, "
                "for --size-law with RUN logs; the wind-tunnel study counts its widths itself"
            )
        config = None
        if args.config:
            from lrlab.mapping_file import read_mapping
            from lrlab.study import StudyConfig

            config = StudyConfig.from_mapping(read_mapping(args.config), source=args.config)
        if target is not None:
            from lrlab.laws.sizes import describe_count

            if config is None or not config.sizes:
                raise LrlabError(
                    f"--params {describe_count(target)}: forecasting another model size needs "
                    "sizes: [WIDTH, ...] in --config FILE (two or more tunnel widths), or RUN "
                    "logs of several sizes with --size-law"
                )
            config = dataclasses.replace(config, params=target)
        summary = study_default(
            args.out, config, progress=report_progress, backend=backend_from_args(args)
        )
    best = summary["recommended"]
    print(f"law: {describe_law(summary)}")
    if summary["law_choice"]:  # why, wrapped below the name: the sentence is long
        print(
            textwrap.fill(
                f"chosen as {summary['law_choice']}",
                100,
                initial_indent="  ",
                subsequent_indent="  ",
            )
        )
    print(f"recommended for {summary['budget']} steps: {best['shape']}")
    warmup_from = "given" if args.warmup is not None else summary["fit"]["fit"].get("warmup_from")
    print(f"  peak LR {summary['peak']:g}, {describe_warmup(summary['warmup'], warmup_from)}")
    # A free-form spec runs to 1,500 characters: its start says nothing, summary.json has it all.
    text = best["text"]
    spec = text if len(text) <= 200 else f"{best['spec']['name']}, {len(text)} characters"
    print(f"  spec: {spec} (in full: summary.json)")
    print(
        f"forecast final loss {best['final_loss']:.4f} "
        f"[{best['band'][0]:.4f}, {best['band'][1]:.4f}]"
    )
    simple = summary.get("simple_equivalent")
    if simple:
        print(
            f"nearest simple schedule ({simple['fitted_by']}): {simple['text']}; forecast "
            f"{simple['final_loss']:.4f} [{simple['band'][0]:.4f}, {simple['band'][1]:.4f}]"
        )
    # A gain only where the band of the difference (from the same fit) excludes 0.
    for name, comparison in summary["comparisons"].items():
        print(f"  vs {name}: {comparison['final_loss']:.4f} ({comparison['gain_text']})")
    if "sizes" in summary:
        _print_sizes(summary["sizes"])
    for check in summary["verification"]:
        verdict = "inside" if check["inside_band"] else "OUTSIDE"
        print(
            f"checked {check['name']}: forecast {check['final_loss']:.4f}, measured "
            f"{check['measured']:.4f} ({verdict} the band)"
        )
    for verdict in summary["verdicts"]:
        print(verdict["text"])
    print(f"report: {args.out}/report.html ({time.perf_counter() - began:.0f} s)")
    return 0


def _print_sizes(sizes: dict) -> None:
    """The sizes section of a study across sizes: the target, then a line per size."""
    target = sizes["target"]
    print(f"across sizes (law {sizes['law']}): target {target['params_text']} ({target['name']})")
    print(f"  {target['note']}")
    if target["held_at_bound"]:
        print(f"  held at its bound at the target: {', '.join(target['held_at_bound'])}")
    for row in sizes["per_size"]:
        tokens = row["tokens_per_param"]
        spent = "" if tokens is None else f", {tokens:.1f} tokens/parameter"
        where = "target" if row["target"] else "fitted"
        forecast, wsd = row["recommended"], row["wsd_optimum"]
        print(
            f"  {row['name']} ({row['params_text']}, {where}{spent}): recommended "
            f"{forecast['final_loss']:.4f} [{forecast['band'][0]:.4f}, {forecast['band'][1]:.4f}]"
            f"; best WSD {wsd['final_loss']:.4f} (cooldown {100 * wsd['cooldown_fraction']:.0f}%"
            f", {wsd['decay']}); {row['winner_text']}"
        )
    print(f"  {sizes['optimum_moves']}")
