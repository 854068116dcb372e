"""Live forecasts: the what-ifs of when to cool down, the forecaster, and following a growing
log (curves with a known answer from `live_helpers`)."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import time

import numpy as np
import pytest

from live_helpers import curve, run_until, truth_final, truth_law, write_csv
from lrlab.errors import LrlabError
from lrlab.laws import get_law
from lrlab.laws.prior import DecayPrior, PriorMember, default_prior, stable_scale
from lrlab.live import LiveForecaster, LogFollower, parse_cooldown
from lrlab.live.whatif import (
    Cooldown,
    HeldSpread,
    cooldown_note,
    default_cooldown,
    plan_whatifs,
    score_whatifs,
    signed,
    stable_schedule,
    with_cooldown,
)
from lrlab.schedules import parse, save_spec

WSD = "wsd(peak=3e-4, total=8000, warmup=400, cooldown_fraction=0.2)"
COSINE = "cosine(peak=3e-4, total=8000, warmup=400, end_ratio=0.1)"


# --- what-ifs -----------------------------------------------------------------------------------


def test_cooldown_from_a_shape_or_a_wsd_spec() -> None:
    assert parse_cooldown("1-sqrt") == Cooldown("1-sqrt", 0.0, None)
    taken = parse_cooldown("wsd(peak=1e-3, total=1000, cooldown_fraction=0.3, decay=cosine)")
    assert taken == Cooldown("cosine", 0.0, 0.3)
    assert parse_cooldown("exponential").floor_ratio == 0.01  # a geometric decay needs an end
    with pytest.raises(LrlabError, match="--cooldown 'cosine\\(peak=1, total=10\\)'"):
        parse_cooldown("cosine(peak=1, total=10)")
    with pytest.raises(LrlabError, match="not a decay shape"):
        parse_cooldown("sideways")


def test_with_cooldown_decays_from_the_start_to_the_floor_by_the_last_step() -> None:
    base = np.full(100, 2.0)
    lr = with_cooldown(base, 60, Cooldown("linear", 0.1))
    assert np.all(lr[:61] == 2.0)
    assert np.all(np.diff(lr[60:]) < 0)
    assert lr[-1] == pytest.approx(0.2 + 1.8 / 40)  # one step before the floor, as WSD


def test_a_wsd_run_in_its_stable_phase_gets_candidate_starts_and_extensions() -> None:
    observed = parse(WSD)(np.arange(4001))
    planned, whatifs, cooldown = plan_whatifs(observed, parse(WSD), 8000)
    assert planned.start == 6400 and cooldown == Cooldown("linear", 0.0, 0.2)
    starts = [item.start for item in whatifs if item.kind == "cooldown"]
    assert starts[0] == 4001 and 6400 in starts and max(starts) <= 8000 - 80
    for item in whatifs:
        assert np.array_equal(item.lr[:4001], observed)  # the past is the past
        assert item.lr[item.start] == pytest.approx(3e-4)  # the stable LR up to the cooldown
    extended = [item for item in whatifs if item.kind == "extend"]
    assert [item.total for item in extended] == [12000, 16000]
    assert [item.start for item in extended] == [9600, 12800]  # the planned 20%


def test_no_cooldown_candidates_once_the_decay_has_begun() -> None:
    observed = parse(WSD)(np.arange(7000))
    _, whatifs, _ = plan_whatifs(observed, parse(WSD), 8000)
    assert [item.kind for item in whatifs] == ["extend", "extend"]
    observed = parse(COSINE)(np.arange(3000))  # a cosine decays from its warmup on
    planned, whatifs, _ = plan_whatifs(observed, parse(COSINE), 8000)
    assert planned.start == 400 and all(item.kind == "extend" for item in whatifs)


def test_without_a_schedule_the_logged_lr_is_held() -> None:
    observed = np.concatenate([np.linspace(0, 1e-3, 100), np.full(400, 1e-3)])
    planned, whatifs, _ = plan_whatifs(observed, None, 1000)
    assert planned.start is None and np.all(planned.lr[500:] == 1e-3)
    assert any(item.kind == "cooldown" for item in whatifs)


def test_the_best_start_of_the_true_law_beats_the_planned_one() -> None:
    """Scored by the generating law itself, the best start is the lowest of the candidates,
    and no worse than the planned WSD-20%."""
    observed = parse(WSD)(np.arange(4001))
    planned, scored, best = score_whatifs(truth_law(), observed, parse(WSD), 8000)
    assert planned.final_loss == pytest.approx(truth_final(WSD, 8000))
    starts = [item for item in scored if item.whatif.kind == "cooldown"]
    assert best.final_loss == min(item.final_loss for item in starts)
    assert best.gain >= 0 and best.gain == pytest.approx(planned.final_loss - best.final_loss)
    longer = [item for item in scored if item.whatif.kind == "extend"]
    assert longer[0].final_loss < planned.final_loss and longer[1].final_loss < longer[0].final_loss


def test_each_gain_carries_the_band_of_its_difference_from_the_same_fit() -> None:
    """A what-if's gain over the plan is a gain only where the band of the difference excludes
    0 (`Law.compare_final`); a law without replicates gives no band, so nothing is separated."""
    observed = parse(WSD)(np.arange(4001))
    law = get_law("momentum").fit([run_until(WSD, 8000, 4000)])
    planned, scored, _ = score_whatifs(law, observed, parse(WSD), 8000)
    for item in scored:
        difference = law.compare_final(planned.whatif.lr, item.whatif.lr)
        assert item.gain == pytest.approx(difference.difference)
        assert (item.gain_low, item.gain_high) == (difference.low, difference.high)
        assert item.separated == difference.separated and item.to_dict()["separated"] is (
            difference.separated
        )
    unbanded = score_whatifs(truth_law(), observed, parse(WSD), 8000)[1]
    assert all(item.gain_low is None and not item.separated for item in unbanded)


# A tunnel sidecar's warmup, joined before the run's own schedule.
TUNNEL_WARMUP = "piecewise_linear(points=[[0, 0], [71, 3e-3]])"
TUNNEL_WSD = (
    f"join(schedules=[{TUNNEL_WARMUP}, wsd(peak=3e-3, total=728, end=3e-4, cooldown_steps=133, "
    "decay=exponential)], boundaries=[72])"
)
TUNNEL_WSDCON = (
    f"join(schedules=[{TUNNEL_WARMUP}, constant(peak=3e-3), constant(peak=9e-4)], "
    "boundaries=[72, 266])"
)


def whatifs_starting_as_planned(spec: str, seen: int, total: int, start: int) -> tuple:
    """The plan `spec`, its LR over the first `seen` steps, its what-ifs and their cooldown, after
    checking that the plan's cooldown starts at `start` and that the what-if cooling down there
    is the plan itself, step by step."""
    plan = parse(spec)
    observed = plan(np.arange(seen))
    planned, whatifs, cooldown = plan_whatifs(observed, plan, total)
    assert planned.start == start
    (same,) = [item for item in whatifs if item.kind == "cooldown" and item.start == start]
    np.testing.assert_allclose(same.lr, planned.lr, rtol=1e-12, atol=0)
    return plan, observed, whatifs, cooldown


def test_a_warmup_joined_before_a_wsd_cools_down_as_its_plan_does() -> None:
    """A tunnel sidecar's join(warmup, wsd exponential to 10%): the what-ifs take the WSD's own
    decay (not linear to 0), so the cooldown at the planned start is the planned run, and the
    extensions cool down over the plan's share of the run."""
    plan, observed, whatifs, cooldown = whatifs_starting_as_planned(TUNNEL_WSD, 400, 800, 667)
    assert cooldown.shape == "exponential" and cooldown.floor_ratio == pytest.approx(0.1)
    assert cooldown.fraction == pytest.approx(133 / 800)
    assert [item.start for item in whatifs if item.kind == "extend"] == [1000, 1334]
    scored_plan, scored, _ = score_whatifs(truth_law(), observed, plan, 800)
    (at_plan,) = [
        item for item in scored if item.whatif.kind == "cooldown" and item.whatif.start == 667
    ]
    assert at_plan.final_loss == pytest.approx(scored_plan.final_loss, rel=1e-12)
    assert signed(at_plan.gain) == "0.0000"


