"""Claims within the evidence: the band of a forecast difference (`Law.compare_final`), a gain
shown as a gain only where that band excludes 0 (summary, page, CLI), the verdict on a study's
check against run-to-run noise, and a design's forecasts against measured runs
(`lrlab evaluate --design`). On real curves: the multi-power-law paper's 25M runs and the 124M
WSD-cooldown runs (skipped when the shared data is absent)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import shared_data as shared
from law_helpers import require_shared_data
from lrlab.cli import main
from lrlab.design.compare import check_design, read_design
from lrlab.design.optimize import Forecast, forecast
from lrlab.errors import LrlabError
from lrlab.laws import get_law
from lrlab.report.study_report import (
    Analysis,
    Verification,
    check_verdicts,
    measurement_noise,
    write_report,
)
from lrlab.runs import Run, read_run
from lrlab.schedules import Table, parse

BUDGET = 12000
PEAK, WARMUP = 3e-4, 2160
DATA_124M = shared.shared_data_dir().parent / "wsd-cooldown-124m"


def wsd(fraction: float, decay: str = "linear", total: int = BUDGET) -> str:
    return (
        f"wsd(peak={PEAK}, total={total}, warmup={WARMUP}, cooldown_fraction={fraction}, "
        f"decay={decay})"
    )


COSINE = f"cosine(peak={PEAK}, total={BUDGET}, warmup={WARMUP}, end_ratio=0.1)"


@pytest.fixture(scope="module")
def law():
    """The momentum law (the study's choice on these runs) fitted to three real 25M runs cut to
    12000 steps, as in tests/test_study.py."""
    require_shared_data()
    runs = shared.load_shared_runs("25M", ("constant_24000", "cosine_24000", "wsdcon_9"))
    return get_law("momentum").fit([run.until(BUDGET - 1) for run in runs])


def lr_of(spec: str, steps: int = BUDGET) -> np.ndarray:
    return parse(spec)(np.arange(steps))


def single_band_width(law, spec: str) -> float:
    _, low, high = law.predict_with_band(lr_of(spec), np.array([BUDGET - 1]))
    return float(high[0] - low[0])


# --- the band of a difference -------------------------------------------------------------------


def test_difference_is_the_difference_of_the_forecasts(law):
    found = law.compare_final(lr_of(COSINE), lr_of(wsd(0.2)))
    last = np.array([BUDGET - 1])
    expected = law.predict(lr_of(COSINE), last)[0] - law.predict(lr_of(wsd(0.2)), last)[0]
    assert found.difference == pytest.approx(expected, rel=1e-12)
    assert found.low < found.difference < found.high


def test_difference_band_is_narrower_than_each_forecasts_band(law):
    """Two close schedules: most of each forecast's error is shared, and cancels."""
    found = law.compare_final(lr_of(wsd(0.25)), lr_of(wsd(0.2)))
    width = found.high - found.low
    assert width < 0.5 * single_band_width(law, wsd(0.25))
    assert width < 0.5 * single_band_width(law, wsd(0.2))


def test_a_clear_difference_is_separated(law):
    found = law.compare_final(lr_of(COSINE), lr_of(wsd(0.2)))
    assert found.separated and found.low > 0
    assert found.describe_gain().startswith("gain +")


def test_a_difference_within_the_band_is_not_a_gain(law):
    """WSD-20% with a 1-sqrt or a linear decay: a forecast difference, but not one the fit
    separates."""
    found = law.compare_final(lr_of(wsd(0.2, "1-sqrt")), lr_of(wsd(0.2)))
    assert found.difference != 0 and found.low < 0 < found.high
    assert not found.separated
    assert found.describe_gain().startswith("within uncertainty (difference ")


def test_a_fit_without_bands_gives_no_difference_band():
    require_shared_data()
    runs = shared.load_shared_runs("25M", ("constant_24000", "cosine_24000"))
    plain = get_law("power", bands=False).fit([run.until(BUDGET - 1) for run in runs])
    found = plain.compare_final(lr_of(COSINE), lr_of(wsd(0.2)))
    assert (found.low, found.high, found.sd) == (None, None, None)
    assert not found.separated
    assert "no band" in found.describe_gain()


def test_compare_final_rejects_a_schedule_without_lr(law):
    with pytest.raises(LrlabError, match="no LR before its last step"):
        law.compare_final(np.zeros(BUDGET), lr_of(wsd(0.2)))


# --- the rule in the summary and on the page ----------------------------------------------------


@pytest.fixture(scope="module")
def report(law, tmp_path_factory):
    pytest.importorskip("matplotlib")
    runs = shared.load_shared_runs("25M", ("constant_24000", "cosine_24000", "wsdcon_9"))
    runs = [run.until(BUDGET - 1) for run in runs]
    best = forecast(law, parse(wsd(0.2)), BUDGET)
    comparisons = {
        "cosine-10%": forecast(law, parse(COSINE), BUDGET),
        "wsd-20%-1-sqrt": forecast(law, parse(wsd(0.2, "1-sqrt")), BUDGET),
    }
    analysis = Analysis(
        law, {"momentum": {"error": "not scored"}}, BUDGET, PEAK, WARMUP, best, comparisons
    )
    out = tmp_path_factory.mktemp("evidence")
    return out, write_report(analysis, runs, out, title="evidence")


def test_summary_says_which_gains_the_band_separates(report):
    _, summary = report
    cosine, sqrt = summary["comparisons"]["cosine-10%"], summary["comparisons"]["wsd-20%-1-sqrt"]
    assert cosine["separated"] and cosine["gain_low"] > 0
    assert cosine["gain_text"].startswith("gain +")
    assert not sqrt["separated"] and sqrt["gain_low"] < 0 < sqrt["gain_high"]
    assert sqrt["gain_text"].startswith("within uncertainty")


def _row(page: str, name: str) -> str:
    return re.search(rf"<tr><td>{re.escape(name)}</td>.*?</tr>", page).group(0)


def test_page_colours_only_a_separated_gain(report):
    out, _ = report
    page = (out / "report.html").read_text()
    cosine = _row(page, "cosine-10%")
    assert '<span class="good">gain +' in cosine
    sqrt = _row(page, "wsd-20%-1-sqrt")
    assert "within uncertainty" in sqrt
    assert 'class="good"' not in sqrt and 'class="bad"' not in sqrt


def test_optimize_says_gain_only_where_separated(law, tmp_path, capsys):
    """`lrlab optimize`: each baseline's line says what the design gains on it by the rule, and
    ``--json`` carries the band of each gain."""
    fit = law.save(tmp_path / "fit.json")
    args = ["optimize", str(fit), "--budget", str(BUDGET), "--family", "linear"]
    assert main([*args, "--peak", str(PEAK), "--warmup", str(WARMUP), "--json"]) == 0
    design = json.loads(capsys.readouterr().out)
    best_lr = lr_of(json.dumps(design["best"]["spec"]))
    assert main([*args, "--peak", str(PEAK), "--warmup", str(WARMUP)]) == 0
    out = capsys.readouterr().out
    assert "predicted gain" not in out
    for name, baseline in design["baselines"].items():
        found = law.compare_final(lr_of(json.dumps(baseline["spec"])), best_lr)
        assert f"{name}: final loss " in out and found.describe_gain() in out
        band = design["gain_band"][name]
        assert (band["low"], band["high"]) == pytest.approx((found.low, found.high))
        assert band["separated"] == found.separated


# --- the verdict on a check ---------------------------------------------------------------------


def run_124m(name: str) -> Run:
    path = DATA_124M / f"{name}.csv"
    if not path.is_file():
        pytest.skip(f"124M WSD-cooldown data not found at {DATA_124M}")
    return read_run(path)


def verification(name: str, run: Run) -> Verification:
    """A measured run checked against a forecast. The verdict reads the measured losses and the
    comparison's forecast gain, not this forecast, so it is the run's own last loss."""
    final = float(run.loss[-1])
    return Verification(name, Forecast(Table(values=run.lr), final, final, final), run)


def test_measurement_noise_is_the_scatter_about_a_smooth_curve():
    """Arithmetic on a curve of a known law: none for the smooth curve, about the sd of the
    scatter added to it (seeded), and nothing for too few points."""
    steps = np.arange(10, 4010, 10)
    smooth = 2.0 + 0.5 * (steps / 10.0) ** -0.4
    lr = np.full(4010, 1e-3)
    assert measurement_noise(Run("smooth", lr, steps, smooth)) < 1e-5
    scatter = np.random.default_rng(0).normal(0.0, 2e-3, steps.size)
    noisy = measurement_noise(Run("noisy", lr, steps, smooth + scatter))
    assert noisy == pytest.approx(2e-3, rel=0.25)
    assert measurement_noise(Run("short", lr, steps[:4], smooth[:4])) is None


def test_verdict_within_run_to_run_noise():
    """Two measured 124M runs whose final losses differ by a quarter of their noise: the check
    does not separate them, whatever the forecast said."""
    recommended = run_124m("ann124-0.2_lr0.0005_linear_0.2_T35000")
    other = run_124m("ann124-0.8_lr0.0005_linear_0.8_T35000")
    checks = [verification("recommended", recommended), verification("wsd", other)]
    (verdict,) = check_verdicts(checks, {"wsd": {"gain": 0.0063, "separated": False}}, 0.9)
    assert verdict["measured_gain"] == pytest.approx(other.loss[-1] - recommended.loss[-1])
    assert verdict["beyond_noise"] is False and verdict["outcome"] == "within noise"
    assert abs(verdict["measured_gain"]) < verdict["noise"]
    assert "does not separate" in verdict["text"]
    assert verdict["text"].startswith("check vs wsd: ")


@pytest.mark.parametrize(
    ("forecast_gain", "outcome"), [(0.004, "confirms"), (-0.004, "contradicts")]
)
def test_verdict_beyond_noise(forecast_gain, outcome):
    """WSD-40% measured 0.006 below WSD-20% at 25000 steps, five times their noise: a forecast
    of the same ranking is confirmed, the reverse contradicted."""
    recommended = run_124m("ann124-0.4_lr0.0005_linear_0.4_T25000")
    other = run_124m("ann124-0.2_lr0.0005_linear_0.2_T25000")
    checks = [verification("recommended", recommended), verification("wsd", other)]
    comparisons = {"wsd": {"gain": forecast_gain, "separated": True}}
    (verdict,) = check_verdicts(checks, comparisons, 0.9)
    assert verdict["beyond_noise"] is True and verdict["outcome"] == outcome
    assert verdict["measured_gain"] > verdict["noise"] > 0
    assert f"the measured ranking {outcome} the forecast" in verdict["text"]


def test_no_verdict_without_the_recommendation_checked():
    other = run_124m("ann124-0.2_lr0.0005_linear_0.2_T25000")
    comparisons = {"wsd": {"gain": 0.01, "separated": True}}
    assert check_verdicts([verification("wsd", other)], comparisons, 0.9) == []


# --- a design against measured runs -------------------------------------------------------------

SPEC_124M = "wsd(peak=0.0005, total={total}, warmup=300, cooldown_fraction={f}, decay=linear)"


@pytest.fixture(scope="module")
def fit_124m(tmp_path_factory):
    """The lrlab law fitted to the 124M stable run and 25000-step cosine run (the data README's
    suggestion), saved."""
    stable = run_124m("stable-124m_lr0.0005_linear_0.0_T50000")
    cosine = run_124m("cos-10-124m_lr0.0005_sqrt_0.0_T25000")
    path = tmp_path_factory.mktemp("fit") / "fit.json"
    get_law("momentum").fit([stable, cosine]).save(path)
    return path


def design_file(path, law_path, fraction: float = 0.3) -> str:
    """A design as `lrlab optimize --json` writes it: its best schedule for 25000 steps."""
    from lrlab.laws import load_law

    law = load_law(law_path)
    best = forecast(law, parse(SPEC_124M.format(total=25000, f=fraction)), 25000)
    path.write_text(json.dumps({"family": "wsd", "steps": 25000, "best": best.to_dict()}))
    return str(path)


def test_design_forecast_against_measured_runs(fit_124m, tmp_path):
    from lrlab.laws import load_law

    law = load_law(fit_124m)
    points = read_design(design_file(tmp_path / "design.json", fit_124m))
    assert [(p.label, p.budget) for p in points] == [("best (wsd)", 25000)]
    runs = [
        read_run(
            DATA_124M / f"ann124-{f}_lr0.0005_linear_{f}_T25000.csv",
            schedule=SPEC_124M.format(total=25000, f=f),
        )
        for f in (0.2, 0.4)
    ]
    runs.append(read_run(DATA_124M / "cos-10-124m_lr0.0005_sqrt_0.0_T50000.csv"))
    check = check_design(law, points, runs)
    (point,) = check["points"]
    assert [row["run"] for row in point["runs"]] == [run.name for run in runs[:2]]
    assert check["unmatched"] == [runs[2].name]
    for row, run in zip(point["runs"], runs, strict=False):
        pred = law.predict(run.lr, run.steps[-1:])[0]
        assert row["measured"] == run.loss[-1]
        assert row["error"] == pytest.approx(run.loss[-1] - pred)
        assert row["below_design_forecast"] == pytest.approx(point["final_loss"] - run.loss[-1])
    assert point["mean_error"] == pytest.approx(np.mean([r["error"] for r in point["runs"]]))


def test_evaluate_prints_the_design_against_runs(fit_124m, tmp_path, capsys):
    design = design_file(tmp_path / "design.json", fit_124m)
    run = str(DATA_124M / "ann124-0.4_lr0.0005_linear_0.4_T25000.csv")
    spec = SPEC_124M.format(total=25000, f=0.4)
    assert main(["evaluate", str(fit_124m), run, "--schedule", spec, "--design", design]) == 0
    out = capsys.readouterr().out
    assert "budget 25000, best (wsd): forecast " in out
    assert re.search(r"ann124-0\.4\S*: measured 3\.0083 at step 24800", out)
    assert "mean error " in out
    assert (
        main(["evaluate", str(fit_124m), run, "--schedule", spec, "--design", design, "--json"])
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["design"]["points"][0]["runs"][0]["measured"] == pytest.approx(3.008307)


def test_a_file_that_is_no_design_is_an_error(fit_124m, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"best": {"spec": {"name": "cosine"}}, "steps": 100}))
    with pytest.raises(LrlabError, match=r"bad\.json: best spec: "):
        read_design(bad)
    bad.write_text(json.dumps({"schedule": 1}))
    run = str(DATA_124M / "ann124-0.4_lr0.0005_linear_0.4_T25000.csv")
    assert main(["evaluate", str(fit_124m), run, "--design", str(bad)]) == 2
    assert "not a design" in capsys.readouterr().err
