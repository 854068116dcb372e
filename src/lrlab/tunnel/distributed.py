"""One run on several processes: PyTorch's DistributedDataParallel, started as torchrun does.

``lrlab train --nproc N`` (or ``torchrun --nproc_per_node=N -m lrlab train ...``) trains one run on
N processes of one machine. Each process (a *rank*) holds the whole model and takes an equal share
of every batch: the batch a one-process run draws at a step (`lrlab.tunnel.data.Batches`) is split
by rows, so the global batch stays the config's ``train.batch_size`` whatever N, and the data
order is the same. DDP averages the gradients over the ranks during the backward pass, so every
rank takes the same AdamW step and the run computes what one process computes, up to the order
of float sums (tests/test_ddp.py checks the losses to 1e-5 relative). gloo carries the
all-reduces between CPU processes, NCCL between GPUs, one GPU per process (``cuda:LOCAL_RANK``).

Rank 0 alone writes the run folder (logs, ``record.json`` and checkpoints, atomically as one
process does) and holds its lock; the other ranks compute the same and write nothing. A problem
found on any rank while a run starts (a folder another run holds, a damaged log, a bad
checkpoint) stops every rank with the same one-line `LrlabError` (`Processes.agreement`), rather
than leaving the others waiting for it in a collective.

`launch` starts the processes with PyTorch's elastic launcher, the engine of ``torchrun``; the
processes find each other through the environment it sets (`from_environment`), which is also how
processes that ``torchrun`` started take part.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
import select
import signal
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
import torch.distributed as dist

from lrlab.errors import LrlabError

# What torchrun (and `launch`) tells each process; LOCAL_* count the processes of this machine.
ENVIRONMENT = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")
# A launched process whose launcher ended ends at once, as if killed with it (no cleanup: the
# run resumes from its checkpoint as after any kill), with the status a SIGKILL gives.
_KILLED = 128 + signal.SIGKILL
_WATCHING: list[int] = []  # the launcher this process watches (`watch`), once it does


@dataclasses.dataclass(frozen=True)
class Processes:
    """The processes that train one run together, and this process's place among them: `rank`
    of `size` in all, `local_rank` of `local_size` on this machine. The default is one process.

    The methods that communicate (`agreement`, `share`, `mean`, `sum`, `replicate`) are
    collectives: every rank calls them, in the same order; with one process they only return."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1

    @property
    def main(self) -> bool:
        """Rank 0, the one that writes the run's files."""
        return self.rank == 0

    @property
    def several(self) -> bool:
        """More than one process: the run's processes must communicate."""
        return self.size > 1

    @contextlib.contextmanager
    def agreement(self) -> Iterator[None]:
        """Run the block on every rank, then raise on every rank the error of the lowest rank
        whose block failed with an `LrlabError` (or an `OSError`, such as a folder it may not
        write), so that a problem one rank alone sees stops them all with its message."""
        if not self.several:
            yield
            return
        failure: Exception | None = None
        try:
            yield
        except (LrlabError, OSError) as error:
            failure = error
        messages: list[str | None] = [None] * self.size
        dist.all_gather_object(messages, None if failure is None else str(failure))
        first = next((message for message in messages if message is not None), None)
        if first is None:
            return
        if failure is not None and str(failure) == first:
            raise failure
        raise LrlabError(first)

    def share(self, value: Any) -> Any:
        """Rank 0's `value` on every rank (picklable data), once rank 0 has it."""
        if not self.several:
            return value
        box = [value if self.main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """The element-wise mean of `values` over the ranks (gloo has no averaging all-reduce,
        hence a sum divided by the count)."""
        if not self.several:
            return values
        total = values.clone()
        dist.all_reduce(total)
        return total / self.size

    def sum(self, values: Sequence[float]) -> list[float]:
        """The element-wise sums of `values` over the ranks, in float64."""
        if not self.several:
            return list(values)
        device = torch.device("cuda", torch.cuda.current_device()) if _nccl() else "cpu"
        total = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(total)
        return total.tolist()

    def replicate(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """`model` wrapped in DistributedDataParallel, which starts every rank from rank 0's
        weights and averages the gradients over the ranks in each backward pass. The model's
        buffers are constants (the rotary tables), so they are not sent again at every step."""
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(
            model,
            device_ids=[device.index] if device.type == "cuda" else None,
            forward_sync_buffers=False,
        )


def _nccl() -> bool:
    return dist.get_backend() == "nccl"


def from_environment(environ: Mapping[str, str] | None = None) -> Processes:
    """This process's place among the run's processes, from the variables torchrun sets (one
    process when ``WORLD_SIZE`` is unset). A value that is not a whole number in range, or
    ``WORLD_SIZE`` above 1 without the ``MASTER_ADDR`` and ``MASTER_PORT`` the processes meet
    at, is an `LrlabError` naming the variable."""
    environ = os.environ if environ is None else environ
    if not environ.get("WORLD_SIZE", "").strip():
        return Processes()
    values = {}
    for name in ENVIRONMENT:
        text = environ.get(name, "").strip()
        if not text and name.startswith("LOCAL_"):
            # Set by torchrun; a launcher that does not set them starts one machine's processes.
            text = environ.get(name.removeprefix("LOCAL_"), "").strip()
        if not text.isdigit():
            raise LrlabError(f"{name}={text!r} must be a whole number (set by torchrun)")
        values[name] = int(text)
    processes = Processes(
        values["RANK"], values["WORLD_SIZE"], values["LOCAL_RANK"], values["LOCAL_WORLD_SIZE"]
    )
    if not 0 <= processes.rank < processes.size or processes.size < 1:
        raise LrlabError(f"RANK={processes.rank} must be below WORLD_SIZE={processes.size}")
    if not 0 <= processes.local_rank < processes.local_size <= processes.size:
        raise LrlabError(
            f"LOCAL_RANK={processes.local_rank} must be below LOCAL_WORLD_SIZE="
            f"{processes.local_size}, itself at most WORLD_SIZE={processes.size}"
        )
    if processes.several:
        for name in ("MASTER_ADDR", "MASTER_PORT"):
            if not environ.get(name):
                raise LrlabError(
                    f"WORLD_SIZE={processes.size} but {name} is not set: start the processes "
                    "with torchrun or lrlab train --nproc"
                )
    return processes


@contextlib.contextmanager
def joined(processes: Processes, device: torch.device) -> Iterator[None]:
    """Join the process group of the run's ranks for the block, gloo on the CPU and NCCL on a
    GPU, and leave it after (nothing to do for one process, or when the group is already up).
    The process ends if its launcher does: torchrun, or whatever started it (`watch`)."""
    if not processes.several or dist.is_initialized():
        yield
        return
    watch(os.getppid())
    if not dist.is_available():
        raise LrlabError(
            "this PyTorch has no torch.distributed: a run on several processes needs it"
        )
    if device.type == "cuda":
        torch.cuda.set_device(device)
        dist.init_process_group(
            "nccl", rank=processes.rank, world_size=processes.size, device_id=device
        )
    else:
        dist.init_process_group("gloo", rank=processes.rank, world_size=processes.size)
    try:
        yield
    finally:
        dist.destroy_process_group()


def launch(
    function: Callable[..., Any], args: Sequence[Any], nproc: int, *, preload: Sequence[str] = ()
) -> list[Any]:
    """Call ``function(*args)`` in `nproc` new processes of this machine, started by PyTorch's
    elastic launcher with the environment of ``torchrun --standalone``, and return their results
    in rank order. `function` must be importable by name, and should return an `LrlabError` as a
    value: a process that raises fails, and its failure is raised here as an `LrlabError` naming
    its rank. Ctrl-C ends every process (`KeyboardInterrupt`).

    The processes are forked from a server process that imported `function`'s module and the
    modules named in `preload` once (multiprocessing's ``forkserver``), which the launches of
    one process share, rather than each importing PyTorch (seconds) itself. The server is a
    fresh interpreter, never the caller, so a caller's threads or CUDA state do not reach the
    processes."""
    if from_environment().several:
        raise LrlabError(
            "already one of several processes (torchrun): let torchrun start them, or use "
            "--nproc, not both"
        )
    from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    # Effective when this call starts the server (later calls reuse it, modules imported).
    multiprocessing.get_context("forkserver").set_forkserver_preload(
        [function.__module__, *preload]
    )
    # The launcher keeps its per-process error files in a folder of its own: ours, removed after.
    with tempfile.TemporaryDirectory(prefix="lrlab-launch-") as folder:
        config = LaunchConfig(
            min_nodes=1,
            max_nodes=1,
            nproc_per_node=nproc,
            rdzv_backend="c10d",
            rdzv_endpoint="localhost:0",  # a free port of this machine, as --standalone does
            run_id=f"lrlab-{uuid.uuid4().hex}",
            max_restarts=0,  # a run resumes from its checkpoint when the user says so
            start_method="forkserver",
            logs_specs=DefaultLogsSpecs(log_dir=folder),
        )
        try:
            results = elastic_launch(config, _ended_with)(os.getpid(), function, *args)
        except SignalException as stop:
            if stop.sigval == signal.SIGINT:
                raise KeyboardInterrupt from None
            raise SystemExit(128 + int(stop.sigval)) from None
        except ChildFailedError as error:
            rank, failure = error.get_first_failure()
            raise LrlabError(
                f"process {rank} of {nproc} failed (exit code {failure.exitcode}): "
                f"{_failure_text(failure.message)}"
            ) from None
    return [results[rank] for rank in range(nproc)]


def _failure_text(message: Any) -> str:
    if isinstance(message, dict):
        message = message.get("message", message)
    lines = str(message).strip().splitlines()
    return lines[0][:200] if lines else "no message"


def _ended_with(launcher: int, function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)`` in a process that `launch` started, which ends with its `launcher`
    (that process id). The process is not the launcher's child but the fork server's, which
    lives as long as the process does, so `joined` would watch the wrong parent."""
    watch(launcher)
    return function(*args)


def watch(launcher: int) -> None:
    """End this process as soon as process `launcher` ends, as if killed with it (no cleanup: the
    run resumes from its checkpoint as after any kill). A launcher killed outright (SIGKILL, the
    out-of-memory killer) would otherwise leave the run's processes training on, rank 0 holding
    the run folder's lock. A daemon thread waits for it, on a pidfd where Linux has them (5.3+),
    else asking every second. Once per process: later calls do nothing."""
    if _WATCHING:
        return
    _WATCHING.append(launcher)
    try:
        handle: int | None = os.pidfd_open(launcher)  # readable once the process has ended
    except ProcessLookupError:
        os._exit(_KILLED)  # ended already
    except (AttributeError, OSError):
        handle = None

    def wait() -> None:
        if handle is not None:
            select.select([handle], [], [])
        else:
            while _running(launcher):
                time.sleep(1.0)
        os._exit(_KILLED)

    threading.Thread(target=wait, name="lrlab-launcher-watch", daemon=True).start()


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's: not ours, but it exists
    return True
