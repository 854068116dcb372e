"""Data safety under hostile or unlucky use (issue 18, part A): one writer per folder, no writes
outside ``--out``, unique sweep and study run names, changed configs refused or extended, crafted
checkpoints and damaged logs refused in one line, orphaned temporaries removed, Ctrl-C on a sweep
stopping cleanly. Every refusal is a one-line ``lrlab: error:`` and exit status 2."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

torch = pytest.importorskip("torch")

from lrlab.cli import main
from lrlab.errors import LrlabError
from lrlab.tunnel import checkpoint
from lrlab.tunnel.config import config_from_dict
from lrlab.tunnel.sweep import load_sweep, run_sweep
from lrlab.tunnel.train import train
from tunnel_helpers import tiny_config

SRC = Path(__file__).resolve().parents[1] / "src"
ENV = {**os.environ, "PYTHONPATH": str(SRC), "LRLAB_THREADS": "1"}


def tiny(tmp_path: Path, **train_fields: Any) -> dict[str, Any]:
    """A run config of about a second (`tunnel_helpers.tiny_config`) with a constant LR."""
    return tiny_config(tmp_path, **{"schedule": "constant(peak=3e-3, warmup=3)", **train_fields})


def write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(json.dumps(data))
    return path


def one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run the command; assert it failed with exit status 2 and one ``lrlab: error:`` line."""
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert error.startswith("lrlab: error: ") and error.count("\n") == 1, error
    assert "Traceback" not in error
    return error


def train_rows(path: Path) -> list[tuple[str, ...]]:
    """The deterministic columns of train.csv (tokens/s is a timing)."""
    with path.open(newline="") as file:
        return [tuple(row[:6]) for row in list(csv.reader(file))[1:]]


