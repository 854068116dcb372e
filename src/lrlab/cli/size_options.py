"""The command line of the size-aware law (`lrlab.laws.sizes`): ``lrlab fit --size-law`` with
``--params DIR=COUNT``, and ``--params COUNT`` on the commands that use a fit (``predict``,
``evaluate``, ``optimize``), which picks the size to forecast; ``lrlab study`` takes both
(``--size-law`` with ``--params COUNT`` and ``--params DIR=COUNT``).

Runs are grouped by directory as for ``--joint`` (`lrlab.cli.run_groups`), a directory named by
``--params DIR=COUNT`` making a group of the runs anywhere below it (the wind tunnel keeps each
run in a folder of its own: ``d64/<run>/eval.csv``); a group's parameter count is given with
``--params`` or read from its directory's name (``25M``, ``124m``, ``1.3B``, ``350K``). Heavy
modules (scipy's optimiser, through the fit) are imported in the handlers, so that building the
parser stays cheap.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from lrlab.cli.run_groups import group_folders
from lrlab.cli.run_options import (
    check_outputs,
    describe_warmup,
    quality_rows,
    read_runs_from_args,
    report_progress,
    report_written,
)
from lrlab.errors import LrlabError, brief
from lrlab.laws import Law, SizeLaw
from lrlab.laws.sizes import count_in_name, describe_count, describe_form, parse_count
from lrlab.runs import Run


def _count(text: str) -> float:
    """``--params COUNT``: a parameter count (argparse names the option in its error)."""
    try:
        return parse_count(text)
    except LrlabError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _directory_count(text: str) -> tuple[str, float, str]:
    """``--params DIR=COUNT`` of ``fit --size-law``: a directory, its parameter count, and the
    text as given (for the errors)."""
    directory, equals, count = text.rpartition("=")
    if not equals or not directory:
        raise argparse.ArgumentTypeError(
            f"must be DIR=COUNT (a directory of runs and its parameter count), got {brief(text)}"
        )
    try:
        return directory, parse_count(count, text), text
    except LrlabError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_fit_options(parser: argparse.ArgumentParser) -> None:
    """``--size-law`` and ``--params DIR=COUNT`` of ``lrlab fit``."""
    parser.add_argument(
        "--size-law",
        action="store_true",
        help="one law across model sizes, its scale parameters functions of the parameter count "
        "(runs grouped as for --joint, or by a directory --params names; a group's count from "
        "its directory's name, such as 25M, 124m or 1.3B, or from --params): forecasts sizes "
        "not run, with --params COUNT on predict, evaluate and optimize",
    )
    parser.add_argument(
        "--params",
        action="append",
        type=_directory_count,
        metavar="DIR=COUNT",
        help="with --size-law: the parameter count of the runs in or below directory DIR (a path "
        "or a name, such as d64 for d64/<run>/eval.csv), which are a group unless a nearer "
        "directory is (repeatable)",
    )


def add_params_option(parser: argparse.ArgumentParser) -> None:
    """``--params COUNT`` of the commands that read a fit: the model size to forecast."""
    parser.add_argument(
        "--params",
        type=_count,
        metavar="COUNT",
        help="with a size-aware fit (fit --size-law): the parameter count of the model to "
        "forecast, such as 400M or 1.3B",
    )


def _count_or_directory(text: str) -> tuple[str | None, float, str]:
    """``--params`` of ``lrlab study``: ``COUNT`` (the size to design for, as on ``predict``)
    or ``DIR=COUNT`` (a directory's count, as on ``fit --size-law``)."""
    if "=" in text:
        return _directory_count(text)
    return None, _count(text), text


def add_study_options(parser: argparse.ArgumentParser) -> None:
    """``--size-law`` and ``--params`` of ``lrlab study``: the names ``fit`` and ``predict`` use,
    for the same ideas."""
    parser.add_argument(
        "--size-law",
        action="store_true",
        help="with RUN logs of several model sizes (grouped as by fit --joint, or by a "
        "directory --params DIR=COUNT names; a group's count from its directory's name, such as "
        "25M or 1.3B, or --params): one law across the sizes, the schedule designed for "
        "--params COUNT",
    )
    parser.add_argument(
        "--params",
        action="append",
        type=_count_or_directory,
        metavar="COUNT|DIR=COUNT",
        help="COUNT: the parameter count of the model to design for and forecast, such as 400M "
        "(with --size-law, or with sizes: in --config; default: the largest size); DIR=COUNT: "
        "with --size-law, the parameter count of the runs in or below directory DIR (repeatable)",
    )


def study_params(args: argparse.Namespace) -> tuple[float | None, list[tuple[str, float, str]]]:
    """``lrlab study``'s ``--params``: the target count (given at most once) and the
    ``DIR=COUNT`` entries."""
    given = args.params or []
    targets = [entry for entry in given if entry[0] is None]
    if len(targets) > 1:
        raise LrlabError(
            f"--params {targets[0][2]} and --params {targets[1][2]}: give the parameter count "
            "to forecast once"
        )
    directories = [(str(d), count, text) for d, count, text in given if d is not None]
    return (targets[0][1] if targets else None), directories


def law_at_size(fitted: Any, params: float | None, source: str) -> Law:
    """The law a command forecasts with: a fit read by `load_law` itself, or a size-aware fit at
    ``--params`` (required there, refused for a fit of one size)."""
    if isinstance(fitted, SizeLaw):
        if params is None:
            sizes = ", ".join(describe_count(n) for n in sorted(set(fitted.sizes_.values())))
            raise LrlabError(
                f"{source} is a size-aware fit (sizes {sizes}): give --params COUNT, the "
                "parameter count of the model to forecast"
            )
        return fitted.at(params)
    if params is not None:
        raise LrlabError(
            f"--params {describe_count(params)}: {source} was fitted at one size; forecasting "
            "another size needs a fit across sizes (lrlab fit --size-law)"
        )
    return fitted


def size_groups(
    paths: list[str], runs: list[Run], given: list[tuple[str, float, str]]
) -> tuple[dict[str, list[Run]], dict[str, float]]:
    """The runs of each size and each size's parameter count, named by the group's directory
    (`lrlab.cli.run_groups`, the rule ``--joint`` uses too, with the directories ``--params
    DIR=COUNT`` names as groups of their own). A group's count is its directory's ``--params``,
    else the count its name spells (``25M``), else that of the nearest directory above it named
    by ``--params`` (the count of the runs anywhere below DIR). Two directories of one name are
    one group when their counts agree, an error when they differ; a ``--params`` naming no
    directory of a run, a directory given two counts, and runs without a count are errors."""
    folders = [Path(os.path.abspath(path)).parent for path in paths]
    explicit: dict[Path, tuple[float, str]] = {}
    for folder, count, text in given:
        target, name = Path(os.path.abspath(folder)), folder.rstrip("/" + os.sep)
        matches = {d for f in folders for d in (f, *f.parents) if d == target or d.name == name}
        if not matches:
            raise LrlabError(f"--params {text}: no RUN is in a directory {folder!r}")
        for directory in matches:
            if directory in explicit and explicit[directory][0] != count:
                raise LrlabError(
                    f"--params {text}: directory {directory} is given two counts, "
                    f"{describe_count(explicit[directory][0])} and {describe_count(count)}"
                )
            explicit[directory] = (count, f"--params {text}")
    groups: dict[str, list[Run]] = {}
    sizes: dict[str, float] = {}
    origins: dict[str, tuple[Path, str]] = {}
    for directory, run in zip(group_folders(paths, explicit), runs, strict=True):
        count, origin = _group_count(directory, explicit)
        if count is None:
            raise LrlabError(
                f"--size-law: no parameter count for directory {directory}, a group of runs: "
                "name it by its size (such as 25M, 124m, 1.3B or 350K) or give "
                f"--params {directory.name}=COUNT"
            )
        name = directory.name
        if name in sizes and sizes[name] != count:
            first, said = origins[name]
            raise LrlabError(
                f"--size-law: directories {first} ({describe_count(sizes[name])}, {said}) and "
                f"{directory} ({describe_count(count)}, {origin}) are both named {name!r}, "
                "which names their group, but their counts differ"
            )
        origins.setdefault(name, (directory, origin))
        sizes[name] = count
        groups.setdefault(name, []).append(run)
    if len(set(sizes.values())) < 2:
        raise LrlabError(
            f"--size-law: every run is of one size ({describe_count(next(iter(sizes.values())))}"
            f", in {', '.join(groups)}); fitting across sizes needs runs of at least two sizes"
        )
    return groups, sizes


def _group_count(
    directory: Path, explicit: dict[Path, tuple[float, str]]
) -> tuple[float | None, str]:
    """The parameter count of the runs of group `directory` (None: none given) and where it
    came from."""
    if directory in explicit:
        return explicit[directory]
    count = count_in_name(directory.name)
    if count is not None:
        return count, "from its name"
    for above in directory.parents:
        if above in explicit:
            return explicit[above]
    return None, ""


def run_size_fit(args: argparse.Namespace) -> int:
    """``lrlab fit --size-law``: fit, print the functions of size and the fit quality per group,
    optionally save."""
    if not args.size_law:
        raise LrlabError("--params DIR=COUNT is for fit --size-law (the counts of its sizes)")
    if args.joint:
        raise LrlabError("--size-law and --joint: choose one (the size law is a joint fit too)")
    check_outputs({"-o": args.output}, args.runs)
    runs = read_runs_from_args(args)
    groups, sizes = size_groups(args.runs, runs, args.params or [])
    options: dict[str, Any] = {"bands": False} if args.no_bands else {}
    law = SizeLaw(args.law, **options).fit(groups, sizes, progress=report_progress)
    if args.output:
        law.save(args.output)
        report_written(args.output)
    quality = {name: quality_rows(law.at(sizes[name]), members) for name, members in groups.items()}
    if args.json:
        from lrlab.live.background import json_safe

        print(json.dumps(json_safe({**law.to_dict(), "quality": quality}), indent=2))
        return 0
    _print_size_fit(law, quality)
    return 0


def _print_size_fit(law: SizeLaw, quality: dict[str, dict[str, dict[str, float]]]) -> None:
    info = law.fit_info_
    sizes = ", ".join(f"{name} = {describe_count(n)}" for name, n in law.sizes_.items())
    count = sum(len(runs) for runs in info["runs"].values())
    print(f"size law: {law.law} across {len(law.sizes_)} groups ({sizes})")
    print(f"fitted on {count} runs, {info['points']} points, {info['seconds']:.2f} s")
    print(f"peak LR {info['peak']:g}, {describe_warmup(info['warmup'], info.get('warmup_from'))}")
    low, high = law.anchors
    data = law.to_dict()
    shapes = {name: describe_form(law.forms[name], law.exponent) for name in data["scale"]}
    width = max(map(len, shapes.values()), default=0)
    for name, values in data["scale"].items():
        print(
            f"  {name:>8}(N) = {shapes[name]:<{width}}  {values['low']:.6g} at "
            f"{describe_count(low)}, {values['high']:.6g} at {describe_count(high)}"
        )
    for name, value in data["shared"].items():
        print(f"  {name:>8} = {value:.6g} (shared by the sizes)")
    refits = len(law.replicates_)
    print(
        f"band: {refits} jackknife refits, scale {law.band_scale_:.3g}, residual noise "
        f"{law.noise_sd_:.3g} (log-loss), widening with the distance in log N from the sizes"
    )
    for group, rows in quality.items():
        print(f"group {group} ({describe_count(law.sizes_[group])}):")
        width = max(len("run"), *(len(run) for run in rows))
        names = list(next(iter(rows.values())))
        print(f"  {'run':<{width}}  " + "  ".join(f"{name:>9}" for name in names))
        for run, row in rows.items():
            cells = (f"{row[n]:>9.5f}" if np.isfinite(row[n]) else f"{'n/a':>9}" for n in names)
            print(f"  {run:<{width}}  " + "  ".join(cells))
