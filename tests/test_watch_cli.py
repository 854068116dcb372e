"""``lrlab watch`` and ``lrlab whatif`` on logs written by the test, some while the command runs."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

from live_helpers import curve, run_until, write_csv
from lrlab.cli import main
from lrlab.laws import get_law
from lrlab.live import LiveForecaster, LogFollower
from lrlab.live.watch import watch

WSD = "wsd(peak=3e-4, total=8000, warmup=400, cooldown_fraction=0.2)"
COSINE = "cosine(peak=3e-4, total=8000, warmup=400, end_ratio=0.1)"
FAST = ["--law", "mpl"]


def _write(path, spec: str, last: int, every: int = 40, with_lr: bool = True) -> np.ndarray:
    steps, loss, lr = curve(spec, 8000, every=every)
    keep = steps <= last
    write_csv(path, steps[keep], loss[keep], lr, with_lr=with_lr)
    return lr


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_watch_once_json_is_one_object_with_the_forecast(tmp_path, capsys) -> None:
    path = tmp_path / "run.csv"
    _write(path, COSINE, 4800)
    assert main(["watch", str(path), "--schedule", COSINE, "--once", "--json", *FAST]) == 0
    (data,) = _json_lines(capsys.readouterr().out)
    assert data["step"] == 4800 and data["status"] == "forecast"
    assert data["final_low"] <= data["final_loss"] <= data["final_high"]
    assert isinstance(data["whatif"], list) and data["whatif"]
    assert {"step", "final_loss", "final_low", "final_high", "whatif"} <= data.keys()


def test_watch_once_table_and_plot(tmp_path, capsys) -> None:
    pytest.importorskip("matplotlib")
    path = tmp_path / "run.csv"
    _write(path, COSINE, 4800)
    plot = tmp_path / "live.png"
    assert (
        main(["watch", str(path), "--schedule", COSINE, "--once", "--plot", str(plot), *FAST]) == 0
    )
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:2] == ["step", "loss"]
    assert out.splitlines()[1].split()[0] == "4800"
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_a_plot_into_a_missing_folder_is_an_error_before_any_fit(tmp_path, capsys) -> None:
    """Said at the start, not at the first forecast, which may come hours into a run."""
    path = tmp_path / "run.csv"
    _write(path, COSINE, 600)  # too few points: no forecast, so no plot would be drawn yet
    plot = tmp_path / "none" / "live.png"
    for command in ("watch", "whatif"):
        args = [command, str(path), "--schedule", COSINE, "--plot", str(plot), *FAST]
        assert main([*args, *(["--once"] if command == "watch" else [])]) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err == f"lrlab: error: {plot}: folder {plot.parent} does not exist\n"


def test_watch_with_too_few_points_says_how_many_more(tmp_path, capsys) -> None:
    path = tmp_path / "run.csv"
    _write(path, COSINE, 600)
    assert main(["watch", str(path), "--schedule", COSINE, "--once", *FAST]) == 0
    assert "waiting: 9 more point(s) needed" in capsys.readouterr().out


def test_watch_follows_a_growing_log_until_it_stops_growing(tmp_path, capsys) -> None:
    """A writer thread appends rows (sometimes half a line at a time) while watch follows."""
    path = tmp_path / "run.csv"
    steps, loss, lr = curve(COSINE, 8000, every=40)
    write_csv(path, steps[:60], loss[:60], lr)

    def writer() -> None:
        for index in range(60, 120):
            line = f"{steps[index]},{float(loss[index])!r},{float(lr[steps[index]])!r}\n"
            with open(path, "a") as file:
                file.write(line[:5])
                file.flush()
                time.sleep(0.005)
                file.write(line[5:])
            time.sleep(0.01)

    thread = threading.Thread(target=writer)
    thread.start()
    args = ["watch", str(path), "--schedule", COSINE, "--json", "--law", "power"]
    code = main([*args, "--every", "15", "--idle", "1.5", "--poll", "0.05"])
    thread.join()
    assert code == 0
    captured = capsys.readouterr()
    reports = _json_lines(captured.out)
    assert len(reports) >= 3
    assert [r["step"] for r in reports] == sorted(r["step"] for r in reports)
    assert reports[-1]["step"] == int(steps[119]) and reports[-1]["points"] == 120
    assert "has not grown for 1.5 s" in captured.err


def test_watch_stops_when_the_run_reaches_its_total(tmp_path, capsys) -> None:
    path = tmp_path / "run.csv"
    _write(path, COSINE, 7999, every=100)
    with open(path, "a") as file:
        file.write(f"7999,3.3,{3e-5!r}\n")
    began = time.monotonic()
    args = ["watch", str(path), "--schedule", COSINE, "--json", "--law", "power", "--idle", "60"]
    assert main(args) == 0
    assert time.monotonic() - began < 30
    assert "reached its total of 8000 steps" in capsys.readouterr().err


def test_watch_waits_for_a_log_that_does_not_exist_yet(tmp_path, capsys) -> None:
    path = tmp_path / "later.csv"
    timer = threading.Timer(0.3, lambda: _write(path, COSINE, 4800))
    timer.start()
    args = ["watch", str(path), "--schedule", COSINE, "--json", "--law", "power"]
    assert main([*args, "--idle", "0.5", "--poll", "0.05"]) == 0
    timer.join()
    captured = capsys.readouterr()
    assert f"waiting for {path} to appear" in captured.err
    assert _json_lines(captured.out)[-1]["step"] == 4800


def test_watch_stops_when_the_log_has_gone_for_the_idle_time(tmp_path) -> None:
    """A log deleted (or rotated away and never written again) has stopped growing: watch stops
    after --idle as for a log that stays, instead of waiting for it forever."""
    path = tmp_path / "run.csv"
    _write(path, COSINE, 4800)
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds
        path.unlink(missing_ok=True)
        assert now[0] < 100, "watch still waits for a log gone for 100 s, with --idle 10"

    reports, said = [], []
    with LogFollower(path, schedule=COSINE) as follower:
        forecaster = LiveForecaster(schedule=COSINE, law="power")
        watch(
            follower,
            forecaster,
            reports.append,
            idle=10,
            poll=1,
            say=said.append,
            clock=lambda: now[0],
            sleep=sleep,
        )
    assert [report.step for report in reports] == [4800]
    assert said[0] == f"{path} has gone; waiting for it to come back"
    assert said[-1] == f"{path} has not grown for 10 s; stopping" and 10 <= now[0] < 12


def test_watch_once_of_a_missing_log_is_an_error(tmp_path, capsys) -> None:
    assert main(["watch", str(tmp_path / "none.csv"), "--total-steps", "100", "--once"]) == 2
    assert "none.csv: no such file" in capsys.readouterr().err


def test_a_log_without_lr_and_no_schedule_is_a_clear_error(tmp_path, capsys) -> None:
    path = tmp_path / "run.csv"
    _write(path, COSINE, 4800, with_lr=False)
    assert main(["watch", str(path), "--total-steps", "8000", "--idle", "1", "--poll", "0.05"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lrlab: error: ") and "no 'lr' values and no schedule" in err
    assert str(path) in err and "lrlab-watch-" not in err  # the user's file, not a copy


def test_nan_losses_are_left_out_and_said(tmp_path, capsys) -> None:
    path = tmp_path / "run.csv"
    steps, loss, lr = curve(COSINE, 8000, every=40)
    keep = steps <= 5000
    loss[(steps > 4800) & keep] = np.nan
    write_csv(path, steps[keep], loss[keep], lr)
    assert main(["watch", str(path), "--schedule", COSINE, "--once", *FAST]) == 0
    out = capsys.readouterr().out
    assert "note: " in out and "dropped 5 NaN/inf loss value(s)" in out
    assert main(["watch", str(path), "--schedule", COSINE, "--once", "--json", *FAST]) == 0
    (data,) = _json_lines(capsys.readouterr().out)
    assert data["step"] == 4800 and data["status"] == "forecast"
    assert any("NaN" in note for note in data["notes"])


def test_whatif_lists_every_start_and_the_best(tmp_path, capsys) -> None:
    path = tmp_path / "run.csv"
    _write(path, WSD, 4000)
    args = ["whatif", str(path), "--total-steps", "8000", "--schedule", WSD, *FAST]
    # In its stable phase the run cannot show what a decay does: no numbers without a reference
    # or a decay prior; with lrlab's prior, one that says where it came from (or why not)
    assert main(args) == 0
    assert "has not lowered it yet" in capsys.readouterr().out
    assert main([*args, "--prior", "default", "--max-band", "1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "forecast" and data["decay_prior"]
    assert any("prior from other data sets" in note for note in data["notes"])
    reference = tmp_path / "reference.json"
    finished = [run_until(spec, 8000, 7999, every=40, seed=1) for spec in (COSINE, WSD)]
    get_law("mpl").fit(finished).save(reference)
    args += ["--reference", str(reference)]
    assert main([*args, "--cooldown", "1-sqrt"]) == 0
    out = capsys.readouterr().out
    assert "planned: planned schedule, cooldown at 6400" in out
    assert out.count("<- best") == 1 and "extend to 2x (16000)" in out
    assert main([*args, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    starts = [item["start"] for item in data["whatif"] if item["kind"] == "cooldown"]
    assert data["best_cooldown"]["start"] in starts and 6400 in starts


def test_no_fallback_gives_no_forecast_where_the_law_is_not_pinned_down(tmp_path, capsys) -> None:
    path = tmp_path / "run.csv"
    constant = "constant(peak=3e-4, warmup=400)"
    _write(path, constant, 4000)
    args = ["watch", str(path), "--schedule", constant, "--total-steps", "8000", "--once"]
    assert main([*args, "--json"]) == 0
    (data,) = _json_lines(capsys.readouterr().out)
    assert data["status"] == "forecast" and data["law"] == "mpl"
    assert main([*args, "--json", "--no-fallback"]) == 0
    (data,) = _json_lines(capsys.readouterr().out)
    assert data["status"] == "unstable" and "undetermined" in data["notes"][-1]


def test_a_log_past_the_total_steps_is_an_error_not_a_forecast(tmp_path, capsys) -> None:
    """A budget the log has already passed (a wrong --total-steps) has no final loss to forecast;
    a log that ends at the total itself (a Trainer logs its last step as ``max_steps``) has."""
    path = tmp_path / "run.csv"
    _write(path, COSINE, 4800)
    for command in ("whatif", "watch"):
        args = [command, str(path), "--schedule", COSINE, "--total-steps", "4000", *FAST]
        assert main([*args, *(["--once"] if command == "watch" else [])]) == 2
        assert capsys.readouterr().err == (
            f"lrlab: error: {path}: the log reaches step 4800, past the run's total of 4000 "
            "steps; give the run's budget with --total-steps\n"
        )
    args = ["whatif", str(path), "--schedule", COSINE, "--total-steps", "4800", "--json", *FAST]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["total_steps"] == 4800


def test_whatif_with_a_bad_cooldown_is_an_error(tmp_path, capsys) -> None:
    path = tmp_path / "run.csv"
    _write(path, WSD, 4000)
    args = ["whatif", str(path), "--total-steps", "8000", "--cooldown", "sideways"]
    assert main(args) == 2
    assert "lrlab: error: --cooldown 'sideways': not a decay shape" in capsys.readouterr().err


def test_a_best_start_with_a_tiny_gain_shows_no_sign(capsys) -> None:
    """A gain that rounds to nothing at four decimals prints as 0.0000, not ``~-0.0000``."""
    from lrlab.cli.watch_commands import _print_whatifs, _row
    from lrlab.live.forecaster import LiveForecast
    from lrlab.live.whatif import ScoredWhatIf, WhatIf

    lr = np.full(800, 3e-3)
    planned = ScoredWhatIf(WhatIf("planned", "planned schedule", 800, 640, lr), 1.6, 1.5, 1.7, 0.0)
    best = ScoredWhatIf(
        WhatIf("cooldown", "cooldown at 652", 800, 652, lr), 1.6, 1.5, 1.7, 3e-6, -2e-6, 8e-5
    )
    result = LiveForecast(
        step=399,
        loss=2.0,
        points=40,
        total_steps=800,
        law_name="mpl",
        status="forecast",
        final_loss=1.6,
        final_low=1.5,
        final_high=1.7,
        planned=planned,
        whatif=(best,),
        best=best,
    )
    assert "652 (~0.0000)" in _row(result)
    _print_whatifs(result)
    (line,) = [text for text in capsys.readouterr().out.splitlines() if "cooldown at 652" in text]
    assert "0.0000 [0.0000, +0.0001]" in line and "-0.0000" not in line
