"""Independent wind-tunnel runs trained at once: the pool behind `lrlab sweep` and the study.

A pool trains its runs on a `Backend`:

- ``local`` (the default, no extra needed): each run trains in its own process
  (``multiprocessing`` spawn context), told how many runs are in flight so that it picks its
  thread count for its share of the cores (`lrlab.tunnel.threads`). With one worker, or one run,
  the runs train one after the other in this process.
- ``ray``: each run is a task of a Ray cluster (`lrlab.tunnel.ray_backend`), placed where its
  `Resources` are free; a task whose worker dies is retried.

On both, every run is resumed when its folder holds one (`lrlab.tunnel.train.train`), so a pool
that was interrupted, or a run whose worker died, continues where it stopped; and both write the
same files, in the folders the jobs name. While a pool trains, a line every few seconds says how
many runs are done, running, failed and waiting, and the time left (`PoolProgress`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from lrlab.errors import LrlabError, brief
from lrlab.locks import LOCK_NAME
from lrlab.tunnel.config import config_from_dict

BACKENDS = ("local", "ray")
# The first progress line comes after this long; later ones every 5% of the time so far (a long
# pool's log stays short), at most a minute apart.
PROGRESS_EVERY_S = 5.0
PROGRESS_AT_MOST_S = 60.0


@dataclasses.dataclass(frozen=True)
class Resources:
    """What one run reserves on a Ray cluster: CPUs (also its thread count, unless its config
    sets ``train.threads``) and GPUs (a fraction shares one). None: from the run's config
    (`resources_for`)."""

    num_cpus: float | None = None
    num_gpus: float | None = None


RESOURCE_FIELDS = ("num_cpus", "num_gpus")


@dataclasses.dataclass(frozen=True)
class Job:
    """One run of a pool: its name (in messages and errors), run config mapping and folder, and
    the resources it asks for on Ray (None: from its config, `resources_for`)."""

    name: str
    config: dict[str, Any]
    folder: Path
    resources: Resources | None = None


@dataclasses.dataclass(frozen=True)
class Backend:
    """Where a pool's runs train: ``local`` (processes of this machine) or ``ray`` (tasks of the
    Ray cluster at `address`; None: ``$RAY_ADDRESS``, else a Ray instance started here)."""

    name: str = "local"
    address: str | None = None

    def __post_init__(self) -> None:
        if self.name not in BACKENDS:
            raise LrlabError(f"backend {self.name!r}: choose one of {', '.join(BACKENDS)}")
        if self.address is not None and self.name != "ray":
            raise LrlabError("a Ray address needs the ray backend (--backend ray)")


def parse_resources(value: Any, source: str) -> Resources | None:
    """The ``resources`` field of a sweep file (``{num_cpus, num_gpus}``, each optional), or None
    when absent; a field of the wrong kind is an `LrlabError` naming it."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise LrlabError(
            f"{source}: resources={brief(value)} must be a mapping (num_cpus, num_gpus)"
        )
    for key in value:
        if key not in RESOURCE_FIELDS:
            raise LrlabError(
                f"{source}: unknown field resources.{key} (fields: {', '.join(RESOURCE_FIELDS)})"
            )
    numbers = {}
    for key in RESOURCE_FIELDS:
        number = value.get(key)
        if number is None:
            continue
        positive = key == "num_cpus"  # a run reserving no CPU would crowd a node without end
        if (
            isinstance(number, bool)
            or not isinstance(number, (int, float))
            or not math.isfinite(number)
            or not (number > 0 if positive else number >= 0)
        ):
            bound = "> 0" if positive else ">= 0"
            raise LrlabError(f"{source}: resources.{key}={number!r} must be a number {bound}")
        numbers[key] = float(number)
    return Resources(**numbers)


def resources_for(job: Job) -> tuple[float, float]:
    """The CPUs and GPUs `job` reserves on Ray: those it gives, and for a field it leaves out its
    config's ``train.threads`` CPUs (one when unset) and one GPU when its ``train.device`` is
    ``cuda``/``cuda:N`` (none otherwise: a run that reserved no GPU trains on the CPU)."""
    train = config_from_dict(job.config, job.name).train
    given = job.resources or Resources()
    cpus = given.num_cpus if given.num_cpus is not None else float(train.threads or 1)
    gpus = given.num_gpus
    if gpus is None:
        gpus = 1.0 if train.device.startswith("cuda") else 0.0
    return cpus, gpus


