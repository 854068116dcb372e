"""Schedule values against the papers' definitions, the shared data and PyTorch's own schedulers."""

from __future__ import annotations

import csv

import numpy as np
import pytest

import shared_data as shared
from lrlab.errors import SpecError
from lrlab.schedules import continue_from, from_spec, join, load_spec, parse, save_spec, scale


@pytest.mark.parametrize("name", sorted(shared.SCHEDULE_SPECS))
@pytest.mark.parametrize("size", ["25M", "400M"])
def test_specs_rebuild_the_logged_lr_of_the_shared_runs(name, size):
    """The nine schedules of the multi-power-law data, written as lrlab specs from the shared
    README's definitions, give the `lr` column logged with the real curves."""
    path = shared.shared_data_dir() / size / f"{name}.csv"
    if not path.exists():
        pytest.skip(f"shared data not found at {path}")
    with path.open() as file:
        rows = [(int(row["step"]), float(row["lr"])) for row in csv.DictReader(file)]
    steps, logged = map(np.array, zip(*rows))
    lr = parse(shared.SCHEDULE_SPECS[name])(steps)
    np.testing.assert_allclose(lr, logged, rtol=1e-9, atol=1e-12)


def test_scaled_benchmark_schedules_keep_the_roles_of_the_shared_ones():
    """The tunnel benchmark's nine schedules: the shared ones' shapes at another length and LR."""
    peak, end = 3e-3, 3e-4
    schedules = shared.benchmark_schedules(800, 72, peak, end)
    assert set(schedules) == set(shared.SCHEDULE_SPECS)
    lr = {name: parse(spec)(np.arange(steps)) for name, (spec, steps) in schedules.items()}
    assert {name: values.size for name, values in lr.items()} == {
        **{name: 800 for name in schedules},
        "constant_72000": 2400,
        "cosine_72000": 2400,
        "wsdcon_3": 533,
        "wsdcon_9": 533,
        "wsdcon_18": 533,
    }
    for values in lr.values():  # the same warmup everywhere: 0 at step 0, the peak at step 71
        assert values[0] == 0.0 and values[71] == pytest.approx(peak)
    assert np.all(lr["constant_72000"][72:] == peak)
    for name in ("cosine_24000", "cosine_72000", "wsd_20000_24000", "wsdld_20000_24000"):
        assert lr[name][-1] == pytest.approx(end, rel=0.1)  # reached one step after the last
    wsd = lr["wsdld_20000_24000"]
    assert np.all(wsd[72:667] == peak) and wsd[700] < peak  # decays over the last 1/6
    for k in (3, 9, 18):
        drop = lr[f"wsdcon_{k}"]
        assert np.all(drop[72:266] == peak) and np.all(drop[266:] == pytest.approx(k * end / 3))


def test_wsd_holds_the_peak_then_decays_to_the_floor():
    schedule = parse("wsd(peak=3e-4, total=24000, warmup=2160, cooldown_fraction=0.2)")
    assert schedule(0) == 0.0
    assert schedule(1080) == pytest.approx(1.5e-4)
    assert schedule(2160) == schedule(19200) == 3e-4
    assert schedule(21600) == pytest.approx(1.5e-4)
    assert schedule(24000) == schedule(10**6) == 0.0


@pytest.mark.parametrize(
    ("decay", "middle"),
    [("linear", 0.5), ("cosine", 0.5), ("1-sqrt", 1 - 0.5**0.5), ("exponential", 0.1**0.5)],
)
def test_wsd_decay_shapes_at_mid_cooldown(decay, middle):
    schedule = from_spec(
        {
            "name": "wsd",
            "peak": 1.0,
            "total": 100,
            "cooldown_steps": 20,
            "decay": decay,
            "end_ratio": 0.1 if decay == "exponential" else 0.0,
        }
    )
    assert schedule(90) == pytest.approx(middle)


def test_cosine_floor_as_ratio_or_absolute():
    ratio = parse("cosine(peak=1e-3, total=1000, end_ratio=0.1)")
    absolute = parse("cosine(peak=1e-3, total=1000, end=1e-4)")
    steps = np.arange(1200)
    np.testing.assert_allclose(ratio(steps), absolute(steps))
    assert ratio(500) == pytest.approx(5.5e-4)
    assert ratio(1000) == pytest.approx(1e-4)