def test_a_wsdcon_join_cools_down_by_its_drop_to_the_lower_constant() -> None:
    """The tunnel's wsdcon runs: warmup, peak, then a lower constant to the end. The what-ifs'
    cooldown is that drop (a step to 30% of the LR it starts from), the planned start is the
    drop's step, and once it is past there is nothing left to choose."""
    plan, _, whatifs, cooldown = whatifs_starting_as_planned(TUNNEL_WSDCON, 240, 533, 266)
    assert cooldown.shape == "step" and cooldown.floor_ratio == pytest.approx(0.3)
    assert cooldown.fraction == pytest.approx(267 / 533)
    later = next(item for item in whatifs if item.kind == "cooldown" and item.start > 400)
    assert np.all(later.lr[240 : later.start] == 3e-3)  # the peak held up to the drop
    np.testing.assert_allclose(later.lr[later.start :], 9e-4, rtol=1e-12)
    _, whatifs, _ = plan_whatifs(plan(np.arange(300)), plan, 533)
    assert [item.kind for item in whatifs] == ["extend", "extend"]


def test_an_infinite_schedule_cools_down_by_its_final_anneal() -> None:
    """The anneal starts from the constant LR: its end is a fraction of that, not of the peak."""
    spec = (
        "infinite(peak=3e-4, warmup=400, cooldown_steps=1000, anneal_start=6000, anneal_steps=2000)"
    )
    observed = parse(spec)(np.arange(3000))
    planned, whatifs, cooldown = plan_whatifs(observed, parse(spec), 8000)
    assert cooldown.shape == "exponential" and cooldown.floor_ratio == pytest.approx(0.1 / 0.55)
    (same,) = [item for item in whatifs if item.kind == "cooldown" and item.start == 6000]
    assert planned.start == 6000
    np.testing.assert_allclose(same.lr, planned.lr, rtol=1e-12, atol=0)


