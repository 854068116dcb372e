"""How many CPU threads a wind-tunnel run uses, and how many runs train at once.

PyTorch starts one intra-op thread per core, and its threads wait for each other by spinning. When
other work holds some of those cores (a second study, a test run, a browser), every operation waits
for a thread that is not running: the default study's model then trains 2-20x slower than with
one thread (BENCHMARKS.md, "The wind tunnel under contention"). So a run chooses its thread count,
in this order:

1. ``train.threads`` in the run's config (a sweep's ``threads_per_worker`` sets it);
2. the environment variable ``LRLAB_THREADS``;
3. ``OMP_NUM_THREADS``, when the user set it (PyTorch and every OpenMP program read it too);
4. otherwise automatically, from the machine as it is: the cores this process may use
   (`usable_cores`: its CPU affinity, capped by a cgroup CPU quota), shared among the runs of
   its pool, at most what the step's size can use (`MIN_WORK_PER_THREAD`), and no more than the
   cores other work leaves free. A CPU run measures that other work from ``/proc`` (`LoadMeter`)
   when it starts and while it trains (`ThreadControl`): it drops to fewer threads as soon as
   other work takes cores, and takes them back once they have stayed free for a while.

The numbers a run computes depend, in their last digits, on its thread count; the record says
which count was used, why, and when it changed. Set ``train.threads`` (or ``LRLAB_THREADS``) to
reproduce a run exactly. `plan_workers` sizes a pool of runs (a sweep, a study's independent
runs) so that workers x threads stays within the cores.

This module does not import PyTorch: it decides, the trainer applies.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

from lrlab.errors import LrlabError

ENV_VAR = "LRLAB_THREADS"
CGROUP_ROOT = Path("/sys/fs/cgroup")
# Parameters x tokens of a micro-batch per thread below which another thread does not pay. The
# default study's model (0.12e9 per step) trains 1.16-1.28x faster with 2 threads than with 1 on
# an idle 2-core machine (BENCHMARKS.md); that speed-up implies about a third of its step runs in
# parallel, which a third and fourth thread would speed up by 11% at most, for twice the CPU.
MIN_WORK_PER_THREAD = 0.05e9
# Other work below a quarter of a core is noise (a shell, a monitor), not a reason to step down.
SLACK = 0.25
# Load readings over shorter spans are too coarse: the kernel counts CPU time in 10 ms ticks.
MIN_WINDOW_S = 0.25
# Free cores must stay free this long before a run that stepped down takes more threads again.
RAISE_AFTER_S = 2.0


@dataclasses.dataclass(frozen=True)
class Cores:
    """The cores this process may use (`count`), from how many CPUs it may run on (`cpus`, its
    affinity) and a cgroup quota, and the reason in words."""

    count: int
    cpus: int
    reason: str


@dataclasses.dataclass(frozen=True)
class ThreadChoice:
    """A thread count and why (written to ``record.json``)."""

    threads: int
    reason: str


def cgroup_quota(root: Path = CGROUP_ROOT) -> float | None:
    """The CPUs the cgroup's quota allows this process (``quota / period``), or None when there is
    no quota or no cgroup file to read. cgroup v2 keeps it in ``cpu.max`` (``max 100000`` or
    ``150000 100000``), v1 in ``cpu/cpu.cfs_quota_us`` (-1 for none) and ``cpu.cfs_period_us``."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        pass
    else:
        return None if quota == "max" else _ratio(quota, period)
    for folder in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
        try:
            quota = (root / folder / "cpu.cfs_quota_us").read_text()
            period = (root / folder / "cpu.cfs_period_us").read_text()
        except OSError:
            continue
        return _ratio(quota, period)
    return None


def _ratio(quota: str, period: str) -> float | None:
    try:
        value, base = int(quota), int(period)
    except ValueError:
        return None
    return value / base if value > 0 and base > 0 else None


def _affinity() -> set[int]:
    if hasattr(os, "sched_getaffinity"):
        return os.sched_getaffinity(0)
    return set(range(os.cpu_count() or 1))


def usable_cores(affinity: Collection[int] | None = None, cgroup_root: Path = CGROUP_ROOT) -> Cores:
    """The cores this process may run on (`os.sched_getaffinity`, where the platform has it, else
    `os.cpu_count`), capped by the cgroup quota rounded down (at least one): a quota of 1.5 CPUs
    throttles two busy threads."""
    cpus = max(1, len(_affinity() if affinity is None else affinity))
    count = cpus
    reason = f"{_cores(count)} in the CPU affinity"
    quota = cgroup_quota(cgroup_root)
    if quota is not None and math.floor(quota) < count:
        count = max(1, math.floor(quota))
        reason = f"{_cores(count)} (cgroup CPU quota of {quota:g} CPUs)"
    return Cores(count, cpus, reason)