def wait_for(path: Path, process: subprocess.Popen[Any], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, "the process ended before writing " + str(path)
        assert time.monotonic() < deadline, f"no {path} after {timeout} s"
        time.sleep(0.01)


# --- one writer per folder ----------------------------------------------------------------------


def test_a_second_trainer_on_a_running_folder_is_refused_naming_the_first(
    tmp_path: Path,
) -> None:
    """Two ``lrlab train --resume`` on one folder (and a fresh ``lrlab train`` there) while the
    first trains: the second writers are refused, and the folder is the first run's alone."""
    config = write(tmp_path / "config.json", tiny(tmp_path, steps=50_000, checkpoint_interval=20))
    out = tmp_path / "run"
    command = [sys.executable, "-m", "lrlab", "train", "--config", str(config), "--out", str(out)]
    first = subprocess.Popen([*command, "--resume"], env=ENV, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(checkpoint.checkpoint_path(out / "checkpoints", 20), first)
        for extra in (["--resume"], ["--seed", "1"]):
            second = subprocess.run(
                [*command, *extra],
                env=ENV,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            assert second.returncode == 2, second.stderr
            assert second.stderr.count("\n") == 1
            assert f"{out}: in use by PID {first.pid} on host" in second.stderr
            assert "lrlab train" in second.stderr
        assert first.poll() is None  # still training, alone
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    saved = json.loads((out / "config.json").read_text())
    assert saved["train"]["seed"] == 0
    steps = [int(row[0]) for row in train_rows(out / "train.csv")]
    assert steps == list(range(len(steps)))  # one writer's rows, in order


def test_two_trainers_started_at_once_one_wins(tmp_path: Path) -> None:
    """Started together with different seeds: exactly one trains, the other is refused before it
    writes anything, and every file of the folder belongs to the winner."""
    out = tmp_path / "run"
    processes = []
    for seed in (0, 1):
        config = write(tmp_path / f"seed{seed}.json", tiny(tmp_path, steps=60, seed=seed))
        processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "lrlab",
                    "train",
                    "--config",
                    str(config),
                    "--out",
                    str(out),
                ],
                env=ENV,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    results = [(p.wait(timeout=300), p.stderr.read() if p.stderr else "") for p in processes]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser = next(error for code, error in results if code == 2)
    assert "in use by PID" in loser or "already holds a run" in loser
    seed = next(s for s, (code, _) in enumerate(results) if code == 0)
    assert json.loads((out / "config.json").read_text())["train"]["seed"] == seed
    assert json.loads((out / "record.json").read_text())["seed"] == seed
    for step in checkpoint.list_steps(out / "checkpoints"):
        saved = checkpoint.load(checkpoint.checkpoint_path(out / "checkpoints", step))
        assert saved["config"]["train"]["seed"] == seed


# --- outputs checked before any work -------------------------------------------------------------


def test_out_pointing_at_a_file_fails_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep")
    config = write(tmp_path / "config.json", tiny(tmp_path))
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(
        yaml.safe_dump(
            {"base": tiny(tmp_path), "grid": {"peak": [1e-3], "schedules": ["constant(peak=1)"]}}
        )
    )
    began = time.perf_counter()
    for argv in (
        ["train", "--config", str(config), "--out", str(a_file)],
        ["train", "--config", str(config), "--out", str(a_file / "run")],
        ["sweep", "--config", str(sweep), "--out", str(a_file)],
        ["study", "--out", str(a_file)],
        ["study", "--out", str(a_file / "study")],
    ):
        assert "notes.txt" in one_line_error(capsys, argv)
    assert time.perf_counter() - began < 20  # nothing trained or fitted first
    assert a_file.read_text() == "keep"


# --- sweeps ---------------------------------------------------------------------------------------


def sweep_data(tmp_path: Path, peaks: list[float], **changes: Any) -> dict[str, Any]:
    base = tiny(tmp_path, steps=16, eval_interval=8, checkpoint_interval=8)
    del base["train"]["schedule"]
    return {
        "workers": 1,
        "base": base,
        "grid": {"peak": peaks, "schedules": ["cosine(peak=1, total=16, warmup=2)"]},
        **changes,
    }


def test_sweep_names_are_unique_for_distinct_values_and_duplicates_are_errors(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep_data(tmp_path, [1.0e-3, 1.0004e-3, 3e-3])))
    names = [name for name, _, _ in load_sweep(path).runs()]
    assert len(set(names)) == 3
    # A value whose short name is its own keeps the name earlier versions gave it.
    assert "0-cosine_lr0.003_seed0" in names
    assert "0-cosine_lr0.001_seed0" in names and "0-cosine_lr0.0010004_seed0" in names
    for grid in (
        {"peak": [1e-3, 0.001], "schedules": ["cosine(peak=1, total=16)"]},
        {"peak": [1e-3], "seeds": [1, 1], "schedules": ["cosine(peak=1, total=16)"]},
        {"peak": [1e-3], "schedules": ["cosine(peak=1, total=16)", "cosine(total=16, peak=2)"]},
    ):
        path.write_text(yaml.safe_dump({**sweep_data(tmp_path, [1.0]), "grid": grid}))
        with pytest.raises(LrlabError, match="duplicate grid point"):
            load_sweep(path)


def test_sweep_rerun_with_changed_steps_is_refused_before_training(tmp_path: Path) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep_data(tmp_path, [3e-3])))
    out = tmp_path / "sweep"
    first = run_sweep(load_sweep(path), out, log=lambda _: None)
    assert [row["status"] for row in first["runs"]] == ["finished"]
    changed = sweep_data(tmp_path, [3e-3])
    changed["base"]["train"]["steps"] = 24
    changed["grid"]["schedules"] = ["cosine(peak=1, total=24, warmup=2)"]
    path.write_text(yaml.safe_dump(changed))
    with pytest.raises(LrlabError, match=r"0-cosine_lr0\.003_seed0.*train\.schedule"):
        run_sweep(load_sweep(path), out, log=lambda _: None)
    results = json.loads((out / "results.json").read_text())
    assert results["runs"][0]["steps_done"] == 16  # nothing was trained or rewritten


# --- changed configs on resume --------------------------------------------------------------------


