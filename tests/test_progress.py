"""Progress and silence: long work says how it goes, also when its output is not a terminal.

`lrlab train` piped (lines, not a bar), runs of a pool side by side, what `--resume` found,
`lrlab optimize` every few seconds, and the study's short lines about a free-form
recommendation with its nearest simple schedule.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import re
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lrlab.cli import main
from lrlab.design import ticker as design_ticker
from lrlab.design.optimize import forecast, optimize_schedule
from lrlab.design.simple_family import is_simple, nearest_simple
from lrlab.errors import LrlabError
from lrlab.laws import get_law
from lrlab.report.study_report import Analysis
from lrlab.runs import Run
from lrlab.schedules import from_spec, parse
from lrlab.study import TunnelRun, recommend, short_description, train_tunnel_runs
from tunnel_helpers import tiny_config

LINE = re.compile(
    r"lrlab: train (?P<name>\S+): step (?P<done>\d+)/(?P<total>\d+) loss \d+\.\d{4} "
    r"\d+\.\dk tok/s, \d+m\d\ds left"
)
PEAK, WARMUP, BUDGET = 3e-4, 100, 2000
WSD = f"peak={PEAK}, total={BUDGET}, warmup={WARMUP}"


def tiny_run(tmp_path: Path, steps: int = 30, **train: Any) -> dict[str, Any]:
    """A run config of a second or two (`tunnel_helpers.tiny_config`), progress as configured
    by default."""
    data = tiny_config(tmp_path, steps=steps, **train)
    if "progress" not in train:
        del data["train"]["progress"]
    return data


def lrlab(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """`lrlab ARGS` in a new process, stdout and stderr piped (not a terminal)."""
    env = {**os.environ, "LRLAB_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "lrlab", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )


# --- lrlab train ---------------------------------------------------------------------------------


def test_train_piped_prints_progress_lines_and_progress_off_silences_them(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    config = tmp_path / "run.json"
    config.write_text(json.dumps(tiny_run(tmp_path, progress_seconds=0)))
    shown = lrlab(["train", "--config", str(config), "--out", "shown"], tmp_path)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stderr.splitlines()
    progress = [match for line in lines if (match := LINE.fullmatch(line))]
    # No interval: a line after every step, each its own line (no bar redrawn with \r).
    assert [int(match["done"]) for match in progress] == list(range(1, 31))
    assert {match["name"] for match in progress} == {"shown"}
    assert "\r" not in shown.stderr and all(line.startswith("lrlab: ") for line in lines)

    silent = lrlab(
        ["train", "--config", str(config), "--out", "silent", "--progress", "off"], tmp_path
    )
    assert silent.returncode == 0, silent.stderr
    assert silent.stderr == ""
    assert "silent: finished after 30 steps" in silent.stdout


def clock(monkeypatch: pytest.MonkeyPatch, module: types.ModuleType, step: float) -> None:
    """Make `module`'s ``time.perf_counter`` advance by `step` seconds on every reading."""
    now = [0.0]

    def perf_counter() -> float:
        now[0] += step
        return now[0]

    monkeypatch.setattr(module, "time", types.SimpleNamespace(perf_counter=perf_counter))


def test_progress_lines_come_every_interval_and_at_the_end(monkeypatch: pytest.MonkeyPatch) -> None:
    from lrlab.tunnel import record

    clock(monkeypatch, record, 1.0)  # every step takes a second
    stream = io.StringIO()
    progress = record.Progress("runs/a", 95, 0, "lines", every=10.0, stream=stream)
    for step in range(95):
        progress.update(step, 3.0, 1000.0)
    progress.close()
    done = [
        int(match["done"]) for line in stream.getvalue().splitlines() if (match := LINE.match(line))
    ]
    assert len(done) == 10 and done[-1] == 95  # at most one line in 10 s, and the last step
    assert all(later - earlier >= 9 for earlier, later in itertools.pairwise(done[:-1]))


def test_progress_style_is_a_bar_on_a_terminal_only() -> None:
    from lrlab.tunnel.record import progress_style

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert progress_style("auto", Terminal()) == "bar"
    assert progress_style("auto", io.StringIO()) == "lines"
    assert progress_style("lines", Terminal()) == "lines"
    assert progress_style("on", io.StringIO()) == "bar"
    assert progress_style("off", Terminal()) == "off"


