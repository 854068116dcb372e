"""Forecasts off the training thread, for the trainer callbacks (`lrlab.integrations`).

The training loop only appends ``(step, loss, lr)`` to a queue, which takes microseconds; a fit
takes a second or more and must not stall it. `BackgroundForecaster` runs the fits elsewhere:

- ``process`` (the default): a child Python process (``python -m lrlab.live.worker``) in a
  session of its own at a lower scheduling priority (`NICENESS`, `lower_priority`), fed through
  a pipe. A fit then holds neither the training thread's interpreter lock nor, on a busy
  machine, its CPU time. The other side of that: where every core is busy, the child gets about
  a tenth of a normal process's CPU share (Linux's scheduling weight at niceness 10), and
  forecasts lag; ``niceness=0`` gives the fits the training loop's priority.
- ``thread``: a daemon thread in the training process. No process to start, but a fit's Python
  code competes with the training loop for the interpreter lock.

Either way one fit runs at a time and only the latest request counts: points that arrive while a
fit runs are kept, and the next fit starts from all of them, so fits never queue up behind a fast
loop. And the fits rest between them: after a fit of t seconds the next starts no sooner than
t * (1 / `duty` - 1) seconds later (`DUTY`, a tenth of one core on average), unless `wait` asks
for one. A core kept busy without a break slowed a GPU training loop on another core of the same
machine by about 5% (BENCHMARKS.md, "Live forecasts on a GPU"); if that cost is in proportion to
the time the fits take (not measured), a tenth is half of the 1% that forecasts may cost a run. A
forecast every several seconds is fresh enough for a run that lasts hours. Each forecast is a
`LiveForecast.to_dict` object; it is also written, atomically, to `json_path` when one is given.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from lrlab.atomic import atomic_write_text
from lrlab.errors import LrlabError
from lrlab.live.forecaster import LiveForecaster
from lrlab.runs.model import Run
from lrlab.runs.per_step_lr import lr_from_logged, lr_from_schedule

MODES = ("process", "thread")
NICENESS = 10  # the fitting process yields the CPU to the training loop on a busy machine
DUTY = 0.1  # the most of one core's time the fits take on average (module docstring)
CLOSE_GRACE = 0.5  # seconds `close` gives a child in a fit, twice at most, before it stops it
THREAD_NAMES = ("lrlab-forecast-fitter", "lrlab-forecast-feeder", "lrlab-forecast-reader")


def json_safe(value: Any) -> Any:
    """NaN and infinities become null (JSON has none)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


class Session:
    """The points a run has logged and the forecaster that fits them (lives where fits run)."""

    def __init__(self, options: dict[str, Any], json_path: str | None = None) -> None:
        self.forecaster = LiveForecaster(**options)
        self.json_path = json_path
        self.points: dict[int, tuple[float, float]] = {}  # step -> (loss, lr); last one wins

    def add(self, steps: list[int], losses: list[float], lrs: list[float]) -> None:
        """Record logged points (a step logged again replaces the earlier value)."""
        for step, loss, lr in zip(steps, losses, lrs, strict=True):
            self.points[int(step)] = (float(loss), float(lr))

    def run(self) -> tuple[Run | None, list[str]]:
        """The run so far (finite losses, per-step LR from the schedule or the logged LR) and
        notes on what was left out; None while no finite loss has been logged."""
        notes: list[str] = []
        steps = np.array(sorted(self.points), dtype=np.int64)
        if steps.size == 0:
            return None, notes
        loss = np.array([self.points[s][0] for s in steps.tolist()])
        lr = np.array([self.points[s][1] for s in steps.tolist()])
        finite = np.isfinite(loss)
        if not np.all(finite):
            first = int(steps[~finite][0])
            notes.append(
                f"{np.count_nonzero(~finite)} NaN/inf loss value(s) since step {first} left out; "
                "forecasting from the finite points"
            )
        if not np.any(finite):
            return None, notes
        last = int(steps[finite][-1])
        schedule = self.forecaster.schedule
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if schedule is not None:
                per_step = lr_from_schedule(schedule, last, "schedule")
            else:
                known = np.isfinite(lr) & (lr >= 0)
                per_step = lr_from_logged(steps[known], lr[known], last, "logged lr")
        notes += [str(warning.message) for warning in caught]
        return Run("live", per_step, steps[finite], loss[finite], source="live"), notes

    def forecast(self) -> dict[str, Any] | None:
        """Fit and forecast the run so far (written to `json_path` too); None without points."""
        run, notes = self.run()
        if run is None:
            return None
        try:
            result = json_safe(self.forecaster.forecast(run, notes).to_dict())
        except LrlabError as error:
            result = {"status": "error", "error": str(error), "step": int(run.steps[-1])}
        if self.json_path:
            atomic_write_text(self.json_path, json.dumps(result, indent=2) + "\n")
        return result