def test_a_decay_that_is_not_a_cooldown_gets_the_default_and_a_note() -> None:
    cosine = parse(
        f"join(schedules=[{TUNNEL_WARMUP}, cosine(peak=3e-3, total=728, end=3e-4)], "
        "boundaries=[72])"
    )
    note = cooldown_note(cosine, 800)
    assert default_cooldown(cosine, 800) == Cooldown()
    assert "a join ending with a cosine schedule" in note and "--cooldown" in note
    # A join that decays before its last phase: that phase's LR is not the stable one.
    decayed_first = parse(f"join(schedules=[{WSD}, constant(peak=1e-5)], boundaries=[8000])")
    assert cooldown_note(decayed_first, 9000) is not None
    assert stable_schedule(decayed_first) is None
    # Nothing to say where the plan does not decay, or where its decay is read.
    flat = parse(f"join(schedules=[{TUNNEL_WARMUP}, constant(peak=3e-3)], boundaries=[72])")
    assert default_cooldown(flat, 800) == Cooldown() and cooldown_note(flat, 800) is None
    assert cooldown_note(parse(TUNNEL_WSD), 800) is None
    # The forecaster says it with each forecast, unless a cooldown is given.
    early = run_until(COSINE, 8000, 100, every=20)
    assert any(
        "cannot be read" in text for text in LiveForecaster(schedule=COSINE).forecast(early).notes
    )
    given = LiveForecaster(schedule=COSINE, cooldown="linear").forecast(early)
    assert not any("cannot be read" in text for text in given.notes)


def test_a_step_cooldown_needs_a_floor() -> None:
    with pytest.raises(LrlabError, match="step cooldown needs a floor"):
        Cooldown("step")
    lr = with_cooldown(np.full(10, 2.0), 4, Cooldown("step", 0.25))
    assert lr.tolist() == [2.0] * 4 + [0.5] * 6


def test_a_change_too_small_to_show_has_no_sign() -> None:
    assert signed(-3e-6) == "0.0000" and signed(2e-6) == "0.0000"
    assert signed(0.01234) == "+0.0123" and signed(-0.01236) == "-0.0124"


# --- the forecaster -----------------------------------------------------------------------------


def test_too_few_points_says_how_many_more() -> None:
    forecaster = LiveForecaster(schedule=COSINE, law="momentum")
    result = forecaster.forecast(run_until(COSINE, 8000, 100, every=20))
    assert result.status == "waiting" and result.points == 5 and result.needed == 18 - 5
    assert result.final_loss is None and "13 more needed" in result.message
    assert result.to_dict()["final_loss"] is None


def test_a_decaying_run_is_forecast_within_its_band() -> None:
    forecaster = LiveForecaster(schedule=COSINE)
    result = forecaster.forecast(run_until(COSINE, 8000, 4800, every=40))
    truth = truth_final(COSINE, 8000)
    assert result.status == "forecast", result.notes
    assert result.final_low <= truth <= result.final_high
    assert abs(result.final_loss / truth - 1) < 0.005
    data = result.to_dict()
    for key in ("step", "final_loss", "final_low", "final_high", "whatif"):
        assert key in data
    assert data["step"] == 4800 and isinstance(data["whatif"], list)


