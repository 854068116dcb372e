"""``lrlab laws | fit | predict | evaluate``: fit loss-curve laws to logged runs and forecast."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from lrlab.atomic import atomic_write_text
from lrlab.cli import arguments, size_options
from lrlab.cli.run_groups import GROUPING, group_folders
from lrlab.cli.run_options import (
    add_run_options,
    add_warmup_option,
    check_outputs,
    describe_warmup,
    number_text,
    quality_rows,
    read_runs_from_args,
    report_progress,
    report_written,
    strided_steps,
    with_run_warnings,
)
from lrlab.errors import LrlabError
from lrlab.laws import (
    DEFAULT_LAW,
    DEFAULT_SINGLE_LAW,
    REGISTRY,
    Law,
    evaluate,
    get_law,
    load_law,
    mean_metrics,
)
from lrlab.laws.joint import fit_joint
from lrlab.laws.metrics import METRICS, coverage
from lrlab.laws.registry import warn_if_unpinned
from lrlab.report.plots import LossCurve, loss_label, plot_loss_curves
from lrlab.runs import Run

PREDICT_COLUMNS = ("run", "step", "lr", "loss", "pred", "pred_low", "pred_high")
_LEVEL = arguments.number(0, 1, low_inclusive=False, high_inclusive=False)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``laws``, ``fit``, ``predict`` and ``evaluate`` sub-commands."""
    laws = subparsers.add_parser("laws", help="list the loss-curve laws")
    laws.set_defaults(handler=with_run_warnings(run_laws))

    fit = subparsers.add_parser("fit", help="fit a loss-curve law to logged runs")
    add_run_options(fit)
    add_warmup_option(fit)
    fit.add_argument(
        "--law",
        help=f"law to fit (default: {DEFAULT_LAW}; with --joint or a size-aware fit, which need "
        f"one law's form: {DEFAULT_SINGLE_LAW})",
    )
    fit.add_argument(
        "--joint",
        action="store_true",
        help="one law per group of runs (e.g. one per model size), sharing the law's shape "
        "parameters; a run's group is the top directory below the one all runs share (d64 for "
        "d64/<run>/eval.csv), or a nearer one named like a parameter count (25M), paths taken "
        "as given (links not followed); -o is then a directory receiving GROUP.json per group",
    )
    fit.add_argument("-o", "--output", help="write the fit to this JSON file")
    fit.add_argument("--no-bands", action="store_true", help="skip the jackknife refits")
    fit.add_argument("--json", action="store_true", help="print the fit as JSON")
    size_options.add_fit_options(fit)
    fit.set_defaults(handler=with_run_warnings(run_fit))

    predict = subparsers.add_parser(
        "predict",
        help="predict loss curves from a fitted law",
        description="Predict the loss at the logged steps of RUN files, or at the steps of "
        "--schedule SPEC over --steps N (steps 0 to N-1: every K-th from step 0, and always "
        "the last, N-1, whose loss is the run's final loss). A step before any LR has been "
        "applied (step 0 of a warmup from LR 0) has no prediction: its cells stay empty.",
    )
    predict.add_argument("fit", metavar="FIT.json")
    add_run_options(predict, required=False)
    add_warmup_option(predict)
    predict.add_argument(
        "--steps",
        type=arguments.steps(2),
        metavar="N",
        help="with --schedule and no RUN: predict a run of N steps, steps 0 to N-1",
    )
    predict.add_argument(
        "--every",
        type=arguments.count(1),
        metavar="K",
        help="with --steps: predict every K-th step from step 0, and the last step N-1 "
        "(default: K = N // 1000, at least 1: about 1000 rows)",
    )
    predict.add_argument("--level", type=_LEVEL, help="band level (default: the fit's, 0.9)")
    predict.add_argument("-o", "--output", help="CSV file to write (default: standard output)")
    predict.add_argument("--plot", metavar="FILE.png", help="plot observed vs predicted")
    size_options.add_params_option(predict)
    predict.set_defaults(handler=with_run_warnings(run_predict))

    evaluate_parser = subparsers.add_parser("evaluate", help="score a fitted law on runs")
    evaluate_parser.add_argument("fit", metavar="FIT.json")
    add_run_options(evaluate_parser)
    add_warmup_option(evaluate_parser)
    evaluate_parser.add_argument("--level", type=_LEVEL, help="band level for the coverage")
    evaluate_parser.add_argument("--json", action="store_true", help="print JSON")
    evaluate_parser.add_argument("--plot", metavar="FILE.png", help="plot observed vs predicted")
    evaluate_parser.add_argument(
        "--design",
        metavar="DESIGN.json",
        help="also: this design's forecasts (what `lrlab optimize --json` prints, or a study's "
        "summary.json) against the RUNs of its budgets (length within 1%%): each run's "
        "measured final loss, the law's forecast for it, and the design's forecast gain over it",
    )
    size_options.add_params_option(evaluate_parser)
    evaluate_parser.set_defaults(handler=with_run_warnings(run_evaluate))


