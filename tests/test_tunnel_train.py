"""The wind tunnel's loop: logs, resume after SIGKILL, branching, divergence, continual
pre-training, safe checkpoints and the `lrlab train` command. Tiny models on real text."""

from __future__ import annotations

import csv
import json
import os
import pickle
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
from lrlab.schedules import parse
from lrlab.tunnel import checkpoint
from lrlab.tunnel.config import config_from_dict
from lrlab.tunnel.train import RunState, Trainer, train
from tunnel_helpers import tiny_config

SRC = Path(__file__).resolve().parents[1] / "src"


def tiny(tmp_path: Path, **sections: dict[str, Any]) -> dict[str, Any]:
    """A run config of a few seconds (`tunnel_helpers.tiny_config`), sections overridden."""
    return tiny_config(tmp_path, sections=sections)


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def train_columns(path: Path) -> list[tuple[str, ...]]:
    """The deterministic columns of train.csv (tokens/s is a timing)."""
    keys = ("step", "lr", "loss", "grad_norm", "update_norm", "param_norm")
    return [tuple(row[key] for key in keys) for row in rows(path)]


def test_run_writes_the_run_format(tmp_path: Path) -> None:
    out = tmp_path / "run"
    record = train(config_from_dict(tiny(tmp_path, data={"eval_corpora": ["stdlib"]})), out)
    assert record["status"] == "finished" and record["steps_done"] == 30
    assert record["final_val_loss"] < record["initial_val_loss"]
    assert set(record["final_val_losses"]) == {"english", "stdlib"}
    steps = rows(out / "train.csv")
    assert [int(r["step"]) for r in steps] == list(range(30))
    schedule = parse("cosine(peak=3e-3, total=30, warmup=3)")
    assert [float(r["lr"]) for r in steps] == schedule(np.arange(30)).tolist()
    assert all(float(r["grad_norm"]) > 0 and float(r["param_norm"]) > 0 for r in steps)
    assert float(steps[0]["update_norm"]) == 0.0 < float(steps[5]["update_norm"])  # LR 0 at 0
    evals = rows(out / "eval.csv")
    assert list(evals[0]) == [
        "step",
        "lr",
        "loss",
        "val_loss_english",
        "val_loss_stdlib",
        "max_attn_logit_l0",
        "max_attn_logit_l1",
        "logit_mean",
        "logit_max",
        "log_z",
    ]
    assert [int(r["step"]) for r in evals] == [9, 19, 29]
    assert all(r["loss"] == r["val_loss_english"] for r in evals)
    assert json.loads((out / "eval.csv.schedule.json").read_text()) == schedule.to_spec()
    assert checkpoint.list_steps(out / "checkpoints") == [10, 20, 30]
    assert config_from_dict(json.loads((out / "config.json").read_text())).train.steps == 30
    with pytest.raises(LrlabError, match="already holds a run"):
        train(config_from_dict(tiny(tmp_path)), out)

    read_run = pytest.importorskip("lrlab.runs").read_run
    run = read_run(out / "eval.csv")
    assert list(run.steps) == [9, 19, 29]
    assert run.metadata["lr_source"] == "schedule"
    np.testing.assert_allclose(run.lr[:30], schedule(np.arange(30)))


