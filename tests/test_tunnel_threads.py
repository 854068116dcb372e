"""The wind tunnel's choice of threads and workers, from injected machines (nothing is timed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lrlab.errors import LrlabError
from lrlab.tunnel.threads import (
    RAISE_AFTER_S,
    Cores,
    LoadMeter,
    Reading,
    ThreadControl,
    cgroup_quota,
    choose_threads,
    plan_workers,
    usable_cores,
)

BIG = 1e12  # a step large enough to use every core it is given
NO_CGROUP = Path("/nonexistent-cgroup")


def cores(tmp_path: Path, affinity: set[int], cpu_max: str | None = None) -> Cores:
    """The usable cores of a machine with this affinity and cgroup v2 ``cpu.max``."""
    if cpu_max is not None:
        (tmp_path / "cpu.max").write_text(cpu_max + "\n")
    return usable_cores(affinity, tmp_path)


def test_affinity_of_one_core_gives_one_thread(tmp_path: Path) -> None:
    choice = choose_threads(None, work=BIG, environ={}, cores=cores(tmp_path, {3}))
    assert choice.threads == 1
    assert choice.reason == "1 core in the CPU affinity"


def test_two_runs_on_two_cores_get_one_thread_each(tmp_path: Path) -> None:
    two = cores(tmp_path, {0, 1})
    assert plan_workers(2, cores=two) == 2
    choice = choose_threads(None, work=BIG, in_flight=2, environ={}, cores=two)
    assert choice.threads == 1
    assert choice.reason == "2 cores in the CPU affinity, shared by 2 runs at once"
    # Alone, the run takes both cores; three runs on eight cores take two each.
    assert choose_threads(None, work=BIG, environ={}, cores=two).threads == 2
    eight = cores(tmp_path, set(range(8)))
    assert choose_threads(None, work=BIG, in_flight=3, environ={}, cores=eight).threads == 2


def test_a_small_step_gets_few_threads(tmp_path: Path) -> None:
    eight = cores(tmp_path, set(range(8)))
    study_model = 117_056 * 16 * 64  # the default study's model and micro-batch: 0.12e9
    choice = choose_threads(None, work=study_model, environ={}, cores=eight)
    assert choice.threads == 2
    assert choice.reason.endswith("a step of 0.12e9 parameter-tokens uses at most 2 threads")
    assert (
        choose_threads(None, work=study_model, environ={}, cores=cores(tmp_path, {0})).threads == 1
    )
    tiny = 35_000 * 4 * 32  # the tests' models
    assert choose_threads(None, work=tiny, environ={}, cores=eight).threads == 1


def test_other_work_takes_cores(tmp_path: Path) -> None:
    two = cores(tmp_path, {0, 1})
    for busy, threads in [(0.0, 2), (0.2, 2), (0.6, 1), (1.0, 1), (2.0, 1), (5.0, 1)]:
        assert choose_threads(None, work=BIG, busy=busy, environ={}, cores=two).threads == threads
    choice = choose_threads(None, work=BIG, busy=1.0, environ={}, cores=two)
    assert choice.reason == "2 cores in the CPU affinity; other work busy on 1.0 of them"
    # Under a quota of 2 CPUs out of 64, other work on the other CPUs leaves the 2 free.
    quota = cores(tmp_path, set(range(64)), "200000 100000")
    assert choose_threads(None, work=BIG, busy=30.0, environ={}, cores=quota).threads == 2
    assert choose_threads(None, work=BIG, busy=63.0, environ={}, cores=quota).threads == 1


@pytest.mark.parametrize(
    ("cpu_max", "expected", "reason"),
    [
        ("max 100000", 8, "8 cores in the CPU affinity"),
        ("200000 100000", 2, "2 cores (cgroup CPU quota of 2 CPUs)"),
        ("150000 100000", 1, "1 core (cgroup CPU quota of 1.5 CPUs)"),
        ("50000 100000", 1, "1 core (cgroup CPU quota of 0.5 CPUs)"),
        ("2000000 100000", 8, "8 cores in the CPU affinity"),  # quota above the affinity
    ],
)
def test_cgroup_v2_quota_caps_the_cores(
    tmp_path: Path, cpu_max: str, expected: int, reason: str
) -> None:
    found = cores(tmp_path, set(range(8)), cpu_max)
    assert (found.count, found.reason) == (expected, reason)
    assert choose_threads(None, work=BIG, environ={}, cores=found).threads == expected


def test_cgroup_v1_quota(tmp_path: Path) -> None:
    folder = tmp_path / "cpu,cpuacct"
    folder.mkdir()
    (folder / "cpu.cfs_period_us").write_text("100000\n")
    (folder / "cpu.cfs_quota_us").write_text("300000\n")
    assert cgroup_quota(tmp_path) == 3.0
    assert usable_cores({0, 1, 2, 3, 4, 5}, tmp_path).count == 3
    (folder / "cpu.cfs_quota_us").write_text("-1\n")  # no quota
    assert cgroup_quota(tmp_path) is None
    assert cgroup_quota(NO_CGROUP) is None


def test_overrides_in_order(tmp_path: Path) -> None:
    one = cores(tmp_path, {0})
    environ = {"LRLAB_THREADS": "3", "OMP_NUM_THREADS": "5"}
    # train.threads first, then LRLAB_THREADS, then the user's OMP_NUM_THREADS: even on one core.
    assert choose_threads(4, work=BIG, environ=environ, cores=one).threads == 4
    assert choose_threads(4, work=BIG, environ=environ, cores=one).reason == "train.threads=4"
    choice = choose_threads(None, work=BIG, in_flight=2, environ=environ, cores=one)
    assert (choice.threads, choice.reason) == (3, "LRLAB_THREADS=3")
    choice = choose_threads(None, work=0, environ={"OMP_NUM_THREADS": "5,2"}, cores=one)
    assert (choice.threads, choice.reason) == (5, "OMP_NUM_THREADS=5")
    # OpenMP ignores a bad OMP_NUM_THREADS, and so does the choice; a bad LRLAB_THREADS is an
    # error naming it.
    assert choose_threads(None, work=BIG, environ={"OMP_NUM_THREADS": "x"}, cores=one).threads == 1
    with pytest.raises(LrlabError, match=r"^LRLAB_THREADS='0' must be an integer >= 1"):
        choose_threads(None, work=BIG, environ={"LRLAB_THREADS": "0"}, cores=one)


def test_plan_workers(tmp_path: Path) -> None:
    four = cores(tmp_path, {0, 1, 2, 3})
    assert plan_workers(3, cores=four) == 3  # never more workers than runs
    assert plan_workers(10, cores=four) == 4
    assert plan_workers(10, threads=2, cores=four) == 2  # workers x threads within the cores
    assert plan_workers(10, threads=8, cores=four) == 1
    assert plan_workers(10, workers=6, cores=four) == 6  # asked for: kept
    assert plan_workers(0, cores=four) == 1


class ScriptedMeter:
    """A machine whose other work keeps `busy` cores busy, on a clock the test moves."""

    def __init__(self) -> None:
        self.now = self.busy_s = self.own_s = 0.0
        self.busy = 0.0
        self.reads = 0

    def clock(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """`seconds` pass, this process keeping one core busy."""
        self.now += seconds
        self.busy_s += (self.busy + 1.0) * seconds
        self.own_s += seconds

    def read(self) -> Reading:
        self.reads += 1
        return Reading(self.now, self.busy_s, self.own_s)


def control(tmp_path: Path, meter: ScriptedMeter, configured: int | None = None) -> ThreadControl:
    return ThreadControl(
        configured,
        environ={},
        cores=cores(tmp_path, {0, 1}),
        meter=meter,  # type: ignore[arg-type]
        sleep=meter.advance,
    )


def test_thread_control_follows_other_work(tmp_path: Path) -> None:
    meter = ScriptedMeter()
    threads = control(tmp_path, meter)
    meter.advance(0.1)  # the run's setup: shorter than a reading's window, which start completes
    assert threads.start(BIG).threads == 2
    assert meter.now == pytest.approx(0.25)
    meter.busy = 1.0  # another process starts
    meter.advance(0.1)
    assert threads.update(5) is None  # too soon to tell
    meter.advance(0.2)
    change = threads.update(10)
    assert change is not None and change.threads == 1
    assert change.reason.endswith("other work busy on 1.0 of them")
    meter.busy = 0.0  # it stops: the cores must stay free a while before the run takes them
    meter.advance(1.0)
    assert threads.update(20) is None
    meter.advance(RAISE_AFTER_S)
    change = threads.update(60)
    assert change is not None and change.threads == 2
    assert [(c["step"], c["threads"]) for c in threads.changes] == [(10, 1), (60, 2)]


def test_thread_control_starts_low_on_a_busy_machine_and_keeps_a_set_count(
    tmp_path: Path,
) -> None:
    meter = ScriptedMeter()
    meter.busy = 2.0
    threads = control(tmp_path, meter)
    meter.advance(0.5)
    assert threads.start(BIG).threads == 1
    # A count the user set is kept whatever the load, and the load is not even read.
    meter = ScriptedMeter()
    threads = control(tmp_path, meter, configured=2)
    meter.busy = 2.0
    meter.advance(1.0)
    assert threads.start(BIG).threads == 2 and threads.update(10) is None
    assert meter.reads == 0


def test_load_meter_reads_proc(tmp_path: Path) -> None:
    (tmp_path / "self").mkdir()
    (tmp_path / "stat").write_text(
        "cpu  900 0 90 5000 10 0 0 0 0 0\n"
        "cpu0 100 5 20 1000 7 1 2 3 0 0\n"
        "cpu1 200 0 30 1000 0 0 0 0 0 0\n"
        "cpu2 600 0 40 3000 3 0 0 0 0 0\n"
        "intr 12345\n"
    )
    (tmp_path / "self" / "stat").write_text("42 (a (b) c) R 1 2 3 4 5 6 7 8 9 10 70 11 0 0 20\n")
    meter = LoadMeter({0, 1}, tmp_path, clock=lambda: 7.0)
    reading = meter.read()
    assert reading == Reading(7.0, (131 + 230) / meter.tick, (70 + 11) / meter.tick)
    assert LoadMeter({0}, tmp_path / "missing").read() is None
    (tmp_path / "self" / "stat").write_text("42 (a) R 1 2\n")  # not the expected layout
    assert meter.read() is None