def test_refits_start_from_the_previous_fit() -> None:
    forecaster = LiveForecaster(schedule=COSINE, law="mpl")
    first = forecaster.forecast(run_until(COSINE, 8000, 4000, every=40))
    assert np.array_equal(forecaster._starts["mpl"], first.law.params_)
    forecaster.forecast(run_until(COSINE, 8000, 4400, every=40))
    assert forecaster._starts["mpl"] is not None


def test_a_reference_fit_holds_the_response_to_the_lr() -> None:
    """Before its cooldown a WSD run cannot show how a decay lowers the loss; a reference fit of
    finished runs can, and then the forecast of the planned cooldown is close."""
    reference = get_law("mpl").fit(
        [run_until(spec, 8000, 7999, every=40, seed=1) for spec in (COSINE, WSD)]
    )
    forecaster = LiveForecaster(schedule=WSD, reference=reference)
    assert forecaster.law.fixed_parameters().keys() == {"B", "C", "beta", "gamma"}
    assert forecaster.min_points == 12
    result = forecaster.forecast(run_until(WSD, 8000, 4000, every=40))
    assert result.status == "forecast"
    assert abs(result.final_loss / truth_final(WSD, 8000) - 1) < 0.003
    assert result.best is not None and result.best.whatif.start > 4000
    assert not any("extrapolation" in note for note in result.notes)


def test_the_band_with_a_reference_carries_the_reference_fits_spread() -> None:
    """A reference's response to the LR is an estimate too: each replicate of the reference fit,
    held in turn, gives another forecast, and their spread widens the bands (and the gains'
    bands). A reference whose replicates all agree widens nothing."""
    reference = get_law("mpl").fit(
        [run_until(spec, 8000, 7999, every=40, seed=1) for spec in (COSINE, WSD)]
    )
    agreeing = copy.deepcopy(reference)
    agreeing.replicates_ = np.tile(reference.params_, (len(reference.replicates_), 1))
    seen = run_until(WSD, 8000, 4000, every=40)
    wide = LiveForecaster(schedule=WSD, reference=reference).forecast(seen)
    narrow = LiveForecaster(schedule=WSD, reference=agreeing).forecast(seen)
    assert wide.status == narrow.status == "forecast"
    assert wide.final_loss == pytest.approx(narrow.final_loss, rel=1e-6)
    assert wide.final_low < narrow.final_low and wide.final_high > narrow.final_high
    assert len(reference.replicates_) == 2  # leave-one-run-out
    widths = [
        (spread.gain_high - spread.gain_low, tight.gain_high - tight.gain_low)
        for spread, tight in zip(wide.whatif, narrow.whatif, strict=True)
        if spread.gain != 0  # the planned start itself: no difference, no band
    ]
    assert widths and all(spread > tight for spread, tight in widths)


def test_the_held_spread_adds_in_quadrature_in_log_space() -> None:
    from scipy import stats

    held = HeldSpread((), band_scale=1.5)
    finals = np.exp(np.array([0.0, 0.02, 0.04]))  # log sd: sqrt(2/3 * 0.0008) = 0.02309
    sd = np.sqrt(2 / 3 * 0.0008)
    final, low, high = held.widen(1.0, np.exp(-0.01), np.exp(0.03), finals, 0.9)
    assert final == 1.0  # a reference's replicates widen the band, and move nothing
    extra = stats.norm.ppf(0.95) * 1.5 * sd
    assert np.log(low) == pytest.approx(-np.hypot(0.01, extra))
    assert np.log(high) == pytest.approx(np.hypot(0.03, extra))
    gain_low, gain_high = held.widen_gain(0.1, 0.05, 0.15, np.array([0.1, 0.12, 0.14]), 0.9)
    half = np.hypot(0.05, stats.t.ppf(0.95, 2) * sd)
    assert (gain_low, gain_high) == pytest.approx((0.1 - half, 0.1 + half))
    assert held.widen_gain(0.1, None, None, np.array([0.1, 0.12]), 0.9) == (None, None)