def test_record_says_threads_and_tokens_per_s_counts_the_wall_clock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The record names the thread count and why; ``tokens_per_s`` (per row and in the record)
    counts the time the user waits, slow evaluations included."""
    config = tiny(tmp_path)
    del config["train"]["threads"]
    monkeypatch.setenv("LRLAB_THREADS", "1")
    evaluate = Trainer._evaluate

    def slow_evaluate(self: Trainer, step: int) -> None:
        time.sleep(0.5)
        evaluate(self, step)

    monkeypatch.setattr(Trainer, "_evaluate", slow_evaluate)
    out = tmp_path / "run"
    record = train(config_from_dict(config), out)
    assert (record["threads"], record["threads_reason"]) == (1, "LRLAB_THREADS=1")
    assert torch.get_num_threads() == 1
    tokens = 30 * 4 * 32
    # Evaluations after steps 9 and 19 come before the last row is written, all three before
    # the record: at least 1 s and 1.5 s of waiting.
    assert float(rows(out / "train.csv")[-1]["tokens_per_s"]) <= tokens / 1.0
    assert record["tokens_per_s"] <= tokens / 1.5


def test_keep_last_checkpoints_and_keep_steps(tmp_path: Path) -> None:
    out = tmp_path / "run"
    config = tiny(
        tmp_path, train={"checkpoint_interval": 5, "keep_checkpoints": 2, "keep_steps": [10]}
    )
    train(config_from_dict(config), out)
    assert checkpoint.list_steps(out / "checkpoints") == [10, 25, 30]


def test_resume_after_sigkill_matches_uninterrupted_run(tmp_path: Path) -> None:
    config = tiny(
        tmp_path,
        train={
            "steps": 200,
            "checkpoint_interval": 40,
            "eval_interval": 40,
            "schedule": "wsd(peak=3e-3, total=200, warmup=10, cooldown_fraction=0.2)",
        },
    )
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    killed = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    process = subprocess.Popen(
        [sys.executable, "-m", "lrlab", "train", "--config", str(path), "--out", str(killed)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    first = checkpoint.checkpoint_path(killed / "checkpoints", 40)
    deadline = time.monotonic() + 120
    while not first.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, process.stderr.read().decode()
    assert json.loads((killed / "record.json").read_text())["status"] == "running"
    assert len(rows(killed / "train.csv")) < 200  # killed mid-run

    resumed = train(config_from_dict(config), killed, resume=True)
    reference = train(config_from_dict(config), tmp_path / "reference")
    assert resumed["status"] == reference["status"] == "finished"
    assert train_columns(killed / "train.csv") == train_columns(
        tmp_path / "reference" / "train.csv"
    )
    assert rows(killed / "eval.csv") == rows(tmp_path / "reference" / "eval.csv")
    assert resumed["final_val_loss"] == reference["final_val_loss"]
    # Resuming a finished run changes nothing; a changed config is refused.
    assert train(config_from_dict(config), killed, resume=True) == resumed
    changed = tiny(tmp_path, model={"qk_norm": True}, train=config["train"])
    (killed / "record.json").unlink()
    with pytest.raises(LrlabError, match=r"model\.qk_norm changed"):
        train(config_from_dict(changed), killed, resume=True)


def test_branch_from_stable_checkpoint_equals_training_from_scratch(tmp_path: Path) -> None:
    stable = "constant(peak=3e-3, warmup=3)"
    decay = "wsd(peak=3e-3, total=30, warmup=3, cooldown_steps=8, decay=1-sqrt)"
    parent = tmp_path / "parent"
    train(
        config_from_dict(
            tiny(tmp_path, train={"schedule": stable, "keep_steps": [20], "keep_checkpoints": 1})
        ),
        parent,
    )
    assert 20 in checkpoint.list_steps(parent / "checkpoints")
    branch = tmp_path / "branch"
    record = train(
        config_from_dict(
            tiny(
                tmp_path,
                train={
                    "schedule": decay,
                    "branch_from": str(parent / "checkpoints" / "step_00000020.pt"),
                },
            )
        ),
        branch,
    )
    assert record["branch_step"] == 20
    scratch = tmp_path / "scratch"
    train(config_from_dict(tiny(tmp_path, train={"schedule": decay})), scratch)
    # The prefix is copied from the parent, the decay is trained: the same as from scratch.
    assert train_columns(branch / "train.csv") == train_columns(scratch / "train.csv")
    assert rows(branch / "eval.csv") == rows(scratch / "eval.csv")

    point = str(parent / "checkpoints" / "step_00000020.pt")
    wrong = "wsd(peak=3e-3, total=30, warmup=3, cooldown_steps=15)"  # decays before step 20
    with pytest.raises(LrlabError, match="LR .* at step 16 differs from the parent's"):
        train(
            config_from_dict(tiny(tmp_path, train={"schedule": wrong, "branch_from": point})),
            tmp_path / "wrong",
        )
    with pytest.raises(LrlabError, match=r"model\.d_model is 32 there, 64 here"):
        train(
            config_from_dict(
                tiny(
                    tmp_path, model={"d_model": 64}, train={"schedule": decay, "branch_from": point}
                )
            ),
            tmp_path / "wider",
        )
    with pytest.raises(LrlabError, match="branch point 30 is not before train.steps=30"):
        train(
            config_from_dict(tiny(tmp_path, train={"schedule": decay, "branch_from": str(parent)})),
            tmp_path / "late",
        )


def test_divergence_stops_cleanly_and_keeps_last_good_checkpoint(tmp_path: Path) -> None:
    explode = "join(schedules=[constant(peak=1e-3), constant(peak=1000)], boundaries=[12])"
    out = tmp_path / "run"
    record = train(
        config_from_dict(
            tiny(
                tmp_path,
                optim={"grad_clip": 0.0},
                train={"schedule": explode, "checkpoint_interval": 5},
            )
        ),
        out,
    )
    assert record["status"] == "diverged"
    step = record["diverged"]["step"]
    assert 12 <= step < 29 and "step" in record["diverged"]["reason"]
    assert int(rows(out / "train.csv")[-1]["step"]) == step
    saved = checkpoint.list_steps(out / "checkpoints")
    assert saved and saved[-1] <= step
    good = checkpoint.load(record["last_checkpoint"])
    assert all(torch.isfinite(v).all() for v in good["model"].values())


def test_continual_pretraining_with_replay(tmp_path: Path) -> None:
    stage_a = tmp_path / "a"
    train(config_from_dict(tiny(tmp_path, data={"eval_corpora": ["stdlib"]})), stage_a)
    config_b = tiny(
        tmp_path,
        data={"corpus": "stdlib", "replay_corpus": "english", "replay_fraction": 0.25},
        train={
            "init_from": str(stage_a),
            "steps": 20,
            "schedule": "rewarm_redecay(start=3e-4, peak=2e-3, warmup=4, total=20)",
        },
    )
    trainer = Trainer(config_from_dict(config_b), tmp_path / "b")
    saved = checkpoint.load(checkpoint.resolve(stage_a))
    for name, value in trainer.model.state_dict().items():
        assert torch.equal(value, saved["model"][name])
    assert trainer.batches.replay is not None
    record = trainer.run()
    assert record["init_from"].endswith("step_00000030.pt")
    assert set(record["final_val_losses"]) == {"stdlib", "english"}
    header = list(rows(tmp_path / "b" / "eval.csv")[0])
    assert header[:5] == ["step", "lr", "loss", "val_loss_stdlib", "val_loss_english"]
    # Stage B starts from A's weights: its initial loss on B is A's final loss on B.
    a_final = json.loads((stage_a / "record.json").read_text())["final_val_losses"]["stdlib"]
    assert record["initial_val_loss"] == pytest.approx(a_final, rel=1e-6)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_checkpoints_load_safely(tmp_path: Path) -> None:
    out = tmp_path / "run"
    train(config_from_dict(tiny(tmp_path, train={"steps": 10})), out)
    good = checkpoint.resolve(out)
    assert checkpoint.load(good)["step"] == 10

    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(LrlabError, match="truncated or corrupt"):
        checkpoint.load(truncated)

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.mkdir, (str(marker),))

    zipped = tmp_path / "evil.pt"
    torch.save({"format": checkpoint.FORMAT, "model": Evil()}, zipped)
    raw = tmp_path / "evil.pkl"
    raw.write_bytes(pickle.dumps(Evil()))
    for path in (zipped, raw):
        with pytest.raises(LrlabError, match="refused to load"):
            checkpoint.load(path)
    assert not marker.exists()

    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": torch.zeros(2)}, foreign)
    with pytest.raises(LrlabError, match="not an lrlab tunnel checkpoint"):
        checkpoint.load(foreign)
    with pytest.raises(LrlabError, match="no checkpoints"):
        checkpoint.resolve(tmp_path / "empty")


def test_run_state_keeps_the_checkpoint_layout(tmp_path: Path) -> None:
    # Checkpoints written before `RunState` existed hold its fields as top-level keys; keeping
    # that layout is what lets those runs resume (and older lrlab read newer checkpoints).
    out = tmp_path / "run"
    train(config_from_dict(tiny(tmp_path, train={"steps": 10})), out)
    payload = checkpoint.load(checkpoint.resolve(out))
    assert set(payload) == {
        "format",
        "version",
        "step",
        "model",
        "optimizer",
        "rng",
        "ema",
        "min_ema",
        "elapsed_s",
        "initial_val_loss",
        "best_val_loss",
        "last_val",
        "last_train_loss",
        "origin",
        "config",
        "schedule",
        "vocab_size",
        "tokenizer",
    }
    state = RunState.from_checkpoint(payload)
    assert state.step == 10 and state.elapsed_s > 0 and set(state.last_val) == {"english"}
    assert state.to_checkpoint() == {key: payload[key] for key in state.to_checkpoint()}
    record = json.loads((out / "record.json").read_text())
    assert record["best_val_loss"] == state.best_val_loss
    assert record["final_train_loss"] == state.last_train_loss


def test_cli_train_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    config = tiny(tmp_path)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "cli"
    assert (
        main(
            [
                "train",
                "--config",
                str(path),
                "--out",
                str(out),
                "--steps",
                "20",
                "--schedule",
                "linear(peak=2e-3, total=20, warmup=2)",
                "--set",
                "model.qk_norm=true",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "finished after 20 steps" in printed
    saved = json.loads((out / "config.json").read_text())
    assert saved["model"]["qk_norm"] is True and saved["train"]["schedule"]["name"] == "linear"
    assert main(["train", "--out", str(out), "--resume"]) == 0

    assert (
        main(
            [
                "train",
                "--config",
                str(path),
                "--out",
                str(tmp_path / "x"),
                "--set",
                "model.n_heads=3",
            ]
        )
        == 2
    )
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "model.d_model=32 must be a multiple of" in error
    assert main(["train", "--config", str(path)]) == 2
    assert "no run folder" in capsys.readouterr().err


def test_tensorboard_log_reads_back_as_a_run(tmp_path: Path) -> None:
    """With train.tensorboard, the scalars land in event files that lrlab's own reader (and so
    `lrlab fit`) takes as a run."""
    pytest.importorskip("tensorboard")
    from lrlab.runs import read_run

    out = tmp_path / "run"
    train(config_from_dict(tiny(tmp_path, train={"tensorboard": True})), out)
    run = read_run(out / "tensorboard", columns={"loss": "eval/loss", "lr": "eval/lr"})
    evals = rows(out / "eval.csv")
    assert run.steps.tolist() == [int(r["step"]) for r in evals]
    np.testing.assert_allclose(run.loss, [float(r["loss"]) for r in evals], rtol=1e-6)
