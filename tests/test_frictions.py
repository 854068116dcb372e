"""Correctness frictions and messages (issue 19): the last step of a strided output, steps before
any LR, the warmup of logs that start after it, fits their points cannot pin down, the extra an
import needs, and what the commands say."""

from __future__ import annotations

import csv
import io
import json
import sys

import numpy as np
import pytest

import shared_data
from law_helpers import write_csv
from lrlab.cli import main
from lrlab.errors import LrlabError, MissingExtraError
from lrlab.runs import RunWarning, read_run

PEAK = 5e-4
DATA_124M = shared_data.shared_data_dir().parent / "wsd-cooldown-124m"
STABLE_124M = DATA_124M / "stable-124m_lr0.0005_linear_0.0_T50000.csv"


def _warmup_log(path, *, warmup=300, first=400, every=200, total=6000, lr_column=True):
    """A SYNTHETIC log like the 124M runs': a linear warmup to PEAK over `warmup` steps, then
    constant; loss a power law in the LR area; logged every `every` steps from `first`."""
    lr = PEAK * np.minimum(np.arange(total) / warmup, 1.0)
    loss = 2.0 + 0.3 * np.maximum(np.cumsum(lr), 1e-12) ** -0.5  # (step 0 is not logged)
    steps = range(first, total, every)
    if lr_column:
        return write_csv(path, "step,lr,loss", [f"{s},{lr[s]:.6e},{loss[s]:.6f}" for s in steps])
    return write_csv(path, "step,loss", [f"{s},{loss[s]:.6f}" for s in steps])


def _tunnel_log(path, total=600):
    """A SYNTHETIC log like the wind tunnel's train.csv: every step from 0, LR 0 at step 0 (a
    warmup from 0 over 30 steps), the loss before any update logged there."""
    lr = 3e-3 * np.minimum(np.arange(total) / 30, 1.0)
    area = np.cumsum(lr)
    loss = np.where(area > 0, 2.0 + 0.2 * np.maximum(area, 1e-12) ** -0.4, 5.5)
    return write_csv(
        path, "step,lr,loss", [f"{s},{float(lr[s])!r},{loss[s]:.6f}" for s in range(total)]
    )


def _rows(text):
    return list(csv.DictReader(io.StringIO(text)))


# --- the last step --------------------------------------------------------------------------


def test_schedule_show_always_ends_at_the_last_step(capsys):
    assert (
        main(["schedule", "show", "linear(peak=1, total=10)", "--steps", "10", "--every", "4"]) == 0
    )
    rows = _rows(capsys.readouterr().out)
    assert [int(row["step"]) for row in rows] == [0, 4, 8, 9]
    assert float(rows[-1]["lr"]) == pytest.approx(0.1)
    spec = "linear(peak=1, total=10)"
    assert (
        main(["schedule", "show", spec, "--steps", "10", "--every", "3", "--format", "json"]) == 0
    )
    assert json.loads(capsys.readouterr().out)["steps"] == [0, 3, 6, 9]


def test_predict_over_steps_always_ends_at_the_last_step(tmp_path, capsys):
    fit = _power_fit(tmp_path, capsys)
    schedule = "cosine(peak=5e-4, total=2500, warmup=100)"
    for every, expected in ((None, [0, 2, 4]), ("1000", [0, 1000, 2000])):
        options = [] if every is None else ["--every", every]
        assert main(["predict", fit, "--schedule", schedule, "--steps", "2500", *options]) == 0
        steps = [int(row["step"]) for row in _rows(capsys.readouterr().out)]
        assert steps[: len(expected)] == expected and steps[-1] == 2499  # the final loss's step
    # The stride and the last step are in the help.
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "N // 1000" in help_text and "the last step N-1" in help_text


# --- numbers in CSV output ------------------------------------------------------------------


