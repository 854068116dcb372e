"""Sweeps: grid expansion, validation, worker processes, divergence, resuming, LR sensitivity."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip("torch")

from lrlab.cli import main
from lrlab.errors import LrlabError
from lrlab.tunnel.sweep import load_sweep, lr_sensitivity, run_sweep


def sweep_file(tmp_path: Path, **changes: Any) -> Path:
    data = {
        "workers": 2,
        "base": {
            "model": {"d_model": 32, "n_layers": 2, "n_heads": 2},
            "data": {
                "corpus": "english",
                "max_bytes": 60_000,
                "cache_dir": str(tmp_path / "cache"),
            },
            "optim": {"grad_clip": 0.0},
            "train": {
                "steps": 16,
                "batch_size": 4,
                "seq_len": 32,
                "eval_interval": 8,
                "eval_batches": 2,
                "checkpoint_interval": 8,
            },
        },
        "grid": {"peak": [3e-3, 1000.0], "schedules": ["cosine(peak=1, total=16, warmup=2)"]},
        **changes,
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_grid_expansion_and_validation(tmp_path: Path) -> None:
    sweep = load_sweep(
        sweep_file(
            tmp_path,
            grid={
                "peak": [1e-3, 2e-3],
                "seeds": [0, 1],
                "widths": [32, 64],
                "schedules": [
                    "cosine(peak=1, total=16)",
                    {"name": "wsd", "peak": 1, "total": 16, "cooldown_fraction": 0.25},
                ],
            },
        )
    )
    runs = sweep.runs()
    assert len(runs) == 16 and len({name for name, _, _ in runs}) == 16
    name, data, point = runs[-1]
    assert name == "1-wsd_lr0.002_seed1_d64"
    assert data["train"]["schedule"]["peak"] == 2e-3 and data["model"]["d_model"] == 64
    assert point == {"schedule": "1:wsd", "peak": 2e-3, "seed": 1, "width": 64}
    with pytest.raises(LrlabError, match=r"grid\.peak\[0\]=-1 must be a positive number"):
        load_sweep(sweep_file(tmp_path, grid={"peak": [-1], "schedules": ["constant(peak=1)"]}))
    with pytest.raises(LrlabError, match=r"grid\.schedules\[0\]: .*has no 'peak' field"):
        load_sweep(
            sweep_file(
                tmp_path,
                grid={"peak": [1], "schedules": ["piecewise_linear(points=[[0, 1], [10, 0]])"]},
            )
        )
    with pytest.raises(LrlabError, match=r"run 0-cosine_lr1_seed0_d33.*multiple of"):
        load_sweep(
            sweep_file(
                tmp_path,
                grid={"peak": [1], "widths": [33], "schedules": ["cosine(peak=1, total=9)"]},
            )
        )
    with pytest.raises(LrlabError, match="unknown field 'worker'"):
        load_sweep(sweep_file(tmp_path, worker=2))
    with pytest.raises(LrlabError, match=r"threads_per_worker=0 must be an integer >= 1"):
        load_sweep(sweep_file(tmp_path, threads_per_worker=0))


def test_sweep_runs_in_workers_survives_divergence_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LRLAB_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    path = sweep_file(tmp_path)
    out = tmp_path / "sweep"
    log: list[str] = []
    results = run_sweep(load_sweep(path), out, log=log.append)
    status = {row["peak"]: row["status"] for row in results["runs"]}
    assert status == {3e-3: "finished", 1000.0: "diverged"}
    assert "2 to train with 2 worker(s)" in log[0]
    # Each worker knew it shared the machine with the other, and chose its threads for that.
    for row in results["runs"]:
        record = json.loads((out / "runs" / row["name"] / "record.json").read_text())
        assert record["threads"] == 1
        assert "shared by 2 runs at once" in record["threads_reason"]
    (group,) = results["lr_sensitivity"]
    finished = next(r for r in results["runs"] if r["status"] == "finished")
    # The diverged LR counts as the initial loss: the sensitivity is half the gap to it.
    expected = (group["initial_val_loss"] - finished["final_val_loss"]) / 2
    assert group["lr_sensitivity"] == pytest.approx(expected)
    assert group["best_peak"] == 3e-3
    saved = json.loads((out / "results.json").read_text())
    assert saved["runs"][0]["name"] == results["runs"][0]["name"]
    assert (out / "results.csv").read_text().startswith("name,schedule,peak,seed,width")

    # Running it again trains nothing; a run without a record is trained again.
    log.clear()
    assert run_sweep(load_sweep(path), out, log=log.append) == results
    assert "2 already done, 0 to train" in log[0]
    (out / "runs" / results["runs"][0]["name"] / "record.json").unlink()
    log.clear()
    again = run_sweep(load_sweep(path), out, log=log.append)
    assert "1 already done, 1 to train" in log[0]
    assert again["runs"][0]["status"] == "finished"


def test_sweep_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = sweep_file(
        tmp_path,
        threads_per_worker=1,
        grid={"peak": [3e-3], "schedules": ["constant(peak=1, warmup=2)"]},
    )
    out = tmp_path / "s"
    assert main(["sweep", "--config", str(path), "--out", str(out), "--workers", "1"]) == 0
    table = capsys.readouterr().out
    assert "0-constant_lr0.003_seed0" in table and "LR sensitivity" in table
    # threads_per_worker is the train.threads of every run.
    record = json.loads((out / "runs" / "0-constant_lr0.003_seed0" / "record.json").read_text())
    assert (record["threads"], record["threads_reason"]) == (1, "train.threads=1")


def test_lr_sensitivity_formula() -> None:
    def row(
        lr: float, loss: float | None, status: str = "finished", seed: int = 0
    ) -> dict[str, Any]:
        return {
            "schedule": "0:cosine",
            "width": None,
            "peak": lr,
            "seed": seed,
            "status": status,
            "final_val_loss": loss,
            "initial_val_loss": 5.0,
        }

    rows = [
        row(1e-3, 3.0),
        row(1e-3, 3.2, seed=1),
        row(3e-3, 2.5),
        row(1e-2, 6.0),
        row(3e-2, None, "diverged"),
        row(1e-1, None, "pending"),
    ]
    (group,) = lr_sensitivity(rows)
    # Capped mean losses per LR: 3.1, 2.5, 5.0 (6.0 capped at L0), 5.0 (diverged).
    assert group["lr_count"] == 4
    assert group["lr_sensitivity"] == pytest.approx(((3.1 - 2.5) + 0 + 2.5 + 2.5) / 4)
    assert group["best_peak"] == 3e-3 and math.isclose(group["best_final_val_loss"], 2.5)


def test_old_grid_name_peak_lr_still_works_with_a_deprecation_message(tmp_path, capsys):
    old = load_sweep(
        sweep_file(tmp_path, grid={"peak_lr": [1e-3], "schedules": ["constant(peak=1)"]})
    )
    assert old.peaks == [1e-3]
    assert "grid.peak_lr is deprecated: call it grid.peak" in capsys.readouterr().err
    both = {"peak": [1e-3], "peak_lr": [1e-3], "schedules": ["constant(peak=1)"]}
    with pytest.raises(LrlabError, match=r"give grid\.peak only"):
        load_sweep(sweep_file(tmp_path, grid=both))


@pytest.mark.parametrize(("gpus", "processes"), [(None, None), (1, None), (0.5, None), (2, 2)])
def test_a_run_that_reserves_several_gpus_trains_on_as_many_processes(
    tmp_path, monkeypatch, gpus, processes
):
    from lrlab.tunnel import pool, train

    calls = []
    monkeypatch.setattr(train, "train", lambda *a, **k: calls.append(None) or {"status": "ok"})
    monkeypatch.setattr(
        train, "train_processes", lambda *a, **k: calls.append(k["nproc"]) or {"status": "ok"}
    )
    config = {"train": {"steps": 4, "schedule": "constant(peak=1e-3)"}}
    job = pool.Job("a", config, tmp_path, pool.Resources(num_gpus=gpus))
    assert pool._train_job(pool._Task(job, 1, False, False))["status"] == "ok"
    assert calls == [processes]
