"""Each law's analytic final-loss gradient (`Law.final_loss_and_gradient`) agrees with the law's
own prediction and with finite differences."""

from __future__ import annotations

import numpy as np
import pytest

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
# Steps where the gradient is checked. Step 0 has LR 0, where the lrlab law's concave drop measure
# has an infinite slope.
INDICES = [1, 2, 150, 199, 200, 201, 1500, 1999, 2000, 2500, 2998, 2999]


def make_law(name: str):
    """Law `name` with the parameters above, as a fit would leave it."""
    law = REGISTRY[name](evaluation="exact") if name == "mpl" else REGISTRY[name]()
    law.params_ = np.array(PARAMS[name], dtype=np.float64)
    if name == "lrlab":
        law.lr_ref_ = 3e-4
    return law


@pytest.fixture(
    params=[(name, spec) for spec in SCHEDULES for name in sorted(PARAMS)],
    ids=lambda case: f"{case[1]}-{case[0]}",
)
def case(request):
    """A law with fixed parameters, a 3000-step LR sequence, and the law's final loss and gradient
    for it."""
    name, spec = request.param
    law = make_law(name)
    lr = parse(spec)(np.arange(3000))
    return law, lr, *law.final_loss_and_gradient(lr)


def _central_differences(final_loss, lr: np.ndarray) -> list[float]:
    """d final_loss / d lr at `INDICES`, by central differences (one-sided at LR 0)."""
    slopes = []
    for index in INDICES:
        step = 1e-4 * max(lr[index], 1e-6)  # small against the LR itself
        up, down = lr.copy(), lr.copy()
        up[index] += step
        down[index] = max(down[index] - step, 0.0)
        slopes.append((final_loss(up) - final_loss(down)) / (up[index] - down[index]))
    return slopes


def test_value_is_the_laws_prediction_at_the_last_step(case):
    law, lr, value, _ = case
    # The lrlab law predicts through a bounded-error quadrature of the drop sum.
    assert value == pytest.approx(law.predict(lr, np.array([2999]))[0], abs=2e-5)


def test_gradient_matches_central_differences(case):
    law, lr, _, gradient = case
    numeric = _central_differences(lambda x: law.final_loss_and_gradient(x)[0], lr)
    for index, slope in zip(INDICES, numeric, strict=True):
        assert gradient[index] == pytest.approx(slope, rel=1e-4, abs=1e-3)
    rng = np.random.default_rng(0)
    direction = rng.normal(size=lr.size) * lr * 1e-5  # a random direction, zero at LR 0
    expected = (
        law.final_loss_and_gradient(lr + direction)[0]
        - law.final_loss_and_gradient(lr - direction)[0]
    )
    assert 2 * gradient @ direction == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize(
    ("name", "spec"), [(name, spec) for spec in SCHEDULES for name in ("momentum", "mpl", "power")]
)
def test_gradient_matches_central_differences_of_predict(name, spec):
    """Against the law's own `predict`, for the laws that predict exactly (the lrlab law predicts
    through a quadrature whose nodes move with the LR; its value is checked above)."""
    law = make_law(name)
    lr = parse(spec)(np.arange(3000))
    _, gradient = law.final_loss_and_gradient(lr)
    numeric = _central_differences(lambda x: law.predict(x, np.array([x.size - 1]))[0], lr)
    for index, slope in zip(INDICES, numeric, strict=True):
        assert gradient[index] == pytest.approx(slope, rel=1e-4, abs=1e-3)
