"""One run on several processes: DistributedDataParallel over gloo with 2 CPU processes computes
what one process computes, survives a kill of its launcher, and stops every rank on an error that
one rank alone sees. Tiny models on real text; the launches cost most of the time."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lrlab.cli import main
from lrlab.errors import LrlabError
from lrlab.locks import FolderLock
from lrlab.tunnel import checkpoint
from lrlab.tunnel.config import config_from_dict
from lrlab.tunnel.data import Batches
from lrlab.tunnel.distributed import Processes, from_environment, joined, launch
from lrlab.tunnel.train import Trainer, train, train_processes
from tunnel_helpers import tiny_config

SRC = Path(__file__).resolve().parents[1] / "src"
GLOO = torch.distributed.is_available() and torch.distributed.is_gloo_available()
needs_gloo = pytest.mark.skipif(not GLOO, reason="this PyTorch has no torch.distributed with gloo")
STEPS = 60


def tiny(tmp_path: Path) -> dict[str, Any]:
    """A run of a few seconds (`tunnel_helpers.tiny_config`), batch 4 (2 a rank)."""
    return tiny_config(
        tmp_path,
        steps=STEPS,
        eval_interval=20,
        eval_batches=3,  # an odd count: rank 0 evaluates two batches, rank 1 one
        schedule=f"wsd(peak=3e-3, total={STEPS}, warmup=5, cooldown_fraction=0.3)",
    )


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def exact_columns(path: Path) -> list[tuple[str, ...]]:
    """The columns of train.csv that do not depend on timing (tokens/s does)."""
    keys = ("step", "lr", "loss", "grad_norm", "update_norm", "param_norm")
    return [tuple(row[key] for key in keys) for row in rows(path)]


def descendants(pid: int) -> list[int]:
    """The processes that `pid` started, and theirs (Linux /proc)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue  # ended while listed
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        below = [child for child, up in parents.items() if up == parent]
        found += below
        frontier += below
    return found


def test_the_shares_of_a_batch_are_the_batch_of_one_process() -> None:
    tokens = np.arange(5000, dtype=np.uint16)
    replay = np.arange(60_000, 63_000, dtype=np.uint16)
    whole = Batches(tokens, replay, 0.3, 8, 16, 3, seed=5)
    shares = [Batches(tokens, replay, 0.3, 8, 16, 3, seed=5, rank=r, processes=4) for r in range(4)]
    for step in range(6):
        for micro in range(3):
            x, y = whole.get(step, micro)
            assert any(whole.replay_rows(step, m) for m in range(3))
            assert torch.equal(torch.cat([share.get(step, micro)[0] for share in shares]), x)
            assert torch.equal(torch.cat([share.get(step, micro)[1] for share in shares]), y)
            assert shares[1].get(step, micro)[0].shape == (2, 16)


def test_a_batch_that_does_not_split_is_refused_before_any_process_starts(tmp_path: Path) -> None:
    config = config_from_dict(tiny(tmp_path))
    with pytest.raises(LrlabError, match=r"train\.batch_size=4 must be a multiple of the 3 proc"):
        train_processes(config, tmp_path / "run", nproc=3)
    with pytest.raises(LrlabError, match="nproc=0 must be at least 1"):
        train_processes(config, tmp_path / "run", nproc=0)
    assert not (tmp_path / "run").exists()


def test_the_place_of_a_process_comes_from_the_torchrun_environment() -> None:
    assert from_environment({}) == Processes()
    torchrun = {
        "RANK": "3",
        "WORLD_SIZE": "4",
        "LOCAL_RANK": "1",
        "LOCAL_WORLD_SIZE": "2",
        "MASTER_ADDR": "localhost",
        "MASTER_PORT": "29500",
    }
    assert from_environment(torchrun) == Processes(rank=3, size=4, local_rank=1, local_size=2)
    with pytest.raises(LrlabError, match="RANK='x' must be a whole number"):
        from_environment({**torchrun, "RANK": "x"})
    with pytest.raises(LrlabError, match="RANK=4 must be below WORLD_SIZE=4"):
        from_environment({**torchrun, "RANK": "4"})
    with pytest.raises(LrlabError, match="MASTER_PORT is not set"):
        from_environment({key: v for key, v in torchrun.items() if key != "MASTER_PORT"})