def test_inverse_sqrt_is_the_transformer_schedule():
    warmup, width = 4000, 512
    schedule = from_spec(
        {"name": "inverse_sqrt", "peak": (width * warmup) ** -0.5, "warmup": warmup}
    )
    for step in (1, 100, 3999, 4000, 10_000, 100_000):
        expected = width**-0.5 * min(step**-0.5, step * warmup**-1.5)
        assert schedule(step) == pytest.approx(expected, rel=1e-12)


def test_warmup_shapes():
    cosine = parse("constant(peak=2.0, warmup=100, warmup_shape=cosine)")
    exponential = parse(
        "constant(peak=2.0, warmup=100, warmup_shape=exponential, warmup_start_ratio=0.01)"
    )
    assert cosine(50) == pytest.approx(1.0)
    assert exponential(0) == pytest.approx(0.02)
    assert exponential(50) == pytest.approx(0.2)
    assert parse("constant(peak=2.0, warmup_shape=none)")(0) == 2.0


def test_composition():
    base = parse("cosine(peak=1e-3, total=1000, warmup=100)")
    steps = np.arange(0, 900)
    np.testing.assert_allclose(continue_from(base, 100)(steps), base(steps + 100))
    np.testing.assert_allclose(scale(base, 0.5)(steps), 0.5 * base(steps))
    joined = join([parse("constant(peak=1.0)"), base], [500])
    assert joined(499) == 1.0
    assert joined(500) == base(0)
    assert joined(650) == base(150)


def test_table_interpolates_and_holds_the_last_value():
    schedule = parse("table(values=[0.0, 1.0, 0.5])")
    np.testing.assert_allclose(schedule(np.array([0, 0.5, 1, 2, 10])), [0, 0.5, 1, 0.5, 0.5])


def test_cosine_restarts_cycles_grow_and_peaks_decay():
    schedule = parse("cosine_restarts(peak=1.0, cycle=10, cycle_mult=2, peak_decay=0.5)")
    assert schedule(0) == 1.0
    assert schedule(10) == 0.5  # second cycle, 20 steps long, starts at half the peak
    assert schedule(20) == pytest.approx(0.25)  # its middle
    assert schedule(30) == 0.25  # third cycle
    assert schedule(69) < schedule(70) == 0.125


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "wsd(peak=3e-4, total=24000, cooldown_fraction=1.5)",
            "cooldown_fraction=1.5 is out of range",
        ),
        ("wsd(peak=3e-4, total=24000)", "exactly one of cooldown_fraction and cooldown_steps"),
        ("cosine(peak=3e-4, total=100, warmup=100)", "warmup=100 must be less than total=100"),
        ("cosine(peak=3e-4)", "total is required"),
        ("cosine(peak=-1, total=10)", "peak=-1 is out of range (a number in (0, inf))"),
        ("cosine(peak=1e-3, total=10.5)", "total=10.5 is not an integer"),
        ("cosine(peak=1e-3, total=10, end=1e-3, end_ratio=0.1)", "end or end_ratio, not both"),
        ("wsd(peak=1e-3, total=10, cooldown_steps=2, decay=exponential)", "final LR above 0"),
        ("wsd(peak=1e-3, total=10, cooldown_steps=2, decay=quadratic)", "decay='quadratic'"),
        ("cosin(peak=1e-3, total=10)", "did you mean 'cosine'"),
        ("cosine(peak=1e-3, total=10, floor=0)", "unknown field 'floor'"),
        ("cosine(1e-3, 10)", "give every field as field=value"),
        ("cosine(peak=1e-3, total=10", "cannot read schedule spec"),
        ("cosine(peak=__import__(name=os), total=10)", "peak={'name': 'os'} is not a number"),
        ("cosine(peak=os.system(command=ls), total=10)", "cannot read 'os.system(command=ls)'"),
        ("join(schedules=[constant(peak=1)], boundaries=[5])", "1 schedules need 0 boundaries"),
        ("join(schedules=[constant(peak=-1)], boundaries=[])", "schedules[0]: constant: peak=-1"),
        ("table(values=[0.1, nan])", "values[1]='nan'"),
    ],
)
def test_bad_specs_name_the_field(spec, message):
    with pytest.raises(SpecError) as error:
        parse(spec)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_negative_steps_are_rejected():
    with pytest.raises(ValueError, match="non-negative"):
        parse("constant(peak=1)")(np.array([0, -1]))


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_spec_files_round_trip(tmp_path, suffix):
    schedule = parse(
        "wsd(peak=3e-4, total=24000, warmup=2160, cooldown_fraction=0.2, decay=1-sqrt)"
    )
    path = save_spec(schedule, tmp_path / f"schedule{suffix}")
    assert load_spec(path) == schedule
    assert parse(str(path)) == schedule