def test_resume_with_more_steps_extends_a_finished_run_else_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    config = write(tmp_path / "config.json", tiny(tmp_path))
    assert main(["train", "--config", str(config), "--out", str(out)]) == 0
    capsys.readouterr()
    # Another schedule, fewer steps, another seed: refused, naming the fields.
    for argv, fields in (
        (["--schedule", "cosine(peak=3e-3, total=60, warmup=3)"], "train.schedule"),
        (["--steps", "20"], "train.steps"),
        (["--seed", "1"], "train.seed"),
        (["--steps", "60", "--schedule", "constant(peak=1e-3)"], "train.schedule"),
    ):
        error = one_line_error(capsys, ["train", "--out", str(out), "--resume", *argv])
        assert fields in error and "config.json" in error
    assert json.loads((out / "record.json").read_text())["steps_done"] == 30
    # More steps of the same schedule: the run is extended to them.
    assert main(["train", "--out", str(out), "--resume", "--steps", "60"]) == 0
    record = json.loads((out / "record.json").read_text())
    assert record["status"] == "finished" and record["steps_done"] == 60
    assert record["extended_from"] == 30
    reference = tmp_path / "reference"
    train(config_from_dict(tiny(tmp_path, steps=60)), reference)
    assert train_rows(out / "train.csv") == train_rows(reference / "train.csv")
    assert json.loads((out / "config.json").read_text())["train"]["steps"] == 60
    # The end-of-run evaluation of the 30-step run stays: a real measurement at step 29.
    with (out / "eval.csv").open() as file:
        assert [int(row["step"]) for row in csv.DictReader(file)] == [9, 19, 29, 39, 49, 59]


