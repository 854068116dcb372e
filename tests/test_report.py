"""The study report (`lrlab.report.study_report`): summary, figures and page, on synthetic runs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lrlab.design.optimize import forecast
from lrlab.laws import get_law
from lrlab.report.study_report import Analysis, Verification, describe_shape, write_report
from lrlab.runs import Run
from lrlab.schedules import parse

BUDGET = 400


def test_shape_description():
    lr = np.concatenate([np.linspace(0, 1, 10), np.ones(70), np.linspace(1, 0, 20)])
    text = describe_shape(lr)
    assert text == (
        "peak 1 at step 9, held until step 81, then decays over the last 19% of the steps to 0"
    )
    assert describe_shape(np.ones(5)) == "peak 1 at step 0, held to the end"


def synthetic_run(name: str, spec: str) -> Run:
    """SYNTHETIC: a run of `spec` whose loss is the power law ``2 + 0.5 * S1^-0.4`` with a small
    deterministic wiggle (an exact curve would leave the band no spread to calibrate on)."""
    lr = parse(spec)(np.arange(BUDGET))
    steps = np.arange(5, BUDGET, 5)
    loss = (2.0 + 0.5 * np.cumsum(lr)[steps] ** -0.4) * (1 + 1e-4 * np.sin(steps))
    return Run(name, lr, steps, loss, source=f"<{name}>.csv")


@pytest.fixture(scope="module")
def reported(tmp_path_factory):
    pytest.importorskip("matplotlib")
    runs = [synthetic_run("constant", "constant(peak=1e-3, warmup=20)")]
    law = get_law("power").fit(runs)
    best = forecast(law, parse("constant(peak=1e-3, warmup=20)"), BUDGET)
    cosine = forecast(law, parse(f"cosine(peak=1e-3, total={BUDGET}, warmup=20)"), BUDGET)
    analysis = Analysis(
        law, {"power": {"error": "none"}}, BUDGET, 1e-3, 20, best, {"cosine": cosine}
    )
    checked = Verification("cosine", cosine, synthetic_run("cosine", str(cosine.schedule)))
    out = tmp_path_factory.mktemp("report")
    summary = write_report(
        analysis, runs, out, title="<i>t</i>", verifications=[checked], extra={"note": 1}
    )
    return out, summary, best, cosine


def test_summary_records_forecasts_verifications_and_extra(reported):
    out, summary, best, cosine = reported
    assert json.loads((out / "summary.json").read_text()) == summary
    assert summary["recommended"] == {
        **best.to_dict(),
        "text": "constant(peak=0.001, warmup=20)",
        "shape": "peak 0.001 at step 20, held to the end",
    }
    assert summary["comparisons"]["cosine"]["gain"] == cosine.final_loss - best.final_loss
    check = summary["verification"][0]
    assert check["name"] == "cosine" and check["spec"] == cosine.to_dict()["spec"]
    assert check["measured"] == pytest.approx(
        2.0 + 0.5 * cosine.schedule(np.arange(BUDGET)).sum() ** -0.4, rel=1e-3
    )
    assert check["error"] == check["measured"] - cosine.final_loss
    assert summary["note"] == 1 and summary["chosen_law"] == "power"
    assert summary["runs"][0]["fit_PredE"] < 1e-3


def test_figures_are_written_and_embedded(reported):
    out, summary, _, _ = reported
    assert summary["figures"] == {
        "schedules": "schedules.png",
        "fit": "fit.png",
        "forecast": "forecast.png",
        "verification": "verification.png",
    }
    for name in summary["figures"].values():
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 4
    assert "&lt;i&gt;t&lt;/i&gt;" in page and "<i>t</i>" not in page
