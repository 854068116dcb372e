"""The mechanisms that make fits fast give the results of the plain computation: fits side by side
in forked workers (`lrlab.laws.parallel`) those of the serial fit, to the bit; the momentum law's
annealing area summed over distinct steps (`AnnealingPlan`) the step-by-step recursion; and the
kernels' reused workspaces (`DropQuadrature.workspace`) leak nothing from one evaluation into
the next."""

from __future__ import annotations

import gc
import os
import sys
import types
import warnings

import numpy as np
import pytest

from lrlab.errors import LrlabError, LrlabWarning
from lrlab.laws import base, get_law, parallel
from lrlab.laws.momentum_law import AnnealingPlan
from lrlab.laws.points import fit_points
from lrlab.runs import Run
from lrlab.schedules import parse

SPECS = (
    "constant(peak=3e-3, warmup=40)",
    "cosine(peak=3e-3, total=800, warmup=40, end_ratio=0.1)",
    "two_stage(peak=3e-3, warmup=40, drop_step=480, low=3e-4)",
)
MPL_TRUTH = np.array([0.3, 1.2, 0.4, 40.0, 2.0, 0.5, 0.6])

forking = pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork on this platform")


def mpl_runs(noise: float = 0.002) -> list[Run]:
    """SYNTHETIC loss curves of the multi-power law with multiplicative noise, three schedules."""
    truth = get_law("mpl")
    truth.params_ = MPL_TRUTH
    rng = np.random.default_rng(7)
    steps = np.arange(10, 800, 5)
    runs = []
    for index, spec in enumerate(SPECS):
        lr = parse(spec)(np.arange(800))
        loss = truth.predict(lr, steps) * np.exp(noise * rng.normal(size=steps.size))
        runs.append(Run(name=f"run{index}", lr=lr, steps=steps, loss=loss))
    return runs


@pytest.fixture
def always_fork(monkeypatch):
    """Fork workers whatever the items cost and however many cores there are."""
    monkeypatch.setattr(parallel, "_WORTH_SECONDS", 0.0)
    monkeypatch.setenv(parallel.WORKERS_VARIABLE, "2")
    # Threads that earlier tests leave in this process (tqdm's monitor from the Hugging Face tests,
    # JAX's from the optax tests) would make fork_map run serially; these tests' workers take no
    # lock those hold.
    monkeypatch.setattr(parallel, "threads_elsewhere", lambda: False)


def _fitted_numbers(law) -> dict[str, np.ndarray]:
    laws = {"": law, **getattr(law, "members_", {})}
    numbers = {}
    for name, member in laws.items():
        numbers[f"{name} params"] = member.params_
        numbers[f"{name} replicates"] = member.replicates_
        numbers[f"{name} band"] = np.array(
            [member.band_scale_, member.band_growth_, member.noise_sd_]
        )
    return numbers


@forking
@pytest.mark.parametrize("name", ["mpl", "auto"])
def test_fits_in_workers_equal_the_serial_fit_to_the_bit(name, always_fork, monkeypatch):
    runs = mpl_runs()
    side_by_side = _fitted_numbers(get_law(name).fit(runs))
    monkeypatch.setenv(parallel.WORKERS_VARIABLE, "1")
    serial = _fitted_numbers(get_law(name).fit(runs))
    assert side_by_side.keys() == serial.keys()
    for key, values in serial.items():
        np.testing.assert_array_equal(side_by_side[key], values, err_msg=key)


@pytest.mark.parametrize("name", ["mpl", "lrlab"])
def test_a_banded_fit_builds_each_parts_features_once_with_the_fresh_builds_numbers(
    name, monkeypatch
):
    """The band's refits and calibration reuse the features of the parts they fit and predict
    (`Law._problem`'s `built`) rather than building them again: each part's once, and the same
    numbers as a fit that builds them afresh every time."""
    monkeypatch.setenv(parallel.WORKERS_VARIABLE, "1")  # the builds are counted in this process
    runs = mpl_runs()
    law_class = type(get_law(name))
    builds = []
    features = law_class.features

    def counted(self, lr, steps):
        builds.append((id(lr), steps.tobytes()))
        return features(self, lr, steps)

    monkeypatch.setattr(law_class, "features", counted)
    reused = _fitted_numbers(get_law(name).fit(runs))
    assert len(builds) == len(set(builds))
    assert len(builds) < 24  # without the reuse, 36: each refit and prediction built its own

    problem, curves_at = law_class._problem, law_class._curves_at
    monkeypatch.setattr(
        law_class,
        "_problem",
        lambda self, parts, lower, upper, built=None: problem(self, parts, lower, upper),
    )
    monkeypatch.setattr(
        law_class,
        "_curves_at",
        lambda self, thetas, lr, steps, features=None: curves_at(self, thetas, lr, steps),
    )
    fresh = _fitted_numbers(get_law(name).fit(runs))
    for key, values in fresh.items():
        np.testing.assert_array_equal(reused[key], values, err_msg=key)


