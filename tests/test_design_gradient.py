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
    config = {"evaluation": "exact"} if name == "mpl" else {}
    if name == "lrlab":
        config = {"lr_ref": 3e-4, "area_ref": 0.03}
    law = REGISTRY[name](**config)
    law.params_ = np.array(PARAMS[name], dtype=np.float64)
    return law


@pytest.mark.parametrize("name", sorted(PARAMS))
@pytest.mark.parametrize("spec", SCHEDULES)
def test_value_is_the_laws_prediction_at_the_last_step(name, spec):
    law = make_law(name)
    lr = parse(spec)(np.arange(3000))
    value, _ = final_loss_and_gradient(law, lr)
    # The lrlab law predicts through a bounded-error quadrature of the drop sum.
    assert value == pytest.approx(law.predict(lr, np.array([2999]))[0], abs=2e-5)


def near_a_kink(lr: np.ndarray, index: int, step: float) -> bool:
    """Whether lr[index] is at the largest LR so far and within `step` of another step's LR: there
    the lrlab law's floor (rises to a new maximum LR) has a kink inside the difference step."""
    at_max = lr[index] >= lr[: index + 1].max() - step
    others = np.delete(lr, index)
    return bool(at_max and np.any(np.abs(others - lr[index]) <= step))


@pytest.mark.parametrize("name", sorted(PARAMS))
@pytest.mark.parametrize("spec", SCHEDULES)
def test_gradient_matches_central_differences(name, spec):
    law = make_law(name)
    lr = parse(spec)(np.arange(3000))
    _, gradient = final_loss_and_gradient(law, lr)
    rng = np.random.default_rng(0)
    smooth = np.ones(lr.size, dtype=bool)
    # Step 0 has LR 0, where the lrlab law's concave drop measure has an infinite slope.
    for index in [1, 2, 150, 199, 200, 201, 1500, 1999, 2000, 2500, 2998, 2999]:
        step = 1e-4 * max(lr[index], 1e-6)  # small against the LR itself
        if name == "lrlab" and near_a_kink(lr, index, step):
            continue  # test_gradient_lowers_the_lr_at_the_peak_plateau
        up, down = lr.copy(), lr.copy()
        up[index] += step
        down[index] = max(down[index] - step, 0.0)
        numeric = (final_loss_and_gradient(law, up)[0] - final_loss_and_gradient(law, down)[0]) / (
            up[index] - down[index]
        )
        assert gradient[index] == pytest.approx(numeric, rel=1e-4, abs=1e-3)
    if name == "lrlab":
        smooth = lr < lr.max() * (1 - 1e-4)
    direction = rng.normal(size=lr.size) * lr * 1e-5 * smooth  # random, zero at LR 0 and kinks
    expected = final_loss_and_gradient(law, lr + direction)[0] - final_loss_and_gradient(
        law, lr - direction)[0]
    assert 2 * gradient @ direction == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("index", [200, 1000, 2099])
def test_gradient_lowers_the_lr_at_the_peak_plateau(index):
    """On a plateau at the largest LR, raising one step would set a new maximum LR (the lrlab law's
    floor, which does not fade) but lowering it does not: the gradient is the derivative as the LR
    is lowered, which is what an optimiser bounded by the peak can use."""
    law = make_law("lrlab")
    lr = parse(SCHEDULES[1])(np.arange(3000))
    assert lr[index] == lr.max() and lr[index + 1] == lr.max()
    _, gradient = final_loss_and_gradient(law, lr)
    step = 1e-6 * lr[index]
    values = []
    for shift in (0.0, step, 2 * step):
        lowered = lr.copy()
        lowered[index] -= shift
        values.append(final_loss_and_gradient(law, lowered)[0])
    one_sided = (3 * values[0] - 4 * values[1] + values[2]) / (2 * step)  # second-order, from below
    assert gradient[index] == pytest.approx(one_sided, rel=1e-4, abs=1e-3)
    raised = lr.copy()
    raised[index] += step
    from_above = (final_loss_and_gradient(law, raised)[0] - values[0]) / step
    assert abs(from_above - gradient[index]) > 1.0  # the kink