def test_csv_and_json_numbers_are_written_short(capsys):
    spec = "cosine(peak=7e-4, total=10, end_ratio=0.1)"  # ends at 7e-4 * 0.1, not exactly 7e-05
    assert main(["schedule", "show", spec, "--steps", "11"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "10,7e-05"
    assert max(len(row["lr"]) for row in _rows(out)) <= len("8.541719737e-05")
    assert main(["schedule", "show", spec, "--steps", "11", "--format", "json"]) == 0
    out = capsys.readouterr().out
    assert "7.000000000000001e-05" not in out and json.loads(out)["lr"][-1] == 7e-05


# --- steps before any LR --------------------------------------------------------------------


def _power_fit(tmp_path, capsys, *logs):
    logs = logs or (_warmup_log(tmp_path / "run.csv", first=200, every=100),)
    fit = str(tmp_path / "fit.json")
    assert main(["fit", *map(str, logs), "--law", "power", "--no-bands", "-o", fit]) == 0
    capsys.readouterr()
    return fit


def test_steps_with_no_lr_yet_are_left_out_alike_everywhere(tmp_path, capsys):
    """A wind-tunnel log's step 0 (LR 0, no update yet) has no prediction: `fit` and `evaluate`
    score the same points with the same numbers, and `predict` leaves its cells empty, for a run
    and for a schedule alike (never "nan")."""
    log = _tunnel_log(tmp_path / "train.csv")
    fit = str(tmp_path / "f.json")
    assert main(["fit", str(log), "--law", "power", "--no-bands", "-o", fit]) == 0
    fitted = capsys.readouterr().out
    assert "599 points" in fitted and "nan" not in fitted.lower()
    fit_row = fitted.strip().splitlines()[-1].split()
    assert main(["evaluate", fit, str(log)]) == 0
    evaluated = capsys.readouterr().out.strip().splitlines()
    assert evaluated[1].split()[:6] == fit_row[:6]  # run, PredE, WorstE, R2, MAE, RMSE
    assert main(["predict", fit, str(log)]) == 0
    rows = _rows(capsys.readouterr().out)
    assert (rows[0]["step"], rows[0]["pred"], rows[0]["pred_low"]) == ("0", "", "")
    assert rows[1]["pred"] != ""
    schedule = "constant(peak=3e-3, warmup=30)"
    assert main(["predict", fit, "--schedule", schedule, "--steps", "600"]) == 0
    out = capsys.readouterr().out
    rows = _rows(out)
    assert (rows[0]["step"], rows[0]["pred"]) == ("0", "") and rows[1]["pred"] != ""
    assert "nan" not in out.lower()


# --- the warmup -----------------------------------------------------------------------------


def test_warmup_is_inferred_from_a_sparsely_logged_ramp(tmp_path):
    """Logged every 200 steps, a 300-step warmup shows as a ramp through step 200 to the peak at
    step 400: the ramp extended meets the peak at step 300, and the per-step LR peaks there."""
    run = read_run(_warmup_log(tmp_path / "ramp.csv", first=200))
    assert (run.metadata["warmup"], run.metadata["warmup_from"]) == (300, "logged LR")
    assert int(np.argmax(run.lr)) == 300
    np.testing.assert_allclose(run.lr[[0, 150, 300, 400]], [0.0, PEAK / 2, PEAK, PEAK], rtol=1e-6)


def test_a_log_starting_after_its_warmup_says_so_and_takes_warmup(tmp_path, capsys):
    log = str(_warmup_log(tmp_path / "late.csv"))  # from step 400, at the peak already
    # LR 0 at step 0 is a guess, and the warmup's length is what the user can pass
    with pytest.warns(RunWarning, match="up to 400 steps apart.*pass --warmup N or --schedule"):
        run = read_run(log)
    assert run.metadata["warmup"] is None
    assert run.metadata["warmup_from"] == "the log starts at step 400 with the LR at its peak"
    given = read_run(log, warmup=300)
    assert (given.metadata["warmup"], given.metadata["warmup_from"]) == (300, "given")
    # --warmup also shapes the LR before the first logged step: 0 to the peak over 300 steps.
    np.testing.assert_allclose(
        given.lr[[0, 150, 299, 300, 400]], PEAK * np.r_[0, 0.5, 299 / 300, 1, 1]
    )

    fit = str(tmp_path / "fit.json")
    assert main(["fit", log, "--law", "power", "--no-bands", "-o", fit]) == 0
    assert (
        "warmup 400 steps (the first logged step: the logs start after" in capsys.readouterr().out
    )
    assert main(["optimize", fit, "--budget", "4000", "--family", "wsd"]) == 0
    assert "warmup 400 steps (the first logged step" in capsys.readouterr().out

    assert main(["fit", log, "--warmup", "300", "--law", "power", "--no-bands", "-o", fit]) == 0
    assert "peak LR 0.0005, warmup 300 steps (--warmup)" in capsys.readouterr().out
    info = json.loads((tmp_path / "fit.json").read_text())["fit"]
    assert (info["warmup"], info["warmup_from"]) == (300, "given")
    assert main(["optimize", fit, "--budget", "4000", "--family", "wsd", "--warmup", "200"]) == 0
    assert "warmup 200 steps (--warmup)" in capsys.readouterr().out
    # A source no fit writes (an edited file) is not echoed.
    data = json.loads((tmp_path / "fit.json").read_text())
    data["fit"]["warmup_from"] = ["\x1b[31m"]
    (tmp_path / "fit.json").write_text(json.dumps(data))
    assert main(["optimize", fit, "--budget", "4000", "--family", "wsd"]) == 0
    assert "warmup 300 steps (from the fit)" in capsys.readouterr().out


def test_warmup_from_a_schedule_and_a_given_one_that_disagrees(tmp_path, capsys):
    log = _warmup_log(tmp_path / "run.csv", lr_column=False)
    schedule = "constant(peak=5e-4, warmup=300)"
    assert main(["fit", str(log), "--schedule", schedule, "--law", "power", "--no-bands"]) == 0
    assert "warmup 300 steps (from the schedule)" in capsys.readouterr().out
    with pytest.warns(RunWarning, match="warmup 200 given, but the schedule's LR first peaks"):
        assert read_run(log, schedule=schedule, warmup=200).metadata["warmup"] == 200
    logged = _warmup_log(tmp_path / "logged.csv", first=0, every=100)
    with pytest.warns(RunWarning, match="reaches its peak between steps 200 and 300"):
        read_run(logged, warmup=100)
    with pytest.raises(LrlabError, match="warmup=-1 must be a whole number"):
        read_run(logged, warmup=-1)


@pytest.mark.skipif(not STABLE_124M.is_file(), reason=f"shared data absent: {STABLE_124M}")
def test_the_124m_logs_start_after_their_300_step_warmup():
    run = read_run(STABLE_124M)
    assert run.metadata["warmup"] is None and "starts at step 400" in run.metadata["warmup_from"]
    given = read_run(STABLE_124M, warmup=300)
    assert int(np.argmax(given.lr)) == 300 and given.lr[299] < given.lr[300] == 5e-4


# --- fits the points cannot pin down --------------------------------------------------------


def test_a_law_with_too_many_parameters_for_its_points_is_warned_about(tmp_path, capsys):
    short = _warmup_log(tmp_path / "short.csv", first=200, total=2200)  # 10 points
    # the default law averages laws, each checked: lrlab's has 9 parameters
    assert main(["fit", str(short), "--no-bands"]) == 0
    err = capsys.readouterr().err
    assert (
        "lrlab: warning: law 'lrlab': 10 points do not pin down its 9 free parameters (fewer "
        "than 3 points per parameter); a law with fewer parameters may forecast better: "
        "--law mpl (7 parameters), momentum (5), power (3) or bound (3)"
    ) in err
    assert "lrlab: lrlab:" not in err  # progress names the law once
    long = _warmup_log(tmp_path / "long.csv", first=200, every=50)
    assert main(["fit", str(long), "--law", "power", "--no-bands"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_parameters_a_run_cannot_determine_are_warned_about(tmp_path, capsys):
    """A run that never decays its LR, with 1% noise, tells the multi-power law nothing of the
    decay's benefit: its decay parameters' errors exceed their values."""
    lr = 3e-3 * np.minimum(np.arange(2000) / 30, 1.0)
    steps = np.arange(10, 2000, 10)
    noise = 1 + 0.01 * np.random.default_rng(0).standard_normal(steps.size)
    loss = (2 + 0.2 * np.cumsum(lr)[steps] ** -0.4) * noise
    rows = [f"{s},{lr[s]:.6g},{value:.6f}" for s, value in zip(steps, loss, strict=True)]
    log = write_csv(tmp_path / "constant.csv", "step,lr,loss", rows)
    assert main(["fit", str(log), "--law", "mpl", "--no-bands"]) == 0
    err = capsys.readouterr().err
    assert "lrlab: warning: law 'mpl': 199 points do not pin down its 7 free parameters (" in err
    assert "have errors larger than their values); a law with fewer parameters" in err
    assert main(["fit", str(log), "--law", "momentum", "--no-bands"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_the_python_fit_warns_too(tmp_path):
    from lrlab import fit
    from lrlab.laws.base import FitWarning

    with pytest.warns(FitWarning, match="do not pin down"):
        law = fit([_warmup_log(tmp_path / "short.csv", first=200, total=2200)], bands=False)
    assert law.fit_info_["points"] == 10


# --- optional dependencies ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("package", "blocked", "name", "extra"),
    [
        ("lrlab.adapters", "transformers", "LRLabTrainer", "torch,hf"),
        ("lrlab.adapters", "jax", "to_optax", "jax"),
        ("lrlab.integrations", "transformers", "TrainerForecastCallback", "hf"),
        ("lrlab.integrations", "lightning", "LightningForecastCallback", "lightning"),
    ],
)
def test_a_missing_extra_is_named(monkeypatch, package, blocked, name, extra):
    """Where a framework is not installed, importing its adapter says which extra installs it
    (the import is blocked here as if the package were absent)."""
    import importlib

    module = importlib.import_module(package)
    monkeypatch.setitem(sys.modules, blocked, None)
    for loaded in [key for key in sys.modules if key.startswith(package + ".")]:
        monkeypatch.delitem(sys.modules, loaded)
    monkeypatch.delitem(module.__dict__, name, raising=False)  # a name cached on first use
    with pytest.raises(ModuleNotFoundError, match=rf"pip install 'lrlab\[{extra}\]'") as caught:
        getattr(module, name)
    assert (
        isinstance(caught.value, MissingExtraError) and caught.value.name.split(".")[0] == blocked
    )


def test_the_torch_adapter_does_not_load_transformers():
    import subprocess

    code = (
        "import sys; from lrlab.adapters import LRLabScheduler; "
        "print(sorted(m for m in ('transformers', 'jax', 'lightning') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# --- what the commands say ------------------------------------------------------------------


def test_written_files_are_announced(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    plot = tmp_path / "s.png"
    assert main(["schedule", "show", "constant(peak=1)", "--steps", "5", "--plot", str(plot)]) == 0
    captured = capsys.readouterr()
    assert captured.err.strip() == f"lrlab: wrote {plot}" and "wrote" not in captured.out
    fit = _power_fit(tmp_path, capsys)
    out = tmp_path / "pred.csv"
    spec = "constant(peak=5e-4)"
    assert main(["predict", fit, "--schedule", spec, "--steps", "100", "-o", str(out)]) == 0
    assert f"lrlab: wrote {out}" in capsys.readouterr().err


def test_a_cosine_is_not_described_as_held():
    from lrlab.report.study_report import describe_shape
    from lrlab.schedules import parse

    cosine = parse("cosine(peak=3e-3, total=800, warmup=40, end_ratio=0.1)")(np.arange(800))
    assert describe_shape(cosine) == (
        "peak 0.003 at step 40, then decays over the last 95% of the steps to 0.0003"
    )
    wsd = parse("wsd(peak=3e-3, total=800, warmup=40, cooldown_fraction=0.2)")(np.arange(800))
    assert "held until step 6" in describe_shape(wsd)
