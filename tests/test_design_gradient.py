"""The analytic final-loss gradients agree with each law's own prediction and with finite
differences."""

from __future__ import annotations

import numpy as np
import pytest

from lrlab.design.gradient import final_loss_and_gradient
from lrlab.laws import REGISTRY
from lrlab.schedules import parse

# Parameter values of the size the shared data's fits give (25M published MPL parameters).
PARAMS = {
    "power": [3.0, 0.5, 0.5],
    "momentum": [3.0, 0.5, 0.5, 300.0, 0.995],
    "mpl": [3.04045406, 0.52468604, 0.50786857, 363.78751622, 2.06560812, 0.58279013, 0.64142257],
    "lrlab": [3.0, 0.5, 0.5, 400.0, 2.0, 0.6, 0.6, 0.8, 0.1],
}
SCHEDULES = [
    "cosine(peak=3e-4, total=3000, warmup=200, end_ratio=0.1)",
    "wsd(peak=3e-4, total=3000, warmup=200, cooldown_fraction=0.3, decay=1-sqrt)",
    "join(schedules=[constant(peak=3e-4, warmup=200), constant(peak=5e-5)], boundaries=[2000])",
]


def make_law(name: str):
    config = {"mpl": {"evaluation": "exact"}, "lrlab": {"lr_ref": 3e-4}}.get(name, {})
    law = REGISTRY[name](**config)
    law.params_ = np.array(PARAMS[name], dtype=np.float64)
    return law


@pytest.fixture(params=[(name, spec) for spec in SCHEDULES for name in sorted(PARAMS)],
                ids=lambda case: f"{case[1]}-{case[0]}")
def case(request):
    """A law with fixed parameters, a 3000-step LR sequence, and the law's final loss and gradient
    for it."""
    name, spec = request.param
    law = make_law(name)
    lr = parse(spec)(np.arange(3000))
    return law, lr, *final_loss_and_gradient(law, lr)


def test_value_is_the_laws_prediction_at_the_last_step(case):
    law, lr, value, _ = case
    # The lrlab law predicts through a bounded-error quadrature of the drop sum.
    assert value == pytest.approx(law.predict(lr, np.array([2999]))[0], abs=2e-5)


def test_gradient_matches_central_differences(case):
    law, lr, _, gradient = case
    rng = np.random.default_rng(0)
    # Step 0 has LR 0, where the lrlab law's concave drop measure has an infinite slope.
    for index in [1, 2, 150, 199, 200, 201, 1500, 1999, 2000, 2500, 2998, 2999]:
        step = 1e-4 * max(lr[index], 1e-6)  # small against the LR itself
        up, down = lr.copy(), lr.copy()
        up[index] += step
        down[index] = max(down[index] - step, 0.0)
        numeric = (final_loss_and_gradient(law, up)[0] - final_loss_and_gradient(law, down)[0]) / (
            up[index] - down[index]
        )
        assert gradient[index] == pytest.approx(numeric, rel=1e-4, abs=1e-3)
    direction = rng.normal(size=lr.size) * lr * 1e-5  # a random direction, zero at LR 0
    expected = final_loss_and_gradient(law, lr + direction)[0] - final_loss_and_gradient(
        law, lr - direction)[0]
    assert 2 * gradient @ direction == pytest.approx(expected, rel=1e-4)
