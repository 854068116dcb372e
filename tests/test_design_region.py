"""The design's trust region: a schedule designed from a fit falls no faster than the fitted runs'
LR did (`lrlab.runs.regime`), in every family and the free form, through the API and the CLI; a
fit file written before fits recorded their runs' decay still loads and designs, with a note."""

from __future__ import annotations

import contextlib
import json

import numpy as np
import pytest

from law_helpers import synthetic_mpl_losses
from lrlab.cli import main
from lrlab.design.family_search import FamilySearch, family_candidates, search_family
from lrlab.design.free_form import free_form
from lrlab.design.optimize import (
    FAMILIES,
    NO_REGION,
    budget_sweep,
    design_region,
    optimize_schedule,
)
from lrlab.design.ticker import Ticker
from lrlab.errors import LrlabError
from lrlab.laws import get_law, load_law
from lrlab.runs import Run
from lrlab.runs.regime import KEY, DecayRegime, fitted_regime
from lrlab.schedules import parse

STEPS, PEAK, WARMUP = 1000, 1e-3, 50
# The multi-power law's parameters that make the SYNTHETIC curves: its loss drops with the LR, so
# a law fitted to them wants the LR down at the end, and fast.
THETA = np.array([2.0, 0.5, 0.4, 300.0, 2.0, 0.6, 0.5])
# The fitted runs: a constant one, and a WSD whose decay falls to half the peak over 500 steps.
SPECS = {
    "constant": f"constant(peak={PEAK}, warmup={WARMUP})",
    "wsd-slow": f"wsd(peak={PEAK}, total={STEPS}, warmup={WARMUP}, cooldown_fraction=0.5, "
    "end_ratio=0.5)",
}


def synthetic_run(name: str, spec: str) -> Run:
    """A SYNTHETIC run of `spec`, its loss from the multi-power law at `THETA`."""
    lr = parse(spec)(np.arange(STEPS))
    steps = np.arange(10, STEPS, 10)
    return Run(name, lr, steps, synthetic_mpl_losses(lr, steps, THETA))


@pytest.fixture(scope="module")
def fitted():
    """The momentum law (it has the gradient the free form descends on) fitted to both runs."""
    return get_law("momentum", bands=False).fit([synthetic_run(*item) for item in SPECS.items()])


@pytest.fixture(scope="module")
def fit_file(fitted, tmp_path_factory):
    return fitted.save(tmp_path_factory.mktemp("region") / "fit.json")


def test_the_envelope_is_the_fastest_fall_over_each_length():
    linear = Run(
        "l", parse("wsd(peak=1, total=300, cooldown_steps=100)")(np.arange(300)), [299], [1]
    )
    drop = Run("d", parse("two_stage(peak=1, drop_step=150, low=0.25)")(np.arange(300)), [299], [1])
    regime = DecayRegime.of_runs([linear])
    short = regime.windows <= 100
    np.testing.assert_allclose(regime.fall[short], regime.windows[short] / 100, atol=0.011)
    assert regime.fall[-1] == pytest.approx(1.0, abs=0.011)
    both = DecayRegime.of_runs([linear, drop])  # a 75% drop in one step, and the decay beyond it
    assert both.fall[0] == pytest.approx(0.75)
    assert np.all(np.diff(both.fall) >= 0) and both.fall[-1] == pytest.approx(1.0, abs=0.011)
    flat = DecayRegime.of_runs([Run("c", np.full(300, 1.0), [299], [1])])
    assert np.all(flat.fall == 0)  # runs that never fell allow no fall


def test_excess_measures_a_fall_faster_than_the_envelope():
    regime = DecayRegime(np.array([1, 10, 100]), np.array([0.01, 0.1, 0.5]))
    steps = np.arange(400)
    slow = parse("wsd(peak=2, total=400, cooldown_steps=200, end_ratio=0.5)")(steps)
    assert regime.excess(slow, 2.0) == 0.0
    fast = parse("wsd(peak=2, total=400, cooldown_steps=20, end_ratio=0.5)")(steps)
    # Half the peak over 20 steps: a quarter over 10, where the limit is 0.1.
    assert regime.excess(fast, 2.0) == pytest.approx(0.25 - 0.1, abs=1e-9)
    assert regime.limit(50) == 0.1 and regime.limit(0) == 0.0


