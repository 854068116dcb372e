"""``lrlab watch`` and ``lrlab whatif``: forecasts of a run while it trains, and when to cool
down (docs/live.md)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import warnings
from typing import Any

from lrlab.cli.run_options import with_run_warnings
from lrlab.errors import LrlabError
from lrlab.laws import DEFAULT_SINGLE_LAW
from lrlab.runs.columns import parse_column_mapping

# What the table shows of each forecast; the what-ifs of a `--json` object are all there.
_HEADER = (
    f"{'step':>8} {'loss':>8}  {'final loss [band]':<27} {'best cooldown (gain)':<22} "
    f"{'1.5x':>8} {'2x':>8}"
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``watch`` and ``whatif`` sub-commands."""
    watch = subparsers.add_parser(
        "watch",
        help="follow a running job's log and forecast where the run ends",
        description="Follow a log as the job writes it (CSV/TSV/JSONL, W&B export, TensorBoard "
        "directory, wind-tunnel run folder), refit every K new points and print the forecast "
        "final loss with its band and the cooldown what-ifs.",
    )
    watch.add_argument("path", metavar="PATH", help="the log, TensorBoard directory or run folder")
    _common_options(watch)
    watch.add_argument("--every", type=int, default=5, help="refit every K new points (5)")
    watch.add_argument(
        "--idle",
        type=float,
        default=600.0,
        help="stop when the log has not grown for S seconds (600)",
    )
    watch.add_argument(
        "--poll", type=float, default=1.0, help="seconds between looks at the log (1)"
    )
    watch.add_argument("--once", action="store_true", help="print one forecast and exit")
    watch.add_argument(
        "--metric",
        choices=("eval", "train"),
        default="eval",
        help="for a wind-tunnel run folder: its eval.csv (default) or train.csv",
    )
    watch.set_defaults(handler=with_run_warnings(run_watch))

    whatif = subparsers.add_parser(
        "whatif",
        help="when to cool down: the forecast final loss for each cooldown start",
        description="Fit a law to a finished or partial log and forecast the final loss if the "
        "cooldown starts at each candidate step, and if the run is extended to 1.5x and 2x.",
    )
    whatif.add_argument("path", metavar="LOG", help="the log (any format `lrlab fit` reads)")
    _common_options(whatif)
    whatif.set_defaults(handler=with_run_warnings(run_whatif))


def _common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--schedule",
        metavar="SPEC",
        help="the planned schedule (default: the log's sidecar, else the logged LR held at its "
        "last value)",
    )
    parser.add_argument("--columns", help="column names, e.g. step=_step,loss=train/loss,lr=lr")
    parser.add_argument(
        "--total-steps", type=int, metavar="N", help="the run's budget (default: the schedule's)"
    )
    parser.add_argument(
        "--cooldown",
        metavar="SPEC",
        help="the what-ifs' decay: linear, 1-sqrt, cosine, exponential, or a wsd(...) spec or "
        "file (e.g. from lrlab optimize) whose decay shape, end and length are used",
    )
    parser.add_argument(
        "--law", default=DEFAULT_SINGLE_LAW, help=f"law to fit (default: {DEFAULT_SINGLE_LAW})"
    )
    parser.add_argument(
        "--reference",
        metavar="FIT.json",
        help="a fit of earlier runs (lrlab fit -o): hold its response to the LR, fit only the "
        "run's own power law",
    )
    parser.add_argument("--level", type=float, help="band level (default: the law's, 0.9)")
    parser.add_argument(
        "--max-band",
        type=float,
        default=0.2,
        help="give no forecast while the band is wider than this fraction of it (0.2)",
    )
    parser.add_argument(
        "--no-fallback",
        action="store_true",
        help="without --reference, give no forecast rather than fall back on a smaller law when "
        "the points cannot pin the law down",
    )
    parser.add_argument(
        "--prior",
        metavar="FILE|default",
        help="without --reference, how a decay the run has not begun lowers the loss: a decay "
        "prior file, or default: lrlab's, from three data sets (rough: docs/live.md); without "
        "it no forecast until the decay begins",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print JSON: watch one object a line per forecast, whatif one object",
    )
    parser.add_argument("--plot", metavar="FILE.png", help="keep a plot of the forecast here")