def test_runs_of_a_pool_print_progress_lines_side_by_side(tmp_path: Path) -> None:
    """Workers of the pool (spawned processes) write their lines to the user's stderr."""
    pytest.importorskip("torch")
    base = tiny_run(tmp_path, steps=20, progress_seconds=0)
    del base["train"]["schedule"]
    sweep = {
        "base": base,
        "grid": {"peak": [1e-3, 3e-3], "schedules": [{"name": "cosine", "peak": 1, "total": 20}]},
        "workers": 2,
    }
    (tmp_path / "sweep.json").write_text(json.dumps(sweep))
    result = lrlab(["sweep", "--config", "sweep.json", "--out", "sweep"], tmp_path)
    assert result.returncode == 0, result.stderr
    ends = {
        match["name"]
        for line in result.stderr.splitlines()
        if (match := LINE.fullmatch(line)) and match["done"] == "20"
    }
    assert ends == {"sweep/runs/0-cosine_lr0.001_seed0", "sweep/runs/0-cosine_lr0.003_seed0"}


class Killed(Exception):
    """A stand-in for a kill in the middle of training."""


def killed_at(monkeypatch: pytest.MonkeyPatch, at: int) -> None:
    """Make training stop with `Killed` when it reaches step `at`."""
    from lrlab.tunnel.train import Trainer

    original = Trainer.train_step

    def train_step(self: Trainer, step: int) -> Any:
        if step == at:
            raise Killed
        return original(self, step)

    monkeypatch.setattr(Trainer, "train_step", train_step)


def test_resume_says_where_it_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("torch")
    from lrlab.tunnel.config import config_from_dict
    from lrlab.tunnel.train import train

    config = config_from_dict(tiny_run(tmp_path, checkpoint_interval=20, progress_seconds=1e6))
    for folder, at in (("early", 12), ("late", 25)):  # the first checkpoint is at step 20
        with monkeypatch.context() as patch, pytest.raises(Killed):
            killed_at(patch, at)
            train(config, tmp_path / folder)
    capsys.readouterr()

    train(config, tmp_path / "early", resume=True)
    assert f"lrlab: train {tmp_path / 'early'}: no checkpoint yet: starting from step 0\n" in (
        capsys.readouterr().err
    )
    train(config, tmp_path / "late", resume=True)
    err = capsys.readouterr().err
    assert f"lrlab: train {tmp_path / 'late'}: resumed from step 20 of 30\n" in err
    record = train(config, tmp_path / "late", resume=True)
    assert record["status"] == "finished"
    assert capsys.readouterr().err == (
        f"lrlab: train {tmp_path / 'late'}: already finished (30 steps); nothing to train\n"
    )
    config.train.progress = "off"
    train(config, tmp_path / "late", resume=True)
    assert capsys.readouterr().err == ""


# --- design --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def law():
    """The momentum law fitted (in half a second) to a constant and a cosine run whose losses
    follow a power law in the LR area with a drop for lower LRs (synthetic)."""
    runs = []
    for name, spec in (
        ("constant", f"constant(peak={PEAK}, warmup={WARMUP})"),
        ("cosine", f"cosine(peak={PEAK}, total={BUDGET}, warmup={WARMUP})"),
    ):
        lr = parse(spec)(np.arange(BUDGET))
        steps = np.arange(WARMUP, BUDGET, 10)
        area = np.cumsum(lr)[steps]
        loss = 3.0 + 0.5 * area**-0.5 + 300.0 * (PEAK - lr[steps])
        runs.append(Run(name=name, lr=lr, steps=steps, loss=loss))
    return get_law("momentum").fit(runs)


def test_optimize_reports_its_search_every_few_seconds(law, monkeypatch) -> None:
    messages: list[str] = []
    clock(monkeypatch, design_ticker, 1.0)  # every forecast takes a second
    optimize_schedule(
        law, BUDGET, peak=PEAK, warmup=WARMUP, progress=messages.append, progress_seconds=60
    )
    pattern = re.compile(
        r"optimize: (?P<what>.+): (?P<count>\d+) forecasts, lowest final loss \d+\.\d{4}, "
        r"(?P<seconds>\d+) s"
    )
    matches = [pattern.fullmatch(message) for message in messages]
    assert matches and all(matches), messages
    seconds = [int(match["seconds"]) for match in matches]
    assert all(later - earlier >= 60 for earlier, later in itertools.pairwise(seconds))
    whats = {match["what"] for match in matches}
    assert any(re.fullmatch(r"free-form search \(start [1-4] of 4\)", what) for what in whats)
    assert any(what.startswith("wsd schedules for 2000 steps (decay shape ") for what in whats)
    assert any(what.startswith("two_stage schedules") for what in whats)
    assert [int(match["count"]) for match in matches] == sorted(
        int(match["count"]) for match in matches
    )