def test_the_fit_records_its_runs_envelope(fitted):
    regime = fitted_regime(fitted.fit_info_)
    assert regime is not None and regime.fall[-1] == pytest.approx(0.5, abs=2e-3)
    assert regime.limit(1) == pytest.approx(0.5 / 500, rel=0.01)  # the slow decay's slope


@pytest.mark.parametrize("family", FAMILIES)
def test_no_design_falls_faster_than_the_fitted_runs(fitted, family):
    design = optimize_schedule(fitted, STEPS, peak=PEAK, warmup=WARMUP, family=family)
    lr = design.best.schedule(np.arange(STEPS))
    regime = fitted_regime(fitted.fit_info_)
    assert regime.excess(lr, PEAK) <= 1e-3
    assert design.excess["best"] == pytest.approx(regime.excess(lr, PEAK))
    # Every step's fall, not only the envelope's lengths: the slow decay's slope, with the
    # one-step length's rounding.
    assert np.max(-np.diff(lr[WARMUP:])) <= PEAK * 0.5 / 500 * 1.01
    assert lr[-1] >= 0.5 * PEAK * (1 - 5e-3)  # never below the lowest fitted LR
    assert design.trust_region.startswith("kept within the fitted runs' decay")


def test_without_the_region_the_law_asks_for_a_faster_fall(fitted):
    """The region binds: unconstrained, this law's optimum falls far faster than its runs."""
    free = optimize_schedule(fitted, STEPS, peak=PEAK, warmup=WARMUP, trust_region=False)
    regime = fitted_regime(fitted.fit_info_)
    assert regime.excess(free.best.schedule(np.arange(STEPS)), PEAK) > 0.3
    assert free.excess is None and "turned off" in free.trust_region
    kept = optimize_schedule(fitted, STEPS, peak=PEAK, warmup=WARMUP)
    assert kept.best.final_loss > free.best.final_loss  # what the region costs, by the law
    assert kept.excess["wsd-20%-linear"] > 0.3  # a baseline outside the region is flagged


def test_a_budget_sweep_stays_within_the_region(fitted):
    regime = fitted_regime(fitted.fit_info_)
    for point in budget_sweep(fitted, [600, 1000], peak=PEAK, warmup=WARMUP):
        lr = point.forecast.schedule(np.arange(point.budget))
        assert regime.excess(lr, PEAK) <= 1e-3


def test_an_old_fit_file_designs_without_a_region_and_says_so(fit_file, tmp_path, capsys):
    data = json.loads(fit_file.read_text())
    del data["fit"][KEY]
    old = tmp_path / "old.json"
    old.write_text(json.dumps(data))
    law = load_law(old)
    design = optimize_schedule(law, STEPS, peak=PEAK, warmup=WARMUP, family="wsd")
    assert design.trust_region == NO_REGION and design.excess is None
    assert main(["optimize", str(old), "--budget", "300", "--family", "wsd"]) == 0
    assert f"design: {NO_REGION}" in capsys.readouterr().out


def test_a_damaged_envelope_is_an_error_naming_the_field(fit_file, tmp_path):
    data = json.loads(fit_file.read_text())
    data["fit"][KEY]["fall"] = [2.0] * len(data["fit"][KEY]["fall"])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(LrlabError, match=f"bad.json: fit: {KEY}: fall must be fractions"):
        load_law(bad)


