"""lrlab's own law: it contains the multi-power law, its analytic Jacobian is right, and its fade
spares the floor set by the warmup."""

from __future__ import annotations

import json

import numpy as np
import pytest

from law_helpers import require_shared_data
from lrlab.laws import evaluate, get_law, load_law, mean_metrics
from lrlab.laws.drops import build_drop_quadrature
from lrlab.runs import shared

MPL_25M = np.array(
    [3.04045406, 0.52468604, 0.50786857, 363.78751622, 2.06560812, 0.58279013, 0.64142257]
)


def _lr() -> np.ndarray:
    lr = np.full(4000, 3e-4)
    lr[:200] = np.linspace(0, 3e-4, 200)
    lr[2500:] = np.linspace(3e-4, 2e-5, 1500)
    return lr


def test_reduces_to_multi_power_law_with_p_1_and_kappa_0():
    lr, steps = _lr(), np.arange(100, 4000, 30)
    mpl = get_law("mpl")
    mpl.params_ = MPL_25M
    law = get_law("lrlab", lr_ref=3e-4, rel_width=0.05, lr_bin=0.05)  # mpl's quadrature
    law.params_ = np.r_[MPL_25M, 1.0, 0.0]
    np.testing.assert_allclose(law.predict(lr, steps), mpl.predict(lr, steps), rtol=1e-12)


@pytest.mark.parametrize("name", ["mpl", "lrlab", "lrlab fade_warmup", "momentum", "power"])
def test_analytic_jacobian_matches_finite_differences(name):
    lr, steps = _lr(), np.arange(300, 4000, 70)
    theta = {
        "mpl": MPL_25M,
        "lrlab": np.r_[MPL_25M, 0.8, 0.1],
        "lrlab fade_warmup": np.r_[MPL_25M, 0.8, 0.1],
        "momentum": np.array([3.0, 0.5, 0.5, 1.5, 0.995]),
        "power": MPL_25M[:3],
    }[name]
    if name.startswith("lrlab"):
        law = get_law("lrlab", lr_ref=3e-4, area_ref=0.03, fade_warmup=name.endswith("warmup"))
    else:
        law = get_law(name)
    features = law.features(lr, steps)
    _, jacobian = law.curve_and_jacobian(theta, features)
    for index in range(theta.size):
        step = 1e-6 * max(abs(theta[index]), 1e-2)
        up, down = theta.copy(), theta.copy()
        up[index] += step
        down[index] -= step
        numeric = (law.curve(up, features) - law.curve(down, features)) / (2 * step)
        np.testing.assert_allclose(jacobian[:, index], numeric, rtol=1e-4, atol=1e-7)


def test_beats_published_multi_power_law_worst_error_at_25m():
    require_shared_data()
    law = get_law("lrlab", bands=False).fit(shared.load_shared_runs("25M", shared.TRAIN))
    held_out = shared.load_shared_runs("25M", shared.HELD_OUT)
    table = mean_metrics(evaluate(run.loss, law.predict_run(run)) for run in held_out)
    published = shared.published_results()["25M"]
    assert table["PredE"] < published["PredE"]
    assert table["WorstE"] < published["WorstE"]


def test_prior_keeps_the_extensions_near_the_multi_power_law():
    require_shared_data()
    runs = shared.load_shared_runs("25M", shared.TRAIN_TWO)
    free = get_law("lrlab", bands=False).fit(runs).params_dict
    held = get_law("lrlab", bands=False, prior_p=1e-3, prior_kappa=1e-4).fit(runs).params_dict
    assert abs(held["p"] - 1.0) < 0.01 and abs(held["kappa"]) < 1e-3
    assert abs(free["p"] - 1.0) + abs(free["kappa"]) > 0.05


def _rewarming_lr() -> np.ndarray:
    """Warmup to 3e-4, decay to 3e-5, re-warm past the old peak to 4e-4, decay again."""
    return np.concatenate(
        [
            np.linspace(0, 3e-4, 200),
            np.full(1800, 3e-4),
            np.linspace(3e-4, 3e-5, 1000),
            np.linspace(3e-5, 4e-4, 300),
            np.linspace(4e-4, 1e-5, 1700),
        ]
    )