def _cores(count: float) -> str:
    return f"{count:g} core{'' if count == 1 else 's'}"


def _count_from(environ: Mapping[str, str], name: str, *, strict: bool) -> int | None:
    """A positive thread count from variable `name`; None when unset. ``OMP_NUM_THREADS`` may be
    a list (nested parallelism): its first entry is this level's. A bad value is an error when
    `strict`, else ignored (as OpenMP ignores it)."""
    text = environ.get(name, "").strip()
    if not text:
        return None
    first = text.split(",")[0].strip()
    if first.isdigit() and int(first) >= 1:
        return int(first)
    if strict:
        raise LrlabError(f"{name}={text!r} must be an integer >= 1 (threads of a run)")
    return None


def fixed_threads(
    configured: int | None, environ: Mapping[str, str] | None = None
) -> ThreadChoice | None:
    """The thread count the user set (``train.threads``, then ``LRLAB_THREADS``, then
    ``OMP_NUM_THREADS``), or None when lrlab is to choose."""
    if configured is not None:
        return ThreadChoice(configured, f"train.threads={configured}")
    environ = os.environ if environ is None else environ
    for name, strict in ((ENV_VAR, True), ("OMP_NUM_THREADS", False)):
        count = _count_from(environ, name, strict=strict)
        if count is not None:
            return ThreadChoice(count, f"{name}={count}")
    return None


