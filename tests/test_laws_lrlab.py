"""lrlab's own law (`LRLabLaw`): it contains the multi-power law, its analytic Jacobian is right,
and its reference LR is learned, not written into its parameters."""

from __future__ import annotations

import numpy as np
import pytest

import shared_data as shared
from law_helpers import require_shared_data
from lrlab.laws import evaluate, get_law, mean_metrics

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
    law = get_law("lrlab", rel_width=0.05, lr_bin=0.05)  # mpl's quadrature
    law.params_, law.lr_ref_ = np.r_[MPL_25M, 1.0, 0.0], 3e-4
    np.testing.assert_allclose(law.predict(lr, steps), mpl.predict(lr, steps), rtol=1e-12)


@pytest.mark.parametrize("name", ["mpl", "lrlab", "momentum", "power"])
def test_analytic_jacobian_matches_finite_differences(name):
    lr, steps = _lr(), np.arange(300, 4000, 70)
    theta = {
        "mpl": MPL_25M,
        "lrlab": np.r_[MPL_25M, 0.8, 0.1],
        "momentum": np.array([3.0, 0.5, 0.5, 1.5, 0.995]),
        "power": MPL_25M[:3],
    }[name]
    law = get_law(name)
    law.lr_ref_ = 3e-4  # what a fit would learn from runs at peak 3e-4 (used by lrlab only)
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