def test_optimize_command_prints_progress_on_stderr(law, tmp_path, monkeypatch, capsys) -> None:
    law.save(tmp_path / "fit.json")
    clock(monkeypatch, design_ticker, 10.0)  # every forecast takes 10 s: a line each
    assert main(["optimize", str(tmp_path / "fit.json"), "--budget", str(BUDGET)]) == 0
    captured = capsys.readouterr()
    assert "lrlab: optimize: free-form search (start 1 of 4): 1 forecasts" in captured.err
    assert "optimize:" not in captured.out


# --- the study's lines and the nearest simple schedule -------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [
        f"wsd({WSD}, cooldown_fraction=0.2, decay=1-sqrt, end_ratio=0.01)",
        f"wsd({WSD}, cooldown_fraction=0.137, decay=exponential, end_ratio=0.05)",
        f"wsd({WSD}, cooldown_fraction=0.3, decay=linear)",
        f"two_stage(peak={PEAK}, warmup={WARMUP}, drop_step=1500, low=3e-5)",
    ],
)
def test_nearest_simple_schedule_of_a_simple_one_is_itself(law, spec) -> None:
    schedule = parse(spec)
    near = nearest_simple(law, schedule, BUDGET, peak=PEAK, warmup=WARMUP)
    steps = np.arange(BUDGET)
    np.testing.assert_allclose(near.forecast.schedule(steps), schedule(steps), atol=PEAK * 2e-3)
    assert near.distance < 1e-3
    assert near.forecast == forecast(law, near.forecast.schedule, BUDGET)


def test_nearest_simple_schedule_needs_steps_after_warmup(law) -> None:
    with pytest.raises(LrlabError, match=r"^budget=5 leaves fewer than 2 steps after warmup=4$"):
        nearest_simple(law, parse("constant(peak=3e-4)"), 5, peak=PEAK, warmup=4)


def test_study_says_a_free_form_recommendation_briefly_with_its_nearest_simple_schedule(law):
    design = optimize_schedule(law, BUDGET, peak=PEAK, warmup=WARMUP)
    best = design.best
    assert not is_simple(best.schedule) and len(str(best.schedule)) > 500
    analysis = Analysis(law, {}, BUDGET, PEAK, WARMUP, best, design.baselines)
    messages: list[str] = []
    entry = recommend(analysis, messages.append)["simple_equivalent"]
    assert len(messages) == 2 and all(len(message) <= 300 for message in messages), messages
    assert messages[0].startswith(f"recommended for {BUDGET} steps: piecewise_linear, peak ")
    assert f"forecast final loss {best.final_loss:.4f}" in messages[0]
    simple = from_spec(entry["spec"])
    assert simple.name in ("wsd", "two_stage") and entry["text"] == str(simple)
    assert entry["fitted_by"] == "least squares on the LR curve after warmup"
    assert entry["final_loss"] == forecast(law, simple, BUDGET).final_loss
    assert entry["final_loss"] >= best.final_loss - 1e-9  # the free form is the optimum
    assert messages[1].startswith(f"nearest simple schedule ({entry['fitted_by']}): {simple};")
    assert f"forecast {entry['final_loss']:.4f}" in messages[1]
    # A recommendation of a simple family is said as it is, with nothing nearer to offer.
    simple_analysis = Analysis(
        law, {}, BUDGET, PEAK, WARMUP, design.baselines["wsd-20%-linear"], {}
    )
    messages.clear()
    assert recommend(simple_analysis, messages.append) == {"simple_equivalent": None}
    assert len(messages) == 1 and str(design.baselines["wsd-20%-linear"].schedule) in messages[0]


def test_study_run_lines_are_short_and_say_what_training_does(tmp_path) -> None:
    pytest.importorskip("torch")
    steps = 30
    # A free-form schedule as the optimiser writes them: a knot a step, full-precision LRs.
    points = [[step, 3e-3 * (1 - step / steps) ** 1.7 + 1e-9 / 7] for step in range(steps)]
    schedule = from_spec({"name": "piecewise_linear", "points": points})
    assert len(str(schedule)) > 500
    setup = {"budget": steps, "tunnel": tiny_run(tmp_path, steps=steps, progress="off")}
    run = TunnelRun("recommended", schedule, tmp_path / "verify-recommended", "[4/5]")
    messages: list[str] = []
    train_tunnel_runs(setup, [run], messages.append)
    shape = short_description(schedule, steps)
    assert shape.startswith("piecewise_linear, peak ") and len(shape) <= 200
    assert messages[0] == f"[4/5] training recommended: {shape}"
    messages.clear()
    train_tunnel_runs(setup, [run], messages.append)
    assert messages[0] == f"[4/5] recommended: already finished, reused: {shape}"
    assert short_description(parse("constant(peak=1e-3)"), steps) == "constant(peak=0.001)"
