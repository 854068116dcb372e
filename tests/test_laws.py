"""Loss-curve laws: the published multi-power-law numbers, fast vs exact evaluation, fitting,
bands, persistence and metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest

import shared_data as shared
from law_helpers import require_shared_data, synthetic_mpl_losses
from lrlab.errors import LrlabError
from lrlab.laws import REGISTRY, evaluate, get_law, load_law, mean_metrics
from lrlab.laws.drops import build_drop_quadrature
from lrlab.laws.kernel import exact_drop_sum
from lrlab.laws.metrics import coverage
from lrlab.laws.momentum_law import annealing_area
from lrlab.runs import Run

MPL_25M = np.array(
    [3.04045406, 0.52468604, 0.50786857, 363.78751622, 2.06560812, 0.58279013, 0.64142257]
)


def _schedule_lr(total: int, warmup: int, drop_at: int | None, low: float, peak: float = 3e-4):
    lr = np.full(total, peak)
    lr[:warmup] = np.linspace(0, peak, warmup)
    if drop_at is not None:
        lr[drop_at:] = low
    return lr


def _cosine_lr(total: int, warmup: int, peak: float = 3e-4, end: float = 3e-5):
    t = np.arange(total)
    lr = end + (peak - end) / 2 * (1 + np.cos(np.pi * (t - warmup) / (total - warmup)))
    lr[:warmup] = np.linspace(0, peak, warmup)
    return lr


@pytest.mark.parametrize("size", shared.SIZES)
def test_published_parameters_reproduce_published_table(size):
    require_shared_data()
    law = get_law("mpl")
    law.params_ = shared.published_parameters()[size]
    held_out = shared.load_shared_runs(size, shared.HELD_OUT)
    table = mean_metrics(evaluate(run.loss, law.predict_run(run)) for run in held_out)
    published = shared.published_results()[size]
    assert round(table["PredE"], 5) == published["PredE"]
    assert round(table["WorstE"], 5) == published["WorstE"]
    assert round(table["MAE"], 5) == published["MAE"]
    assert round(table["RMSE"], 5) == published["RMSE"]
    assert round(table["R2"], 4) == published["R2"]


def test_golden_25m_numbers():
    require_shared_data()
    law = get_law("mpl")
    law.params_ = MPL_25M
    held_out = shared.load_shared_runs("25M", shared.HELD_OUT)
    table = mean_metrics(evaluate(run.loss, law.predict_run(run)) for run in held_out)
    assert f"{table['PredE']:.5f}" == "0.00110"
    assert f"{table['WorstE']:.5f}" == "0.00409"


@pytest.mark.parametrize("name", ["cosine_72000", "wsd_20000_24000", "wsdcon_3"])
def test_fast_drop_sum_matches_exact_sum_on_published_parameters(name):
    require_shared_data()
    run = shared.load_shared_run("25M", name)
    B, C, beta, gamma = MPL_25M[3:]
    fast = get_law("mpl")
    exact = get_law("mpl", evaluation="exact")
    fast.params_ = exact.params_ = MPL_25M
    steps = run.steps[::3]
    difference = np.abs(fast.predict(run.lr, steps) - exact.predict(run.lr, steps))
    assert difference.max() < 2e-6  # loss units; the data's own noise is ~4e-4
    quadrature = build_drop_quadrature(run.lr, steps)
    assert quadrature.size < 0.05 * steps.size * run.steps[-1]  # far fewer terms than naive
    assert B * np.abs(exact_drop_sum(run.lr, steps, C, beta, gamma)).max() > 0.01  # not trivial


def test_drop_sum_on_rewarming_schedule_matches_exact():
    lr = np.concatenate([_cosine_lr(3000, 100), np.linspace(3e-5, 2e-4, 200), np.full(1000, 2e-4)])
    steps = np.arange(50, lr.size, 37)
    law, exact = get_law("mpl"), get_law("mpl", evaluation="exact")
    law.params_ = exact.params_ = MPL_25M
    np.testing.assert_allclose(law.predict(lr, steps), exact.predict(lr, steps), atol=2e-6)


def test_power_law_recovers_synthetic_parameters():
    lr = _schedule_lr(5000, 200, None, 0)
    steps = np.arange(300, 5000, 50)
    truth = np.array([2.5, 0.6, 0.45])
    loss = truth[0] + truth[1] * np.cumsum(lr)[steps] ** -truth[2]  # SYNTHETIC, from the law
    law = get_law("power", bands=False).fit([Run("synthetic", lr, steps, loss)])
    np.testing.assert_allclose(law.params_, truth, rtol=1e-4)


def test_momentum_annealing_area_matches_its_definition():
    lr = _cosine_lr(400, 20)
    steps = np.array([1, 10, 150, 399])
    lam = 0.97
    momentum, total, expected = 0.0, 0.0, {}
    for i in range(1, lr.size):
        momentum = lam * momentum + (lr[i - 1] - lr[i])
        total += momentum
        expected[i] = total
    area, _ = annealing_area(lr[:-1] - lr[1:], steps, lam)
    np.testing.assert_allclose(area, [expected[s] for s in steps], rtol=1e-12, atol=1e-18)


def test_momentum_law_recovers_synthetic_curve():
    lr = _schedule_lr(6000, 200, 4000, 5e-5)
    steps = np.arange(300, 6000, 40)
    truth = np.array([2.4, 0.55, 0.5, 1.5, 0.995])
    area2, _ = annealing_area(lr[:-1] - lr[1:], steps, truth[4])
    loss = truth[0] + truth[1] * np.cumsum(lr)[steps] ** -truth[2] - truth[3] * area2  # SYNTHETIC
    law = get_law("momentum", bands=False).fit([Run("synthetic", lr, steps, loss)])
    np.testing.assert_allclose(law.predict(lr, steps), loss, rtol=1e-5)
    assert law.params_[4] == pytest.approx(truth[4], abs=2e-3)


def test_mpl_fit_on_synthetic_runs_predicts_an_unseen_schedule():
    truth = MPL_25M
    train = []
    for name, lr in {
        "const": _schedule_lr(6000, 200, None, 0),
        "cos": _cosine_lr(6000, 200),
        "step": _schedule_lr(6000, 200, 3000, 9e-5),
    }.items():
        steps = np.arange(256, 6000, 64)
        train.append(Run(name, lr, steps, synthetic_mpl_losses(lr, steps, truth)))
    law = get_law("mpl").fit(train)
    unseen = _schedule_lr(6000, 200, 4500, 3e-5)
    steps = np.arange(256, 6000, 64)
    observed = synthetic_mpl_losses(unseen, steps, truth)
    assert evaluate(observed, law.predict(unseen, steps))["WorstE"] < 1e-3
    low, high = law.predict_interval(unseen, steps)
    assert np.all(low <= law.predict(unseen, steps)) and np.all(law.predict(unseen, steps) <= high)


def test_fit_is_deterministic_and_round_trips_through_json(tmp_path):
    lr = _cosine_lr(3000, 100)
    steps = np.arange(200, 3000, 50)
    loss = synthetic_mpl_losses(lr, steps, MPL_25M) * (1 + 1e-3 * np.sin(steps))
    run = Run("r", lr, steps, loss)
    first, second = get_law("mpl").fit([run]), get_law("mpl").fit([run])
    np.testing.assert_array_equal(first.params_, second.params_)
    path = first.save(tmp_path / "fit.json")
    assert [p.name for p in tmp_path.iterdir()] == ["fit.json"]  # no temporary file left over
    loaded = load_law(path)
    np.testing.assert_array_equal(loaded.params_, first.params_)
    np.testing.assert_array_equal(loaded.predict(lr, steps), first.predict(lr, steps))
    for a, b in zip(
        loaded.predict_interval(lr, steps), first.predict_interval(lr, steps), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    assert set(json.loads(path.read_text())["param_errors"]) == set(first.param_names)


def test_band_widens_with_level():
    lr = _cosine_lr(3000, 100)
    steps = np.arange(200, 3000, 50)
    loss = synthetic_mpl_losses(lr, steps, MPL_25M) * (1 + 2e-3 * np.cos(steps / 7))
    law = get_law("power").fit([Run("r", lr, steps, loss)])
    narrow = law.predict_interval(lr, steps, 0.5)
    wide = law.predict_interval(lr, steps, 0.95)
    assert np.all(wide[0] < narrow[0]) and np.all(wide[1] > narrow[1])
    with pytest.raises(LrlabError, match="level"):
        law.predict_interval(lr, steps, 1.5)


def test_band_covers_its_level_of_each_replicates_left_out_run():
    # the conformal calibration: had the band been drawn around each jackknife replicate (fitted
    # without one run), it would have held at least 90% of that run's points
    require_shared_data()
    runs = shared.load_shared_runs("25M", shared.TRAIN)
    law = get_law("momentum").fit(runs)
    inside = []
    for theta, run in zip(law.replicates_, runs, strict=True):
        replicate = _copy(law)
        replicate.params_ = theta
        low, high = replicate.predict_interval(run.lr, run.steps)
        inside.append((run.loss >= low) & (run.loss <= high))
    assert np.mean(np.concatenate(inside)) >= 0.89  # 0.9 up to the quantile's interpolation
    assert law.band_scale_ > 1.0  # the jackknife spread alone under-covers an unseen schedule


def _copy(law):
    return type(law).from_dict(law.to_dict())


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "not valid JSON"),
        ('{"format": "other"}', "not an lrlab law fit"),
        ('{"format": "lrlab-law-fit", "law": "nope"}', "unknown law 'nope'"),
        ('{"format": "lrlab-law-fit", "law": "power", "config": {}}', "field 'params'"),
    ],
)
def test_load_errors_name_the_problem(tmp_path, content, message):
    path = tmp_path / "fit.json"
    path.write_text(content)
    with pytest.raises(LrlabError, match=message):
        load_law(path)


def test_predict_validates_input_and_needs_a_fit():
    law = get_law("power")
    with pytest.raises(LrlabError, match="not fitted"):
        law.predict(np.ones(10), np.arange(10))
    law.params_ = np.array([2.0, 0.5, 0.5])
    with pytest.raises(LrlabError, match="steps must lie"):
        law.predict(np.ones(10), np.array([3, 10]))
    with pytest.raises(LrlabError, match="non-negative"):
        law.predict(-np.ones(10), np.array([3]))
    assert np.isnan(law.predict(np.r_[0.0, np.ones(9)], np.array([0, 5]))[0])


def test_unknown_law_and_parameter():
    with pytest.raises(LrlabError, match="unknown law 'nope'"):
        get_law("nope")
    with pytest.raises(LrlabError, match="law 'mpl': unknown field 'speed'"):
        get_law("mpl", speed=3)
    assert {"power", "momentum", "mpl"} <= set(REGISTRY)


def test_metrics_on_hand_computed_values():
    observed = np.array([2.0, 4.0])
    predicted = np.array([2.2, 3.6])
    metrics = evaluate(observed, predicted)
    assert metrics["PredE"] == pytest.approx((0.1 + 0.1) / 2)
    assert metrics["WorstE"] == pytest.approx(0.1)
    assert metrics["MAE"] == pytest.approx(0.3)
    assert metrics["RMSE"] == pytest.approx(np.sqrt((0.04 + 0.16) / 2))
    assert metrics["R2"] == pytest.approx(1 - 0.2 / 2.0)
    assert coverage(observed, predicted - 0.3, predicted + 0.3) == 0.5
    with pytest.raises(LrlabError):
        evaluate(observed, predicted[:1])


def test_mpl_fit_on_shared_split_is_close_to_published():
    require_shared_data()
    train = shared.load_shared_runs("25M", shared.TRAIN)
    law = get_law("mpl", bands=False).fit(train)
    held_out = shared.load_shared_runs("25M", shared.HELD_OUT)
    table = mean_metrics(evaluate(run.loss, law.predict_run(run)) for run in held_out)
    assert table["PredE"] < 1.5 * shared.published_results()["25M"]["PredE"]