def test_a_diverged_run_is_not_extended(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    explode = "join(schedules=[constant(peak=1e-3), constant(peak=1000)], boundaries=[12])"
    out = tmp_path / "run"
    data = tiny(tmp_path, schedule=explode)
    data["optim"] = {"grad_clip": 0.0}
    assert train(config_from_dict(data), out)["status"] == "diverged"
    error = one_line_error(capsys, ["train", "--out", str(out), "--resume", "--steps", "60"])
    assert "diverged" in error


# --- run folders of a study -----------------------------------------------------------------------


class Stop(Exception):
    """Raised instead of analysing: the test only needs the runs trained."""


def test_study_run_names_cannot_leave_the_output_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lrlab.study

    def stop(*args: Any, **kwargs: Any) -> None:
        raise Stop

    monkeypatch.setattr(lrlab.study, "analyse", stop)
    names = ["x/../../../escaped", "<b>/nested</b>", "..", "constant"]
    config = {
        "budget": 20,
        "warmup": 2,
        "fit_schedules": {name: "constant(peak={peak}, warmup={warmup})" for name in names},
        "verify": ["recommended"],
        "tunnel": {
            "model": {"d_model": 32, "n_layers": 1, "n_heads": 2},
            "data": {"corpus": "english", "max_bytes": 60_000},
            "train": {"batch_size": 2, "seq_len": 16, "eval_interval": 10, "progress": "off"},
        },
    }
    config["tunnel"]["data"]["cache_dir"] = str(tmp_path / "cache")
    workspace = tmp_path / "work"
    out = workspace / "deep" / "study"
    with pytest.raises(Stop):
        lrlab.study.study_default(out, config)
    written = [p.relative_to(workspace) for p in workspace.rglob("*")]
    assert [p for p in written if p.parts[:2] != ("deep", "study") and p != Path("deep")] == []
    folders = sorted(p.name for p in (out / "runs").iterdir())
    assert len(folders) == 4 and all(
        set(name) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.%+-")
        for name in folders
    )
    assert (out / "runs" / folders[0] / "record.json").exists()


def test_study_of_two_logs_with_one_file_name_scores_both(tmp_path: Path) -> None:
    from lrlab.runs import Run
    from lrlab.study import unique_run_names

    def run(source: str) -> Run:
        name = Path(source).stem
        return Run(name, [1e-3] * 3, [0, 1, 2], [3.0, 2.5, 2.4], source=source)

    a, b = run("logs/25M/constant_24000.csv"), run("logs/100M/constant_24000.csv")
    named = unique_run_names([a, b, run("logs/25M/cosine_24000.csv")])
    assert [r.name for r in named] == ["25M/constant_24000", "100M/constant_24000", "cosine_24000"]
    with pytest.raises(LrlabError, match="given twice"):
        unique_run_names([a, run("logs/25M/constant_24000.csv")])


# --- crafted checkpoints, damaged logs, orphaned temporaries -------------------------------------


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 20-step run with checkpoints at steps 10 and 20."""
    root = tmp_path_factory.mktemp("finished")
    out = root / "run"
    train(config_from_dict(tiny(root, steps=20)), out)
    return out


def crafted(payload: dict[str, Any], change: str) -> dict[str, Any]:
    payload = {**payload, "model": dict(payload["model"])}
    if change == "missing key":
        del payload["rng"]
    elif change == "shape mismatch":
        key = next(iter(payload["model"]))
        payload["model"][key] = torch.zeros(3, 5)
    elif change == "missing weight":
        payload["model"].pop(next(iter(payload["model"])))
    elif change == "bad RNG state":
        payload["rng"] = torch.randint(0, 256, payload["rng"].shape, dtype=torch.uint8)
    elif change == "short RNG state":
        payload["rng"] = payload["rng"][:10]
    elif change == "negative step":
        payload["step"] = -5
    elif change == "step beyond the run":
        payload["step"] = 10**9
    elif change == "optimizer moments of another shape":
        state = {k: dict(v) for k, v in payload["optimizer"]["state"].items()}
        state[0]["exp_avg"] = torch.zeros(7)
        payload["optimizer"] = {**payload["optimizer"], "state": state}
    elif change == "run state of the wrong type":
        payload["last_val"] = "a string"
    elif change == "no run state":
        del payload["min_ema"]
    return payload


CHANGES = [
    "missing key",
    "shape mismatch",
    "missing weight",
    "bad RNG state",
    "short RNG state",
    "negative step",
    "step beyond the run",
    "optimizer moments of another shape",
    "run state of the wrong type",
    "no run state",
]


@pytest.mark.parametrize("change", CHANGES)
def test_crafted_checkpoints_are_one_line_errors(
    finished_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], change: str
) -> None:
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    last = checkpoint.checkpoint_path(out / "checkpoints", 20)
    payload = checkpoint.load(last)
    torch.save(crafted(payload, change), last)
    # Resumed to more steps, the run starts from the crafted checkpoint.
    error = one_line_error(capsys, ["train", "--out", str(out), "--resume", "--steps", "30"])
    assert "step_00000020.pt" in error
    # Branched from it, too.
    config = tiny(finished_run.parent, steps=30, branch_from=str(last))
    argv = ["train", "--config", str(write(tmp_path / "b.json", config))]
    error = one_line_error(capsys, [*argv, "--out", str(tmp_path / "branch")])
    assert "step_00000020.pt" in error


@pytest.mark.parametrize(
    "damage",
    [
        "not UTF-8",
        "NUL byte",
        "a field short",
        "a step that is not a number",
        "steps out of order",
        "file missing",
    ],
)
def test_a_damaged_log_on_resume_is_a_one_line_error(
    finished_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    log = out / "train.csv"
    lines = log.read_bytes().splitlines(keepends=True)
    if damage == "not UTF-8":
        lines[5] = lines[5].replace(b",", b"\xff,", 1)
    elif damage == "NUL byte":
        lines[5] = lines[5].replace(b",", b"\x00,", 1)
    elif damage == "a field short":
        lines[5] = lines[5].rsplit(b",", 1)[0] + b"\n"
    elif damage == "a step that is not a number":
        lines[5] = b"x" + lines[5]
    elif damage == "steps out of order":
        lines[5], lines[6] = lines[6], lines[5]
    if damage == "file missing":
        log.unlink()
    else:
        log.write_bytes(b"".join(lines))
    before = log.read_bytes() if log.exists() else None
    error = one_line_error(capsys, ["train", "--out", str(out), "--resume", "--steps", "30"])
    assert "train.csv" in error
    if damage == "steps out of order":
        assert "line 7" in error  # step 5 (swapped to line 6), then step 4
    elif damage not in ("file missing", "NUL byte"):
        assert "line 6" in error
    assert (log.read_bytes() if log.exists() else None) == before  # left as it was


KILL_IN_CHECKPOINT_WRITE = """
import os, signal, sys
import lrlab.atomic
from lrlab.cli import main
real = os.replace
def replace(source, destination):
    if str(destination).endswith("step_00000020.pt"):
        os.kill(os.getpid(), signal.SIGKILL)  # killed after writing, before the rename
    real(source, destination)
lrlab.atomic.os.replace = replace
sys.exit(main(sys.argv[1:]))
"""


def test_resume_removes_checkpoint_temporaries_of_a_killed_write(tmp_path: Path) -> None:
    out = tmp_path / "run"
    config = write(tmp_path / "config.json", tiny(tmp_path))
    killed = subprocess.run(
        [sys.executable, "-c", KILL_IN_CHECKPOINT_WRITE, "train", "--config", str(config)]
        + ["--out", str(out)],
        env=ENV,
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    orphans = [p for p in (out / "checkpoints").iterdir() if p.name.startswith(".step_00000020")]
    assert len(orphans) == 1 and orphans[0].stat().st_size > 10_000
    assert train(config_from_dict(tiny(tmp_path)), out, resume=True)["status"] == "finished"
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [
        "step_00000010.pt",
        "step_00000020.pt",
        "step_00000030.pt",
    ]


# --- wrong types in configs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"model": 5},
        {"model": [1, 2]},
        {"model": {"d_model": "wide"}},
        {"model": {"d_model": [32]}},
        {"model": {"qk_norm": "yes"}},
        {"optim": {"beta1": "high"}},
        {"optim": {"weight_decay": {"a": 1}}},
        {"data": {"corpus": 5}},
        {"data": {"eval_corpora": "stdlib"}},
        {"data": {"eval_corpora": [1, 2]}},
        {"train": "fast"},
        {"train": {"steps": "many"}},
        {"train": {"steps": 1.5}},
        {"train": {"steps": True}},
        {"train": {"schedule": 5}},
        {"train": {"schedule": ["cosine"]}},
        {"train": {"schedule": {"peak": 1}}},
        {"train": {"keep_steps": "10"}},
        {"train": {"keep_steps": [[10]]}},
        {"out": 5},
        {"out": ["a"]},
    ],
)
def test_wrong_types_in_a_run_config_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict[str, Any]
) -> None:
    data = tiny(tmp_path)
    for section, value in change.items():
        if isinstance(value, dict) and isinstance(data.get(section), dict):
            data[section] = {**data[section], **value}
        else:
            data[section] = value
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    error = one_line_error(capsys, ["train", "--config", str(path), "--out", str(tmp_path / "r")])
    assert "config.yaml" in error
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    "change",
    [
        {"base": 5},
        {"base": {"train": [1]}},
        {"base": {"train": "x"}},
        {"base": {"model": 5}},
        {"grid": {"peak": "x", "schedules": ["constant(peak=1)"]}},
        {"grid": {"peak": [1e-3], "schedules": [5]}},
        {"grid": {"peak": [1e-3], "schedules": [None]}},
        {"grid": {"peak": [1e-3], "schedules": [["constant"]]}},
        {"grid": {"peak": [1e-3], "schedules": "constant(peak=1)"}},
        {"grid": {"peak": [1e-3], "schedules": ["constant(peak=1)"], "seeds": ["a"]}},
        {"grid": {"peak": [1e-3], "schedules": ["constant(peak=1)"], "seeds": [[0]]}},
        {"grid": {"peak": [1e-3], "schedules": ["constant(peak=1)"], "widths": [{"a": 1}]}},
        {"grid": {"peak": [1e-3], "schedules": ["constant(peak=1)"], "widths": ["wide"]}},
        {"grid": 5},
        {"grid": [1]},
        {"workers": "2"},
        {"out": 5},
        {"out": {"a": 1}},
    ],
)
def test_wrong_types_in_a_sweep_config_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict[str, Any]
) -> None:
    data = {**sweep_data(tmp_path, [1e-3]), **change}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data))
    error = one_line_error(capsys, ["sweep", "--config", str(path), "--out", str(tmp_path / "s")])
    assert "sweep.yaml" in error
    assert not (tmp_path / "s").exists()


# --- Ctrl-C on a sweep --------------------------------------------------------------------------


def test_ctrl_c_on_a_sweep_stops_cleanly_and_it_resumes(tmp_path: Path) -> None:
    data = sweep_data(tmp_path, [1e-3, 2e-3, 3e-3, 4e-3], workers=2)
    data["base"]["train"].update(steps=200, checkpoint_interval=50, eval_interval=50)
    data["grid"]["schedules"] = ["cosine(peak=1, total=200, warmup=2)"]
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data))
    out = tmp_path / "sweep"
    sweep = subprocess.Popen(
        [sys.executable, "-m", "lrlab", "sweep", "--config", str(path), "--out", str(out)],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    name = "0-cosine_lr0.001_seed0"
    wait_for(out / "runs" / name / "checkpoints" / "step_00000050.pt", sweep)
    os.killpg(sweep.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    _, error = sweep.communicate(timeout=120)
    assert sweep.returncode == 130, error
    assert "Traceback" not in error and "KeyboardInterrupt" not in error
    assert error.rstrip().splitlines()[-1].startswith("lrlab: interrupted")
    # Run again, it completes: the interrupted runs resume (their locks died with them).
    results = run_sweep(load_sweep(path), out, log=lambda _: None)
    assert [row["status"] for row in results["runs"]] == ["finished"] * 4