def train_jobs(
    jobs: Sequence[Job],
    workers: int,
    *,
    keep_going: bool = False,
    backend: Backend | None = None,
    log: Callable[[str], None] | None = None,
    every: float = PROGRESS_EVERY_S,
) -> Iterator[dict[str, Any]]:
    """Train (or resume) every job and yield each one's outcome as it ends:
    ``{"name", "status", "record"}``. On the local backend `workers` train at once; on Ray, as
    many as the cluster's resources hold. A run that raises stops the pool with its error, unless
    `keep_going`, where its outcome is ``{"name", "status": "failed", "error"}``. With `log`, a
    progress line (`PoolProgress`) every few seconds (first after `every`)."""
    backend = backend or Backend()
    if not keep_going:
        for job in jobs:
            config_from_dict(job.config, job.name)  # a bad config fails before anything trains
    if not jobs:
        return
    in_flight = max(1, min(workers, len(jobs)))
    here = backend.name == "local" and in_flight == 1
    # A lone run trained here shows its own progress: the pool's line would say less.
    own = (jobs[0].config.get("train") or {}).get("progress") != "off"
    silent = here and len(jobs) == 1 and own
    progress = PoolProgress(jobs, log if log is not None and not silent else None, every)
    with progress.ticking():
        if backend.name == "ray":
            outcomes = _on_ray(jobs, backend.address, keep_going)
        elif here:
            outcomes = map(_train_job, [_Task(job, 1, keep_going, False) for job in jobs])
        else:
            outcomes = _on_local_pool(jobs, in_flight, keep_going)
        for outcome in outcomes:
            progress.ended(outcome)
            yield outcome


def _on_local_pool(
    jobs: Sequence[Job], in_flight: int, keep_going: bool
) -> Iterator[dict[str, Any]]:
    _prepare_data(jobs)
    # Ctrl-C reaches every process of the terminal's group: the workers ignore it (from their
    # start, the setting inherited), so only this process stops, leaving the pool's exit to end
    # them, with no traceback from each; their runs resume from their checkpoints.
    with _sigint_ignored():
        pool = multiprocessing.get_context("spawn").Pool(in_flight, initializer=_ignore_sigint)
    tasks = [_Task(job, in_flight, keep_going, True) for job in jobs]
    with pool:
        yield from pool.imap_unordered(_train_job, tasks)