@needs_gloo
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="lists processes from /proc")
def test_two_processes_train_what_one_does_and_resume_after_their_launcher_is_killed(
    tmp_path: Path,
) -> None:
    config = tiny(tmp_path)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    one = train(config_from_dict(config), tmp_path / "one")

    # The run on 2 processes, started by `lrlab train --nproc 2` and by torchrun, each launcher
    # SIGKILLed after the first checkpoint (the two at once: the start-up is most of the time).
    train_command = ["-m", "lrlab", "train", "--config", str(path), "--out"]
    commands = {
        tmp_path / "nproc": [*train_command, str(tmp_path / "nproc"), "--nproc", "2"],
        tmp_path / "torchrun": ["-m", "torch.distributed.run", "--standalone"]
        + ["--nproc_per_node=2", *train_command, str(tmp_path / "torchrun")],
    }
    launchers = {
        out: subprocess.Popen(
            [sys.executable, *command],
            env={**os.environ, "PYTHONPATH": str(SRC)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for out, command in commands.items()
    }
    started: list[int] = []
    running = dict(launchers)
    deadline = time.monotonic() + 300
    while running and time.monotonic() < deadline:
        for out, launcher in list(running.items()):
            first = checkpoint.checkpoint_path(out / "checkpoints", 10)
            if first.exists() or launcher.poll() is not None:
                ranks = descendants(launcher.pid)
                launcher.send_signal(signal.SIGKILL)
                launcher.wait()
                assert launcher.returncode == -signal.SIGKILL, launcher.stderr.read().decode()
                assert len(ranks) >= 2, ranks
                started += ranks
                del running[out]
        time.sleep(0.005)
    # Their processes end with them rather than train on (and hold the folder's lock).
    while any(Path(f"/proc/{pid}").exists() for pid in started) and time.monotonic() < deadline:
        time.sleep(0.01)
    for out in launchers:
        assert json.loads((out / "record.json").read_text())["status"] == "running"
        assert len(rows(out / "train.csv")) < STEPS

    # Resumed, they log what an uninterrupted run on 2 processes logs, exactly.
    for out in launchers:
        resumed = train_processes(config_from_dict(config), out, nproc=2, resume=True)
        assert resumed["status"] == "finished" and resumed["processes"] == 2
    ddp = train_processes(config_from_dict(config), tmp_path / "ddp", nproc=2)
    for out in launchers:
        assert exact_columns(out / "train.csv") == exact_columns(tmp_path / "ddp" / "train.csv")
        assert rows(out / "eval.csv") == rows(tmp_path / "ddp" / "eval.csv")

    # Each logged loss equals the one-process run's to 1e-5 (float sums in another order).
    np.testing.assert_allclose(
        [float(row["loss"]) for row in rows(tmp_path / "ddp" / "train.csv")],
        [float(row["loss"]) for row in rows(tmp_path / "one" / "train.csv")],
        rtol=1e-5,
    )
    for name in ("loss", "val_loss_english"):
        np.testing.assert_allclose(
            [float(row[name]) for row in rows(tmp_path / "ddp" / "eval.csv")],
            [float(row[name]) for row in rows(tmp_path / "one" / "eval.csv")],
            rtol=1e-5,
        )
    assert ddp["final_val_loss"] == pytest.approx(one["final_val_loss"], rel=1e-5)


@needs_gloo
def test_an_error_one_rank_alone_meets_stops_every_rank(tmp_path: Path) -> None:
    """Rank 0 alone takes the folder's lock: held here, it fails, and rank 1, which would wait
    for rank 0 in the next collective, stops with the same error."""
    out = tmp_path / "run"
    with FolderLock(out, "the test"), pytest.raises(LrlabError) as refused:
        train_processes(config_from_dict(tiny(tmp_path)), out, nproc=2)
    assert str(refused.value).startswith(f"{out}: in use by PID {os.getpid()}")


def rows_of_a_batch(config: dict[str, Any], out: str) -> list[int]:
    """In a launched process (one of two): how many rows of step 0's batch this rank trains on,
    then the first 4 tokens of each (rows drawn at different offsets differ there)."""
    processes = from_environment()
    with joined(processes, torch.device("cpu")):
        trainer = Trainer(config_from_dict(config), Path(out), processes=processes)
        x, _ = trainer.batches.get(0, 0)
        return [len(x), *x[:, :4].flatten().tolist()]


@needs_gloo
def test_each_process_trains_its_own_share_of_the_batch(tmp_path: Path) -> None:
    config = tiny(tmp_path)
    first, second = launch(rows_of_a_batch, (config, str(tmp_path / "run")), 2)
    whole, _ = Trainer(config_from_dict(config), tmp_path / "one").batches.get(0, 0)
    assert first[0] == second[0] == 2
    assert first[1:] + second[1:] == whole[:, :4].flatten().tolist()


def test_lrlab_train_nproc_says_what_is_wrong_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(tiny(tmp_path)))
    arguments = ["train", "--config", str(path), "--out", str(tmp_path / "run"), "--nproc", "3"]
    assert main(arguments) == 2
    assert capsys.readouterr().err == (
        "lrlab: error: train.batch_size=4 must be a multiple of the 3 processes training the "
        "run (each takes an equal share of every batch)\n"
    )