def test_bad_spec_file_names_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: cosine\npeak: [1\n")
    with pytest.raises(SpecError, match="broken.yaml"):
        load_spec(path)
    path.write_text("name: cosine\npeak: 1e-3\n")
    with pytest.raises(SpecError, match=r"broken.yaml: cosine: total is required"):
        load_spec(path)
    with pytest.raises(
        SpecError, match=r"missing.yaml: cannot read schedule spec \(no such file\)"
    ):
        load_spec(tmp_path / "missing.yaml")


class TestAgainstPyTorch:
    """Where PyTorch ships the same schedule, the values must match it step for step."""

    torch = pytest.importorskip("torch")

    def lrs(self, make_scheduler, steps: int, lr: float = 1.0) -> np.ndarray:
        parameter = self.torch.nn.Parameter(self.torch.zeros(1))
        optimizer = self.torch.optim.SGD([parameter], lr=lr)
        scheduler = make_scheduler(optimizer)
        values = []
        for _ in range(steps):
            values.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        return np.array(values)

    def test_one_cycle(self):
        sched = self.torch.optim.lr_scheduler
        for anneal in ("cos", "linear"):
            expected = self.lrs(
                lambda o, anneal=anneal: sched.OneCycleLR(
                    o, max_lr=0.1, total_steps=1000, pct_start=0.25, anneal_strategy=anneal
                ),
                1000,
            )
            ours = parse(
                f"one_cycle(peak=0.1, total=1000, pct_start=0.25, "
                f"anneal_shape={'cosine' if anneal == 'cos' else 'linear'})"
            )
            np.testing.assert_allclose(ours(np.arange(1000)), expected, rtol=1e-9, atol=1e-12)

    def test_cosine_restarts(self):
        expected = self.lrs(
            lambda o: self.torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
                o, T_0=50, T_mult=2, eta_min=0.01
            ),
            700,
        )
        ours = parse("cosine_restarts(peak=1.0, cycle=50, cycle_mult=2, end=0.01)")
        np.testing.assert_allclose(ours(np.arange(700)), expected, rtol=1e-9, atol=1e-12)

    def test_step_and_multistep(self):
        sched = self.torch.optim.lr_scheduler
        expected = self.lrs(lambda o: sched.StepLR(o, step_size=30, gamma=0.5), 200)
        np.testing.assert_allclose(
            parse("step(peak=1.0, step_size=30, gamma=0.5)")(np.arange(200)), expected
        )
        expected = self.lrs(lambda o: sched.MultiStepLR(o, milestones=[40, 90], gamma=0.1), 200)
        np.testing.assert_allclose(
            parse("multistep(peak=1.0, milestones=[40, 90])")(np.arange(200)), expected
        )

    def test_polynomial_and_exponential(self):
        sched = self.torch.optim.lr_scheduler
        expected = self.lrs(lambda o: sched.PolynomialLR(o, total_iters=100, power=2.0), 150)
        np.testing.assert_allclose(
            parse("polynomial(peak=1.0, total=100, power=2)")(np.arange(150)), expected, atol=1e-12
        )
        expected = self.lrs(lambda o: sched.ExponentialLR(o, gamma=0.97), 150)
        np.testing.assert_allclose(
            parse("exponential(peak=1.0, decay_rate=0.97, decay_steps=1)")(np.arange(150)),
            expected,
            rtol=1e-9,
        )
