"""Independent wind-tunnel runs trained at once: the pool behind `lrlab sweep` and the study.

Each run of a pool trains in its own process (``multiprocessing`` spawn context), told how many
runs are in flight so that it picks its thread count for its share of the cores
(`lrlab.tunnel.threads`). With one worker, or one run, the runs train one after the other in this
process. Every run is resumed when its folder holds one (`lrlab.tunnel.train.train`), so a pool
that was interrupted continues where it stopped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import multiprocessing
import signal
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from lrlab.tunnel.config import config_from_dict


@dataclasses.dataclass(frozen=True)
class Job:
    """One run of a pool: its name (in messages and errors), run config mapping and folder."""

    name: str
    config: dict[str, Any]
    folder: Path


def train_jobs(
    jobs: Sequence[Job], workers: int, *, keep_going: bool = False
) -> Iterator[dict[str, Any]]:
    """Train (or resume) every job, `workers` at a time, and yield each one's outcome as it ends:
    ``{"name", "status", "record"}``. A run that raises stops the pool with its error, unless
    `keep_going`, where its outcome is ``{"name", "status": "failed", "error"}``."""
    if not keep_going:
        for job in jobs:
            config_from_dict(job.config, job.name)  # a bad config fails before anything trains
    in_flight = max(1, min(workers, len(jobs)))
    tasks = [(job, in_flight, keep_going) for job in jobs]
    if in_flight == 1:
        yield from map(_train_job, tasks)
        return
    _prepare_data(jobs)
    # Ctrl-C reaches every process of the terminal's group: the workers ignore it (from their
    # start, the setting inherited), so only this process stops, leaving the pool's exit to end
    # them, with no traceback from each; their runs resume from their checkpoints.
    with _sigint_ignored():
        pool = multiprocessing.get_context("spawn").Pool(in_flight, initializer=_ignore_sigint)
    with pool:
        yield from pool.imap_unordered(_train_job, tasks)


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


def _train_job(task: tuple[Job, int, bool]) -> dict[str, Any]:
    """Train one job in this process (a worker of the pool, or the caller's)."""
    from lrlab.tunnel.train import train

    job, in_flight, keep_going = task
    try:
        config = config_from_dict(job.config, job.name)
        if in_flight > 1:
            config.train.progress = "off"  # progress bars of parallel runs would overwrite
        record = train(config, job.folder, resume=True, in_flight=in_flight)
    except Exception as error:  # with keep_going: reported, and the pool goes on
        if not keep_going:
            raise
        return {"name": job.name, "status": "failed", "error": f"{type(error).__name__}: {error}"}
    return {"name": job.name, "status": record["status"], "record": record}