class BackgroundForecaster:
    """Forecasts of a growing run computed in a child process or a thread (module docstring).

    `options` are `LiveForecaster`'s keyword arguments (plain data: a schedule as a spec, a
    reference fit as a path, so that they reach a child process). `niceness`: how much lower
    the child process's scheduling priority is than the caller's (0-19, process mode). `duty`
    (0 < duty <= 1): the most of one core's time the fits take on average; 1 fits again as soon
    as a fit ends. `submit` hands over new points and asks for a fit; `latest` is the newest
    forecast; `wait` blocks until the fits asked for are done (it starts the next fit at once).
    """

    def __init__(
        self,
        options: dict[str, Any],
        *,
        mode: str = "process",
        json_path: str | Path | None = None,
        niceness: int = NICENESS,
        duty: float = DUTY,
    ) -> None:
        if mode not in MODES:
            raise LrlabError(f"background mode must be one of {', '.join(MODES)}, got {mode!r}")
        if not (isinstance(niceness, int) and 0 <= niceness <= 19):
            raise LrlabError(f"niceness must be an integer from 0 to 19, got {niceness!r}")
        if not (isinstance(duty, int | float) and 0 < duty <= 1):
            raise LrlabError(f"duty must be a number above 0 and at most 1, got {duty!r}")
        LiveForecaster(**options)  # bad options fail here, in the caller, not in the background
        self.mode = mode
        self.duty = float(duty)
        self._latest: dict[str, Any] | None = None
        self._asked = 0
        self._done = 0
        self._changed = threading.Condition()
        self._inbox: queue.Queue[tuple[Any, ...]] = queue.Queue()
        path = None if json_path is None else str(json_path)
        if mode == "thread":
            self._session = Session(options, path)
            name = THREAD_NAMES[0]
        else:
            self._child = subprocess.Popen(
                [sys.executable, "-m", "lrlab.live.worker", str(niceness)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                start_new_session=True,  # its own autogroup: see `lower_priority`
            )
            self._send(("init", options, path))
            name = THREAD_NAMES[1]
            self._reader = threading.Thread(
                target=self._read_child, name=THREAD_NAMES[2], daemon=True
            )
            self._reader.start()
        self._worker = threading.Thread(target=self._pace_fits, name=name, daemon=True)
        self._worker.start()

    def submit(self, steps: list[int], losses: list[float], lrs: list[float]) -> None:
        """Hand over new points and ask for a forecast (returns at once)."""
        with self._changed:
            # The request's number travels with its points, so that an answer counts exactly
            # the requests whose points it fitted. (Counted here and read by the fitter later,
            # the count could include a request still on its way to the queue, and `wait`
            # would return the forecast of fewer points than were handed over.)
            self._asked += 1
            self._inbox.put(("points", self._asked, steps, losses, lrs))

    def latest(self) -> dict[str, Any] | None:
        """The newest forecast (None before the first)."""
        with self._changed:
            return self._latest

    def wait(self, timeout: float | None = None) -> dict[str, Any] | None:
        """Block until every fit asked for so far is done (or `timeout` seconds); the newest
        forecast. The next fit starts without its rest."""
        self._inbox.put(("hurry",))
        with self._changed:
            self._changed.wait_for(lambda: self._done >= self._asked, timeout)
            return self._latest

    def close(self, grace: float = CLOSE_GRACE) -> None:
        """Stop the fitter, within about `grace` seconds (a trainer must not hang at its end).

        Process mode: the child is asked to stop; one still in a fit after `grace` seconds is
        terminated (SIGTERM: the fit is abandoned, and a forecast file it was writing is not
        left half-written, `atomic_write`), then killed with its own forked workers (its process
        group) if it has not exited `grace` seconds later. The child is reaped either way: no
        zombie is left. `json_path` keeps the last forecast written in full. Thread mode: the
        thread is asked to stop and not waited for (a daemon, it ends with the process; a fit in
        progress may still write its forecast).
        """
        self._inbox.put(("stop",))
        if self.mode != "process":
            return
        child, deadline = self._child, time.monotonic() + grace
        self._worker.join(timeout=grace)  # the feeder forwards the stop
        try:
            child.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.terminate()
            try:
                child.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                # Still unreaped, so its process group's id cannot have been reused.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        # The child is gone: the feeder's writes fail and the reader meets the end of its pipe.
        for thread, stream in ((self._worker, child.stdin), (self._reader, child.stdout)):
            thread.join(timeout=grace)
            if stream is not None and not thread.is_alive():  # closing waits for a user
                with contextlib.suppress(OSError):
                    stream.close()

    def _publish(self, result: dict[str, Any] | None, answered: int) -> None:
        with self._changed:
            if result is not None:
                self._latest = result
            self._done = max(self._done, answered)
            self._changed.notify_all()

    def _pace_fits(self) -> None:
        """The fitter's loop (both modes): one fit at a time, from every point handed over
        since the last, each after the rest that `duty` asks for (module docstring)."""
        pending: list[tuple[Any, ...]] = []
        busy = hurry = False
        began = ready = 0.0
        while True:
            waiting = busy or not pending or hurry
            timeout = None if waiting else max(0.0, ready - time.monotonic())
            try:
                item = self._inbox.get(timeout=timeout)
            except queue.Empty:
                item = ("rested",)
            if item[0] == "stop":
                if self.mode == "process":
                    with contextlib.suppress(BrokenPipeError, OSError):
                        self._send(("stop",))
                return
            if item[0] == "points":
                pending.append(item)
            elif item[0] == "hurry":
                hurry = True
            elif item[0] == "answered":
                busy = False
                ready = began + (time.monotonic() - began) / self.duty
            if pending and not busy and (hurry or time.monotonic() >= ready):
                answered = pending[-1][1]
                steps, losses, lrs = ([v for p in pending for v in p[i]] for i in (2, 3, 4))
                pending, busy, hurry, began = [], True, False, time.monotonic()
                if not self._start_fit(answered, steps, losses, lrs):
                    return

    def _start_fit(
        self, answered: int, steps: list[int], losses: list[float], lrs: list[float]
    ) -> bool:
        """Fit the points (thread mode) or hand them to the child; its end comes back to
        `_pace_fits` as an ``answered`` item. False when the child is gone."""
        if self.mode == "thread":
            self._session.add(steps, losses, lrs)
            self._publish(self._session.forecast(), answered)
            self._inbox.put(("answered",))
            return True
        try:
            self._send(("fit", answered, steps, losses, lrs))
        except (BrokenPipeError, OSError):  # the child is gone: nothing more will come
            self._publish(None, 1 << 62)
            return False
        return True

    def _send(self, message: tuple[Any, ...]) -> None:
        assert self._child.stdin is not None
        pickle.dump(message, self._child.stdin)
        self._child.stdin.flush()

    def _read_child(self) -> None:
        stream = self._child.stdout
        assert stream is not None
        while True:
            try:
                answered, result = pickle.load(stream)
            except (EOFError, OSError, pickle.UnpicklingError):
                self._publish(None, 1 << 62)  # unblock `wait`: no more answers
                # The pacer's next hand-over then meets the closed pipe and stops, rather than
                # keeping the points for a fit that will never come.
                self._inbox.put(("answered",))
                return
            self._publish(result, answered)
            self._inbox.put(("answered",))


def autogroup_nice(pid: int | str = "self") -> int | None:
    """The niceness of Linux's autogroup of process `pid` (None where there are none)."""
    try:
        return int(Path(f"/proc/{pid}/autogroup").read_text().split()[-1])
    except (OSError, ValueError, IndexError):
        return None


def lower_priority(niceness: int) -> None:
    """Lower this process's scheduling priority by `niceness` (the fitting child, at its start).

    Where Linux groups processes by session (its "autogroups", ``CONFIG_SCHED_AUTOGROUP``, as on
    this project's machine), the CPU is shared fairly between the groups first and by niceness
    only within one: a niced child in its parent's group takes its CPU time from the training
    loop, and not from the rest of the machine (measured: +19% step time on a busy two-core
    machine, BENCHMARKS.md). So the child starts its own session (`BackgroundForecaster`), and
    gives its own group the niceness too, relative to its parent's group.
    """
    if not hasattr(os, "nice"):
        return
    if niceness:
        os.nice(niceness)
    parent = autogroup_nice(os.getppid())
    # Only a session leader has a group of its own; any other would lower its parent's group.
    if parent is None or autogroup_nice() is None or os.getsid(0) != os.getpid():
        return
    target = min(19, parent + niceness)
    for _ in range(20):
        if autogroup_nice() == target:
            return
        try:
            Path("/proc/self/autogroup").write_text(str(target))
        except BlockingIOError:  # one change per 0.1 s on the whole machine: try again
            time.sleep(0.1)
        except OSError:  # not allowed here: the process's own niceness still applies
            return


def serve(incoming: BinaryIO, outgoing: BinaryIO) -> None:
    """The child's loop: ``init``, then ``fit`` messages with new points, until ``stop``."""
    session: Session | None = None
    while True:
        try:
            message = pickle.load(incoming)
        except EOFError:
            return
        if message[0] == "stop":
            return
        if message[0] == "init":
            session = Session(message[1], message[2])
            continue
        assert session is not None and message[0] == "fit"
        _, answered, steps, losses, lrs = message
        session.add(steps, losses, lrs)
        pickle.dump((answered, session.forecast()), outgoing)
        outgoing.flush()