def run_laws(args: argparse.Namespace) -> int:
    """``lrlab laws``: one line per law."""
    for name, cls in REGISTRY.items():
        marker = " (default)" if name == DEFAULT_LAW else ""
        print(f"{name}{marker}: {cls.summary}")
        print(f"    parameters: {', '.join(cls.param_names)}")
    return 0


def run_fit(args: argparse.Namespace) -> int:
    """``lrlab fit``: fit, print parameters and fit quality, optionally save."""
    if args.law is None:
        one_form = args.joint or args.size_law or args.params
        args.law = DEFAULT_SINGLE_LAW if one_form else DEFAULT_LAW
    if args.size_law or args.params:
        return size_options.run_size_fit(args)
    if args.joint and args.output and Path(args.output).exists() and not Path(args.output).is_dir():
        raise LrlabError(f"-o {args.output}: with --joint, -o names a directory, not a file")
    check_outputs({"-o": args.output}, args.runs, folders=["-o"] if args.joint else [])
    runs = read_runs_from_args(args)
    options: dict[str, Any] = {"bands": False} if args.no_bands else {}
    if args.joint:
        groups = _groups_by_directory(args.runs, runs)
        laws = fit_joint(args.law, groups, progress=report_progress, **options)
        outputs = {name: Path(args.output) / f"{name}.json" for name in laws} if args.output else {}
    else:
        laws = {"": get_law(args.law, **options).fit(runs, progress=report_progress)}
        outputs = {"": Path(args.output)} if args.output else {}
        groups = {"": runs}
    for law in laws.values():
        warn_if_unpinned(law)
    for name, path in outputs.items():
        laws[name].save(path)
        report_written(path)
    quality = {name: quality_rows(law, groups[name]) for name, law in laws.items()}
    if args.json:
        reports = {name: {**law.to_dict(), "quality": quality[name]} for name, law in laws.items()}
        print(json.dumps(_defined(reports if args.joint else reports[""]), indent=2))
        return 0
    for name, law in laws.items():
        _print_fit(law, quality[name], f"group {name}: " if args.joint else "")
    return 0


def _groups_by_directory(paths: list[str], runs: list[Run]) -> dict[str, list[Run]]:
    """``--joint`` groups: the runs of each group directory (`lrlab.cli.run_groups`), named by
    the directory (the name of its saved fit), so two directories of one name are an error
    rather than one group."""
    directories: dict[Path, list[Run]] = {}
    for directory, run in zip(group_folders(paths), runs, strict=True):
        directories.setdefault(directory, []).append(run)
    if len(directories) < 2:
        raise LrlabError(
            f"--joint: all runs are in one group, directory {next(iter(directories))} "
            f"({GROUPING}); put each group's runs (e.g. each model size) in a directory of "
            "its own below one they share"
        )
    groups: dict[str, list[Run]] = {}
    seen: dict[str, Path] = {}
    for directory, members in directories.items():
        if directory.name in seen:
            raise LrlabError(
                f"--joint: directories {seen[directory.name]} and {directory} are both named "
                f"{directory.name!r}; a group is named by its directory, so rename one"
            )
        seen[directory.name] = directory
        groups[directory.name] = members
    return groups


def _print_fit(law: Law, quality: dict[str, dict[str, float]], heading: str) -> None:
    print(f"{heading}law: {law.name} ({law.summary})")
    info = law.fit_info_
    print(f"fitted on {len(quality)} run(s), {info['points']} points, {info['seconds']:.2f} s")
    # What a schedule designed from this fit starts from (`lrlab optimize` takes both).
    print(f"peak LR {info['peak']:g}, {describe_warmup(info['warmup'], info.get('warmup_from'))}")
    fixed = law.fixed_parameters()
    shared = law.fit_info_.get("joint", {}).get("shared", [])
    for name, value, error in zip(law.param_names, law.params_, law.param_errors_, strict=True):
        note = " (shared by the groups)" if name in shared else " (fixed)" if name in fixed else ""
        print(f"  {name:>8} = {value:.6g} +- {error:.2g}{note}")
    _print_metrics(quality)


def _print_metrics(rows: dict[str, dict[str, Any]]) -> None:
    """The metrics table; a metric a run does not define (R2 of a single point) shows n/a."""
    names = [name for name in (*METRICS, "coverage") if name in next(iter(rows.values()))]
    width = max(len("mean"), *(len(run) for run in rows))
    print(f"{'run':<{width}}  " + "  ".join(f"{name:>9}" for name in names))
    for run, row in rows.items():
        cells = (
            f"{row[name]:>9.5f}" if np.isfinite(row[name]) else f"{'n/a':>9}" for name in names
        )
        print(f"{run:<{width}}  " + "  ".join(cells))