def test_lrlab_evaluates_a_fits_parts_at_once_with_each_parts_own_numbers(monkeypatch):
    """`lrlab` merges a fit's parts into one evaluation (`Law.merged_features`): the curve and
    Jacobian of each part, and so the fit, are those of evaluating the parts one by one."""
    monkeypatch.setenv(parallel.WORKERS_VARIABLE, "1")
    runs = mpl_runs()
    law = get_law("lrlab")
    law.prepare(runs)
    parts = [law.features(run.lr, run.steps) for run in runs]
    theta = law.starts(0.3)[1]
    merged = law.curve_and_jacobian(theta, law.merged_features(parts))
    each = [law.curve_and_jacobian(theta, features) for features in parts]
    np.testing.assert_array_equal(merged[0], np.concatenate([curve for curve, _ in each]))
    np.testing.assert_array_equal(merged[1], np.vstack([block for _, block in each]))

    at_once = _fitted_numbers(get_law("lrlab").fit(runs))
    monkeypatch.setattr(type(law), "merged_features", lambda self, features: None)
    one_by_one = _fitted_numbers(get_law("lrlab").fit(runs))
    for key, values in one_by_one.items():
        np.testing.assert_array_equal(at_once[key], values, err_msg=key)


def test_the_solver_runs_on_one_blas_thread_with_the_libraries_found_once(monkeypatch):
    """Every solve limits BLAS to one thread (`robust_least_squares`), through one look-up of
    the loaded libraries per process (`base._blas`) rather than one per solve."""
    import threadpoolctl
    from scipy import optimize

    monkeypatch.setenv(parallel.WORKERS_VARIABLE, "1")  # the look-ups are counted here
    lookups = []

    class Counted(threadpoolctl.ThreadpoolController):
        def __init__(self) -> None:
            lookups.append(1)
            super().__init__()

    threads = []
    least_squares = optimize.least_squares

    def recorded(*args, **kwargs):  # the solver, as it starts
        info = threadpoolctl.threadpool_info()
        threads.extend(lib["num_threads"] for lib in info if lib["user_api"] == "blas")
        return least_squares(*args, **kwargs)

    monkeypatch.setattr(threadpoolctl, "ThreadpoolController", Counted)
    base._blas.cache_clear()
    try:
        get_law("mpl").fit(mpl_runs())  # 15 solves: scouts, refinement, jackknife, growth
        get_law("momentum", bands=False).fit(mpl_runs())
        assert len(lookups) == 1
        monkeypatch.setattr(optimize, "least_squares", recorded)
        get_law("mpl", bands=False).fit(mpl_runs())
    finally:
        base._blas.cache_clear()  # found afresh, unpatched, by the next fit
    assert threads and set(threads) == {1}


@forking
def test_fork_map_keeps_the_order_and_raises_what_a_worker_raised(always_fork):
    frozen = gc.get_freeze_count()
    pids = parallel.fork_map(lambda item: (item, os.getpid()), list(range(5)))
    assert [item for item, _ in pids] == list(range(5))
    # each item but the last ran in a worker of its own; the last here, in a worker's place
    assert len({pid for _, pid in pids[:4]} - {os.getpid()}) == 4
    assert pids[4][1] == os.getpid()
    assert gc.get_freeze_count() == frozen  # this process's objects are collected as before

    def failing(item: int) -> int:
        if item >= 2:
            raise LrlabError(f"item {item} failed")
        return item

    with pytest.raises(LrlabError, match="item 2 failed"):  # the first failure, in order
        parallel.fork_map(failing, [0, 1, 2, 3])