def test_a_priors_spread_is_a_prediction_interval_for_another_data_set() -> None:
    """Members of a decay prior: the forecast is the mean of the data sets' means, and the band
    adds how far another data set can lie from it, judged by the two seen (Student, 1 degree
    of freedom, times sqrt(1 + 1/2))."""
    from scipy import stats

    held = HeldSpread((), groups=("a", "a", "b"))
    finals = np.exp(np.array([0.0, 0.02, 0.05]))  # data-set means 0.01 and 0.05
    final, low, high = held.widen(1.0, np.exp(-0.01), np.exp(0.01), finals, 0.9)
    assert np.log(final) == pytest.approx(0.03)
    extra = stats.t.ppf(0.95, 1) * np.std([0.01, 0.05], ddof=1) * np.sqrt(1.5)
    assert np.log(low) == pytest.approx(0.03 - np.hypot(0.01, extra))
    assert np.log(high) == pytest.approx(0.03 + np.hypot(0.01, extra))
    one = HeldSpread((), groups=("a", "a"))  # one data set: its members' sd, normal quantile
    _, low, _ = one.widen(1.0, 1.0, 1.0, np.exp(np.array([0.0, 0.02])), 0.9)
    assert np.log(low) == pytest.approx(0.01 - stats.norm.ppf(0.95) * 0.01)


def test_a_fit_that_does_not_pin_the_end_down_gives_no_number() -> None:
    forecaster = LiveForecaster(schedule=COSINE, law="mpl", max_band=1e-6)
    result = forecaster.forecast(run_until(COSINE, 8000, 4800, every=40))
    assert result.status == "unstable" and result.final_loss is None
    assert "wider than" in result.notes[-1]


def test_no_forecast_of_a_decay_the_run_has_not_begun() -> None:
    """A WSD run in its stable phase has not shown how a decay lowers the loss: without a
    reference fit its planned cooldown gets no number, whatever the band; the same run planned
    to stay at its LR does."""
    seen = run_until(WSD, 8000, 4000, every=40)
    result = LiveForecaster(schedule=WSD, law="mpl", max_band=10.0).forecast(seen)
    assert result.status == "unstable" and result.final_loss is None
    assert "has not lowered it yet" in result.notes[-1] and "--reference" in result.notes[-1]
    held = LiveForecaster(schedule=WSD, law="mpl", total_steps=6000).forecast(seen)
    assert held.status == "forecast"  # the plan up to step 6000 is the stable phase
    assert abs(held.final_loss / truth_final(WSD, 6000) - 1) < 0.005


# --- the decay prior ------------------------------------------------------------------------------


def truth_member(name: str, dataset: str, total: int = 8000, spec: str = WSD) -> PriorMember:
    """The generator's response in dimensionless form, as a prior member."""
    return DecayPrior.member(truth_law(), [run_until(spec, total, total - 1)], name, dataset)


def test_a_prior_member_carries_a_response_to_another_run_exactly() -> None:
    """Back in the units of the run it came from, a member is the fitted response; a run with
    twice the peak LR and twice the steps gets the B and C of the same dimensionless response."""
    member = truth_member("truth", "synthetic")
    prior = DecayPrior((member,))
    run = run_until(WSD, 8000, 7999)
    last = int(run.steps[-1])  # the member's length and scale: its run's last logged step
    scale = stable_scale(truth_law(), run.lr, last)
    response = prior.response(member, 3e-4, last + 1, scale)
    assert list(response.values()) == pytest.approx(list(truth_law().params_[3:]))
    double = prior.response(member, 6e-4, 2 * (last + 1), scale)
    gamma = truth_law().params_[6]
    assert double["B"] == pytest.approx(response["B"] / 2)
    assert double["C"] == pytest.approx(response["C"] / (2 ** (1 - gamma) * 2))


def test_a_run_before_its_decay_is_forecast_with_a_decay_prior() -> None:
    """A WSD run in its stable phase cannot show how a decay lowers the loss; a prior from other
    runs of the same response (here the generator's, from a cosine run) gives the number, close,
    and says where it came from."""
    prior = DecayPrior((truth_member("cosine runs", "other", spec=COSINE),))
    seen = run_until(WSD, 8000, 4000, every=40)
    result = LiveForecaster(schedule=WSD, prior=prior).forecast(seen)
    assert result.status == "forecast" and result.decay_prior and result.law_name == "mpl"
    truth = truth_final(WSD, 8000)
    assert result.final_low <= truth <= result.final_high
    assert abs(result.final_loss / truth - 1) < 0.004
    assert "prior from other data sets (other)" in result.notes[-1]
    assert result.to_dict()["decay_prior"] is True
    assert result.best is not None and result.best.whatif.start > 4000
    decayed = LiveForecaster(schedule=WSD, prior=prior).forecast(run_until(WSD, 8000, 7000))
    assert not decayed.decay_prior  # once the decay has begun, the run's own fit


