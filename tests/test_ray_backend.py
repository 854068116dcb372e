"""The Ray backend of sweeps and studies (`lrlab.tunnel.ray_backend`), on a local Ray instance
with 2 CPUs: the same files as the local pool, a killed worker retried, a killed driver resumed;
and, without Ray, the settings, the progress line and the command-line checks.

What "the same files" means: ``eval.csv`` byte for byte, ``train.csv`` byte for byte but for its
``tokens_per_s`` column (the wall-clock rate, which no two runs share, whatever the backend), and
the results table but for ``elapsed_s``: exactly what two runs on the local pool reproduce.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import logging
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip("torch")

from lrlab.cli import main
from lrlab.errors import LrlabError
from lrlab.locks import LOCK_NAME
from lrlab.tunnel.pool import (
    Backend,
    Job,
    PoolProgress,
    Resources,
    parse_resources,
    resources_for,
    train_jobs,
)
from lrlab.tunnel.sweep import load_sweep, run_sweep

TIMING = "tokens_per_s"


def sweep_file(tmp_path: Path, steps: int = 16, **changes: Any) -> Path:
    """A sweep of tiny runs, one thread each (a run's last digits depend on its thread count)."""
    data = {
        "workers": 1,
        "threads_per_worker": 1,
        "base": {
            "model": {"d_model": 32, "n_layers": 2, "n_heads": 2},
            "data": {
                "corpus": "english",
                "max_bytes": 60_000,
                "cache_dir": str(tmp_path / "cache"),
            },
            "optim": {"grad_clip": 0.0},
            "train": {
                "steps": steps,
                "batch_size": 4,
                "seq_len": 32,
                "eval_interval": 8,
                "eval_batches": 2,
                "checkpoint_interval": 8,
                "progress": "off",
            },
        },
        "grid": {
            "peak": [3e-3, 1000.0],  # the second diverges
            "seeds": [0, 1],
            "schedules": [f"cosine(peak=1, total={steps}, warmup=2)"],
        },
        **changes,
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def ray_instance() -> Any:
    """One local Ray instance with 2 CPUs for the tests that train on Ray (lrlab keeps a
    session it finds, as it would a program's), and 1 GPU as Ray counts them (declared: none
    is there), so that runs reserving none are kept off it as on a cluster with GPUs."""
    ray = pytest.importorskip("ray")
    ray.init(
        address="local",
        num_cpus=2,
        num_gpus=1,
        include_dashboard=False,
        object_store_memory=128 * 1024**2,
        logging_level=logging.WARNING,
    )
    yield ray
    ray.shutdown()


def logs(folder: Path) -> dict[str, Any]:
    """A run's logs as compared: eval.csv's bytes, train.csv's rows without the timing column."""
    rows = list(csv.reader(io.StringIO((folder / "train.csv").read_text())))
    timing = rows[0].index(TIMING)
    return {
        "eval.csv": (folder / "eval.csv").read_bytes(),
        "train.csv": [row[:timing] + row[timing + 1 :] for row in rows],
        "checkpoints": sorted(path.name for path in folder.glob("checkpoints/*")),
    }


def untimed(results: dict[str, Any]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k != "elapsed_s"} for row in results["runs"]]


def sweep_logs(out: Path) -> dict[str, Any]:
    return {folder.name: logs(folder) for folder in sorted((out / "runs").iterdir())}


def test_a_ray_sweep_writes_the_files_of_the_local_pool(tmp_path: Path, ray_instance: Any) -> None:
    path = sweep_file(tmp_path)
    local = run_sweep(load_sweep(path), tmp_path / "local", log=lambda line: None)
    log: list[str] = []
    on_ray = run_sweep(load_sweep(path), tmp_path / "ray", log=log.append, backend=Backend("ray"))
    assert "4 to train as Ray tasks" in log[0]
    # A diverging run ends as it does locally, and the sweep goes on.
    assert sorted(row["status"] for row in on_ray["runs"]) == [
        "diverged",
        "diverged",
        "finished",
        "finished",
    ]
    assert untimed(on_ray) == untimed(local)
    assert on_ray["lr_sensitivity"] == local["lr_sensitivity"]
    assert sweep_logs(tmp_path / "ray") == sweep_logs(tmp_path / "local")
    assert log[-1].startswith("runs: 4 done, 0 failed, 0 running, 0 waiting (of 4); took ")
    for row in on_ray["runs"]:  # each task trained with the one CPU it reserved
        record = json.loads((tmp_path / "ray" / "runs" / row["name"] / "record.json").read_text())
        assert record["threads"] == 1


def wait_for(condition: Any, what: str, timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def trainer_pid(folder: Path, after_rows: int) -> int | None:
    """The PID training the run in `folder` once its train.csv has `after_rows` steps (its
    folder's lock file names it), else None."""
    try:
        rows = (folder / "train.csv").read_text().count("\n") - 1
        holder = json.loads((folder / LOCK_NAME).read_text())
    except (OSError, ValueError):
        return None
    return int(holder["pid"]) if rows >= after_rows else None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# Long enough that neither run ends between the test seeing both past step 20 and its kill,
# however late Ray starts the second (80 steps were not, on an idle machine).
LONG_STEPS = 240
LONG = {
    "peak": [3e-3],
    "seeds": [0, 1],
    "schedules": [f"cosine(peak=1, total={LONG_STEPS}, warmup=2)"],
}


@pytest.fixture(scope="module")
def undisturbed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A sweep of two runs long enough to be killed mid-run (`LONG_STEPS`, a checkpoint every 8),
    trained here undisturbed: its file and its results, in its folder ``undisturbed``."""
    folder = tmp_path_factory.mktemp("long")
    path = sweep_file(folder, steps=LONG_STEPS, grid=LONG)
    return path, run_sweep(load_sweep(path), folder / "undisturbed", log=lambda line: None)


def test_a_killed_worker_is_retried_and_the_sweep_ends_as_undisturbed(
    tmp_path: Path, ray_instance: Any, undisturbed: tuple[Path, dict[str, Any]]
) -> None:
    path, expected = undisturbed
    out = tmp_path / "ray"
    outcome: dict[str, Any] = {}

    def sweep() -> None:
        outcome["results"] = run_sweep(
            load_sweep(path), out, log=lambda line: None, backend=Backend("ray")
        )

    driver = threading.Thread(target=sweep)
    driver.start()
    victim = out / "runs" / "0-cosine_lr0.003_seed0"
    pid = wait_for(lambda: trainer_pid(victim, after_rows=40), "the run to pass step 40")
    assert pid != os.getpid()  # a Ray worker, not this process
    os.kill(pid, signal.SIGKILL)
    # Killed mid-run: what finished it was the retry.
    assert json.loads((victim / "record.json").read_text())["status"] == "running"
    driver.join(timeout=180)
    assert not driver.is_alive()
    assert not alive(pid)
    results = outcome["results"]
    assert [row["status"] for row in results["runs"]] == ["finished", "finished"]
    assert untimed(results) == untimed(expected)
    assert sweep_logs(out) == sweep_logs(path.parent / "undisturbed")


def test_a_killed_driver_is_resumed_by_the_same_command(
    tmp_path: Path, ray_instance: Any, undisturbed: tuple[Path, dict[str, Any]]
) -> None:
    """``lrlab sweep --backend ray`` killed (SIGKILL) mid-run, then run again: the runs resume
    from their checkpoints and end as an undisturbed sweep's."""
    path, expected = undisturbed
    address = ray_instance.get_runtime_context().gcs_address
    command = [sys.executable, "-m", "lrlab", "sweep", "--config", str(path), "--out", "ray"]
    command += ["--backend", "ray", "--address", address]
    driver = subprocess.Popen(command, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    runs = tmp_path / "ray" / "runs"
    names = ("0-cosine_lr0.003_seed0", "0-cosine_lr0.003_seed1")

    def both_past_step_20() -> list[int] | None:
        pids = [trainer_pid(runs / name, after_rows=20) for name in names]
        return pids if all(pids) else None

    workers = wait_for(both_past_step_20, "both runs past step 20")
    driver.kill()
    driver.communicate()
    # Ray ends the tasks of a driver that died: their runs are free to resume.
    for pid in workers:
        wait_for(lambda pid=pid: not alive(pid), f"worker {pid} to end", timeout=60)
    log: list[str] = []
    results = run_sweep(load_sweep(path), tmp_path / "ray", log=log.append, backend=Backend("ray"))
    assert "0 already done, 2 to train" in log[0]
    assert untimed(results) == untimed(expected)
    assert sweep_logs(tmp_path / "ray") == sweep_logs(path.parent / "undisturbed")


def test_a_study_trains_its_runs_on_ray(tmp_path: Path, ray_instance: Any) -> None:
    from lrlab.schedules import parse
    from lrlab.study import TunnelRun, train_tunnel_runs

    tunnel = yaml.safe_load(sweep_file(tmp_path).read_text())["base"]
    setup = {"budget": 16, "tunnel": tunnel}
    runs = [
        TunnelRun(name, parse(spec), tmp_path / name, f"[{i}/2]")
        for i, (name, spec) in enumerate(
            [("constant", "constant(peak=3e-3)"), ("cosine", "cosine(peak=3e-3, total=16)")], 1
        )
    ]
    messages: list[str] = []
    curves = train_tunnel_runs(setup, runs, messages.append, Backend("ray"))
    assert [curve.name for curve in curves] == ["constant", "cosine"]
    for name in ("constant", "cosine"):
        # No train.threads: the run's threads are the one CPU it reserved, as Ray says.
        record = json.loads((tmp_path / name / "record.json").read_text())
        assert (record["threads"], record["threads_reason"]) == (1, "OMP_NUM_THREADS=1")
    assert messages[-1].startswith("runs: 2 done, 0 failed, 0 running, 0 waiting (of 2)")
    # A bad config is not retried: the study stops with its error, as on the local pool.
    tunnel["train"]["batch_size"] = 0
    with pytest.raises(LrlabError, match="batch_size"):
        train_tunnel_runs(setup, runs[:1], messages.append, Backend("ray"))


def test_a_task_sees_only_the_gpus_it_reserved(ray_instance: Any) -> None:
    from lrlab.tunnel.ray_backend import Call, run_tasks

    calls = [Call("CUDA_VISIBLE_DEVICES", 1, 0), Call("CUDA_VISIBLE_DEVICES", 1, 1)]
    seen = dict(run_tasks(os.getenv, calls, address=None, names=["no GPU", "one GPU"]))
    assert seen == {0: "", 1: "0"}


def test_a_task_lost_on_every_try_is_a_failed_run_or_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ray = pytest.importorskip("ray")
    from lrlab.tunnel import ray_backend

    class Gone:
        def get(self, ref: Any) -> Any:
            raise ray.exceptions.WorkerCrashedError()

    gone = Gone()
    gone.exceptions = ray.exceptions  # type: ignore[attr-defined]
    lost = ray_backend._result(gone, None)  # type: ignore[arg-type]
    assert isinstance(lost, ray_backend.Lost)
    assert lost.reason.startswith("Ray gave up on it after 3 retries (WorkerCrashedError: ")

    def run_tasks(*args: Any, **kwargs: Any) -> Any:
        yield 0, lost

    monkeypatch.setattr(ray_backend, "run_tasks", run_tasks)
    jobs = [Job("run a", yaml.safe_load(sweep_file(tmp_path).read_text())["base"], tmp_path)]
    (outcome,) = train_jobs(jobs, 1, keep_going=True, backend=Backend("ray"))
    assert outcome == {"name": "run a", "status": "failed", "error": lost.reason}
    with pytest.raises(LrlabError, match="^run a: Ray gave up on it after 3 retries"):
        list(train_jobs(jobs, 1, backend=Backend("ray")))


# --- without Ray ---------------------------------------------------------------------------------


def test_resources_come_from_the_sweep_file_or_the_run_config(tmp_path: Path) -> None:
    sweep = load_sweep(sweep_file(tmp_path, resources={"num_cpus": 2, "num_gpus": 0.5}))
    assert sweep.resources == Resources(2.0, 0.5)
    job = Job("run", {"train": {"threads": 3}}, tmp_path)
    assert resources_for(job) == (3.0, 0.0)
    assert resources_for(Job("run", {}, tmp_path)) == (1.0, 0.0)
    assert resources_for(Job("run", {"train": {"device": "cuda"}}, tmp_path)) == (1.0, 1.0)
    given = Job("run", {"train": {"threads": 3}}, tmp_path, Resources(num_gpus=0.25))
    assert resources_for(given) == (3.0, 0.25)
    for value, message in [
        ([1], r"resources=\[1\] must be a mapping"),
        ({"cpus": 1}, r"unknown field resources\.cpus \(fields: num_cpus, num_gpus\)"),
        ({"num_cpus": 0}, r"resources\.num_cpus=0 must be a number > 0"),
        ({"num_gpus": -1}, r"resources\.num_gpus=-1 must be a number >= 0"),
        ({"num_gpus": True}, r"resources\.num_gpus=True must be a number >= 0"),
        ({"num_cpus": math.inf}, r"resources\.num_cpus=inf must be a number > 0"),
    ]:
        with pytest.raises(LrlabError, match=f"^sweep.yaml: {message}"):
            parse_resources(value, "sweep.yaml")


def test_progress_says_done_failed_running_waiting_and_time_left(tmp_path: Path) -> None:
    now = [100.0]
    jobs = [Job(name, {}, tmp_path / name) for name in "abcde"]
    progress = PoolProgress(jobs, None, clock=lambda: now[0])
    assert progress.line() == (
        "runs: 0 done, 0 failed, 0 running, 5 waiting (of 5); time left known once a run ends"
    )
    holder = {"host": socket.gethostname(), "command": "lrlab train", "since": "now"}
    for name, pid in (("a", os.getpid()), ("b", os.getpid()), ("c", ended_pid())):
        (tmp_path / name).mkdir()
        (tmp_path / name / LOCK_NAME).write_text(json.dumps({**holder, "pid": pid}))
    progress.ended({"name": "a", "status": "finished"})
    now[0] += 30.0
    # b trains (its lock's process lives); c's lock was left by a process that died.
    assert (
        progress.line() == "runs: 1 done, 0 failed, 1 running, 3 waiting (of 5); about 2m00s left"
    )
    progress.ended({"name": "b", "status": "diverged"})
    progress.ended({"name": "c", "status": "failed"})
    progress.ended({"name": "d", "status": "finished"})
    progress.ended({"name": "e", "status": "finished"})
    assert progress.line() == "runs: 4 done, 1 failed, 0 running, 0 waiting (of 5); took 30s"


def ended_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(done.stdout)


def test_progress_lines_come_every_few_seconds_while_runs_train(tmp_path: Path) -> None:
    lines: list[str] = []
    jobs = [Job(name, {}, tmp_path / name) for name in "ab"]
    progress = PoolProgress(jobs, lines.append, every=0.05)
    with progress.ticking():
        time.sleep(0.3)
        progress.ended({"name": "a", "status": "finished"})
        progress.ended({"name": "b", "status": "finished"})
    assert len(lines) >= 3
    assert lines[0].startswith("runs: 0 done, 0 failed, 0 running, 2 waiting (of 2)")
    assert lines[-1].startswith("runs: 2 done, 0 failed, 0 running, 0 waiting (of 2); took ")
    assert sum("took" in line for line in lines) == 1


def test_an_empty_pool_trains_nothing() -> None:
    assert list(train_jobs([], 2, backend=Backend("ray"))) == []


def test_command_line_checks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(sweep_file(tmp_path))
    out = str(tmp_path / "out")
    study = str(tmp_path / "study")
    cases = [
        (["sweep", "--config", path, "--out", out, "--address", "h:6379"], "--backend ray too"),
        (["study", "--runs", path, "--out", study, "--backend", "ray"], "--runs trains none"),
    ]
    if importlib.util.find_spec("ray") is not None:  # the check after Ray's
        cases.append(
            (
                ["sweep", "--config", path, "--out", out, "--backend", "ray", "--workers", "2"],
                "--workers sizes the local pool",
            )
        )
    for argv, message in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("lrlab: error: ") and message in err and err.count("\n") == 1
    with pytest.raises(LrlabError, match="a Ray address needs the ray backend"):
        Backend("local", "h:6379")
    monkeypatch.setitem(sys.modules, "ray", None)  # Ray not installed
    assert main(["sweep", "--config", path, "--out", out, "--backend", "ray"]) == 2
    assert "the ray backend needs Ray: pip install 'lrlab[ray]'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing was started


def test_an_address_where_nothing_answers_fails_at_once() -> None:
    from lrlab.tunnel.ray_backend import check_reachable

    with socket.socket() as unused:  # a port nothing listens on: bound, never listening
        unused.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{unused.getsockname()[1]}"
        began = time.monotonic()
        with pytest.raises(LrlabError, match=f"^Ray cluster at {address}: nothing answers there"):
            check_reachable(address)
    assert time.monotonic() - began < 5  # Ray itself would retry for minutes
    check_reachable("auto")  # Ray's to resolve


def test_the_command_line_parser_does_not_import_ray() -> None:
    code = "import sys\nfrom lrlab.cli import build_parser\nbuild_parser()\n"
    code += "print('ray' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
