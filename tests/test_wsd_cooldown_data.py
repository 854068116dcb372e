"""The 124M WSD-cooldown curves (``../shared/data/wsd-cooldown-124m``, Schaipp et al. 2025) read
as a user reads them, with `lrlab.runs.read_run`, and the scoreboard's tasks on them
(``benchmarks/scoreboard.py``): what they fit and what they forecast."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import shared_data as shared
from lrlab.runs import read_run

needs_data = pytest.mark.skipif(
    not shared.wsd_cooldown_available(),
    reason=f"shared data absent: {shared.wsd_cooldown_dir()} (the wsd-cooldown-124m data set)",
)


@pytest.fixture(scope="module")
def runs():
    """Every run of ``runs.json``, read with its warmup, no warning allowed."""
    if not shared.wsd_cooldown_available():
        pytest.skip(f"shared data absent: {shared.wsd_cooldown_dir()}")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return {name: shared.load_wsd_cooldown_run(name) for name in shared.wsd_cooldown_records()}


@needs_data
def test_every_file_is_a_listed_run_and_reads_without_warnings(runs):
    files = {path.stem for path in shared.wsd_cooldown_dir().glob("*.csv")}
    assert files == set(runs) and len(runs) == 50
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the plain read (no --warmup) must not warn either
        plain = read_run(shared.wsd_cooldown_dir() / "cos-10-124m_lr0.0005_sqrt_0.0_T25000.csv")
    assert plain.name == "cos-10-124m_lr0.0005_sqrt_0.0_T25000"
    for name, run in runs.items():
        record = shared.wsd_cooldown_records()[name]
        assert run.name == name and run.metadata["lr_source"] == "interpolated"
        # Validation loss every 200 steps from step 400 to the last one before T.
        assert run.steps[0] == 400 and np.all(np.diff(run.steps) == 200)
        assert run.steps[-1] == record["total_steps"] - 200
        assert np.all((run.loss > 2.5) & (run.loss < 11))
        # The warmup given (300, from runs.json) shapes the LR the log cannot show.
        assert run.metadata["warmup"] == 300 and run.metadata["warmup_from"] == "given"
        assert run.lr[0] == 0 and run.lr[299] < run.lr[300]


@needs_data
def test_peak_lrs_match_runs_json(runs):
    peaks = {}
    for name, run in runs.items():
        record = shared.wsd_cooldown_records()[name]
        assert run.lr.max() == pytest.approx(record["peak_lr"], rel=1e-3)
        assert f"_lr{record['peak_lr']}_" in name
        peaks[record["peak_lr"]] = peaks.get(record["peak_lr"], 0) + 1
    assert peaks == {0.0005: 31, 0.0001: 19}


@needs_data
def test_wsd_runs_have_their_cooldown(runs):
    """At the peak until ``T - F T``, then down to 0 at T: linearly or as ``1 - sqrt``."""
    records = shared.wsd_cooldown_records().items()
    # stable-124m is listed as a WSD run with no cooldown (fraction 0).
    wsd = {n: r for n, r in records if r["schedule"] == "wsd" and r["cooldown_fraction"] > 0}
    assert len(wsd) == 40 and all(name.startswith("ann124-") for name in wsd)
    for name, record in wsd.items():
        run, peak, total = runs[name], record["peak_lr"], record["total_steps"]
        start = round(total * (1 - record["cooldown_fraction"]))
        constant = run.steps[run.steps <= start]
        assert np.allclose(run.lr[constant[constant >= 300]], peak, rtol=1e-4), name
        after = run.steps[run.steps > start]
        progress = (after - start) / (total - start)
        shape = 1 - progress if record["decay"] == "linear" else 1 - np.sqrt(progress)
        assert np.allclose(run.lr[after], peak * shape, rtol=0, atol=1e-3 * peak), name
        assert np.all(np.diff(run.lr[start:]) <= 1e-12) and run.lr[-1] < 0.15 * peak, name


@needs_data
def test_branched_wsd_runs_share_the_constant_runs_curve(runs):
    """A WSD run whose cooldown starts after step 10000 was branched from the constant run's
    checkpoints: its file holds the constant run's losses up to the branch (step 10000 at least)."""
    records = shared.wsd_cooldown_records()
    for name, record in records.items():
        start = record["total_steps"] * (1 - record["cooldown_fraction"])
        if record["schedule"] != "wsd" or start <= 10000:
            continue
        stable = runs[f"stable-124m_lr{record['peak_lr']}_linear_0.0_T50000"]
        run = runs[name]
        early = run.steps <= 10000
        assert np.array_equal(run.loss[early], stable.loss[stable.steps <= 10000]), name


