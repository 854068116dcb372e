"""`lrlab study` across model sizes: ``sizes:`` in the wind-tunnel study's config (tunnel widths)
with the size to forecast (``params:`` or ``--params COUNT``), ``--size-law`` on logs of several
sizes, the sizes section of the report, and the bad inputs."""

from __future__ import annotations

import contextlib
import io
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from lrlab.cli import main
from lrlab.errors import LrlabError
from lrlab.runs.regime import fitted_regime
from lrlab.schedules import from_spec
from lrlab.study import SIZE_CHOICE, StudyConfig
from shared_data import shared_data_available, shared_data_dir

needs_shared = pytest.mark.skipif(
    not shared_data_available(), reason="shared data (../shared/data/mpl-loss-curves) not found"
)

# Two tiny widths fitted, the target a third one the tunnel trains in seconds: the study trains
# two runs at each width, forecasts the third and checks the forecast there.
BUDGET = 120


def tiny_sizes_config(cache: Path, **fields) -> dict:
    return {
        "budget": BUDGET,
        "peak": 3e-3,
        "warmup": 10,
        "sizes": [16, 24],
        "fit_schedules": {
            "constant": "constant(peak={peak}, warmup={warmup})",
            "cosine": "cosine(peak={peak}, total={budget}, warmup={warmup}, end_ratio=0.1)",
        },
        "tunnel": {
            "model": {"d_model": 32, "n_layers": 1, "n_heads": 2},
            "data": {"corpus": "english", "max_bytes": 60_000, "cache_dir": str(cache)},
            "train": {
                "batch_size": 4,
                "seq_len": 32,
                "eval_interval": 5,
                "eval_batches": 2,
                "progress": "off",
            },
        },
        **fields,
    }


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    """The tiny study across sizes, run twice in one folder (the second reuses every run), its
    target the parameter count of width 32 given as ``--params`` on the command line."""
    pytest.importorskip("torch")
    import lrlab.study
    from lrlab.laws.selection import choose_law
    from lrlab.study import tunnel_parameters
    from lrlab.tunnel import threads

    root = tmp_path_factory.mktemp("sizes")
    data = tiny_sizes_config(root / "cache")
    config_file = root / "study.yaml"
    config_file.write_text(yaml.safe_dump(data))
    target = tunnel_parameters(StudyConfig.from_mapping(data).width_tunnel(32), 32)
    out = root / "study"
    argv = ["study", "--config", str(config_file), "--params", str(target), "--out", str(out)]
    with pytest.MonkeyPatch.context() as patch:
        # Two cores, whatever this machine has; and one law cross-validated, not all: which law
        # a study chooses is tested with the one-size study, here the sizes are.
        patch.setattr(threads, "usable_cores", lambda: threads.Cores(2, 2, "2 cores"))
        patch.delenv("LRLAB_THREADS", raising=False)
        patch.delenv("OMP_NUM_THREADS", raising=False)
        patch.setattr(
            lrlab.study,
            "choose_law",
            lambda runs, progress: choose_law(runs, ("lrlab",), progress=progress),
        )
        messages: list[str] = []
        patch.setattr("lrlab.cli.study_commands.report_progress", messages.append)
        assert main(argv) == 0
        first = json.loads((out / "summary.json").read_text())
        first_messages = list(messages)
        messages.clear()
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            assert main(argv) == 0
        again = json.loads((out / "summary.json").read_text())
    return out, target, first, first_messages, again, list(messages), printed.getvalue()