def _forecaster(args: argparse.Namespace, schedule: Any, total: int | None) -> Any:
    from lrlab.live.forecaster import LiveForecaster

    return LiveForecaster(
        total_steps=args.total_steps if args.total_steps is not None else total,
        schedule=schedule,
        law=args.law,
        reference=args.reference,
        cooldown=args.cooldown,
        level=args.level,
        max_band=args.max_band,
        fallback=() if args.no_fallback else None,
        prior=args.prior,
    )


def run_watch(args: argparse.Namespace) -> int:
    """``lrlab watch``: follow the log, print a row (or JSON object) per forecast."""
    from lrlab.live.follow import LogFollower, describe_wait
    from lrlab.live.watch import watch

    if args.every < 1:
        raise LrlabError(f"--every must be at least 1, got {args.every}")
    if args.idle <= 0 or args.poll <= 0:
        raise LrlabError("--idle and --poll must be positive")
    _check_plot(args.plot)
    columns = parse_column_mapping(args.columns)
    with LogFollower(
        args.path, schedule=args.schedule, columns=columns, metric=args.metric
    ) as follower:
        if not args.once and not follower.exists():
            say(describe_wait(follower.log))
            while not follower.exists():
                _sleep(args.poll)
        if args.once and not follower.exists():
            raise LrlabError(f"{follower.log}: no such file (yet)")
        forecaster = _forecaster(args, follower.schedule_spec(), follower.total_steps)
        printer = _Printer(args.json, args.plot)
        watch(
            follower,
            forecaster,
            printer.report,
            every=args.every,
            idle=args.idle,
            poll=args.poll,
            once=args.once,
            say=say,
        )
    return 0


def run_whatif(args: argparse.Namespace) -> int:
    """``lrlab whatif``: one forecast of a log, with every what-if listed."""
    from lrlab.live.background import json_safe
    from lrlab.live.follow import LogFollower
    from lrlab.live.watch import forecast_log

    _check_plot(args.plot)
    columns = parse_column_mapping(args.columns)
    with LogFollower(args.path, schedule=args.schedule, columns=columns) as follower:
        if not follower.exists():
            raise LrlabError(f"{follower.log}: no such file")
        run = follower.read()
        if run is None:
            raise LrlabError(f"{follower.log}: no complete data line yet")
        forecaster = _forecaster(args, follower.schedule_spec(), follower.total_steps)
        result = forecast_log(forecaster, follower, run)
    if args.json:
        print(json.dumps(json_safe(result.to_dict()), indent=2))
    else:
        _print_whatifs(result)
    if args.plot and result.status == "forecast":
        _plot(result, run, args.plot)
    return 0


def _check_plot(path: str | None) -> None:
    """A plot that cannot be written is said at the start, not at the first forecast (which may
    come hours into a run)."""
    if path:
        from lrlab.report.plots import check_figure_path

        check_figure_path(path)


def say(message: str) -> None:
    """A progress message on stderr (stdout stays for the forecasts)."""
    print(f"lrlab: {message}", file=sys.stderr, flush=True)


def _sleep(seconds: float) -> None:
    import time

    time.sleep(seconds)