def test_optimize_states_the_region_and_can_turn_it_off(fit_file, capsys):
    assert main(["optimize", str(fit_file), "--budget", "400", "--family", "wsd", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    region = result["trust_region"]
    assert region["rule"].startswith("kept within") and region["excess"]["best"] <= 1e-3
    assert main(["optimize", str(fit_file), "--budget", "400", "--family", "wsd"]) == 0
    assert "design: kept within the fitted runs' decay" in capsys.readouterr().out
    argv = ["optimize", str(fit_file), "--budget", "400", "--family", "wsd", "--no-trust-region"]
    assert main(argv) == 0
    assert "design: not kept within the fitted runs' decay (turned off)" in capsys.readouterr().out


@contextlib.contextmanager
def _counting_forecasts(law):
    """`law` counting its forecasts (calls of `final_loss_and_gradient`) in the list it yields:
    the search's work, which does not depend on the machine."""
    counted = [0]
    exact = law.final_loss_and_gradient

    def forecast(lr):
        counted[0] += 1
        return exact(lr)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(law, "final_loss_and_gradient", forecast)
        yield counted


def _knot_search(law, trust_region: bool) -> tuple[np.ndarray, int]:
    """The free form's own knot search (without the WSD and two-stage optima it competes with
    in `optimize_schedule`): its per-step LR, and how many forecasts it made."""
    regime = design_region(law, trust_region)[0]
    with _counting_forecasts(law) as counted:
        schedule = free_form(law, STEPS, PEAK, WARMUP, 48, 0.0, Ticker(None, 5.0), regime)
    return schedule(np.arange(STEPS)), counted[0]


def test_the_free_form_knots_stay_within_the_envelope_of_runs_falling_to_half(fitted):
    """The knot search itself keeps to the envelope (runs falling to 50% of the peak over 500
    steps), and uses the room it gives: its LR ends near the lowest fitted LR."""
    regime = fitted_regime(fitted.fit_info_)
    lr, _ = _knot_search(fitted, trust_region=True)
    assert regime.excess(lr, PEAK) <= 1e-4
    assert np.max(-np.diff(lr[WARMUP:])) <= PEAK * 0.5 / 500 * 1.01
    assert np.all(np.diff(lr[WARMUP:]) <= 1e-15)  # non-increasing
    assert lr[-1] == pytest.approx(0.5 * PEAK, rel=0.02)
    free, _ = _knot_search(fitted, trust_region=False)
    assert regime.excess(free, PEAK) > 0.3  # the envelope binds


def test_the_region_costs_the_free_form_few_forecasts(fitted):
    """The search under the envelope is no slower than without it, counted in forecasts (the
    work that does not depend on the machine): a penalty on the knot pairs once took 20x more."""
    _, inside = _knot_search(fitted, trust_region=True)
    _, outside = _knot_search(fitted, trust_region=False)
    assert inside <= 1.5 * outside


def _family_search(law, family: str, trust_region: bool, search: str = "within"):
    """Each sub-family's own search (`FamilySearch`): `within` the region by raising its
    depth, or the exact `penalised` search; the lowest forecast and its schedule, and how
    many forecasts all its sub-families took."""
    regime = design_region(law, trust_region)[0]
    lowest = None if regime is None else 1.0 - float(regime.fall[-1])
    found = []
    with _counting_forecasts(law) as counted:
        for candidate in family_candidates(STEPS, PEAK, WARMUP, family, lowest):
            sub = FamilySearch(law, STEPS, PEAK, WARMUP, candidate, Ticker(None, 5.0), regime)
            found.append(getattr(sub, search)())
    return min(found, key=lambda item: item[0]), counted[0]


@pytest.mark.parametrize("family", ["wsd", "cosine", "linear", "two_stage"])
def test_a_family_raised_into_the_region_is_within_and_no_worse_than_the_penalty(fitted, family):
    """Raising the family's final LR to the least the envelope allows keeps every design
    within it, and finds as low a forecast as the exact penalty on the excess fall (the method
    before), in at most as many forecasts."""
    regime = fitted_regime(fitted.fit_info_)
    (loss, schedule), raised = _family_search(fitted, family, True)
    (penalised, _), penalty = _family_search(fitted, family, True, "penalised")
    assert regime.excess(schedule(np.arange(STEPS)), PEAK) <= 1e-9
    assert loss <= penalised + 1e-9
    assert raised <= penalty


@pytest.mark.parametrize("family", ["wsd", "linear"])
def test_the_region_costs_a_family_few_forecasts(fitted, family):
    """A family's search within the region takes about the forecasts of its search without it:
    with the exact penalty WSD took 762 forecasts here (17x), linear 23 (1.8x); cosine and
    two-stage took fewer than without the region then too (the test above counts them)."""
    _, inside = _family_search(fitted, family, True)
    _, outside = _family_search(fitted, family, False, "penalised")
    assert inside <= 1.5 * outside


@pytest.mark.parametrize("shape", ["linear", "exponential"])
def test_the_least_end_of_a_decay_is_the_envelopes_boundary(shape):
    """The least final LR the envelope allows a WSD decay of each length (`DecayRegime.room`
    for a decay that scales its falls, `least_geometric_end` for a geometric one) is within,
    and 1% of the peak lower is not: the bound is tight."""
    regime = DecayRegime(np.array([1, 10, 100, 1000]), np.array([0.002, 0.02, 0.2, 0.6]))
    steps = np.arange(2000)
    for length in (5, 50, 300, 1500):

        def lr(end: float, length: int = length) -> np.ndarray:
            spec = f"wsd(peak=2, total=2000, warmup=100, cooldown_steps={length}, "
            return parse(spec + f"decay={shape}, end_ratio={end})")(steps)

        if shape == "exponential":
            least = regime.least_geometric_end(length, steps.size)
        else:
            least = 1.0 - regime.room(lr(0.0), 2.0)
        assert regime.excess(lr(least), 2.0) <= 1e-12
        assert regime.excess(lr(least - 0.01), 2.0) > 1e-4


class _WantsOneSchedule:
    """A stand-in law whose forecast is lowest (0) at one schedule inside the region of the
    fitted runs (which fall to half the peak, at most 0.1% of it a step): the squared misses of
    the LR at a few steps."""

    name = "stand-in"
    CHECKED = np.array([300, 600, 800, STEPS - 1])

    def __init__(self, spec: str) -> None:
        self.wanted = parse(spec)(np.arange(STEPS))[self.CHECKED] / PEAK

    def final_loss_and_gradient(self, lr):
        miss = lr[self.CHECKED] / PEAK - self.wanted
        gradient = np.zeros_like(lr)
        gradient[self.CHECKED] = 2 * miss / PEAK
        return float(miss @ miss), gradient


@pytest.mark.parametrize(
    "family, spec",
    [
        (
            "wsd",
            f"wsd(peak={PEAK}, total={STEPS}, warmup={WARMUP}, cooldown_steps=900, end_ratio=0.8)",
        ),
        ("linear", f"linear(peak={PEAK}, total={STEPS}, warmup={WARMUP}, end_ratio=0.8)"),
    ],
)
def test_a_higher_end_inside_the_region_is_found_when_the_law_wants_it(fitted, family, spec):
    """The search starts on the region's boundary (the lowest end it allows for each decay
    length) and searches the end too where the law's gradient asks for a higher one (WSD), or
    over its whole range where the end is the only parameter (linear): here it finds the
    law's optimum, a long decay to 80% of the peak, off the boundary."""
    regime = fitted_regime(fitted.fit_info_)
    law = _WantsOneSchedule(spec)
    schedule = search_family(law, STEPS, PEAK, WARMUP, family, Ticker(None, 5.0), regime)
    lr = schedule(np.arange(STEPS))
    assert regime.excess(lr, PEAK) <= 1e-9
    assert lr[-1] / PEAK == pytest.approx(0.8, abs=5e-3)
    assert law.final_loss_and_gradient(lr)[0] < 1e-4