def test_study_across_sizes_forecasts_the_target_width_and_checks_it(tiny_study):
    out, target, summary, messages, *_ = tiny_study
    sizes = summary["sizes"]
    assert summary["study_config"]["sizes"] == [16, 24]
    # A size-aware fit cannot average: the study keeps the single law its cross-validation chose.
    assert summary["chosen_law"] == sizes["law"] == "lrlab"
    assert summary["law_weights"] == {"lrlab": 1.0} and summary["law_choice"] == SIZE_CHOICE
    assert sizes["target"]["name"] == "d32" and sizes["target"]["params"] == target
    note = sizes["target"]["note"]
    assert "width 32" in note and "checks are trained there" in note
    # The target is beyond the fitted sizes: 32 is wider than 24.
    assert sizes["target"]["log_distance"] > 0
    best = sizes["target"]["recommended"]
    assert best == {key: summary["recommended"][key] for key in best}
    assert best["band"][0] <= best["final_loss"] <= best["band"][1]
    rows = {row["name"]: row for row in sizes["per_size"]}
    assert list(rows) == ["d16", "d24", "d32"]
    assert [row["fitted"] for row in rows.values()] == [True, True, False]
    assert rows["d32"]["target"] and not rows["d16"]["target"]
    assert rows["d16"]["runs"] == ["d16 constant", "d16 cosine"]
    # Each size's count is its runs' model, counted exactly (the runs record theirs).
    records = {
        folder.name: json.loads((folder / "record.json").read_text())
        for folder in (out / "runs").iterdir()
    }
    for name in ("d16", "d24"):
        counted = {r["parameters"] for f, r in records.items() if f.startswith(f"fit-{name}-")}
        assert counted == {rows[name]["params"]}
        tokens = BUDGET * 4 * 32
        assert math.isclose(rows[name]["tokens_per_param"], tokens / rows[name]["params"])
    checked = {f: r for f, r in records.items() if f.startswith("verify-")}
    assert sorted(f.rsplit("-", 1)[0] for f in checked) == [
        "verify-d32-recommended",
        "verify-d32-wsd-20%-linear",
    ]
    assert {r["parameters"] for r in checked.values()} == {target}
    assert [v["name"] for v in summary["verification"]] == ["recommended", "wsd-20%-linear"]
    assert [v["name"] for v in summary["verdicts"]] == ["wsd-20%-linear"]
    for row in rows.values():
        assert row["winner"] in {"recommended", *row["comparisons"]}
        assert 0 < row["wsd_optimum"]["cooldown_fraction"] <= 1
    assert "Best WSD cooldown share" in sizes["optimum_moves"]
    assert sum("training" in m for m in messages) == 6  # four fit runs and two checks


def test_the_design_for_the_target_stays_within_the_fitted_runs_decay(tiny_study):
    """The recommendation, and the best WSD at every size, fall no faster than the fitted runs
    did (a cosine to 10%): the rule is stated in the summary and on the page."""
    out, _, summary, *_ = tiny_study
    assert summary["trust_region"].startswith("kept within the fitted runs' decay")
    regime = fitted_regime(summary["fit"]["fit"])
    assert regime.fall[-1] == pytest.approx(0.9, abs=0.01)  # the cosine's end, 10% of the peak
    steps = np.arange(BUDGET)
    designs = [summary["recommended"]["spec"]]
    designs += [row["wsd_optimum"]["spec"] for row in summary["sizes"]["per_size"]]
    for spec in designs:
        assert regime.excess(from_spec(spec)(steps), summary["peak"]) <= 1e-3
    assert "kept within the fitted runs" in (out / "report.html").read_text()


def test_study_across_sizes_reuses_its_runs(tiny_study):
    _, _, first, _, again, messages, _ = tiny_study
    assert sum("already finished, reused" in m for m in messages) == 6
    assert not any("training" in m for m in messages)
    assert again["recommended"]["text"] == first["recommended"]["text"]


def test_study_across_sizes_report_has_the_sizes_section(tiny_study, capsys):
    out, *_ = tiny_study
    page = (out / "report.html").read_text()
    assert "<h2>Across sizes</h2>" in page and "Target size" in page
    # schedules, forecast, fit, verification and the sizes figure, all embedded
    assert page.count("data:image/png;base64,") == 5
    assert (out / "sizes.png").read_bytes()[:4] == b"\x89PNG"


