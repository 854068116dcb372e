"""The study report (`lrlab.report.study_report`): summary, figures and page, on synthetic runs;
and the figures as a reader sees them (`lrlab.report.plots`): one colour per schedule, lines of the
same shape both visible, short step ticks that do not run together, a zoom where schedules differ,
loss axes that say which loss."""

from __future__ import annotations

import html
import itertools
import json
import re

import numpy as np
import pytest

from lrlab.design.optimize import forecast
from lrlab.laws import get_law
from lrlab.report.html import render_report
from lrlab.report.study_report import Analysis, Verification, describe_shape, write_report
from lrlab.runs import Run, read_run
from lrlab.schedules import parse
from report_helpers import BUDGET, full_report, synthetic_run


def test_shape_description():
    lr = np.concatenate([np.linspace(0, 1, 10), np.ones(70), np.linspace(1, 0, 20)])
    text = describe_shape(lr)
    assert text == (
        "peak 1 at step 9, held until step 81, then decays over the last 19% of the steps to 0"
    )
    assert describe_shape(np.ones(5)) == "peak 1 at step 0, held to the end"


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
    assert summary["law_weights"] == {"power": 1.0} and summary["law_choice"] == ""
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


# --- the figures as a reader sees them ------------------------------------------------------


def pixels_of(png, color: str) -> int:
    """How many pixels of a PNG file are drawn in `color` (``#rrggbb``, exactly: line centres)."""
    from matplotlib.image import imread

    image = imread(png)[..., :3]
    target = np.array([int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)])
    return int(np.sum(np.all(np.abs(image - target) < 0.02, axis=-1)))


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    """A full report, with every figure kept open and drawn (laid out) as it was saved."""
    pytest.importorskip("matplotlib")
    from lrlab.report import plots

    figures = {}
    original = plots.save_figure

    def keep(figure, path):
        figure.canvas.draw()
        figures[path.name] = figure  # drawn: its text has its place on the canvas
        return original(figure, path)

    out = tmp_path_factory.mktemp("full")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(plots, "save_figure", keep)
        summary = full_report(out, ("constant", "cosine"))
    return out, summary, figures


def test_each_schedule_keeps_its_colour_in_every_figure(drawn):
    """Colours go by order of first appearance in the report: the recommended schedule, the
    baselines, then the runs. WSD is green in the schedules, the forecast and the check, and the
    fit runs keep their schedule-plot colours in the fit (before, each figure counted afresh)."""
    from lrlab.report.plots import PALETTE

    out, summary, _ = drawn
    names = ["recommended", *summary["comparisons"], "run: constant", "run: cosine"]
    colour = dict(zip(names, PALETTE, strict=False))
    wsd, cosine = colour["wsd-20%-linear"], colour["cosine-10%"]
    for figure in ("schedules.png", "forecast.png", "verification.png"):
        assert pixels_of(out / figure, wsd) > 100, figure
        assert pixels_of(out / figure, cosine) > 100, figure
    # The check holds WSD and cosine only: nothing in the recommended schedule's colour.
    assert pixels_of(out / "verification.png", colour["recommended"]) == 0
    assert pixels_of(out / "fit.png", colour["run: constant"]) > 100
    assert pixels_of(out / "fit.png", colour["run: cosine"]) > 100
    assert pixels_of(out / "fit.png", colour["recommended"]) == 0


def test_a_line_drawn_over_one_of_the_same_shape_leaves_it_visible(tmp_path):
    """Two identical schedules: the first stays visible beside the second (a wider line under a
    thinner one, dashed differently), not hidden beneath it."""
    pytest.importorskip("matplotlib")
    from lrlab.report.plots import PALETTE, plot_schedules

    lr = parse("wsd(peak=1e-3, total=1000, warmup=50, cooldown_fraction=0.2)")(np.arange(1000))
    path = plot_schedules([("recommended", lr), ("wsd", lr.copy())], tmp_path / "same.png")
    under, over = pixels_of(path, PALETTE[0]), pixels_of(path, PALETTE[1])
    assert over > 500 and under > 0.3 * over


def test_step_labels_are_short():
    from lrlab.report.plots import step_label

    labels = [step_label(value) for value in (0, 800, 2500, 30000, 32500, 1.5e6, 4e7)]
    assert labels == ["0", "800", "2500", "30k", "32.5k", "1.5M", "40M"]
    # One axis writes all its steps alike: in thousands when its largest reaches 10^4.
    assert [step_label(value, 12500) for value in (0, 2500, 12500)] == ["0", "2.5k", "12.5k"]


def tick_labels(axis):
    """The x tick labels an axis shows (inside its view), with their boxes on the canvas."""
    low, high = sorted(axis.get_xlim())
    return [
        (tick.label1.get_text(), tick.label1.get_window_extent())
        for tick in axis.xaxis.get_major_ticks()
        if tick.label1.get_visible() and low <= tick.get_loc() <= high
    ]


