"""Properties every schedule must have, checked over the parameter space with hypothesis."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lrlab.schedules import REGISTRY, Schedule, WarmupSchedule, from_spec, parse
from schedule_strategies import ALL_STRATEGIES

NAMES = sorted(ALL_STRATEGIES)
PROPERTY_SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def test_every_registered_schedule_has_a_strategy():
    assert set(REGISTRY) == set(ALL_STRATEGIES)


def horizon(schedule: Schedule) -> int:
    """A step range that covers every phase of the schedule and some steps past its end."""
    fields = schedule.to_spec()
    candidates = [
        value
        for key, value in fields.items()
        if isinstance(value, int) and not isinstance(value, bool) and key != "name"
    ]
    # Lists of steps (checkpoints, cycle lengths): their sum bounds every phase.
    candidates += [
        sum(v for v in value if isinstance(v, int))
        for value in fields.values()
        if isinstance(value, list)
    ]
    return int(min(max([10, *candidates]) * 1.3 + 10, 200_000))


def evaluation_steps(schedule: Schedule, data: st.DataObject) -> np.ndarray:
    end = horizon(schedule)
    integer_steps = np.arange(0, end, max(1, end // 5000), dtype=np.float64)
    extra = data.draw(st.lists(st.floats(0, end, allow_nan=False), max_size=20))
    return np.concatenate([integer_steps, np.asarray(extra, dtype=np.float64)])


@pytest.mark.parametrize("name", NAMES)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_learning_rates_are_finite_and_non_negative(name, data):
    schedule = from_spec(data.draw(ALL_STRATEGIES[name]))
    lrs = schedule(evaluation_steps(schedule, data))
    assert np.all(np.isfinite(lrs))
    assert np.all(lrs >= 0.0)


@pytest.mark.parametrize("name", NAMES)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_scalar_and_array_calls_agree(name, data):
    schedule = from_spec(data.draw(ALL_STRATEGIES[name]))
    steps = evaluation_steps(schedule, data)[:50]
    array_lrs = schedule(steps)
    assert array_lrs.shape == steps.shape
    scalar_lrs = [schedule(float(step)) for step in steps]
    assert all(isinstance(value, float) for value in scalar_lrs)
    np.testing.assert_array_equal(array_lrs, scalar_lrs)
    assert schedule(steps.reshape(-1, 1)).shape == (len(steps), 1)


@pytest.mark.parametrize("name", [n for n in NAMES if REGISTRY[n].non_increasing])
@PROPERTY_SETTINGS
@given(data=st.data())
def test_non_increasing_schedules_never_rise_after_warmup(name, data):
    schedule = from_spec(data.draw(ALL_STRATEGIES[name]))
    start = schedule.warmup if isinstance(schedule, WarmupSchedule) else 0
    steps = np.arange(start, horizon(schedule), dtype=np.float64)
    lrs = schedule(steps)
    assert np.all(np.diff(lrs) <= 1e-12 * max(1.0, lrs.max()))


@pytest.mark.parametrize("name", [n for n in NAMES if REGISTRY[n].non_increasing])
@PROPERTY_SETTINGS
@given(data=st.data())
def test_warmup_rises_to_the_peak(name, data):
    schedule = from_spec(data.draw(ALL_STRATEGIES[name]))
    if not isinstance(schedule, WarmupSchedule) or schedule.warmup == 0:
        return
    # The main phase may drop at once (two-stage), so look just before the warmup's end.
    steps = np.append(np.arange(schedule.warmup, dtype=np.float64), schedule.warmup - 1e-9)
    lrs = schedule(steps)
    assert np.all(np.diff(lrs) >= -1e-15)
    assert lrs[-1] == pytest.approx(schedule.peak, rel=1e-6)


@pytest.mark.parametrize("name", [n for n in NAMES if REGISTRY[n].continuous])
@PROPERTY_SETTINGS
@given(data=st.data())
def test_continuous_schedules_have_no_jumps(name, data):
    """Phase boundaries sit at integer steps (or, for one-cycle, anywhere): probing both sides of
    every evaluated step within 1e-10 steps finds any jump; continuous parts move by far less
    (even square-root shapes, whose slope is unbounded, move by about 1e-5 of the peak)."""
    schedule = from_spec(data.draw(ALL_STRATEGIES[name]))
    steps = evaluation_steps(schedule, data)
    if name == "one_cycle":
        turn = schedule.pct_start * schedule.total - 1.0
        steps = np.append(steps, turn)
    epsilon = 1e-10
    left = schedule(np.maximum(steps - epsilon, 0.0))
    right = schedule(steps + epsilon)
    scale = max(np.max(np.abs(left)), 1e-30)
    assert np.max(np.abs(right - left)) <= 1e-3 * scale


@pytest.mark.parametrize("name", NAMES)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_spec_round_trips(name, data):
    spec = data.draw(ALL_STRATEGIES[name])
    schedule = from_spec(spec)
    assert from_spec(schedule.to_spec()) == schedule
    assert from_spec(json.loads(json.dumps(schedule.to_spec()))) == schedule
    assert from_spec(yaml.safe_load(yaml.safe_dump(schedule.to_spec()))) == schedule
    assert parse(str(schedule)) == schedule
    assert parse(json.dumps(schedule.to_spec())) == schedule


@PROPERTY_SETTINGS
@given(data=st.data())
def test_each_joined_phase_sees_steps_relative_to_its_start(data):
    schedule = from_spec(data.draw(ALL_STRATEGIES["join"]))
    starts = (0, *schedule.boundaries)
    ends = (*schedule.boundaries, starts[-1] + 1000)
    for phase, start, end in zip(schedule.schedules, starts, ends):
        steps = np.linspace(start, end - 1e-9, 50)
        np.testing.assert_array_equal(schedule(steps), phase(steps - start))