def test_the_command_line_prints_the_sizes(tiny_study):
    *_, printed = tiny_study
    assert "across sizes (law lrlab): target " in printed and "(d32)" in printed
    assert re.search(r"  d16 \(7\.\d+K, fitted, 2\.1 tokens/parameter\): recommended ", printed)
    assert re.search(r"  d32 \([\d.]+K, target, [\d.]+ tokens/parameter\): recommended ", printed)
    assert "checked recommended: forecast" in printed


@pytest.fixture(scope="module")
def logs_study(tmp_path_factory):
    """``lrlab study --size-law`` on the shared curves: three runs at 25M and at 100M (the
    directories' names are their counts), the schedule designed for 400M."""
    root = shared_data_dir()
    runs = [
        str(root / size / f"{name}.csv")
        for size in ("25M", "100M")
        for name in ("constant_24000", "cosine_24000", "wsdcon_9")
    ]
    out = tmp_path_factory.mktemp("logs") / "study"
    argv = [
        "study",
        *runs,
        "--size-law",
        "--params",
        "400M",
        "--warmup",
        "2160",
        "--budget",
        "24000",
    ]
    assert main([*argv, "--out", str(out)]) == 0
    return out, json.loads((out / "summary.json").read_text())


@needs_shared
def test_logs_of_two_sizes_forecast_a_third(logs_study):
    out, summary = logs_study
    sizes = summary["sizes"]
    assert sizes["fitted_sizes"] == {"25M": 25e6, "100M": 1e8}
    assert sizes["target"]["params"] == 4e8 and sizes["target"]["name"] == "400M"
    assert "not trained" in sizes["target"]["note"] and "4x the largest" in sizes["target"]["note"]
    assert math.isclose(sizes["target"]["log_distance"], math.log(4))
    assert summary["verification"] == []
    rows = {row["name"]: row for row in sizes["per_size"]}
    assert list(rows) == ["25M", "100M", "400M"]
    assert rows["25M"]["runs"] == [
        "25M/constant_24000",
        "25M/cosine_24000",
        "25M/wsdcon_9",
    ]
    assert rows["400M"]["tokens_per_param"] is None  # the logs do not say
    # A bigger model ends lower, and its forecast, 4x beyond the fitted sizes, is less certain.
    finals = [rows[name]["recommended"]["final_loss"] for name in rows]
    assert finals == sorted(finals, reverse=True)
    widths = [rows[n]["recommended"]["band"][1] - rows[n]["recommended"]["band"][0] for n in rows]
    assert widths[2] > 2 * max(widths[:2])
    assert summary["budget"] == 24000
    page = (out / "report.html").read_text()
    assert "<h2>Across sizes</h2>" in page and "400M" in page


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"sizes": [32]}, "study.yaml: sizes=[32] has one width; fitting across sizes needs two"),
        ({"sizes": [32, 48, 32]}, "study.yaml: sizes: width 32 is given twice"),
        ({"sizes": [32, 48.5]}, "study.yaml: sizes[1]=48.5 is not an integer"),
        ({"sizes": "32,48"}, "study.yaml: sizes must be a list of integers"),
        ({"sizes": [32, 50]}, "study.yaml: sizes: width 50 is not a multiple of the tunnel's"),
        ({"sizes": [0, 32]}, "study.yaml: sizes[0]=0 is out of range (an integer in [1, inf))"),
        ({"params": "250K"}, "study.yaml: params=250K names a model size to forecast, which needs"),
        ({"sizes": [32, 48], "params": "big"}, "study.yaml: params: 'big' is not a parameter"),
        ({"sizes": [32, 48], "params": 0}, "study.yaml: params: the parameter count must be"),
        ({"sizes": [32, 48], "params": True}, "study.yaml: params=True is not a parameter count"),
    ],
)
def test_size_settings_errors_name_the_key(data, message):
    with pytest.raises(LrlabError, match=re.escape(message)):
        StudyConfig.from_mapping(data, source="study.yaml")