def test_step_ticks_do_not_run_together(drawn, tmp_path):
    """On every panel, also a zoom on steps 30000 to 37500 (where the labels once ran together
    as "30000325003500037500"), tick labels are short and stand apart."""
    from lrlab.report import plots

    _, _, figures = drawn
    steps = np.arange(26000, 37500, 100)
    curve = plots.LossCurve(
        "a schedule", steps, 3 - steps / 1e5, 2.9 - steps / 1e5, 3.1 - steps / 1e5
    )
    kept = {}
    with pytest.MonkeyPatch.context() as patch:
        original = plots.save_figure

        def keep(figure, path):
            figure.canvas.draw()
            kept["zoom"] = tick_labels(figure.axes[1])
            return original(figure, path)

        patch.setattr(plots, "save_figure", keep)
        plots.plot_loss_curves([curve], tmp_path / "zoom.png", zoom_from=30000)
    assert all(re.fullmatch(r"3\d(\.\d)?k", text) for text, _ in kept["zoom"])
    panels = [kept["zoom"], *(tick_labels(a) for f in figures.values() for a in f.axes)]
    for labels in panels:
        assert len(labels) >= 2
        for (text, box), (other, next_box) in itertools.pairwise(labels):
            assert box.x1 + 4 <= next_box.x0, f"{text!r} and {other!r} touch"
            assert len(text) <= 5


def test_fit_has_a_panel_per_run_and_the_forecast_zooms_on_the_last_30_percent(drawn):
    """The fit shows each run on its own scale (on shared axes over all steps the first steps'
    high loss flattened every run into one line); the forecast and the check have a second panel
    on the last 30% of the steps, where schedules decay and differ."""
    _, summary, figures = drawn
    fit = [axis for axis in figures["fit.png"].axes if axis.get_visible()]
    assert [axis.get_title(loc="left") for axis in fit] == ["constant", "cosine"]
    first = synthetic_run("constant", f"constant(peak=1e-3, warmup={BUDGET // 20})").loss[0]
    for axis, run in zip(fit, summary["runs"], strict=True):
        low, high = axis.get_ylim()
        assert high < first and low < run["final_loss"] < high
    for name in ("forecast.png", "verification.png"):
        whole, zoom = figures[name].axes
        assert zoom.get_xlim()[0] == pytest.approx(0.7 * BUDGET, abs=0.05 * BUDGET)
        assert whole.get_xlim()[0] < 0.2 * BUDGET


def test_loss_axes_say_which_loss(drawn):
    _, _, figures = drawn
    for figure in figures.values():
        for axis in figure.axes:
            if axis.get_visible() and "loss" in axis.get_ylabel():
                assert axis.get_ylabel() == "training loss"
    assert sum("loss" in a.get_ylabel() for f in figures.values() for a in f.axes) >= 6


def run_with(source: str, column: str | None) -> Run:
    run = synthetic_run("r", "constant(peak=1e-3)", source)
    return Run(run.name, run.lr, run.steps, run.loss, source, {"loss_column": column})


def test_loss_label_from_the_column_and_file():
    from lrlab.report.plots import loss_label

    assert loss_label([run_with("logs/a.csv", "loss")]) == "training loss"
    assert loss_label([run_with("logs/a.csv", "train/loss")]) == 'training loss ("train/loss")'
    assert loss_label([run_with("logs/a.csv", "eval_loss")]) == 'validation loss ("eval_loss")'
    # The wind tunnel's eval.csv logs the validation loss as plain "loss".
    assert loss_label([run_with("study/fit-a/eval.csv", "loss")]) == "validation loss"
    assert loss_label([run_with("val.csv", "train_loss")]) == 'training loss ("train_loss")'
    mixed = [run_with("a.csv", "loss"), run_with("eval.csv", "loss"), run_with("b.csv", "loss")]
    assert loss_label(mixed) == "training loss / validation loss"


def test_read_run_records_the_loss_column(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("step,lr,val/loss\n0,0.001,5.0\n10,0.001,4.0\n20,0.001,3.5\n")
    run = read_run(path, columns={"loss": "val/loss"})
    assert run.metadata["loss_column"] == "val/loss"


def test_the_page_offers_the_nearest_simple_schedule_beside_a_free_form_one(reported):
    out, summary, _, cosine = reported
    simple = {
        **cosine.to_dict(),
        "text": str(cosine.schedule),
        "lr_distance": 0.01,
        "fitted_by": "least squares on the LR curve",
    }
    figures = {path.stem: path for path in out.glob("*.png")}
    page = render_report({**summary, "simple_equivalent": simple}, figures)
    assert "Nearest simple schedule (least squares on the LR curve)" in page
    assert f"<code>{html.escape(str(cosine.schedule))}</code>" in page
    assert "Nearest simple schedule" not in render_report(summary, figures)


def test_the_page_names_the_law_and_marks_its_rows_in_the_law_table(reported):
    """A single law is named and its row marked "(chosen)"; an average is named with its
    members' weights, and each member's row marked with its weight."""
    out, summary, _, _ = reported
    figures = {path.stem: path for path in out.glob("*.png")}
    scores = {"runs": {"constant": {"PredE": 0.01, "WorstE": 0.02}}, "PredE": 0.01, "WorstE": 0.02}
    laws = dict.fromkeys(("power", "momentum", "mpl", "lrlab"), scores)
    single = {**summary, "laws": laws, "law_choice": "the lowest leave-one-run-out error"}
    page = render_report(single, figures)
    assert "law <b>power</b>" in page and "<b>power</b> (chosen)" in page
    assert "law power's, the lowest leave-one-run-out error." in page
    assert "(in the average" not in page
    weights = {"momentum": 0.5, "mpl": 0.25, "lrlab": 0.25}
    page = render_report(
        {**single, "chosen_law": "auto", "law_weights": weights, "law_choice": "the default"},
        figures,
    )
    assert "law <b>auto (average of momentum 0.50, mpl 0.25, lrlab 0.25)</b>" in page
    assert "<b>momentum</b> (in the average, weight 0.50)" in page
    assert "<b>mpl</b> (in the average, weight 0.25)" in page
    assert "(chosen)" not in page and "<td>power</td>" in page