def test_the_spread_of_the_priors_members_enters_the_band() -> None:
    """Two data sets whose responses differ: the forecast is between the two members' own, and
    its band covers both, wider than either member's alone."""
    true = truth_member("truth", "a")
    larger = dataclasses.replace(true, source="twice", dataset="b", b=2 * true.b)
    seen = run_until(WSD, 8000, 4000, every=40)

    def forecast(*members: PriorMember):
        prior = DecayPrior(members)
        result = LiveForecaster(schedule=WSD, prior=prior, max_band=1.0).forecast(seen)
        assert result.status == "forecast"
        return result

    alone, other, both = forecast(true), forecast(larger), forecast(true, larger)
    assert other.final_loss < both.final_loss < alone.final_loss
    assert both.final_low <= other.final_loss and both.final_high >= alone.final_loss
    assert both.final_high - both.final_low > 2 * (alone.final_high - alone.final_low)
    weights = DecayPrior((true, larger, dataclasses.replace(larger, source="c"))).weights()
    assert weights.tolist() == pytest.approx([0.5, 0.25, 0.25])  # each data set alike


def test_a_decay_prior_file_round_trips_and_bad_ones_are_clear_errors(tmp_path) -> None:
    prior = DecayPrior((truth_member("truth", "a"), truth_member("cosine", "b", spec=COSINE)))
    path = prior.save(tmp_path / "prior.json")
    assert DecayPrior.load(path) == prior
    assert prior.without("a").members == prior.members[1:]
    with pytest.raises(LrlabError, match="no member outside data set 'a'"):
        prior.without("b").without("a")
    data = prior.to_dict()
    data["members"][1]["b"] = -1
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(LrlabError, match=r"bad.json: members\[1\]: .* b = -1 must be"):
        DecayPrior.load(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text("{}")
    with pytest.raises(LrlabError, match="other.json: not an lrlab decay prior"):
        DecayPrior.load(tmp_path / "other.json")


def test_the_shipped_prior_holds_three_data_sets_and_is_off_by_default() -> None:
    shipped = default_prior()
    assert shipped is not None and {m.dataset for m in shipped.members} == {"mpl", "124M", "tunnel"}
    assert LiveForecaster(schedule=WSD, prior="default").prior == shipped
    assert LiveForecaster(schedule=WSD).prior is None


def test_a_law_the_points_cannot_pin_down_gives_way_to_a_smaller_one() -> None:
    """A run held at its peak LR leaves lrlab's decay terms undetermined: the forecast comes
    from the next smaller law, with a note; with no fallback there is none."""
    constant = "constant(peak=3e-4, warmup=400)"
    seen = run_until(constant, 8000, 4000, every=40)
    result = LiveForecaster(schedule=constant, total_steps=8000).forecast(seen)
    assert result.status == "forecast" and result.law_name == "mpl"
    assert "undetermined: forecast with law 'mpl' instead" in result.notes[0]
    assert abs(result.final_loss / truth_final(constant, 8000) - 1) < 0.002
    alone = LiveForecaster(schedule=constant, total_steps=8000, fallback=()).forecast(seen)
    assert alone.status == "unstable" and alone.final_loss is None
    assert "undetermined" in alone.notes[-1]


def test_a_decay_begun_but_not_finished_is_forecast_with_the_decay_law() -> None:
    """A cosine run at half its length has lowered its LR and will lower it further: without a
    reference the first law tried is `DECAY_LAW` (auto), with a note; it needs points for its
    three weights only. Without a fallback, or with ``decay_law=None``, the chosen law is
    tried first as before."""
    seen = run_until(COSINE, 8000, 4000, every=40)
    result = LiveForecaster(schedule=COSINE, whatifs=False).forecast(seen)
    assert result.status == "forecast" and result.law_name == "auto", result.notes
    assert "has begun its decay" in result.notes[0] and "'auto'" in result.notes[0]
    assert abs(result.final_loss / truth_final(COSINE, 8000) - 1) < 0.01
    early = LiveForecaster(schedule=COSINE).forecast(run_until(COSINE, 8000, 3000, every=300))
    assert early.status == "waiting" and early.law_name == "auto" and early.needed == 12 - 10
    for options in ({"decay_law": None}, {"fallback": ()}):
        plain = LiveForecaster(schedule=COSINE, whatifs=False, **options)
        assert plain.decay_chain == ()
        assert plain.forecast(seen).law_name != "auto"


def test_the_decay_law_is_only_for_a_partial_decay_without_a_reference() -> None:
    """A run planned to stay at its LR, or one whose decay is complete, is fitted with the
    chosen law as before; a reference fit holds the response, and no decay law is tried."""
    constant = "constant(peak=3e-4, warmup=400)"
    forecaster = LiveForecaster(schedule=constant, total_steps=8000, whatifs=False)
    assert forecaster.decay_chain[0].name == "auto"
    held = forecaster.forecast(run_until(constant, 8000, 4000, every=40))
    assert held.law_name != "auto" and "has begun its decay" not in " ".join(held.notes)
    cosine = LiveForecaster(schedule=COSINE, whatifs=False)
    done = cosine.forecast(run_until(COSINE, 8000, 7960, every=40))  # nothing lower to come
    assert done.law_name != "auto" and "has begun its decay" not in " ".join(done.notes)
    reference = get_law("mpl", bands=False).fit([run_until(COSINE, 8000, 7999, every=40)])
    assert LiveForecaster(schedule=COSINE, reference=reference).decay_chain == ()
    for law in ("mpl", "momentum"):  # a law chosen other than the default is kept
        assert LiveForecaster(schedule=COSINE, law=law).decay_chain == ()


def test_total_steps_are_needed_without_a_schedule_total() -> None:
    with pytest.raises(LrlabError, match="--total-steps"):
        LiveForecaster(schedule="constant(peak=1e-3, warmup=10)")
    assert LiveForecaster(schedule=WSD).total_steps == 8000
    # A warmup joined before a WSD (as the wind tunnel's sidecars hold): the WSD's end.
    warmed = (
        f"join(schedules=[piecewise_linear(points=[[0, 0], [71, 3e-3]]), {WSD}], boundaries=[72])"
    )
    assert LiveForecaster(schedule=warmed).total_steps == 8072
    assert LiveForecaster(schedule=f"join(schedules=[{WSD}], boundaries=[])").total_steps == 8000
    with pytest.raises(LrlabError, match="--total-steps"):
        LiveForecaster(schedule=f"join(schedules=[{WSD}, constant(peak=1e-4)], boundaries=[8000])")


# --- following a log ----------------------------------------------------------------------------


def _log(tmp_path, last: int, **options):
    steps, loss, lr = curve(WSD, 8000, every=40, **options)
    keep = steps <= last
    return steps[keep], loss[keep], lr


def test_follower_reads_only_complete_lines_and_only_when_the_log_changed(tmp_path) -> None:
    path = tmp_path / "run.csv"
    steps, loss, lr = _log(tmp_path, 2000)
    write_csv(path, steps, loss, lr)
    with open(path, "a") as file:
        file.write("2040,3.1")  # the writer is half-way through a line
    with LogFollower(path) as follower:
        run = follower.read()
        assert run.steps[-1] == 2000 and run.name == "run" and run.source == str(path)
        assert follower.read() is None  # unchanged
        with open(path, "a") as file:
            file.write(f"23,{float(lr[2040])!r}\n")
        run = follower.read()
        assert run.steps[-1] == 2040 and run.loss[-1] == 3.123


def test_follower_takes_the_last_value_of_a_relogged_step(tmp_path) -> None:
    path = tmp_path / "run.csv"
    steps, loss, lr = _log(tmp_path, 2000)
    write_csv(path, steps, loss, lr)
    with LogFollower(path) as follower:
        follower.read()
        with open(path, "a") as file:  # resumed from a checkpoint at step 1600
            file.write(f"1600,9.5,{float(lr[1600])!r}\n")
        run = follower.read()
        assert run.loss[run.steps == 1600][0] == 9.5 and run.steps[-1] == 2000


def test_follower_rereads_a_rewritten_log_and_keeps_a_rotated_one(tmp_path) -> None:
    path = tmp_path / "run.csv"
    steps, loss, lr = _log(tmp_path, 2000)
    write_csv(path, steps, loss, lr)
    with LogFollower(path) as follower:
        assert follower.read().steps.size == 50
        # Rewritten from the start, shorter (a run restarted from step 0): read anew.
        write_csv(path, steps[:10], loss[:10], lr)
        assert follower.read().steps[-1] == 400
        write_csv(path, steps, loss, lr)
        assert follower.read().steps.size == 50
        # Rotated: the new file starts where the old one ended; the old rows stay.
        os.replace(path, tmp_path / "run.csv.1")
        later = np.arange(2040, 2400, 40)
        write_csv(path, later, np.full(later.size, 3.0), lr)
        run = follower.read()
        assert run.steps[0] == 40 and run.steps[-1] == 2360 and run.steps.size == 59
        # Only the rotation is said: not what reading the new file alone (its first LR at step
        # 2040, as if it were the whole run) would have said of a run that is not the one read.
        (note,) = follower.notes
        assert "rotated" in note and "before step 2040" in note


def test_follower_of_a_missing_log_waits(tmp_path) -> None:
    path = tmp_path / "later.csv"
    with LogFollower(path) as follower:
        assert not follower.exists() and follower.read() is None
        steps, loss, lr = _log(tmp_path, 400)
        write_csv(path, steps, loss, lr)
        assert follower.exists() and follower.read().steps[-1] == 400


def test_follower_notes_nan_losses(tmp_path) -> None:
    path = tmp_path / "run.csv"
    steps, loss, lr = _log(tmp_path, 2000)
    loss[-5:] = np.nan
    write_csv(path, steps, loss, lr)
    with LogFollower(path) as follower:
        run = follower.read()
        assert run.steps[-1] == 1800
        assert any("dropped 5 NaN/inf" in note for note in follower.notes)
        assert all(str(tmp_path / "run.csv") in note for note in follower.notes)


def test_follower_notes_name_a_relative_log_as_given(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    steps, loss, lr = _log(tmp_path, 2000)
    loss[-1] = np.nan
    write_csv(tmp_path / "run.csv", steps, loss, lr)
    with LogFollower("run.csv") as follower:
        follower.read()
        (note,) = follower.notes
        assert note.startswith("run.csv: dropped 1 NaN/inf"), note  # not ./run.csv, nor a copy


def test_follower_of_a_tunnel_run_folder_reads_its_eval_log_and_total(tmp_path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "config.json").write_text('{"train": {"steps": 8000}}')
    steps, loss, lr = _log(tmp_path, 2000)
    write_csv(folder / "eval.csv", steps, loss, lr, with_lr=False)
    save_spec(parse(WSD), folder / "eval.csv.schedule.json")
    with LogFollower(folder) as follower:
        run = follower.read()
        assert follower.total_steps == 8000 and follower.log == folder / "eval.csv"
        assert run.metadata["lr_source"] == "schedule"
        assert follower.schedule_spec()["name"] == "wsd"


def test_follower_of_a_tensorboard_directory(tmp_path) -> None:
    pytest.importorskip("torch")
    tensorboard = pytest.importorskip("torch.utils.tensorboard")
    steps, loss, lr = _log(tmp_path, 2000)
    writer = tensorboard.SummaryWriter(str(tmp_path / "tb"))
    for step, value in zip(steps.tolist(), loss.tolist(), strict=True):
        writer.add_scalar("train/loss", value, step)
        writer.add_scalar("train/lr", lr[step], step)
    writer.flush()
    with LogFollower(tmp_path / "tb") as follower:
        assert follower.read().steps[-1] == 2000
        for step in (2040, 2080):
            writer.add_scalar("train/loss", 3.0, step)
            writer.add_scalar("train/lr", lr[step], step)
        writer.flush()
        time.sleep(0.01)
        assert follower.read().steps[-1] == 2080
    writer.close()


def test_a_run_from_the_follower_is_forecast(tmp_path) -> None:
    path = tmp_path / "run.csv"
    steps, loss, lr = curve(COSINE, 8000, every=40)
    keep = steps <= 4800
    write_csv(path, steps[keep], loss[keep], lr)
    with LogFollower(path, schedule=COSINE) as follower:
        result = LiveForecaster(schedule=COSINE).forecast(follower.read(), follower.notes)
    assert result.status == "forecast" and result.step == 4800
