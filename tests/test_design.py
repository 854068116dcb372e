"""Schedule design under fitted laws: optimisation, budgets, refinement, continual plans, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lrlab.cli import main
from lrlab.design.continual import plan_continual
from lrlab.design.optimize import FAMILIES, Forecast, budget_sweep, optimize_schedule
from lrlab.design.refine import refine_schedule, refined_lr
from lrlab.errors import LrlabError
from lrlab.laws import REGISTRY, get_law
from lrlab.runs import Run
from lrlab.schedules import WarmupSchedule, load_spec, parse
from shared_data import load_shared_runs, shared_data_available

needs_shared = pytest.mark.skipif(
    not shared_data_available(), reason="shared data (../shared/data/mpl-loss-curves) not found"
)
STEPS, PEAK, WARMUP = 12000, 3e-4, 500


@pytest.fixture(scope="module")
def law():
    """The multi-power law fitted to the first 12000 steps of two real 25M runs."""
    runs = [
        run.until(STEPS - 1) for run in load_shared_runs("25M", ("constant_24000", "cosine_24000"))
    ]
    return REGISTRY["mpl"](bands=False).fit(runs)


@pytest.fixture(scope="module")
def designs(law):
    """``designs(family, trust_region=True)``: the design of `STEPS` under `law`, made once for
    the module (each takes seconds: the tests below share them)."""
    made = {}

    def design(family: str, trust_region: bool = True):
        if (family, trust_region) not in made:
            made[family, trust_region] = optimize_schedule(
                law, STEPS, peak=PEAK, warmup=WARMUP, family=family, trust_region=trust_region
            )
        return made[family, trust_region]

    return design


@needs_shared
@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_beats_or_matches_its_start_and_stays_valid(designs, family):
    design = designs(family)
    lr = design.best.schedule(np.arange(STEPS))
    assert np.all(np.isfinite(lr)) and lr.max() <= PEAK * (1 + 1e-12)
    after = lr[WARMUP:]
    assert np.all(np.diff(after) <= 1e-15)  # every family here is non-increasing after warmup
    assert design.best.low <= design.best.final_loss <= design.best.high
    assert design.excess["best"] <= 1e-3  # within the fitted runs' decay (test_design_region.py)
    if family in ("free", "wsd"):
        # Both contain WSD-20%-linear, the start of the search; it falls to 0, below the
        # fitted runs' lowest LR (about half the peak: a 24000-step cosine cut at 12000), so only
        # a design without the trust region may choose it.
        assert design.excess["wsd-20%-linear"] > 0.3
        assert designs(family, trust_region=False).gain("wsd-20%-linear") >= -1e-9
    assert parse(str(design.best.schedule)) == design.best.schedule


@needs_shared
def test_free_form_is_at_least_as_good_as_every_family(designs):
    free = designs("free")
    for family in ("cosine", "linear", "wsd"):
        assert free.best.final_loss <= designs(family).best.final_loss + 1e-9


@needs_shared
def test_budget_sweep_branches_inside_each_budget(law):
    points = budget_sweep(law, [4000, 8000, 12000], peak=PEAK, warmup=WARMUP)
    assert [p.budget for p in points] == [4000, 8000, 12000]
    losses = [p.forecast.final_loss for p in points]
    assert losses == sorted(losses, reverse=True)  # more steps, lower loss
    assert all(WARMUP <= p.branch_step < p.budget for p in points)


def test_refinement_of_constant_norms_is_linear_decay():
    """With equal gradient norms the refined schedule is linear decay to zero (Defazio et al.
    2023, the worst-case optimum)."""
    lr = refined_lr(np.ones(1000), peak=1.0)
    expected = 1.0 - np.arange(1, 1001) / 1000
    np.testing.assert_allclose(lr, expected / expected.max(), atol=1e-12)


def test_refinement_warms_up_where_norms_are_large_and_variants_differ():
    steps = np.arange(2000)
    norms = 1.0 + 5.0 * np.exp(-steps / 100.0)  # large early gradient norms
    sgd = refine_schedule(steps, norms, peak=1e-3)
    adam = refine_schedule(steps, norms, peak=1e-3, variant="adam")
    for schedule in (sgd, adam):
        lr = schedule(steps)
        assert lr.max() == pytest.approx(1e-3)
        assert lr[0] < 0.5e-3 and 50 < lr.argmax() < 1000 and lr[-1] == 0.0
    assert sgd(10.0) < adam(10.0)  # g^-2 weighs the early large norms down harder
    with pytest.raises(LrlabError, match="finite and positive"):
        refined_lr(np.array([1.0, 0.0, 1.0]), peak=1.0)


@needs_shared
def test_continual_plans_cover_base_and_stage(law):
    base = parse("cosine(peak=3e-4, total=8000, warmup=500, end_ratio=0.1)")
    plans = {p.name: p for p in plan_continual(law, base, 8000, 4000, peak=PEAK, warmup=200)}
    assert set(plans) == {"rewarm-redecay", "infinite", "constant"}
    for plan in plans.values():
        lr = plan.schedule(np.arange(12000))
        np.testing.assert_array_equal(lr[:8000], base(np.arange(8000)))
    assert plans["constant"].schedule(11999) == pytest.approx(base(7999))
    assert plans["rewarm-redecay"].schedule(8200) == pytest.approx(PEAK)


@needs_shared
def test_command_line(tmp_path, capsys, law):
    fit = law.save(tmp_path / "fit.json")
    out = tmp_path / "schedule.json"
    assert (
        main(
            [
                "optimize",
                str(fit),
                "--budget",
                "6000",
                "--family",
                "wsd",
                "--budgets",
                "3000,6000",
                "-o",
                str(out),
                "--json",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["best"]["spec"]["name"] == "wsd"
    assert [b["steps"] for b in result["budgets"]] == [3000, 6000]
    assert isinstance(load_spec(out), WarmupSchedule)

    log = tmp_path / "run.csv"
    steps = np.arange(0, 3000, 10)
    rows = "\n".join(f"{s},1e-3,{1 + 3 * np.exp(-s / 200):.6f}" for s in steps)
    log.write_text("step,lr,grad_norm\n" + rows + "\n")
    refined = tmp_path / "refined.json"
    assert main(["refine", str(log), "-o", str(refined)]) == 0
    assert load_spec(refined)(np.arange(2991)).max() == pytest.approx(1e-3)

    assert (
        main(
            [
                "plan-continual",
                str(fit),
                "--base",
                "cosine(peak=3e-4, total=6000)",
                "--base-steps",
                "6000",
                "--stage-steps",
                "2000",
            ]
        )
        == 0
    )
    assert "rewarm-redecay" in capsys.readouterr().out
    assert (
        main(["plan-continual", str(fit), "--base", "constant(peak=3e-4)", "--stage-steps", "2000"])
        == 2
    )


# --- the design commands on a synthetic fit (no shared data needed) -----------------------------


@pytest.fixture(scope="module")
def power_fit(tmp_path_factory):
    """The power law fitted to a SYNTHETIC constant run (loss ``2 + 0.5 * S1^-0.4``), saved."""
    lr = np.concatenate([np.linspace(0, 1e-3, 50), np.full(950, 1e-3)])
    steps = np.arange(10, 1000, 10)
    run = Run("constant", lr, steps, 2.0 + 0.5 * np.cumsum(lr)[steps] ** -0.4)
    law = get_law("power", bands=False).fit([run])
    return law.save(tmp_path_factory.mktemp("fit") / "fit.json")


def test_forecast_as_json():
    schedule = parse("cosine(peak=1e-3, total=100)")
    assert Forecast(schedule, 2.5, 2.25, 2.75).to_dict() == {
        "spec": schedule.to_spec(),
        "final_loss": 2.5,
        "band": [2.25, 2.75],
    }


def test_optimize_writes_the_design_as_json(power_fit, capsys):
    assert (
        main(
            [
                "optimize",
                str(power_fit),
                "--budget",
                "600",
                "--family",
                "linear",
                "--json",
                "--budgets",
                "300,600",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert list(result) == [
        *("family", "steps", "best", "baselines", "gain", "trust_region", "gain_band", "budgets")
    ]
    assert result["family"] == "linear" and result["steps"] == 600
    # One constant run fitted: the LR never fell, so neither may the design's.
    assert result["trust_region"]["rule"].startswith("kept within the fitted runs' decay")
    assert result["trust_region"]["excess"]["best"] <= 1e-3
    assert result["best"]["spec"]["end_ratio"] == pytest.approx(1.0, abs=1e-3)
    assert set(result["best"]) == {"spec", "final_loss", "band"}
    assert result["best"]["spec"]["total"] == 600
    assert (
        set(result["baselines"])
        == set(result["gain"])
        == set(result["gain_band"])
        == {"cosine-10%", "wsd-20%-linear", "linear-to-zero"}
    )
    for name, baseline in result["baselines"].items():
        assert result["gain"][name] == baseline["final_loss"] - result["best"]["final_loss"]
    assert [set(point) for point in result["budgets"]] == [
        {"steps", "spec", "final_loss", "band", "branch_step"}
    ] * 2
    assert [point["steps"] for point in result["budgets"]] == [300, 600]


def test_optimize_steps_is_a_deprecated_alias_of_budget(power_fit, capsys):
    arguments = [str(power_fit), "--family", "linear", "--json"]
    assert main(["optimize", "--budget", "400", *arguments]) == 0
    new = capsys.readouterr()
    assert main(["optimize", "--steps", "400", *arguments]) == 0
    old = capsys.readouterr()
    assert old.out == new.out and new.err == ""
    assert old.err == "lrlab: --steps is deprecated here; use --budget\n"


def test_optimize_needs_a_budget(power_fit, capsys):
    assert main(["optimize", str(power_fit)]) == 2
    assert "lrlab: error: --budget is required" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["optimize", "--help"])
    assert "deprecated: the old name of --budget" in " ".join(capsys.readouterr().out.split())


def test_plan_continual_writes_each_plan_as_a_forecast(power_fit, tmp_path, capsys):
    out = tmp_path / "plans.json"
    assert (
        main(
            [
                "plan-continual",
                str(power_fit),
                "--base",
                "constant(peak=1e-3)",
                "--base-steps",
                "1000",
                "--stage-steps",
                "200",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    plans = json.loads(out.read_text())
    assert list(plans) == ["rewarm-redecay", "infinite", "constant"]
    assert all(set(plan) == {"spec", "final_loss", "band"} for plan in plans.values())
    assert plans["constant"]["spec"]["name"] == "join"
