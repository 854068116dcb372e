"""``lrlab optimize | refine | plan-continual``: from a fitted law (or a logged run) to a
schedule."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from lrlab.atomic import atomic_write_text
from lrlab.cli import arguments, size_options
from lrlab.cli.run_options import (
    check_outputs,
    describe_warmup,
    report_progress,
    report_written,
    with_run_warnings,
)
from lrlab.design.continual import plan_continual
from lrlab.design.optimize import FAMILIES, budget_sweep, optimize_schedule
from lrlab.design.refine import VARIANTS, refine_schedule
from lrlab.errors import LrlabError
from lrlab.laws import Law, load_law
from lrlab.runs import read_run
from lrlab.runs.model import MAX_LR
from lrlab.runs.read import is_log_path
from lrlab.schedules import Schedule, Table, parse, save_spec


def register(subparsers: argparse._SubParsersAction) -> None:
    optimize = subparsers.add_parser(
        "optimize", help="the schedule a fitted law predicts to end at the lowest loss"
    )
    optimize.add_argument("fit", metavar="FIT.json")
    # Not required=True: the deprecated --steps may give it instead (checked in run_optimize).
    optimize.add_argument(
        "--budget",
        type=arguments.steps(),
        metavar="N",
        help="step budget: the schedule's length (required)",
    )
    optimize.add_argument(
        "--steps",
        dest="budget",
        type=arguments.steps(),
        metavar="N",
        action=_DeprecatedAlias,
        new="--budget",
        help="deprecated: the old name of --budget",
    )
    optimize.add_argument(
        "--family", default="free", choices=FAMILIES, help="schedule family, or free-form (default)"
    )
    _add_peak_and_warmup(optimize)
    optimize.add_argument(
        "--knots", type=arguments.count(3), default=48, help="free-form knots (default 48)"
    )
    optimize.add_argument(
        "--smoothness",
        type=arguments.number(0),
        default=0.0,
        help="free-form curvature penalty (default 0)",
    )
    optimize.add_argument(
        "--no-trust-region",
        dest="trust_region",
        action="store_false",
        help="let the LR fall faster than in the fitted runs (by default it may not: the law "
        "has seen no faster fall)",
    )
    optimize.add_argument(
        "--budgets",
        type=arguments.steps_list,
        help="also: best WSD loss and branch step for these comma-separated budgets",
    )
    optimize.add_argument("-o", "--output", metavar="SCHEDULE.json", help="write the spec")
    optimize.add_argument("--plot", metavar="FILE.png", help="plot the schedule and baselines")
    optimize.add_argument(
        "--json",
        action="store_true",
        help="print the result as JSON: a design file for `lrlab evaluate --design`",
    )
    size_options.add_params_option(optimize)
    optimize.set_defaults(handler=with_run_warnings(run_optimize))

    refine = subparsers.add_parser(
        "refine", help="a schedule refined from a run's gradient norms (Defazio et al. 2023)"
    )
    refine.add_argument("run", metavar="RUN", help="log with a gradient-norm column")
    refine.add_argument("--column", default="grad_norm", help="gradient-norm column")
    refine.add_argument(
        "--variant",
        default="sgd",
        choices=sorted(VARIANTS),
        help="sgd: w = g^-2 (l2 norms); adam: w = g^-1 (l1 norms)",
    )
    refine.add_argument(
        "--smoothing",
        type=arguments.number(0, 1, high_inclusive=False),
        default=0.1,
        help="median-filter width as a fraction of the run (default 0.1)",
    )
    refine.add_argument("--peak", type=_PEAK, help="peak LR (default: the run's largest LR)")
    refine.add_argument("-o", "--output", metavar="SCHEDULE.json", required=True)
    refine.set_defaults(handler=with_run_warnings(run_refine))

    plan = subparsers.add_parser(
        "plan-continual", help="compare schedules for a new continual-pre-training stage"
    )
    plan.add_argument("fit", metavar="FIT.json", help="law fitted on the base run")
    plan.add_argument("--base", required=True, help="base schedule spec, or the base run's log")
    plan.add_argument(
        "--base-steps", type=arguments.steps(), help="steps of the base run (default: its log)"
    )
    plan.add_argument(
        "--stage-steps", type=arguments.steps(), required=True, help="steps of the new stage"
    )
    plan.add_argument("--peak", type=_PEAK, help="re-warming peak LR (default: the fitted runs')")
    plan.add_argument(
        "--warmup",
        type=arguments.steps(0),
        help="re-warming steps (default: 1%% of the stage, as Ibrahim et al. 2024)",
    )
    plan.add_argument("-o", "--output", metavar="PLAN.json", help="write the plans as JSON")
    plan.set_defaults(handler=with_run_warnings(run_plan_continual))


class _DeprecatedAlias(argparse.Action):
    """An old flag that still works as the flag `new` (same dest), with one line on stderr saying
    so: scripts written for the old name keep running while their authors learn the new one."""

    def __init__(self, option_strings: Sequence[str], dest: str, *, new: str, **kwargs: Any):
        super().__init__(option_strings, dest, **kwargs)
        self.new = new

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        print(f"lrlab: {option_string} is deprecated here; use {self.new}", file=sys.stderr)
        setattr(namespace, self.dest, values)


_PEAK = arguments.number(0, MAX_LR, low_inclusive=False)  # the largest LR a log may hold


def _add_peak_and_warmup(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--peak", type=_PEAK, help="peak LR (default: the fitted runs' largest)")
    parser.add_argument(
        "--warmup", type=arguments.steps(0), help="warmup steps (default: the fitted runs')"
    )


def _peak_and_warmup(args: argparse.Namespace, law: Law) -> tuple[float, int]:
    info = law.fit_info_
    peak = args.peak if args.peak is not None else info.get("peak")
    warmup = args.warmup if args.warmup is not None else info.get("warmup", 0)
    if peak is None:
        raise LrlabError("--peak is required: the fit does not record its runs' peak LR")
    return float(peak), int(warmup)


def run_optimize(args: argparse.Namespace) -> int:
    if args.budget is None:
        raise LrlabError("--budget is required (the step budget to optimise the schedule for)")
    check_outputs({"-o": args.output, "--plot": args.plot}, [args.fit])
    law = size_options.law_at_size(load_law(args.fit), args.params, args.fit)
    peak, warmup = _peak_and_warmup(args, law)
    design = optimize_schedule(
        law,
        args.budget,
        peak=peak,
        warmup=warmup,
        family=args.family,
        knots=args.knots,
        smoothness=args.smoothness,
        trust_region=args.trust_region,
        progress=report_progress,
    )
    result = design.to_dict()
    # The design's gain on each baseline with the band of that difference, from the same fit: a
    # gain only where the band excludes 0 (`Law.compare_final`).
    steps = np.arange(args.budget)
    best_finals = law.final_replicas(design.best.schedule(steps))
    gains = {
        name: law.compare_finals(law.final_replicas(baseline.schedule(steps)), best_finals)
        for name, baseline in design.baselines.items()
    }
    result["gain_band"] = {
        name: {"low": gain.low, "high": gain.high, "separated": gain.separated}
        for name, gain in gains.items()
    }
    if args.budgets:
        result["budgets"] = [
            {"steps": point.budget, **point.forecast.to_dict(), "branch_step": point.branch_step}
            for point in budget_sweep(
                law,
                args.budgets,
                peak=peak,
                warmup=warmup,
                trust_region=args.trust_region,
                progress=report_progress,
            )
        ]
    if args.output:
        save_spec(design.best.schedule, args.output)
        report_written(args.output)
    if args.plot:
        from lrlab.report.plots import plot_schedules

        steps = np.arange(args.budget)
        curves = [
            (
                f"optimised ({args.family}): {design.best.final_loss:.4f}",
                design.best.schedule(steps),
            )
        ]
        curves += [
            (f"{name}: {f.final_loss:.4f}", f.schedule(steps))
            for name, f in design.baselines.items()
        ]
        plot_schedules(curves, args.plot, title=f"forecast final loss under law {law.name!r}")
        report_written(args.plot)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    best = design.best
    warmup_from = "given" if args.warmup is not None else law.fit_info_.get("warmup_from")
    print(
        f"law {law.name!r}, budget {args.budget} steps, peak {peak:g}, "
        f"{describe_warmup(warmup, warmup_from)}"
    )
    print(
        f"best ({args.family}): final loss {best.final_loss:.4f} [{best.low:.4f}, {best.high:.4f}]"
    )
    print(f"  {_short(best.schedule)}")
    print(f"  design: {design.trust_region}")
    if design.excess and design.excess["best"] > 0:
        print(f"  it falls faster than that by {design.excess['best']:.1%} of the peak")
    for name, baseline in design.baselines.items():
        print(
            f"{name}: final loss {baseline.final_loss:.4f} "
            f"[{baseline.low:.4f}, {baseline.high:.4f}]; the design's forecast "
            f"{gains[name].describe_gain()}"
        )
    for point in result.get("budgets", []):
        print(
            f"budget {point['steps']}: best WSD final loss {point['final_loss']:.4f}, "
            f"branch the decay at step {point['branch_step']}"
        )
    return 0


def _short(schedule: Schedule, width: int = 160) -> str:
    text = str(schedule)
    return text if len(text) <= width else text[: width - 3] + "..."


def run_refine(args: argparse.Namespace) -> int:
    check_outputs({"-o": args.output}, [args.run])
    try:  # the gradient norms are read where the loss usually is, with the same checks
        run = read_run(args.run, columns={"loss": args.column})
    except LrlabError as error:
        raise LrlabError(_as_gradient_norms(str(error), args.column)) from None
    peak = args.peak if args.peak is not None else float(run.lr.max())
    if peak <= 0:
        raise LrlabError(f"{args.run}: the run's LR is 0 everywhere; give --peak")
    schedule = refine_schedule(
        run.steps, run.loss, peak=peak, variant=args.variant, smoothing=args.smoothing
    )
    save_spec(schedule, args.output)
    values = np.asarray(schedule.values)
    print(
        f"refined {len(values)}-step schedule ({args.variant}) from {run.steps.size} gradient "
        f"norms: peak {values.max():.3g} at step {int(values.argmax())}, written to "
        f"{args.output}"
    )
    return 0


def _as_gradient_norms(message: str, column: str) -> str:
    """A reader's error about the loss, reworded for the gradient norms read in its place (the
    reader names the field it reads, "loss", which is not what `refine` reads)."""
    message = message.replace(" for loss ", " for the gradient norms ")
    message = re.sub(
        r"\bloss (\S+) is not positive \([^)]*\)",
        rf"{column} \1 is not positive (refinement divides by the gradient norms)",
        message,
    )
    return re.sub(r"\bno loss column\b", f"no gradient-norm column {column!r}", message)


def _base_schedule(args: argparse.Namespace) -> tuple[Schedule, int]:
    if is_log_path(args.base):
        run = read_run(args.base)
        return Table(values=run.lr), args.base_steps or int(run.steps[-1]) + 1
    if args.base_steps is None:
        raise LrlabError("--base-steps is required when --base is a schedule spec")
    return parse(args.base), args.base_steps


def run_plan_continual(args: argparse.Namespace) -> int:
    inputs = [args.fit, args.base] if is_log_path(args.base) else [args.fit]
    check_outputs({"-o": args.output}, inputs)
    law = load_law(args.fit)
    if args.warmup is None:
        args.warmup = max(1, args.stage_steps // 100)
    peak, warmup = _peak_and_warmup(args, law)
    base, base_steps = _base_schedule(args)
    plans = plan_continual(law, base, base_steps, args.stage_steps, peak=peak, warmup=warmup)
    print(
        f"new stage of {args.stage_steps} steps after {base_steps} base steps "
        f"(law {law.name!r}; forecasts of the LR effect only, see the docs)"
    )
    for plan in sorted(plans, key=lambda p: p.forecast.final_loss):
        f = plan.forecast
        print(f"  {plan.name:15s} final loss {f.final_loss:.4f} [{f.low:.4f}, {f.high:.4f}]")
    if args.output:
        data = {plan.name: plan.forecast.to_dict() for plan in plans}
        atomic_write_text(args.output, json.dumps(data, indent=2) + "\n")
        report_written(args.output)
    return 0