def test_quadrature_splits_each_node_where_a_rise_passes_the_largest_earlier_lr():
    lr = _rewarming_lr()
    steps = np.arange(10, lr.size, 23)
    quadrature = build_drop_quadrature(lr, steps, 0.1, 0.1)
    running_max = np.maximum.accumulate(lr)
    # Over steps 1..t the rises past the largest earlier LR add up to m_t - lr_0, exactly.
    floor = quadrature.ownership @ (quadrature.lr_new_max - quadrature.lr_after)
    fading = quadrature.ownership @ (quadrature.lr_before - quadrature.lr_new_max)
    np.testing.assert_allclose(floor, lr[0] - running_max[steps], atol=1e-15)
    np.testing.assert_allclose(fading, running_max[steps] - lr[steps], atol=1e-15)


@pytest.mark.parametrize("fade_warmup", [False, True])
def test_a_run_that_never_lowers_its_lr_keeps_its_floor(fade_warmup):
    lr = np.concatenate([np.linspace(0, 3e-4, 200), np.full(20000, 3e-4)])
    steps = np.arange(300, lr.size, 500)
    curves = []
    for kappa in (0.05, 0.3):
        law = get_law("lrlab", lr_ref=3e-4, area_ref=0.03, fade_warmup=fade_warmup)
        law.params_ = np.r_[MPL_25M, 0.8, kappa]
        curves.append(law.predict(lr, steps))
    if fade_warmup:  # the earlier form fades the warmup's floor too
        assert np.abs(curves[0] - curves[1]).max() > 0.01
    else:
        np.testing.assert_allclose(curves[0], curves[1], rtol=1e-12)


def test_rewarming_to_the_old_peak_gives_back_what_the_decay_bought():
    rewarmed = np.concatenate(
        [
            np.linspace(0, 3e-4, 200),
            np.full(1800, 3e-4),
            np.linspace(3e-4, 3e-5, 1000),
            np.linspace(3e-5, 3e-4, 300),
            np.full(60000, 3e-4),
        ]
    )
    constant = np.concatenate([np.linspace(0, 3e-4, 200), np.full(rewarmed.size - 200, 3e-4)])
    law = get_law("lrlab", lr_ref=3e-4, area_ref=0.03)
    law.params_ = np.r_[MPL_25M, 0.8, 0.1]

    def annealing(lr: np.ndarray, step: int) -> float:
        """The drop terms' share of the prediction (the LR area's share removed)."""
        without = get_law("lrlab", lr_ref=3e-4, area_ref=0.03)
        without.params_ = law.params_ * np.r_[1, 1, 1, 0, np.ones(5)]  # B = 0
        at = np.array([step])
        return float(law.predict(lr, at)[0] - without.predict(lr, at)[0])

    bought = annealing(constant, 2999) - annealing(rewarmed, 2999)
    left = annealing(rewarmed, rewarmed.size - 1) - annealing(constant, rewarmed.size - 1)
    assert bought > 0.02
    assert abs(left) < 0.05 * bought


def test_fits_saved_before_the_floor_existed_load_with_the_old_form(tmp_path):
    require_shared_data()
    runs = shared.load_shared_runs("25M", shared.TRAIN)
    law = get_law("lrlab", bands=False, fade_warmup=True, area_ref=1.0).fit(runs)
    path = law.save(tmp_path / "fit.json")
    data = json.loads(path.read_text())
    del data["config"]["fade_warmup"], data["config"]["area_ref"]  # as written before
    path.write_text(json.dumps(data))
    loaded = load_law(path)
    assert loaded.config["fade_warmup"] is True and loaded.config["area_ref"] == 1.0
    run = shared.load_shared_run("25M", "cosine_72000")
    np.testing.assert_allclose(loaded.predict_run(run), law.predict_run(run), rtol=1e-12)
    assert get_law("lrlab").config["fade_warmup"] is False  # new fits use the floor
