"""Behaviour tests for the continual-pre-training and recent schedules, with the papers' values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings

from lrlab.errors import SpecError
from lrlab.schedules import REGISTRY, from_spec, join, parse
from schedule_strategies_recent import RECENT_STRATEGIES

# --- infinite (Ibrahim et al. 2024) --------------------------------------------------------------


def test_infinite_phase_values() -> None:
    # eta_max 3e-4, eta_const 1.65e-4, eta_min 3e-5: the defaults as ratios of the peak.
    s = parse(
        "infinite(peak=3e-4, warmup=100, cooldown_steps=900, anneal_start=5000, anneal_steps=1000)"
    )
    const, low = 1.65e-4, 3e-5
    assert s(50) == pytest.approx(1.5e-4)  # linear warmup
    assert s(100) == pytest.approx(3e-4)
    assert s(550) == pytest.approx(const + (3e-4 - const) / 2)  # cosine cooldown midpoint
    assert s([1000, 3000, 4999]) == pytest.approx([const] * 3)
    assert s(5500) == pytest.approx(math.sqrt(const * low))  # exponential anneal midpoint
    assert s([6000, 10**6]) == pytest.approx([low, low])


def test_infinite_without_anneal_stays_constant() -> None:
    s = parse("infinite(peak=1, cooldown_steps=10, constant_ratio=0.5)")
    assert s([0, 10, 10**7]) == pytest.approx([1.0, 0.5, 0.5])


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        (
            "infinite(peak=1, warmup=10, cooldown_steps=10, anneal_start=15, anneal_steps=5)",
            "anneal_start=15",
        ),
        ("infinite(peak=1, cooldown_steps=10, anneal_start=15)", "anneal_steps"),
        ("infinite(peak=1, cooldown_steps=10, constant_ratio=0.2, min_ratio=0.3)", "min_ratio"),
        ("infinite(peak=1, cooldown_steps=0)", "cooldown_steps"),
    ],
)
def test_infinite_errors(spec: str, words: str) -> None:
    with pytest.raises(SpecError, match=words):
        parse(spec)


# --- repeated cosine and re-warm/re-decay (Gupta et al. 2023; Ibrahim et al. 2024) ----------------


def test_repeated_cosine_cycles() -> None:
    s = parse("repeated_cosine(peak=1, cycle_steps=[1000, 2000])")  # warmup 1%, floor 10%
    assert s([0, 5, 10]) == pytest.approx([0.0, 0.5, 1.0])
    assert s(505) == pytest.approx(0.1 + 0.9 * 0.5)  # halfway through the first decay
    assert s([1000, 1010, 1020]) == pytest.approx([0.0, 0.5, 1.0])  # re-warm from 0
    assert s([3000, 10**6]) == pytest.approx([0.1, 0.1])
    same = parse("repeated_cosine(peak=1, cycle_length=1000, cycle_count=2, warmup=10)")
    listed = parse("repeated_cosine(peak=1, cycle_steps=[1000, 1000], warmup=10)")
    steps = np.arange(0, 2500, 7)
    np.testing.assert_allclose(same(steps), listed(steps))


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("repeated_cosine(peak=1)", "cycle_steps"),
        (
            "repeated_cosine(peak=1, cycle_steps=[10], cycle_length=10, cycle_count=1)",
            "cycle_steps",
        ),
        ("repeated_cosine(peak=1, cycle_length=10)", "cycle_count"),
        ("repeated_cosine(peak=1, cycle_steps=[10, 5], warmup=5)", "warmup"),
        ("repeated_cosine(peak=1, cycle_steps=[10, 0])", r"cycle_steps\[1\]"),
    ],
)
def test_repeated_cosine_errors(spec: str, words: str) -> None:
    with pytest.raises(SpecError, match=words):
        parse(spec)


def test_rewarm_redecay_joins_without_a_jump() -> None:
    base = parse("cosine(peak=3e-4, total=1000, end_ratio=0.1)")
    stage = parse("rewarm_redecay(start=3e-5, peak=3e-4, warmup=10, total=1000)")
    run = join([base, stage], [1000])
    assert run(999.999) == pytest.approx(run(1000), rel=1e-6)
    assert run([1005, 1010]) == pytest.approx([1.65e-4, 3e-4])
    assert run(1505) == pytest.approx(3e-5 + (3e-4 - 3e-5) / 2)  # cosine midpoint
    assert run([2000, 5000]) == pytest.approx([3e-5, 3e-5])  # default floor: 10% of peak


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("rewarm_redecay(start=2, peak=1, warmup=1, total=10)", "start=2"),
        ("rewarm_redecay(start=0, peak=1, warmup=10, total=10)", "warmup=10"),
        ("rewarm_redecay(start=0, peak=1, warmup=1, total=10, end=0.1, end_ratio=0.1)", "end"),
        (
            "rewarm_redecay(start=0, peak=1, warmup=1, total=10, end=0, decay=exponential)",
            "exponential",
        ),
        (
            "rewarm_redecay(start=0, peak=1, warmup=1, total=10, warmup_shape=exponential)",
            "warmup_shape",
        ),
    ],
)
def test_rewarm_redecay_errors(spec: str, words: str) -> None:
    with pytest.raises(SpecError, match=words):
        parse(spec)


# --- power (Shen et al. 2024) ---------------------------------------------------------------------


def test_power_follows_the_power_law() -> None:
    # 1024 x 4096-token sequences per step, the paper's a = 4, b = -0.51, lr_max = 0.02.
    s = parse("power(batch_size=1024, seq_len=4096, warmup=1)")
    for step in (100, 9_000, 200_000):
        tokens = step * 1024 * 4096
        assert s(step) == pytest.approx(min(0.02, 1024 * 4 * tokens**-0.51))
    assert s(9_000) < 0.02  # past the cap the LR decays as n^b
    # At a fixed token count the LR is proportional to the batch size (beta * a * n^b).
    small = parse("power(batch_size=256, seq_len=4096, lr_max=1, warmup=1)")
    large = parse("power(batch_size=512, seq_len=4096, lr_max=1, warmup=1)")
    assert large(5_000) == pytest.approx(2 * small(10_000))


def test_power_warmup_and_exponential_decay() -> None:
    s = parse("power(batch_size=1024, seq_len=4096, warmup=1000, total=20000, decay_steps=2000)")
    assert s(500) == pytest.approx(0.5 * s.power_lr(1000))
    assert s(18_000) == pytest.approx(s.power_lr(18_000))
    halfway = (math.exp(0.5) - 1) / (math.e - 1)
    assert s(19_000) == pytest.approx(halfway * s.power_lr(18_000))
    assert s([20_000, 30_000]) == pytest.approx([0.0, 0.0])
    linear = parse(
        "power(batch_size=1024, seq_len=4096, warmup=1, total=20000, "
        "decay_steps=2000, decay=linear)"
    )
    assert linear(19_000) == pytest.approx(0.5 * linear.power_lr(18_000))


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("power(batch_size=8, seq_len=8, warmup=1, b=0.5)", "b=0.5"),
        ("power(batch_size=8, seq_len=8, warmup=1, total=100)", "decay_steps"),
        ("power(batch_size=8, seq_len=8, warmup=50, total=100, decay_steps=60)", "overlaps"),
        ("power(batch_size=0, seq_len=8, warmup=1)", "batch_size=0"),
        ("power(batch_size=8, seq_len=8, warmup=0)", "warmup=0"),
    ],
)
def test_power_errors(spec: str, words: str) -> None:
    with pytest.raises(SpecError, match=words):
        parse(spec)


# --- REX (Chen et al. 2022) ----------------------------------------------------------------------


def test_rex_profile() -> None:
    s = parse("rex(peak=1, total=1000)")
    assert s([0, 500, 1000, 2000]) == pytest.approx([1.0, 2 / 3, 0.0, 0.0])
    assert s(250) == pytest.approx(0.75 / 0.875)
    floored = parse("rex(peak=1, total=1000, warmup=100, end=0.1)")
    assert floored([50, 100, 550, 1000]) == pytest.approx([0.5, 1.0, 0.1 + 0.9 * 2 / 3, 0.1])


# --- damped cosine (Keras CosineDecayRestarts) ---------------------------------------------------


def _keras_restarts(step: float, first: int, t_mul: float, m_mul: float, alpha: float) -> float:
    """tf.keras CosineDecayRestarts with initial_learning_rate = 1, in plain Python."""
    fraction = step / first
    if t_mul == 1.0:
        index = math.floor(fraction)
        fraction -= index
    else:
        index = math.floor(math.log(1.0 - fraction * (1.0 - t_mul)) / math.log(t_mul))
        fraction = (fraction - (1.0 - t_mul**index) / (1.0 - t_mul)) / t_mul**index
    return (1 - alpha) * 0.5 * m_mul**index * (1.0 + math.cos(math.pi * fraction)) + alpha


@pytest.mark.parametrize(
    ("t_mul", "m_mul", "alpha"), [(2.0, 0.5, 0.0), (1.0, 0.8, 0.1), (1.5, 0.9, 0.05)]
)
def test_damped_cosine_matches_keras(t_mul: float, m_mul: float, alpha: float) -> None:
    s = parse(
        f"damped_cosine(peak=1, cycle=10, damping={m_mul}, cycle_mult={t_mul}, end_ratio={alpha})"
    )
    steps = [0, 3, 9, 11, 25, 31, 69, 71, 149]
    expected = [_keras_restarts(step, 10, t_mul, m_mul, alpha) for step in steps]
    assert s(steps) == pytest.approx(expected)
    assert parse("damped_cosine(peak=1, cycle=10, damping=0.5)")([10, 30, 70]) == pytest.approx(
        [0.5, 0.25, 0.125]
    )  # restart peaks at 0, 10, 30, 70 with cycle_mult 2


def test_damped_cosine_errors() -> None:
    with pytest.raises(SpecError, match="damping=1.5"):
        parse("damped_cosine(peak=1, cycle=10, damping=1.5)")
    with pytest.raises(SpecError, match="damping is required"):
        parse("damped_cosine(peak=1, cycle=10)")


# --- UBA -----------------------------------------------------------------------------------------


def test_uba_family() -> None:
    steps = np.arange(0, 1001)
    cosine = parse("cosine(peak=1, total=1000, end=0.1)")
    np.testing.assert_allclose(
        parse("uba(peak=1, total=1000, end=0.1, phi=2)")(steps), cosine(steps), atol=1e-12
    )
    for phi in (0.1, 1.0, 5.0):
        s = parse(f"uba(peak=1, total=1000, phi={phi})")
        assert s(500) == pytest.approx(2 / (2 + phi))  # 1 + cos(pi / 2) = 1
        assert s([0, 1000]) == pytest.approx([1.0, 0.0])
    with pytest.raises(SpecError, match="phi=0"):
        parse("uba(peak=1, total=10, phi=0)")


# --- properties over the strategies --------------------------------------------------------------


def _grid(spec: dict) -> np.ndarray:
    steps = [
        value
        for key, value in spec.items()
        if isinstance(value, int) and not isinstance(value, bool) and key != "batch_size"
    ]
    end = sum(spec.get("cycle_steps", [])) + max([10, *steps]) * 2
    return np.unique(np.concatenate([np.linspace(0, 1.2 * end + 10, 400), np.arange(0, 50)]))


@pytest.mark.parametrize("name", sorted(RECENT_STRATEGIES))
def test_strategies_build_valid_schedules(name: str) -> None:
    assert name in REGISTRY

    @settings(max_examples=25, deadline=None)
    @given(RECENT_STRATEGIES[name])
    def check(spec: dict) -> None:
        schedule = from_spec(spec)
        assert from_spec(schedule.to_spec()) == schedule
        assert parse(str(schedule)) == schedule
        t = _grid(spec)
        lr = schedule(t)
        assert np.all(np.isfinite(lr)) and np.all(lr >= 0)
        if schedule.non_increasing or name == "power":  # power: see its class comment
            after = lr[t >= spec.get("warmup", 0)]
            assert np.all(np.diff(after) <= 1e-12 * max(1.0, float(lr.max())))

    check()