def _defined(data: Any) -> Any:
    """`data` for JSON with every NaN or infinite number (an undefined metric) as null: NaN is no
    JSON, and a reader should not take it for a number."""
    if isinstance(data, dict):
        return {key: _defined(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [_defined(value) for value in data]
    if isinstance(data, float) and not np.isfinite(data):
        return None
    return data


def _prediction_rows(
    law: Law,
    name: str,
    lr: np.ndarray,
    steps: np.ndarray,
    loss: np.ndarray | None,
    level: float | None,
) -> tuple[list[list[Any]], np.ndarray, np.ndarray, np.ndarray]:
    pred, low, high = law.predict_with_band(lr, steps, level)
    # No law predicts a step before any LR has been applied (a step 0 logged with LR 0): those
    # cells stay empty, like the loss of a schedule.
    rows = [
        [
            name,
            int(s),
            number_text(lr[s]),
            "" if loss is None else number_text(loss[i]),
            *(number_text(value[i]) if np.isfinite(pred[i]) else "" for value in (pred, low, high)),
        ]
        for i, s in enumerate(steps)
    ]
    return rows, pred, low, high


def run_predict(args: argparse.Namespace) -> int:
    """``lrlab predict``: a CSV of predictions for runs, or for a schedule over ``--steps``."""
    check_outputs({"-o": args.output, "--plot": args.plot}, [args.fit, *args.runs])
    law = size_options.law_at_size(load_law(args.fit), args.params, args.fit)
    curves: list[LossCurve] = []
    rows: list[list[Any]] = []
    runs = read_runs_from_args(args) if args.runs else []
    if runs:
        for run in runs:
            run_rows, pred, low, high = _prediction_rows(
                law, run.name, run.lr, run.steps, run.loss, args.level
            )
            rows += run_rows
            curves.append(LossCurve(run.name, run.steps, pred, low, high, run.loss))
    else:
        if not args.schedule or args.steps is None:
            raise LrlabError("predict: give RUN files, or --schedule SPEC with --steps N")
        if len(args.schedule) != 1:
            raise LrlabError("predict: one --schedule with --steps")
        from lrlab.schedules import parse

        lr = np.asarray(parse(args.schedule[0])(np.arange(args.steps)), dtype=np.float64)
        steps = strided_steps(args.steps, args.every or max(1, args.steps // 1000))
        run_rows, pred, low, high = _prediction_rows(law, "schedule", lr, steps, None, args.level)
        rows += run_rows
        curves.append(LossCurve("schedule", steps, pred, low, high))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(PREDICT_COLUMNS)
    writer.writerows(rows)
    if args.output:
        atomic_write_text(args.output, buffer.getvalue())
        report_written(args.output)
    else:
        sys.stdout.write(buffer.getvalue())
    if args.plot:
        plot_loss_curves(curves, args.plot, title=f"{law.name} forecast", loss=loss_label(runs))
        report_written(args.plot)
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    """``lrlab evaluate``: metrics per run, their means, and band coverage."""
    check_outputs({"--plot": args.plot}, [args.fit, *args.runs, *filter(None, [args.design])])
    law = size_options.law_at_size(load_law(args.fit), args.params, args.fit)
    rows: dict[str, dict[str, Any]] = {}
    curves = []
    runs = read_runs_from_args(args)
    for run in runs:
        pred, low, high = law.predict_with_band(run.lr, run.steps, args.level)
        defined = np.isfinite(pred)
        if not np.any(defined):
            raise LrlabError(f"{run.source}: no logged step after the LR became positive")
        rows[run.name] = {
            **evaluate(run.loss[defined], pred[defined]),
            "coverage": coverage(run.loss[defined], low[defined], high[defined]),
        }
        curves.append(LossCurve(run.name, run.steps, pred, low, high, run.loss))
    mean = {
        **mean_metrics(rows.values()),
        "coverage": float(np.mean([row["coverage"] for row in rows.values()])),
    }
    report: dict[str, Any] = {"law": law.name, "runs": rows, "mean": mean}
    if args.design:
        from lrlab.design.compare import check_design, describe_check, read_design

        report["design"] = check_design(law, read_design(args.design), runs, args.level)
    if args.json:
        print(json.dumps(_defined(report), indent=2))
    else:
        _print_metrics({**rows, "mean": mean})
        if args.design:
            print(f"design {args.design} against the measured runs:")
            print("\n".join(describe_check(report["design"])))
    if args.plot:
        plot_loss_curves(
            curves, args.plot, title=f"{law.name}: observed vs predicted", loss=loss_label(runs)
        )
        report_written(args.plot)
    return 0
