"""Runs as tasks of a Ray cluster: the ``ray`` backend of `lrlab.tunnel.pool` (``lrlab[ray]``).

Ray places each task on a node where the CPUs and GPUs it asks for are free, and runs as many at
once as the cluster holds; lrlab schedules nothing itself. A task whose worker process or node
dies is run again, at most `MAX_RETRIES` times (Ray's ``max_retries``); the pool's task resumes
its run from its last checkpoint, so a retry continues the run. An exception the task raises
(a bad config, say) is not retried: it reaches the caller as the task raised it.

Without an address the tasks run on the cluster ``$RAY_ADDRESS`` names (as every Ray program
does, e.g. under ``ray job submit``), else on a Ray instance started here for the pool's time
with this machine's usable cores (`lrlab.tunnel.threads.usable_cores`). A caller that already
called ``ray.init`` (a program, a test) keeps its session.

Every node must see the run folders at the same path (docs/cluster.md) and import the same
lrlab: a task runs the pool's function by reference, in the working folder of the process that
submitted it where the node has that folder, so relative paths in run configs mean the same.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import socket
import sys
from collections.abc import Callable, Iterator, Sequence
from types import ModuleType
from typing import Any

from lrlab.errors import LrlabError
from lrlab.tunnel.threads import usable_cores

# Bounded: a run that kills its worker every time (out of memory, say) is given up after this
# many retries, and reported.
MAX_RETRIES = 3
# ray.wait returns this often, so that Ctrl-C is seen while tasks run.
WAIT_S = 1.0
# How long a cluster's address may take to answer before it is called unreachable.
REACH_S = 10.0


@dataclasses.dataclass(frozen=True)
class Call:
    """One task: the argument of the function and the resources it reserves."""

    argument: Any
    num_cpus: float
    num_gpus: float


@dataclasses.dataclass(frozen=True)
class Lost:
    """A task Ray gave up on: its worker or node died (or its result was lost) on every try;
    `reason` says how."""

    reason: str


def require_ray() -> ModuleType:
    """The ``ray`` module, or an `LrlabError` saying how to install it. Imported with Ray's log
    deduplication off (unless ``RAY_DEDUP_LOGS`` says otherwise; Ray reads it on import): it
    compares lines without their numbers, so it would fold the progress lines of runs whose
    folders differ by a seed or a peak LR into one."""
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    try:
        import ray
    except ModuleNotFoundError:
        raise LrlabError("the ray backend needs Ray: pip install 'lrlab[ray]'") from None
    return ray


@contextlib.contextmanager
def connect(address: str | None) -> Iterator[ModuleType]:
    """A Ray session for the time of the block (see the module's doc for `address`); yields
    the ``ray`` module."""
    ray = require_ray()
    if ray.is_initialized():  # the caller's session: theirs to end
        yield ray
        return
    target = address or os.environ.get("RAY_ADDRESS") or "local"
    check_reachable(target)
    if not sys.stderr.isatty():  # the tasks' lines as they are, without colour codes, in a log
        os.environ.setdefault("RAY_COLOR_PREFIX", "0")
    options: dict[str, Any] = {"logging_level": logging.WARNING}
    if target == "local":
        options.update(num_cpus=usable_cores().count, include_dashboard=False)
    try:
        ray.init(address=target, **options)
    except (ConnectionError, ValueError, RuntimeError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if target == "local":
            raise LrlabError(f"cannot start a local Ray instance ({first})") from None
        raise LrlabError(f"Ray cluster at {target}: cannot connect ({first})") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def check_reachable(address: str) -> None:
    """An `LrlabError` at once when nothing answers at a ``HOST:PORT`` (or ``ray://HOST:PORT``)
    address: Ray itself would retry for many minutes. Other forms (``auto``) are Ray's to
    resolve."""
    match = re.fullmatch(r"(?:ray://)?\[?([^\[\]/]+?)\]?:(\d+)", address)
    if match is None:
        return
    try:
        with socket.create_connection((match[1], int(match[2])), timeout=REACH_S):
            pass
    except OSError as error:
        reason = error.strerror or str(error) or type(error).__name__
        raise LrlabError(
            f"Ray cluster at {address}: nothing answers there ({reason}); is `ray start --head` "
            "running there, and the port open to this machine?"
        ) from None


def run_tasks(
    function: Callable[[Any], Any],
    calls: Sequence[Call],
    *,
    address: str | None,
    names: Sequence[str],
) -> Iterator[tuple[int, Any]]:
    """Run ``function(call.argument)`` for every call as a Ray task named by `names` (a
    module-level function: nodes import it) and yield ``(index of the call, result)`` as each
    ends; the result is a `Lost` for a task whose worker died more than `MAX_RETRIES` times.
    An exception the function raised is raised here (the other tasks are cancelled)."""
    with connect(address) as ray:
        remote = ray.remote(_run_in)
        # A task that reserves no GPU must not use one (else every such task of a node lands on
        # its first GPU, unaccounted): it sees none, where the cluster has any.
        hide_gpus = {"env_vars": {"CUDA_VISIBLE_DEVICES": ""}}
        has_gpus = ray.cluster_resources().get("GPU", 0) > 0
        cwd = os.getcwd()
        refs = {}
        for index, (call, name) in enumerate(zip(calls, names, strict=True)):
            options: dict[str, Any] = {
                "num_cpus": call.num_cpus,
                "num_gpus": call.num_gpus,
                "max_retries": MAX_RETRIES,
                "retry_exceptions": False,
                "name": name,
            }
            if has_gpus and not call.num_gpus:
                options["runtime_env"] = hide_gpus
            refs[remote.options(**options).remote(cwd, function, call.argument)] = index
        pending = list(refs)
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1, timeout=WAIT_S)
                for ref in ready:
                    yield refs[ref], _result(ray, ref)
        finally:
            for ref in pending:  # on an error or Ctrl-C: a cluster would run them on
                ray.cancel(ref, force=True)


def _result(ray: ModuleType, ref: Any) -> Any:
    """A task's return value, its own exception raised, or `Lost`."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as error:  # the function raised: not retried
        cause = error.cause
        if isinstance(cause, Exception):
            raise cause from None
        raise
    except ray.exceptions.RayError as error:  # the worker or node died on every try
        text = str(error).strip()
        first = text.splitlines()[0] if text else ""
        return Lost(
            f"Ray gave up on it after {MAX_RETRIES} retries ({type(error).__name__}: {first})"
        )


def _run_in(cwd: str, function: Callable[[Any], Any], argument: Any) -> Any:
    """A task: ``function(argument)`` in the submitter's working folder `cwd`, where this node has
    it."""
    if os.path.isdir(cwd):
        os.chdir(cwd)
    return function(argument)