@pytest.mark.parametrize(
    ("params", "width", "count", "note"),
    [
        # Width 96's count as the study prints it: that width, at its exact count, checked.
        ("246.2K", 96, 246240, "is the tunnel's width 96 (246,240 parameters), cheap enough"),
        # No width up to twice the largest fitted one has 25M parameters: forecast, not trained.
        ("25M", None, 25e6, "was not trained: no tunnel width up to 96 (2x the largest fitted"),
        # 250K is 1.5% off width 96's count: not that model.
        ("250K", None, 250e3, "(nearest: width 96, 246,240)"),
    ],
)
def test_the_target_is_trained_only_where_a_cheap_width_has_its_count(params, width, count, note):
    pytest.importorskip("torch")
    from lrlab.study import _target_width

    config = StudyConfig.from_mapping({"sizes": [32, 48], "params": params})
    target, found, text = _target_width(config, {"d32": 34976.0, "d48": 67824.0})
    assert (target, found) == (count, width)
    assert note in text


def test_sizes_settings_round_trip_and_stay_out_of_a_one_size_summary():
    config = StudyConfig.from_mapping({"sizes": [32, 48], "params": "250K"})
    assert config.sizes == (32, 48) and config.params == 250e3
    assert StudyConfig(**config.to_dict()) == config
    assert config.width_tunnel(48)["model"] == {"d_model": 48, "n_layers": 2, "n_heads": 4}
    assert "sizes" not in StudyConfig().to_dict() and "params" not in StudyConfig().to_dict()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--params", "400M"], "--params 400M: forecasting another model size needs sizes:"),
        (["--size-law"], "--size-law fits logs given as RUN...; the wind-tunnel study trains"),
        (["--params", "logs=25M"], "--params logs=25M: DIR=COUNT names the size of logs"),
        (["--params", "1M", "--params", "2M"], "--params 1M and --params 2M: give the parameter"),
        (["--params", "0"], "--params: the parameter count must be a number above 0, got '0'"),
        (["--params", "many"], "--params: 'many' is not a parameter count"),
    ],
)
def test_size_flags_without_sizes_are_one_line_errors(tmp_path, capsys, argv, message):
    assert _exit_code(["study", *argv, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


def _exit_code(argv: list[str]) -> int:
    """`main`'s exit status, also where argparse refuses an argument (it exits)."""
    try:
        return main(argv)
    except SystemExit as stop:
        return int(stop.code)


def test_params_on_a_config_without_sizes_names_the_flag(tmp_path, capsys):
    config = tmp_path / "study.yaml"
    config.write_text("budget: 100\nwarmup: 10\n")
    assert main(["study", "--config", str(config), "--params", "1M"]) == 2
    assert "--params 1M: forecasting another model size needs sizes:" in capsys.readouterr().err


def _log(folder: Path, name: str) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.csv"
    lines = ["step,lr,loss"] + [f"{s},0.001,{3 - s / 1000:.4f}" for s in range(0, 200, 10)]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_size_flags_on_logs_are_one_line_errors(tmp_path, capsys):
    one = [_log(tmp_path / "25M", "a"), _log(tmp_path / "25M", "b")]
    out = str(tmp_path / "out")
    assert main(["study", *one, "--params", "400M", "--out", out]) == 2
    assert "--params 400M: a study of one size forecasts that size" in capsys.readouterr().err
    assert main(["study", *one, "--size-law", "--out", out]) == 2
    assert "--size-law: every run is of one size (25M" in capsys.readouterr().err
    other = [_log(tmp_path / "small", "a"), _log(tmp_path / "big", "a")]
    assert main(["study", *other, "--size-law", "--params", "small=1M", "--out", out]) == 2
    assert "--size-law: no parameter count for directory" in capsys.readouterr().err


def test_runs_of_two_sizes_sharing_a_name_are_an_error(tmp_path):
    from lrlab.runs import read_run
    from lrlab.study import study_size_runs

    small, big = (read_run(_log(tmp_path / size, "a")) for size in ("25M", "100M"))
    with pytest.raises(LrlabError, match="two runs are named 'a'; name the runs of each size"):
        study_size_runs({"25M": [small], "100M": [big]}, {"25M": 25e6, "100M": 1e8}, tmp_path)