@needs_data
def test_scoreboard_tasks_fit_and_forecast_what_they_say():
    import scoreboard  # benchmarks/scoreboard.py

    tasks = scoreboard.all_tasks(widths=())
    pair = tasks["wsd124-5e-4/2-run"]
    assert [ref.name for ref in pair.fit] == [
        "stable-124m_lr0.0005_linear_0.0_T50000",
        "cos-10-124m_lr0.0005_sqrt_0.0_T25000",
    ]
    assert len(pair.predict) == 29 and not set(pair.fit) & set(pair.predict)
    assert [ref.name for ref in tasks["wsd124-1e-4/1-run"].fit] == [
        "ann124-0.2_lr0.0001_linear_0.2_T25000"
    ]
    across = tasks["wsd124/5e-4-to-1e-4"]
    assert across.fit == pair.fit and len(across.predict) == 19
    assert all("_lr0.0001_" in ref.name for ref in across.predict)


def test_training_folds_see_only_the_fitted_runs():
    """The folds a default is chosen on (`scoreboard.training_folds`) fit and forecast parts of
    the task's fitted runs only, never a held-out curve."""
    import scoreboard

    ref = scoreboard.RunRef
    task = scoreboard.Task(
        "t", (ref("mpl", "25M", "a"), ref("mpl", "25M", "b")), (ref("mpl", "25M", "c"),)
    )
    folds = scoreboard.training_folds(task)
    assert [fold.name for fold in folds] == ["t:loo-a", "t:loo-b", "t:first-half"]
    for fold in folds:
        assert {r.name for r in (*fold.fit, *fold.predict)} <= {"a", "b"}
    assert {r.part for r in folds[-1].fit} == {"first-half"}
    assert {r.part for r in folds[-1].predict} == {"second-half"}
    alone = scoreboard.Task("one", (ref("mpl", "25M", "a"),), (ref("mpl", "25M", "c"),))
    assert [fold.name for fold in scoreboard.training_folds(alone)] == ["one:first-half"]


@needs_data
def test_a_halved_run_splits_at_half_its_last_step():
    import scoreboard

    name = "cos-10-124m_lr0.0005_sqrt_0.0_T25000"
    whole = scoreboard.load(scoreboard.RunRef("wsd124", "124M", name))
    first = scoreboard.load(scoreboard.RunRef("wsd124", "124M", name, "first-half"))
    rest = scoreboard.load(scoreboard.RunRef("wsd124", "124M", name, "second-half"))
    assert first.steps[-1] <= 12400 < rest.steps[0]
    assert first.steps.size + rest.steps.size == whole.steps.size
    assert rest.lr.size == whole.lr.size  # the forecast needs the LR from step 0


def test_scoreboard_compares_each_law_with_the_best_anchor():
    """Per task, PredE over the lowest anchor PredE; per law, the geometric mean over tasks, the
    worst task, and the tasks where its WorstE is below every anchor's."""
    from scoreboard import Score, compare

    def row(task, law, pred_e, worst_e):
        return Score(task, law, pred_e=pred_e, worst_e=worst_e, coverage=0.9, width=0.1)

    scores = [
        row("a", "momentum", 0.002, 0.010),
        row("a", "mpl", 0.004, 0.008),
        row("a", "mine", 0.001, 0.007),
        row("b", "momentum", 0.003, 0.020),
        row("b", "mpl", 0.002, 0.030),
        row("b", "mine", 0.008, 0.025),
    ]
    board = compare(scores)
    assert board["ratios"]["a"] == pytest.approx({"momentum": 1.0, "mpl": 2.0, "mine": 0.5})
    assert board["ratios"]["b"]["mine"] == pytest.approx(4.0)
    mine = board["summary"]["mine"]
    assert mine["geomean_ratio"] == pytest.approx(1.414213, rel=1e-5)
    assert (mine["worst_ratio"], mine["worst_ratio_task"]) == (pytest.approx(4.0), "b")
    assert (mine["worst_e_below_anchors"], mine["groups_over_1.1"]) == (1, 1)
    assert board["worst_e_below_anchors"]["b"] == {"momentum": False, "mpl": False, "mine": False}
    # Folds grouped by task: a group's ratio is the geometric mean of its folds'.
    grouped = compare(scores, group=lambda task: "one")
    assert grouped["summary"]["mine"]["groups"] == 1
    assert grouped["summary"]["mine"]["geomean_ratio"] == pytest.approx(1.414213, rel=1e-5)