def _on_ray(jobs: Sequence[Job], address: str | None, keep_going: bool) -> Iterator[dict[str, Any]]:
    from lrlab.tunnel import ray_backend

    calls = []
    for job in jobs:
        cpus, gpus = resources_for(job)
        # Absolute: a node runs the task in this folder only where it has it (ray_backend).
        task = _Task(dataclasses.replace(job, folder=job.folder.absolute()), 1, keep_going, True)
        # A task's thread count is its CPUs (Ray sets OMP_NUM_THREADS, which lrlab follows
        # unless train.threads is set), not a share of a node's cores: in_flight 1.
        calls.append(ray_backend.Call(task, cpus, gpus))
    # Corpora cached once here: on a shared cache folder, no node tokenises them again.
    _prepare_data(jobs)
    names = [job.name for job in jobs]
    for index, result in ray_backend.run_tasks(_train_job, calls, address=address, names=names):
        if isinstance(result, ray_backend.Lost):
            if not keep_going:
                raise LrlabError(f"{jobs[index].name}: {result.reason}")
            yield {"name": jobs[index].name, "status": "failed", "error": result.reason}
        else:
            yield result


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """SIGINT ignored meanwhile (only the main thread may set signal handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _ignore_sigint() -> None:
    """A worker's start: Ctrl-C is for the parent, which ends the pool (workers restarted by
    the pool do not inherit the parent's setting, hence this as well)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _prepare_data(jobs: Sequence[Job]) -> None:
    """Tokenise and cache every corpus once, before the workers start reading them (else each
    worker would tokenise it again)."""
    from lrlab.tunnel.data import build_tokenizer, load_split

    seen: set[str] = set()
    for job in jobs:
        key = json.dumps(job.config.get("data", {}), sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        config = config_from_dict(job.config, job.name)
        tokenizer = build_tokenizer(config.data)
        specs = [config.data.corpus, *config.data.eval_corpora]
        if config.data.replay_corpus:
            specs.append(config.data.replay_corpus)
        for spec in dict.fromkeys(specs):
            load_split(spec, config.data, tokenizer, config.train.seq_len)


@dataclasses.dataclass(frozen=True)
class _Task:
    """A job as a worker trains it: `in_flight` runs share this machine's cores (its thread
    ceiling), `keep_going` turns an error into a failed outcome, `quiet` turns the run's own
    progress bar into lines (bars of runs side by side would overwrite each other's)."""

    job: Job
    in_flight: int
    keep_going: bool
    quiet: bool


def _train_job(task: _Task) -> dict[str, Any]:
    """Train one job in this process (a worker of the pool or of Ray, or the caller's); a job
    that reserves several whole GPUs trains on as many processes, one GPU each
    (`lrlab.tunnel.train.train_processes`: DistributedDataParallel)."""
    from lrlab.tunnel.train import train, train_processes

    job = task.job
    try:
        config = config_from_dict(job.config, job.name)
        if task.quiet and config.train.progress != "off":
            config.train.progress = "lines"  # a line every few seconds: bars would overwrite
        gpus = resources_for(job)[1]
        if gpus >= 2 and gpus == int(gpus):
            record = train_processes(
                config, job.folder, nproc=int(gpus), resume=True, in_flight=task.in_flight
            )
        else:
            record = train(config, job.folder, resume=True, in_flight=task.in_flight)
    except Exception as error:  # with keep_going: reported, and the pool goes on
        if not task.keep_going:
            raise
        return {"name": job.name, "status": "failed", "error": f"{type(error).__name__}: {error}"}
    return {"name": job.name, "status": record["status"], "record": record}


class PoolProgress:
    """How far a pool is: runs done (finished or diverged), failed, running (their folder's lock
    is held: `lrlab.locks`) and waiting, and the time left, estimated from the runs that ended so
    far (the time so far per run ended, times the runs left). `ticking` writes it to `log` every
    few seconds from a thread of its own, and once more at the end."""

    def __init__(
        self,
        jobs: Sequence[Job],
        log: Callable[[str], None] | None,
        every: float = PROGRESS_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.folders = {job.name: job.folder for job in jobs}
        self.log, self.every, self.clock = log, every, clock
        self.began = clock()
        self.done = 0
        self.failed: list[str] = []
        self.open = set(self.folders)
        self._guard = threading.Lock()

    def ended(self, outcome: Mapping[str, Any]) -> None:
        """Count a run that ended (an outcome of `train_jobs`)."""
        with self._guard:
            self.open.discard(outcome["name"])
            if outcome["status"] == "failed":
                self.failed.append(outcome["name"])
            else:
                self.done += 1

    def line(self) -> str:
        """``runs: 3 done, 1 failed, 2 running, 2 waiting (of 8); about 1m30s left``."""
        with self._guard:
            done, failed, open_runs = self.done, len(self.failed), sorted(self.open)
        running = sum(_training(self.folders[name]) for name in open_runs)
        elapsed = self.clock() - self.began
        counts = (
            f"runs: {done} done, {failed} failed, {running} running, "
            f"{len(open_runs) - running} waiting (of {len(self.folders)})"
        )
        if not open_runs:
            return f"{counts}; took {clock_text(elapsed)}"
        if done + failed == 0:
            return f"{counts}; time left known once a run ends"
        return f"{counts}; about {clock_text(elapsed / (done + failed) * len(open_runs))} left"

    @contextlib.contextmanager
    def ticking(self) -> Iterator[None]:
        """Write `line` to `log` every few seconds meanwhile, and once at the end."""
        if self.log is None:
            yield
            return
        stop = threading.Event()
        thread = threading.Thread(target=self._tick, args=(stop,), daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
        self.log(self.line())

    def _tick(self, stop: threading.Event) -> None:
        assert self.log is not None
        wait = self.every
        while not stop.wait(wait):
            with self._guard:
                if not self.open:  # the closing line is the pool's, once its caller is done
                    return
            self.log(self.line())
            elapsed = self.clock() - self.began
            wait = min(PROGRESS_AT_MOST_S, max(self.every, elapsed / 20))


def _training(folder: Path) -> bool:
    """Whether a process trains the run in `folder` now: it holds the folder's lock, whose file
    names it. A file left by a process that was killed names a dead process (checked on this
    host; on another one the file is believed until its run's retry takes it over)."""
    try:
        holder = json.loads((folder / LOCK_NAME).read_text())
        pid, host = int(holder["pid"]), str(holder["host"])
    except (OSError, ValueError, TypeError, KeyError):
        return False
    if host != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def clock_text(seconds: float) -> str:
    """``45s``, ``12m05s`` or ``3h20m``."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
