"""The decay prior's cost in a live forecast: the members' what-if forecasts from one build of
the features, the members fitted side by side (curves with a known answer from
`live_helpers`)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from live_helpers import run_until, truth_law
from lrlab.errors import LrlabError
from lrlab.laws.prior import DecayPrior
from lrlab.live.forecaster import _PriorSpread
from lrlab.live.whatif import HeldSpread, plan_whatifs
from lrlab.schedules import parse

WSD = "wsd(peak=3e-4, total=8000, warmup=400, cooldown_fraction=0.2)"


def prior_of_two() -> DecayPrior:
    """The generator's response and one with a drop twice as large, from two data sets."""
    seen = run_until(WSD, 8000, 7999)
    truth = DecayPrior.member(truth_law(), [seen], "truth", "a")
    return DecayPrior(
        (truth, dataclasses.replace(truth, source="twice", dataset="b", b=2 * truth.b))
    )


def fitted_members(prior: DecayPrior, seen) -> tuple:
    """Each member's law fitted to `seen`, as a forecast fits them."""
    scale = float(np.mean(seen.loss[-5:]))
    return tuple(
        prior.law(member, 3e-4, 8000, scale, False).fit([seen]) for member in prior.members
    )


def test_the_members_what_if_forecasts_are_their_own_predictions_to_the_bit() -> None:
    """One build of a what-if's features for all the members gives what each member's own
    `predict` gives, bit for bit, for the planned run and every what-if."""
    prior = prior_of_two()
    seen = run_until(WSD, 8000, 4000, every=40)
    members = fitted_members(prior, seen)
    groups = tuple(member.dataset for member in prior.members)
    planned, whatifs, _ = plan_whatifs(seen.lr, parse(WSD), 8000)
    for item in (planned, *whatifs):
        fast = _PriorSpread(members, groups=groups).finals(item)
        plain = HeldSpread(members, groups=groups).finals(item)
        assert fast.tolist() == plain.tolist()


def test_a_member_that_forecasts_no_loss_is_an_error_as_in_predict() -> None:
    prior = prior_of_two()
    seen = run_until(WSD, 8000, 4000, every=40)
    members = fitted_members(prior, seen)
    broken = members[1]
    broken.params_ = broken.params_.copy()
    broken.params_[0] = -50.0  # L0 far below zero: the forecast is no loss
    planned = plan_whatifs(seen.lr, parse(WSD), 8000)[0]
    with pytest.raises(LrlabError) as plain:
        HeldSpread(members, groups=("a", "b")).finals(planned)
    with pytest.raises(LrlabError) as fast:
        _PriorSpread(members, groups=("a", "b")).finals(planned)
    assert str(fast.value) == str(plain.value)


# Run in a fresh interpreter: a process with other threads, or torch imported (as the test suite
# has), never forks (`lrlab.laws.parallel.threads_elsewhere`).
SIDE_BY_SIDE = """
import sys
sys.path.insert(0, sys.argv[1])
from test_prior_speed import WSD, prior_of_two, run_until
from lrlab.laws import parallel
from lrlab.live import LiveForecaster

prior, seen = prior_of_two(), run_until(WSD, 8000, 4000, every=40)
parallel._WORTH_SECONDS = 1e9  # never worth a worker
in_order = LiveForecaster(schedule=WSD, prior=prior).forecast(seen).to_dict()
forks, plain_start = [], parallel._start
parallel._WORTH_SECONDS = 0.0  # always worth one
parallel._start = lambda *args: forks.append(1) or plain_start(*args)
side_by_side = LiveForecaster(schedule=WSD, prior=prior).forecast(seen).to_dict()
in_order["fit_seconds"] = side_by_side["fit_seconds"]
print(len(forks), side_by_side == in_order)
"""


def test_the_members_fitted_side_by_side_forecast_as_in_order() -> None:
    """Where one member's fit takes long enough, the others are fitted in forked workers: the
    forecast is the one fitted in order, to the bit."""
    if not hasattr(os, "fork"):
        pytest.skip("no os.fork here: the members are fitted in order")
    command = [sys.executable, "-c", SIDE_BY_SIDE, str(Path(__file__).parent)]
    environment = {**os.environ, "LRLAB_FIT_WORKERS": "2"}
    done = subprocess.run(command, env=environment, capture_output=True, text=True, check=True)
    forks, same = done.stdout.split()
    assert int(forks) >= 1 and same == "True", done.stdout
