"""``lrlab laws | fit | predict | evaluate`` as a user runs them, on tiny run files."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from law_helpers import shared_slice_csv, write_csv
from lrlab.cli import main

COSINE = (
    "join(schedules=[piecewise_linear(points=[[0, 0], [2159, 3e-4]]), "
    "cosine(peak=3e-4, total=21840, end=3e-5)], boundaries=[2160])"
)


def _toy_run(path, total=3000, drop_at=None):
    """A small run file: SYNTHETIC losses from a power law in the LR area, with a step drop."""
    lr = np.full(total, 1e-3)
    if drop_at:
        lr[drop_at:] = 1e-4
    area = np.cumsum(lr)
    drop = np.where(np.arange(total) >= (drop_at or total), 0.05, 0.0)
    rows = [
        f"{s},{lr[s]:.6g},{2.0 + 0.5 * area[s] ** -0.5 - drop[s]:.6f}" for s in range(0, total, 25)
    ]
    return write_csv(path, "step,lr,loss", rows)


def test_laws_lists_every_law(capsys):
    assert main(["laws"]) == 0
    out = capsys.readouterr().out
    for name in ("power", "momentum", "mpl", "lrlab"):
        assert name in out
    assert "(default)" in out


def test_fit_predict_evaluate_round_trip(tmp_path, capsys):
    runs = [_toy_run(tmp_path / "a.csv"), _toy_run(tmp_path / "b.csv", drop_at=2000)]
    fit_path = tmp_path / "fit.json"
    assert main(["fit", *map(str, runs), "--law", "momentum", "-o", str(fit_path)]) == 0
    out = capsys.readouterr()
    assert "L0" in out.out and "PredE" in out.out
    assert "start 1/" in out.err  # progress goes to stderr
    assert json.loads(fit_path.read_text())["law"] == "momentum"

    out_csv = tmp_path / "pred.csv"
    assert (
        main(
            [
                "predict",
                str(fit_path),
                str(runs[1]),
                "-o",
                str(out_csv),
                "--plot",
                str(tmp_path / "p.png"),
            ]
        )
        == 0
    )
    rows = list(csv.DictReader(out_csv.open()))
    assert list(rows[0]) == ["run", "step", "lr", "loss", "pred", "pred_low", "pred_high"]
    assert len(rows) == 120
    later = [row for row in rows if int(row["step"]) > 0]
    assert all(float(r["pred_low"]) <= float(r["pred"]) <= float(r["pred_high"]) for r in later)
    assert (tmp_path / "p.png").stat().st_size > 1000

    capsys.readouterr()
    assert main(["evaluate", str(fit_path), str(runs[1]), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["runs"]) == {"b"}
    assert report["mean"]["PredE"] < 0.01
    assert 0 <= report["mean"]["coverage"] <= 1


def test_predict_a_schedule_nobody_ran(tmp_path, capsys):
    runs = [_toy_run(tmp_path / "a.csv"), _toy_run(tmp_path / "b.csv", drop_at=2000)]
    fit_path = tmp_path / "fit.json"
    assert main(["fit", *map(str, runs), "--law", "power", "--no-bands", "-o", str(fit_path)]) == 0
    capsys.readouterr()
    assert (
        main(
            [
                "predict",
                str(fit_path),
                "--schedule",
                "constant(peak=1e-3)",
                "--steps",
                "500",
                "--every",
                "100",
            ]
        )
        == 0
    )
    rows = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    # every 100th step from step 0, and the last step (its loss is the run's final loss)
    assert [int(r["step"]) for r in rows] == [0, 100, 200, 300, 400, 499]
    assert all(r["loss"] == "" and r["run"] == "schedule" for r in rows)


def test_fit_default_law_on_shared_slices(tmp_path, capsys):
    paths = [shared_slice_csv(tmp_path, "25M", name) for name in ("cosine_24000", "wsdcon_9")]
    assert main(["fit", *map(str, paths), "--schedule", COSINE, "--schedule", "wsdcon9.json"]) == 2
    assert "wsdcon9.json" in capsys.readouterr().err
    assert main(["fit", str(paths[0]), "--schedule", COSINE, "--json", "--no-bands"]) == 0
    fit = json.loads(capsys.readouterr().out)
    assert fit["law"] == "auto"  # the default: the average of momentum, mpl and lrlab
    assert fit["quality"]["cosine_24000"]["PredE"] < 0.005


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["fit", "missing.csv"], "no such file"),
        (
            ["predict", "nofit.json", "--schedule", "constant(peak=1e-3)", "--steps", "10"],
            "no such file",
        ),
        (["fit", "RUN", "--law", "nope"], "unknown law"),
    ],
)
def test_user_errors_exit_2_with_one_line(tmp_path, capsys, argv, message):
    if "RUN" in argv:
        argv[argv.index("RUN")] = str(_toy_run(tmp_path / "a.csv"))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_bad_cell_in_run_is_reported_with_line(tmp_path, capsys):
    path = write_csv(tmp_path / "bad.csv", "step,lr,loss", ["10,1e-3,3.0", "20,1e-3,oops"])
    assert main(["fit", str(path)]) == 2
    assert "bad.csv, line 3" in capsys.readouterr().err
