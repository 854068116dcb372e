"""Choosing a law by forecasting held-out runs (`lrlab.laws.selection`), on synthetic runs."""

from __future__ import annotations

import numpy as np
import pytest

from lrlab.errors import LrlabError
from lrlab.laws import LAW_NAMES
from lrlab.laws.selection import HOLDOUT_FRACTION, choose_law, cross_validate
from lrlab.runs import Run

STEPS = 1200


def power_law_run(name: str, lr: np.ndarray) -> Run:
    """SYNTHETIC: a run whose loss follows the power law ``2 + 0.5 * S1^-0.4`` exactly."""
    steps = np.arange(10, STEPS, 10)
    loss = 2.0 + 0.5 * np.cumsum(lr)[steps] ** -0.4
    return Run(name, lr, steps, loss, source="synthetic")


@pytest.fixture(scope="module")
def runs() -> list[Run]:
    t = np.arange(STEPS)
    constant = np.full(STEPS, 1e-3)
    cosine = 1e-3 * (0.55 + 0.45 * np.cos(np.pi * t / STEPS))
    return [power_law_run("constant", constant), power_law_run("cosine", cosine)]


def test_each_run_is_forecast_by_a_fit_that_never_saw_it(runs):
    scores = cross_validate("power", runs)
    assert list(scores) == ["constant", "cosine"]
    for score in scores.values():  # the exact law extrapolates to a run it was not fitted on
        assert 0 <= score["PredE"] <= score["WorstE"] < 1e-3


def test_a_single_run_is_scored_on_its_end(runs):
    # Fitted on the first 70% only, the constant-only fit still forecasts the end: same law.
    scores = cross_validate("power", runs[:1])
    assert list(scores) == ["constant"] and scores["constant"]["WorstE"] < 1e-3
    assert HOLDOUT_FRACTION == 0.3


def test_the_law_that_forecasts_best_is_chosen_and_failures_are_reported(runs):
    messages: list[str] = []
    chosen, table = choose_law(runs, names=("no-such-law", "power"), progress=messages.append)
    assert chosen == "power"
    assert "unknown law 'no-such-law'" in table["no-such-law"]["error"]
    assert set(table["power"]) == {"runs", "PredE", "WorstE"}
    assert table["power"]["PredE"] == np.mean([s["PredE"] for s in table["power"]["runs"].values()])
    assert messages == [
        "cross-validating law 'no-such-law' on 2 run(s)",
        "cross-validating law 'power' on 2 run(s)",
    ]
    with pytest.raises(LrlabError, match="no law could be fitted to these runs"):
        choose_law(runs, names=("no-such-law",))


def test_every_law_but_the_average_of_them_is_a_candidate_by_default():
    assert choose_law.__defaults__[0] == tuple(name for name in LAW_NAMES if name != "auto")
    assert "auto" in LAW_NAMES
    assert LAW_NAMES[:4] == ("power", "momentum", "mpl", "lrlab")
