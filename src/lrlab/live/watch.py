"""The loop of ``lrlab watch``: follow a log, refit every few new points, report each forecast.

`watch` polls a `LogFollower` every `poll` seconds. It refits (a `LiveForecaster`) when the log
first has points and then whenever `every` points beyond the last fitted step have arrived, and
hands each `LiveForecast` to `report`. It returns when the run reaches its total steps, or when
the log has not grown for `idle` seconds, after a last forecast of any points not yet fitted.
While the log does not exist, it says so once (`say`) and waits for it, without a time limit;
a log that goes away after it appeared (deleted, or rotated away) counts as not growing.
With `once`, it reads the log once, reports one forecast and returns (a missing log is then an
error).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from lrlab.errors import LrlabError
from lrlab.live.follow import LogFollower, describe_wait
from lrlab.live.forecaster import LiveForecast, LiveForecaster
from lrlab.runs.model import Run


def waiting_forecast(forecaster: LiveForecaster) -> LiveForecast:
    """The report of a log with no complete data line yet."""
    return LiveForecast(
        step=None,
        loss=None,
        points=0,
        total_steps=forecaster.total_steps,
        law_name=forecaster.law.name,
        status="waiting",
        needed=forecaster.min_points,
    )


def watch(
    follower: LogFollower,
    forecaster: LiveForecaster,
    report: Callable[[LiveForecast], None],
    *,
    every: int = 5,
    idle: float = 60.0,
    poll: float = 1.0,
    once: bool = False,
    say: Callable[[str], None] = lambda message: None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> LiveForecast | None:
    """Follow the log and report forecasts (module docstring); returns the last one."""
    if every < 1:
        raise LrlabError(f"--every must be at least 1, got {every}")
    if idle <= 0 or poll <= 0:
        raise LrlabError("--idle and the poll interval must be positive")
    if once:
        if not follower.exists():
            raise LrlabError(f"{follower.log}: no such file (yet)")
        run = follower.read()
        result = (
            waiting_forecast(forecaster) if run is None else forecast_log(forecaster, follower, run)
        )
        report(result)
        return result
    last: LiveForecast | None = None
    fitted_step: int | None = None
    latest: Run | None = None
    announced = False
    grew_at: float | None = None
    while True:
        if not follower.exists():
            if grew_at is None:  # not there yet: wait for the job to write it, however long
                if not announced:
                    say(describe_wait(follower.log))
                    announced = True
            else:  # gone after it appeared (deleted, or rotated away): it has stopped growing
                if not announced:
                    say(f"{follower.log} has gone; waiting for it to come back")
                    announced = True
                if clock() - grew_at >= idle:
                    say(f"{follower.log} has not grown for {idle:g} s; stopping")
                    return last
            sleep(poll)
            continue
        announced = False
        grew_at = clock() if grew_at is None else grew_at
        run = follower.read()
        if run is not None:
            grew_at = clock()
            latest = run
        finished = latest is not None and int(latest.steps[-1]) >= forecaster.total_steps - 1
        stopping = finished or clock() - grew_at >= idle
        if latest is not None:
            fresh = latest.steps.size if fitted_step is None else np.sum(latest.steps > fitted_step)
            # The first points, every `every` new ones, and whatever is new at the end.
            if fresh >= every or (fresh and (stopping or fitted_step is None)):
                last = forecast_log(forecaster, follower, latest)
                fitted_step = int(latest.steps[-1])
                report(last)
        if finished:
            say(f"the run reached its total of {forecaster.total_steps} steps")
            return last
        if stopping:
            say(f"{follower.log} has not grown for {idle:g} s; stopping")
            return last
        sleep(poll)


def forecast_log(forecaster: LiveForecaster, follower: LogFollower, run: Run) -> LiveForecast:
    """The forecast of the run `follower` read; a log past the run's total steps is an error (a
    wrong budget: there is no final loss left to forecast). A log that ends at the total itself
    is not: a Trainer logs its last step as its step count."""
    last = int(run.steps[-1])
    if last > forecaster.total_steps:
        raise LrlabError(
            f"{follower.log}: the log reaches step {last}, past the run's total of "
            f"{forecaster.total_steps} steps; give the run's budget with --total-steps"
        )
    return forecaster.forecast(run, follower.notes)
