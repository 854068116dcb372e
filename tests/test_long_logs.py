"""Long logs: the fast readers agree with the careful ones, and fits of many points are
coarse-grained within the error bound `lrlab.laws.points` states, keeping small fits exact."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from long_logs import PARAMS, PEAK, schedules  # benchmarks/long_logs.py: the synthetic law
from lrlab.errors import LrlabError
from lrlab.laws import get_law
from lrlab.laws import points as coarse_points
from lrlab.runs import Run, RunWarning, read_run, tables
from lrlab.schedules import parse


def law_curve(steps: int) -> tuple[np.ndarray, np.ndarray]:
    """The per-step LR of a WSD run of `steps` steps (0..steps) and lrlab's law's exact loss at
    every step 1..steps (SYNTHETIC: the law with `PARAMS`, evaluated point by point)."""
    lr = parse(schedules(steps)[0])(np.arange(steps + 1))
    law = get_law("lrlab", coarse=False)
    law.params_, law.lr_ref_ = np.array(PARAMS), PEAK
    at = np.arange(1, steps + 1)
    chunks = np.array_split(at, 1 + steps // 10_000)  # exact evaluation, in bounded memory
    loss = np.concatenate([law.predict(lr, chunk) for chunk in chunks])
    return lr, loss


def noisy_run(steps: int, noise: float, seed: int = 0) -> Run:
    lr, loss = law_curve(steps)
    rng = np.random.default_rng(seed)
    return Run("long", lr, np.arange(1, steps + 1), loss * np.exp(noise * rng.normal(size=steps)))


# --- reading ----------------------------------------------------------------------------------


def test_a_clean_csv_is_parsed_by_numpy(tmp_path, monkeypatch):
    calls = []
    loadtxt = np.loadtxt

    def spy(*args, **kwargs):
        calls.append(kwargs.get("usecols"))
        return loadtxt(*args, **kwargs)

    monkeypatch.setattr(tables.np, "loadtxt", spy)
    path = tmp_path / "clean.csv"
    rows = "".join(f"{step},{1e-3},{5.0 - step / 1000}\n" for step in range(1, 3001))
    path.write_text("step,lr,loss\n" + rows)
    run = read_run(path)
    assert calls and run.steps.size == 3000 and run.loss[-1] == pytest.approx(2.0)


CONTENTS = {
    "clean": "step,lr,loss\n1,1e-3,5.0\n2,1e-3,4.5\n3,1e-3,4.25\n",
    "crlf and BOM": "\ufeffstep,lr,loss\r\n1,1e-3,5.0\r\n2,1e-3,4.5\r\n",
    "no final newline": "step,lr,loss\n1,1e-3,5.0\n2,1e-3,4.5",
    "blank lines": "\nstep,lr,loss\n\n1,1e-3,5.0\n\n2,1e-3,4.5\n\n",
    "quoted": 'step,"lr",loss\n1,"1e-3",5.0\n2,1e-3,"4.5"\n',
    "a text column": "step,lr,run,loss\n1,1e-3,a,5.0\n2,1e-3,b,4.5\n",
    "empty cells": "_step,train/loss,train/lr\n0,,0.0\n50,4.5,5e-4\n100,4.0,\n",
    "spaces": "step , lr , loss\n 1 , 1e-3 , 5.0 \n 2 , 1e-3 , 4.5 \n",
    "resumed": "step,lr,loss\n1,1e-3,5.0\n2,1e-3,4.5\n2,1e-3,4.4\n1,1e-3,4.9\n3,1e-3,4.2\n",
}


@pytest.mark.parametrize("name", sorted(CONTENTS))
def test_fast_and_careful_readers_agree(tmp_path, monkeypatch, name):
    path = tmp_path / "log.csv"
    path.write_text(CONTENTS[name], encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RunWarning)
        fast = read_run(path)
        monkeypatch.setattr(tables, "_fast_delimited", lambda *args: None)
        careful = read_run(path)
    for field in ("steps", "loss", "lr"):
        np.testing.assert_array_equal(getattr(fast, field), getattr(careful, field))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("step,lr,loss\n1,1e-3,5.0\n2,1e-3\n", r"line 3: 2 fields"),
        ("step,lr,loss\n1,1e-3,5.0\n2,1e-3,4.0,9\n", r"line 3: 4 fields"),
        ("step,lr,loss\n1,1e-3,5.0\n2,1e-3,x\n", r"line 3: column 'loss' has 'x'"),
    ],
)
def test_a_bad_row_in_a_long_file_is_named_by_the_careful_reader(tmp_path, content, message):
    path = tmp_path / "long.csv"
    good = "".join(f"{step},1e-3,{5.0 - step / 1e5}\n" for step in range(3, 5000))
    path.write_text(content + good)
    with pytest.raises(LrlabError, match=message):
        read_run(path)


# --- coarse-grained fits ----------------------------------------------------------------------


def test_a_small_log_is_fitted_point_by_point_to_the_digit():
    run = noisy_run(coarse_points.COARSE_ABOVE, 0.01)
    coarse = get_law("power").fit([run])
    exact = get_law("power", coarse=False).fit([run])
    np.testing.assert_array_equal(coarse.params_, exact.params_)
    assert "coarse" not in coarse.fit_info_


def test_the_stated_error_bound_holds_on_the_laws_curve():
    steps = 30_000
    lr, loss = law_curve(steps)
    run = Run("curve", lr, np.arange(1, steps + 1), loss)
    part = coarse_points.fit_points(run)
    assert part.coarse and part.fit_steps.size < steps / 50
    log_curve = np.log(np.concatenate([[np.nan], loss]))
    exact = np.add.reduceat(log_curve[part.steps], part.bin_starts) / part.counts
    error = np.abs(exact - part.mix() @ log_curve[part.fit_steps])
    rms = np.sqrt(np.sum(part.counts * error**2) / np.sum(part.counts))
    bound_rms, bound_max = coarse_points.coarse_error_bound([part], log_curve[part.fit_steps])
    assert rms <= bound_rms and error.max() <= bound_max
    assert rms < 1e-5


def test_a_coarse_fit_forecasts_as_the_point_by_point_fit():
    # The momentum law misses this curve (it comes from lrlab's law), so the fit weighs every
    # part of the log as the points do; its parameters are determined, unlike the 9 of lrlab's
    # law on one run, whose fits stop in a flat valley wherever their path ends.
    run = noisy_run(6000, 0.0005)
    coarse = get_law("momentum", lam=0.999, bands=False).fit([run])
    exact = get_law("momentum", lam=0.999, bands=False, coarse=False).fit([run])
    assert coarse.fit_info_["coarse"]["bins"] < 300 and "coarse" not in exact.fit_info_
    lr = parse(schedules(6000)[1])(np.arange(6001))  # another schedule: a cosine
    at = np.linspace(1, 6000, 200).astype(int)
    difference = np.abs(coarse.predict(lr, at) / exact.predict(lr, at) - 1)
    assert difference.max() < 1e-4


def test_a_coarse_fit_keeps_the_per_point_noise_and_a_calibrated_band():
    noise = 0.01
    law = get_law("lrlab").fit([noisy_run(6000, noise)], start=np.array(PARAMS))
    # the scatter of single points, not of bin means (which is tens of times smaller)
    assert law.noise_sd_ == pytest.approx(noise, rel=0.1)
    assert len(law.replicates_) == 4 and 0.5 < law.band_scale_ < 2.0


def test_blocks_of_a_coarse_run_hold_about_a_quarter_of_its_points():
    part = coarse_points.fit_points(noisy_run(8000, 0.01))
    shares = [part.counts[block].sum() / part.steps.size for block in part.blocks(4)]
    assert all(0.15 < share < 0.35 for share in shares)
    left = part.subset(part.blocks(4)[1])
    kept = part.subset(~part.blocks(4)[1])
    assert left.steps.size + kept.steps.size == part.steps.size
    # the gap starts a new stretch: the quadratics do not reach across it
    assert np.unique(kept.stretches).size == np.unique(part.stretches).size + 1


def test_a_forecast_at_very_many_steps_is_spread_from_knots_within_its_bound():
    steps = 40_000
    lr, loss = law_curve(steps)
    law = get_law("lrlab")
    law.params_, law.lr_ref_ = np.array(PARAMS), PEAK
    at = np.arange(1, steps + 1)
    assert at.size > coarse_points.DENSE_ABOVE
    assert coarse_points.curve_knots(lr, at)[0].size < 2000
    assert np.max(np.abs(law.predict(lr, at) / loss - 1)) < 5e-5