class _Printer:
    """Prints each forecast as a table row (notes under it when they change) or a JSON line,
    and keeps the plot up to date."""

    def __init__(self, as_json: bool, plot: str | None) -> None:
        self.as_json, self.plot = as_json, plot
        self.header_done = False
        self.notes: tuple[str, ...] = ()
        self.run: Any = None

    def report(self, result: Any) -> None:
        from lrlab.live.background import json_safe

        if self.as_json:
            print(json.dumps(json_safe(result.to_dict())), flush=True)
        else:
            if not self.header_done:
                print(_HEADER)
                self.header_done = True
            print(_row(result), flush=True)
            for note in result.notes:
                if note not in self.notes:
                    print(f"  note: {note}", flush=True)
            self.notes = tuple(result.notes)
        if self.plot and result.status == "forecast":
            _plot(result, result.run, self.plot)


def _row(result: Any) -> str:
    from lrlab.live.whatif import EXTENSIONS, signed

    step = "-" if result.step is None else str(result.step)
    loss = "-" if result.loss is None else f"{result.loss:.4f}"
    start = f"{step:>8} {loss:>8}  "
    if result.status == "waiting":
        return start + f"waiting: {result.needed} more point(s) needed for a forecast"
    if result.status == "unstable":
        return start + "no forecast yet: the fit does not pin the final loss down"
    band = f"{result.final_loss:.4f} [{result.final_low:.4f}, {result.final_high:.4f}]"
    best = "-"
    if result.best is not None:
        # "~": a change the fit does not tell from none (its difference band includes 0).
        near = "" if result.best.separated else "~"
        best = f"{result.best.whatif.start} ({near}{signed(-result.best.gain)})"
    extended = {item.whatif.total: item for item in result.whatif if item.whatif.kind == "extend"}
    longer = [
        f"{extended[total].final_loss:>8.4f}" if total in extended else f"{'-':>8}"
        for total in (round(factor * result.total_steps) for factor in EXTENSIONS)
    ]
    return start + f"{band:<27} {best:<22} " + " ".join(longer)


def _print_whatifs(result: Any) -> None:
    from lrlab.live.whatif import signed

    print(result.message)
    for note in result.notes:
        print(f"  note: {note}")
    if result.status != "forecast":
        return
    planned = result.planned
    start = planned.whatif.start
    print(
        f"planned: {planned.whatif.label}, cooldown "
        f"{'none' if start is None else f'at {start}'}: {planned.final_loss:.4f} "
        f"[{planned.low:.4f}, {planned.high:.4f}]"
    )
    # A gain is a gain only where the band of the difference (same fit) excludes 0.
    print(f"{'what if':<44} {'final loss':>10} {'band':>19} {'gain [band of the gain]':>27}")
    for item in result.whatif:
        mark = " <- best" if result.best is not None and item is result.best else ""
        gain = signed(item.gain)
        if item.gain_low is not None and item.gain_high is not None:
            gain += f" [{signed(item.gain_low)}, {signed(item.gain_high)}]"
        if not item.separated:
            gain += " within uncertainty"
        print(
            f"{item.whatif.label:<44} {item.final_loss:>10.4f} "
            f"[{item.low:.4f}, {item.high:.4f}] {gain:>27}{mark}"
        )


def _plot(result: Any, run: Any, path: str) -> None:
    """The observed loss with the fit, and the planned and best-cooldown forecasts with their
    bands from the current step on, written atomically."""
    import numpy as np

    from lrlab.report.plots import LossCurve, plot_loss_curves

    law, total, now = result.law, result.total_steps, int(run.steps[-1])
    usable = np.cumsum(run.lr)[run.steps] > 0
    steps = run.steps[usable]
    grid = np.unique(np.linspace(now, total - 1, 200).round().astype(int))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        curves = [LossCurve("observed, fitted", steps, *law.predict_with_band(run.lr, steps))]
        curves[0] = dataclasses.replace(curves[0], loss=run.loss[usable])
        items = [("planned", result.planned.whatif)]
        if result.best is not None:
            items.append((f"cooldown at {result.best.whatif.start}", result.best.whatif))
        for name, item in items:
            curves.append(LossCurve(name, grid, *law.predict_with_band(item.lr, grid)))
    plot_loss_curves(curves, path, title=f"{law.name} forecast at step {now}")
