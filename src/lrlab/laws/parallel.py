"""Independent pieces of a fit side by side, in forked worker processes.

A fit's refits (the multi-start scouts, the jackknife replicates, the band-growth calibration) and
`auto`'s member fits do not depend on each other, and each takes a fraction of a second to
seconds of one core; a least-squares fit on a few hundred points does not share out over threads
(`lrlab.laws.base.robust_least_squares` keeps BLAS at one thread). `fork_map` runs them in
processes forked from this one (all but the last piece, which this process runs itself rather
than wait), so a worker starts with every module and array of the caller already in memory (no
import, no pickling of the runs), frozen out of the garbage collector's reach (`gc.freeze`, so
that the worker's collections do not copy the caller's pages): 0.05-0.1 s of CPU a worker on this
project's VM (`worth_forking`), against the 0.05-2 s a refit of a long curve takes. Each worker's
result, and any warning it raised, is pickled back, so the result is the serial one to the bit:
each piece is computed by the same code on the same inputs.

It falls back to running the pieces in order, in this process, where forking is unavailable or
unsafe: no ``os.fork`` (Windows), other threads running (`threads_elsewhere`: a fork copies
only the calling thread, so a lock another thread holds would never be released in the child;
JAX or torch imported counts, as their threads are not Python's), one usable core,
or ``LRLAB_FIT_WORKERS=1``. That variable (a whole number >= 1) sets the number of workers busy
at once; by default it is the number of cores this process may run on. A worker may keep busy
its share of them (so with 16 cores each of `auto`'s three member fits has 5 for its own refits;
with 2, none: it fits serially).
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import select
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from lrlab.errors import LrlabError

Item = TypeVar("Item")
Result = TypeVar("Result")

WORKERS_VARIABLE = "LRLAB_FIT_WORKERS"
_budget: int | None = None  # in a forked worker: how many workers it may keep busy itself
_WORTH_SECONDS = 0.5


# Runtimes that run threads of their own, which `threading` does not list: JAX's (it warns that a
# fork after it may deadlock) and torch's intra-op pool (a study trains and fits in one process).
_THREADED_RUNTIMES = ("jax", "torch")


def threads_elsewhere() -> bool:
    """Whether threads other than this one may be running: other Python threads, or a runtime in
    `_THREADED_RUNTIMES` imported. A fork copies only the calling thread, so a lock another thread
    holds would never be released in the worker."""
    return threading.active_count() > 1 or any(name in sys.modules for name in _THREADED_RUNTIMES)


def worker_count() -> int:
    """How many workers `fork_map` keeps busy at once (1: none, the items run in this process)."""
    if _budget is not None:
        return _budget
    value = os.environ.get(WORKERS_VARIABLE, "").strip()
    if value and (not value.isdigit() or int(value) < 1):  # wrong whether or not it is used
        raise LrlabError(f"{WORKERS_VARIABLE}={value!r}: expected a whole number >= 1")
    if not hasattr(os, "fork") or threads_elsewhere():
        return 1
    if value:
        return int(value)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity on this platform (macOS)
        return os.cpu_count() or 1


def worth_forking(seconds_each: float) -> bool:
    """Whether items that take about `seconds_each` CPU seconds each are worth a worker process
    each. A worker costs its fork and the page faults of the memory it shares with this process,
    both its own and this process's until it ends: 8000 and 3800 faults, 0.2 s of CPU in all, for
    the three scouts of lrlab's point fit on the 100M curves on this project's VM. On the quiet
    VM, workers for a fit's scouts and band refits on the three 400M runs (items of 0.05-1.2 s)
    saved under 0.1 s of wall time and cost 0.9 s of CPU (BENCHMARKS.md, "Fit speed: `auto`'s
    members side by side"), so only items of half a second and more get one."""
    return seconds_each >= _WORTH_SECONDS


def fork_map(
    function: Callable[[Item], Result],
    items: Sequence[Item],
    all_at_once: bool = False,
    parallel: bool = True,
) -> list[Result]:
    """``[function(item) for item in items]``, the items shared out among up to `worker_count`
    workers at once, or with `all_at_once` (for a few items of unequal length, which the
    system's scheduler shares out over the cores better than waiting for a free one would) one
    worker per item whenever `worker_count` is above 1; in this process, in order, where
    `parallel` is False. Every worker but one is forked; the last item runs in this process, in
    the place of a worker, once the others have started (a fork and its page faults saved, and
    this process would only wait). The results come in the order of `items`. An exception
    raised by `function` in a worker is raised here (the first item's, in order); warnings a
    worker raised are raised again here, in the order of the items."""
    available = worker_count()
    workers = min(available, len(items)) if parallel else 1
    if all_at_once and workers > 1:
        workers = len(items)
    if workers <= 1:
        return [function(item) for item in items]
    share = max(1, available // workers)  # what each worker may keep busy itself
    results: dict[int, tuple[bool, Any, list[tuple[str, type[Warning]]]]] = {}
    running: dict[int, tuple[int, int]] = {}  # item index -> (pid, read end of its pipe)
    last = len(items) - 1
    try:
        for index, item in enumerate(items):
            while len(running) >= workers:  # wait for a worker to finish
                for done in _finished(running):
                    results[done] = _collect(*running.pop(done))
            if index < last:
                running[index] = _start(function, item, share)
            else:  # in a worker's place: this process would only wait, and a fork costs CPU
                results[index] = _run_here(function, item, share)
        while running:
            done = next(iter(running))
            results[done] = _collect(*running.pop(done))
    finally:
        for pid, pipe in running.values():  # interrupted: no worker outlives the call
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            os.close(pipe)
    out = []
    for index in range(len(items)):
        ok, value, caught = results[index]
        for message, category in caught:
            warnings.warn(message, category, stacklevel=2)
        if not ok:
            raise value
        out.append(value)
    return out


def _run(
    function: Callable[[Item], Result], item: Item
) -> tuple[bool, Any, list[tuple[str, type[Warning]]]]:
    """``(True, result, warnings)`` of ``function(item)``, or ``(False, exception, warnings)``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            outcome: tuple[bool, Any] = (True, function(item))
        except Exception as error:  # noqa: BLE001 - raised again in the caller, in order
            outcome = (False, error)
    return (*outcome, [(str(w.message), w.category) for w in caught])


def _run_here(
    function: Callable[[Item], Result], item: Item, budget: int
) -> tuple[bool, Any, list[tuple[str, type[Warning]]]]:
    """`_run` in this process, keeping up to `budget` workers of its own busy: a forked worker's
    piece, or the caller's own in a worker's place."""
    global _budget
    before = _budget
    _budget = budget
    try:
        return _run(function, item)
    finally:
        _budget = before


def _start(function: Callable[[Item], Result], item: Item, budget: int) -> tuple[int, int]:
    """Fork a worker that computes ``function(item)`` (keeping up to `budget` workers of its own
    busy) and writes `_run`'s outcome, pickled, to a pipe: its pid and the pipe's read end.

    The caller's objects are frozen out of the garbage collector's reach across the fork (the
    `gc` module's advice for a fork without exec): a collection in the worker would otherwise
    write to every object the caller had, and so copy each page of them into the worker."""
    read, write = os.pipe()
    gc.freeze()
    try:
        pid = os.fork()
    except OSError:
        gc.unfreeze()
        raise
    if pid == 0:  # the worker: never returns, never runs the caller's exit handlers
        status = 1
        try:
            os.close(read)
            outcome = _run_here(function, item, budget)
            try:
                data = pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception as error:  # noqa: BLE001 - an unpicklable result: say so
                failure = RuntimeError(f"a fit worker's result could not be sent back: {error}")
                data = pickle.dumps((False, failure, outcome[2]))
            with os.fdopen(write, "wb") as pipe:
                pipe.write(data)
            status = 0
        finally:
            os._exit(status)
    gc.unfreeze()  # the caller collects its own objects again; the worker keeps them frozen
    os.close(write)
    return pid, read


def _finished(running: dict[int, tuple[int, int]]) -> list[int]:
    """The items whose workers have begun to write their outcome (their pipes readable), once
    there is one."""
    pipes = {pipe: index for index, (_, pipe) in running.items()}
    ready, _, _ = select.select(list(pipes), [], [])
    return [pipes[pipe] for pipe in ready]


def _collect(pid: int, pipe: int) -> tuple[bool, Any, list[tuple[str, type[Warning]]]]:
    """The outcome a worker wrote (all of it read before waiting, so that a result larger than
    the pipe's buffer cannot block the worker)."""
    with os.fdopen(pipe, "rb") as stream:
        data = stream.read()
    _, status = os.waitpid(pid, 0)
    if not data:
        raise LrlabError(f"a fit worker (pid {pid}) ended without a result (status {status})")
    return pickle.loads(data)