@forking
def test_a_worker_warns_in_the_caller_and_uses_only_its_share_of_the_workers(
    always_fork, monkeypatch
):
    def nested(item: int) -> int:
        warnings.warn(f"item {item}", LrlabWarning, stacklevel=1)
        inner = parallel.fork_map(lambda _: os.getpid(), [0, 1])
        assert inner == [os.getpid()] * 2  # 2 workers for 3 items: none to share out
        return item

    with pytest.warns(LrlabWarning) as caught:
        assert parallel.fork_map(nested, [0, 1, 2]) == [0, 1, 2]
    # (JAX, if an earlier test imported it, adds a RuntimeWarning of its own at each fork)
    ours = [str(w.message) for w in caught if issubclass(w.category, LrlabWarning)]
    assert ours == ["item 0", "item 1", "item 2"]

    def shared_out(_: int) -> int:
        inner = parallel.fork_map(lambda _: os.getpid(), [0, 1])
        return len({os.getpid(), *inner})

    # 2 workers (one of them this process), each keeping 2 busy (itself and one of its own)
    monkeypatch.setenv(parallel.WORKERS_VARIABLE, "4")
    assert parallel.fork_map(shared_out, [0, 1]) == [2, 2]
    assert parallel.worker_count() == 4  # this process's own share is its whole again


@pytest.mark.parametrize("runtime", ["jax", "torch"])
def test_fits_run_serially_once_a_threaded_runtime_is_imported(runtime, monkeypatch):
    monkeypatch.setenv(parallel.WORKERS_VARIABLE, "2")
    monkeypatch.setattr(parallel.threading, "active_count", lambda: 1)
    monkeypatch.delitem(sys.modules, "jax", raising=False)
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    assert parallel.worker_count() == 2
    monkeypatch.setitem(sys.modules, runtime, types.ModuleType(runtime))
    assert parallel.worker_count() == 1


def test_the_workers_variable_must_be_a_whole_number(monkeypatch):
    monkeypatch.setenv(parallel.WORKERS_VARIABLE, "two")
    with pytest.raises(LrlabError, match="LRLAB_FIT_WORKERS='two'"):
        parallel.worker_count()
    monkeypatch.setenv(parallel.WORKERS_VARIABLE, "1")
    assert parallel.fork_map(lambda _: os.getpid(), [0, 1]) == [os.getpid()] * 2


def _stepwise_area(lr: np.ndarray, lam: float) -> np.ndarray:
    """``S2`` at every step by its definition: ``m_i = lam m_{i-1} + lr_{i-1} - lr_i``."""
    momentum, total, areas = 0.0, 0.0, [0.0]
    for i in range(1, lr.size):
        momentum = lam * momentum + (lr[i - 1] - lr[i])
        total += momentum
        areas.append(total)
    return np.array(areas)


@pytest.mark.parametrize("lam", [0.0, 0.5, 0.97, 0.99999])
def test_the_annealing_area_over_distinct_steps_is_the_stepwise_one(lam):
    lr = parse("two_stage(peak=3e-3, warmup=40, drop_step=300, low=3e-4)")(np.arange(500))
    lr[350:420] = np.linspace(3e-4, 1e-4, 70)  # a decay as well as a drop and a warmup
    steps = np.array([499, 0, 10, 10, 300, 301, 2, 450, 41])  # unsorted, repeated, step 0
    plan = AnnealingPlan.build(lr[:-1] - lr[1:], steps)
    area, by_lam = plan.area(lam)
    scale = np.abs(_stepwise_area(lr, lam)).max()
    np.testing.assert_allclose(area, _stepwise_area(lr, lam)[steps], rtol=0, atol=1e-12 * scale)
    # the derivative by lambda, against a central difference of the definition
    h = 1e-6 * (1 - lam) if lam > 0 else 1e-7
    numeric = (_stepwise_area(lr, lam + h) - _stepwise_area(lr, max(lam - h, 0.0))) / (
        lam + h - max(lam - h, 0.0)
    )
    np.testing.assert_allclose(by_lam, numeric[steps], rtol=1e-5, atol=1e-9 * scale)


@pytest.mark.parametrize("name", ["mpl", "lrlab"])
def test_an_evaluation_leaves_nothing_behind_for_the_next(name):
    runs = mpl_runs()
    law = get_law(name)
    law.prepare(runs)
    points = fit_points(runs[1])
    features = law.features(points.lr, points.fit_steps)
    theta = law.starts(0.3)[0]
    other = law.starts(0.3)[2]
    first = [a.copy() for a in law.curve_and_jacobian(theta, features)]
    first_curve = law.curve(theta, features).copy()
    law.curve_and_jacobian(other, features)
    law.curve(other, features)
    again = law.curve_and_jacobian(theta, features)
    np.testing.assert_array_equal(again[0], first[0])
    np.testing.assert_array_equal(again[1], first[1])
    np.testing.assert_array_equal(law.curve(theta, features), first_curve)
    # and fresh features, with fresh workspaces, give the same numbers
    fresh = law.features(points.lr, points.fit_steps)
    np.testing.assert_array_equal(law.curve_and_jacobian(theta, fresh)[1], first[1])