def ceiling(work: float, in_flight: int, cores: Cores) -> ThreadChoice:
    """The most threads a run may take whatever the load: its share of the cores when `in_flight`
    runs of a pool train at once, and no more than a step of `work` (parameters x tokens of a
    micro-batch) can use."""
    runs = max(1, in_flight)
    share = max(1, cores.count // runs)
    reason = cores.reason if runs == 1 else f"{cores.reason}, shared by {runs} runs at once"
    useful = max(1, math.floor(work / MIN_WORK_PER_THREAD))
    if useful < share:
        return ThreadChoice(
            useful,
            f"{reason}; a step of {work / 1e9:.2g}e9 parameter-tokens uses at most {useful} "
            f"thread{'' if useful == 1 else 's'}",
        )
    return ThreadChoice(share, reason)


def choose_threads(
    configured: int | None,
    *,
    work: float,
    in_flight: int = 1,
    busy: float = 0.0,
    environ: Mapping[str, str] | None = None,
    cores: Cores | None = None,
) -> ThreadChoice:
    """The thread count of a run whose config says `configured` (``train.threads``), one of
    `in_flight` runs of a pool, whose step does `work` (parameters x tokens of a micro-batch),
    while other work keeps `busy` cores busy. `environ` (default `os.environ`) and `cores`
    (default `usable_cores()`) are parameters so that the choice can be checked without a
    machine."""
    fixed = fixed_threads(configured, environ)
    if fixed is not None:
        return fixed
    cores = usable_cores() if cores is None else cores
    return _within_free(ceiling(work, in_flight, cores), busy, cores)


def _within_free(top: ThreadChoice, busy: float, cores: Cores) -> ThreadChoice:
    """`top` lowered to the cores that other work (`busy` cores of the CPUs) leaves free."""
    free = min(float(cores.count), cores.cpus - busy)
    threads = max(1, min(top.threads, math.floor(free + SLACK)))
    if threads < top.threads:
        return ThreadChoice(threads, f"{top.reason}; other work busy on {busy:.1f} of them")
    return top


def plan_workers(
    runs: int,
    *,
    workers: int | None = None,
    threads: int | None = None,
    cores: Cores | None = None,
) -> int:
    """How many of `runs` independent runs train at once: `workers` when given, else as many as
    the usable cores hold at `threads` each (one by default), and never more than there are runs
    (at least one)."""
    if workers is None:
        workers = (usable_cores() if cores is None else cores).count // (threads or 1)
    return max(1, min(workers, runs))


# --- the load of other work ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Reading:
    """CPU time counters at one moment, in seconds: `busy` on this process's CPUs by everyone,
    `own` by this process."""

    time: float
    busy: float
    own: float


def other_load(before: Reading, after: Reading) -> float:
    """Cores kept busy by other processes between two readings (0 over an empty interval)."""
    span = after.time - before.time
    if span <= 0:
        return 0.0
    return max(0.0, ((after.busy - before.busy) - (after.own - before.own)) / span)


class LoadMeter:
    """Reads the CPU time spent on this process's CPUs and by this process from ``/proc`` (Linux;
    elsewhere `read` gives None and no load is measured)."""

    def __init__(
        self,
        cpus: Collection[int] | None = None,
        proc: Path = Path("/proc"),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cpus = {f"cpu{cpu}" for cpu in (_affinity() if cpus is None else cpus)}
        self.proc = proc
        self.clock = clock
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def read(self) -> Reading | None:
        """The counters now, or None when they cannot be read."""
        try:
            stat = (self.proc / "stat").read_text().splitlines()
            own = (self.proc / "self" / "stat").read_text()
        except OSError:
            return None
        busy = 0
        try:
            for line in stat:
                fields = line.split()
                if fields and fields[0] in self.cpus:
                    # user nice system idle iowait irq softirq steal: all but idle and iowait
                    # are busy, steal included (a hypervisor ran something else on this CPU).
                    user, nice, system, _, _, irq, softirq, steal = map(int, fields[1:9])
                    busy += user + nice + system + irq + softirq + steal
            # After the command name in parentheses: utime and stime, the 12th and 13th fields.
            fields = own.rsplit(")", 1)[1].split()
            spent = int(fields[11]) + int(fields[12])
        except (ValueError, IndexError):
            return None  # a kernel whose files read otherwise: no load measured
        return Reading(self.clock(), busy / self.tick, spent / self.tick)


class ThreadControl:
    """The thread count of one run over its life.

    Made when the run starts (its first load reading); `start` gives the first count once the
    run's step is known, and `update`, called between steps, a new one when the load of other work
    has changed enough: fewer threads as soon as a reading shows other work on the cores, more
    once they have been free for `RAISE_AFTER_S`. A count the user set, a ceiling of one thread
    or a `meter` that cannot read (None, not Linux) fixes the count for good.
    """

    def __init__(
        self,
        configured: int | None,
        *,
        in_flight: int = 1,
        environ: Mapping[str, str] | None = None,
        cores: Cores | None = None,
        meter: LoadMeter | None = None,
        sleep: Callable[[float], Any] = time.sleep,
    ) -> None:
        self.configured, self.in_flight = configured, in_flight
        self.environ = os.environ if environ is None else environ
        self.cores = usable_cores() if cores is None else cores
        fixed = fixed_threads(configured, self.environ) is not None
        self.meter = None if fixed else meter
        self.sleep = sleep
        self.last = None if self.meter is None else self.meter.read()
        self.work = 0.0
        self.top = self.choice = ThreadChoice(1, "not started")
        self.free_since: float | None = None  # start of the readings that leave more cores free
        self.changes: list[dict[str, Any]] = []

    def _choose(self, busy: float) -> ThreadChoice:
        return choose_threads(
            self.configured,
            work=self.work,
            in_flight=self.in_flight,
            busy=busy,
            environ=self.environ,
            cores=self.cores,
        )

    def start(self, work: float) -> ThreadChoice:
        """The first thread count of a run whose step does `work`; completes the first load
        reading's window (sleeping at most `MIN_WINDOW_S`) when the count depends on it."""
        self.work = work
        self.top = self.choice = self._choose(busy=0.0)  # the most the run may take
        if self.top.threads == 1 or self.meter is None or self.last is None:
            return self.choice
        now = self.meter.read()
        if now is not None and now.time - self.last.time < MIN_WINDOW_S:
            self.sleep(MIN_WINDOW_S - (now.time - self.last.time))
            now = self.meter.read()
        if now is not None:
            self.choice = self._choose(other_load(self.last, now))
            self.last = now
        return self.choice

    def update(self, step: int) -> ThreadChoice | None:
        """A new thread count to use from `step` on, or None to keep the current one."""
        if self.top.threads == 1 or self.meter is None or self.last is None:
            return None
        if self.meter.clock() - self.last.time < MIN_WINDOW_S:
            return None  # too soon to tell (and reading /proc at every step would cost)
        now = self.meter.read()
        if now is None:
            return None
        before, self.last = self.last, now
        wanted = self._choose(other_load(before, now))
        if wanted.threads <= self.choice.threads:
            self.free_since = None
            return None if wanted.threads == self.choice.threads else self._change(step, wanted)
        if self.free_since is None:
            self.free_since = before.time
        if now.time - self.free_since < RAISE_AFTER_S:
            return None
        self.free_since = None
        return self._change(step, wanted)

    def _change(self, step: int, choice: ThreadChoice) -> ThreadChoice:
        self.choice = choice
        self.changes.append({"step": step, "threads": choice.threads, "reason": choice.reason})
        return choice
