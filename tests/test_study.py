"""`lrlab study`: its settings, on logged runs, on a tiny wind-tunnel setup, and the report as a
person sees it."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from browser_helpers import chromium, render
from lrlab.cli import main
from lrlab.errors import LrlabError
from lrlab.laws import DEFAULT_LAW
from lrlab.laws.selection import CANDIDATES
from lrlab.runs.regime import fitted_regime
from lrlab.schedules import from_spec
from lrlab.study import DEFAULT_CHOICE, StudyConfig, _run_folder, study_default, study_runs
from shared_data import load_shared_runs, shared_data_available

needs_shared = pytest.mark.skipif(
    not shared_data_available(), reason="shared data (../shared/data/mpl-loss-curves) not found"
)
HOSTILE = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def logs_study(tmp_path_factory):
    """A study of three real 25M runs, cut to 12000 steps, one of them with a hostile name."""
    runs = [
        run.until(11999)
        for run in load_shared_runs("25M", ("constant_24000", "cosine_24000", "wsdcon_9"))
    ]
    runs[0] = dataclasses.replace(runs[0], name=HOSTILE, source="/logs/<b>bold</b>.csv")
    out = tmp_path_factory.mktemp("study")
    return out, study_runs(runs, out, budget=12000)


@needs_shared
def test_logs_study_recommends_and_compares(logs_study):
    out, summary = logs_study
    # The forecasts are the default law's, the average, not the cross-validation's winner; every
    # single law's leave-one-run-out scores stay in the summary as the evidence.
    assert summary["chosen_law"] == DEFAULT_LAW == "auto"
    assert summary["law_choice"] == DEFAULT_CHOICE
    weights = summary["law_weights"]
    assert list(weights) == ["momentum", "mpl", "lrlab"]
    assert weights == pytest.approx(dict.fromkeys(weights, 1 / 3))
    assert summary["fit"]["law"] == "auto" and set(summary["fit"]["members"]) == set(weights)
    assert list(summary["laws"]) == list(CANDIDATES)
    for law in weights:
        assert set(summary["laws"][law]["runs"]) == {HOSTILE, "cosine_24000", "wsdcon_9"}
    best = summary["recommended"]
    low, high = best["band"]
    assert low <= best["final_loss"] <= high
    assert set(summary["comparisons"]) == {"cosine-10%", "wsd-20%-linear", "linear-to-zero"}
    # The recommendation stays within the fitted runs' decay: cut at 12000 steps, no run fell
    # below 30% of its peak; WSD-20%-linear, which decays to 0, lies outside (docs/study.md,
    # "The design stays where the law was fitted").
    regime = fitted_regime(summary["fit"]["fit"])
    steps = np.arange(12000)
    assert regime.excess(from_spec(best["spec"])(steps), summary["peak"]) <= 1e-3
    wsd = summary["comparisons"]["wsd-20%-linear"]
    assert regime.fall[-1] == pytest.approx(0.7, abs=0.01)
    assert regime.excess(from_spec(wsd["spec"])(steps), summary["peak"]) > 0.29
    assert summary["trust_region"].startswith("kept within the fitted runs' decay")
    assert json.loads((out / "summary.json").read_text())["budget"] == 12000


@needs_shared
def test_report_is_self_contained_and_escapes_user_strings(logs_study):
    out, _ = logs_study
    page = (out / "report.html").read_text()
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page and "<b>bold</b>" not in page
    assert page.count("data:image/png;base64,") == 3
    # The law line names the average's members and weights; its table marks them, not a winner.
    assert "law <b>auto (average of momentum 0.33, mpl 0.33, lrlab 0.33)</b>" in page
    assert page.count("(in the average, weight 0.33)") == 3 and "(chosen)" not in page
    assert not re.search(r'src="(?!data:)', page)  # nothing loaded from elsewhere


@needs_shared
@pytest.mark.skipif(chromium() is None, reason="Chromium is not installed")
@pytest.mark.parametrize("width", [420, 1024, 1280])
def test_report_renders_without_horizontal_scrolling(logs_study, tmp_path, width):
    """Render the report in headless Chromium at a phone's, a small laptop's and a laptop's
    width: it must not be wider than the window nor break a number over two lines, and a
    screenshot of it is kept for a person to look at."""
    out, _ = logs_study
    page = (out / "report.html").read_text()
    shot = out / f"report-screenshot-{width}px.png"
    layout = render(page, width, tmp_path, screenshot=shot)
    assert layout.viewport == width
    assert layout.width <= width and layout.wrapped_numbers == 0, f"{layout}; see {shot}"
    assert shot.read_bytes()[:4] == b"\x89PNG"


def test_default_study_reuses_the_run_folders_of_earlier_versions():
    """The fit runs of the default study keep the folder names lrlab 0.1.0 gave them (computed
    with that version's code), so an existing study folder is resumed, not trained again."""
    config = StudyConfig()
    folders = [
        _run_folder(Path("study"), f"fit-{name}", schedule, config.tunnel).name
        for name, schedule in config.fit_runs().items()
    ]
    assert folders == ["fit-constant-c9372f43", "fit-cosine-674ae99d", "fit-two-stage-7ea0fc94"]


def test_default_study_settings_are_those_of_earlier_versions():
    """What the summary records as ``study_config`` (lrlab 0.1.0's default study)."""
    assert StudyConfig().to_dict() == {
        "budget": 800,
        "peak": 0.003,
        "warmup": 40,
        "fit_schedules": {
            "constant": "constant(peak={peak}, warmup={warmup})",
            "cosine": "cosine(peak={peak}, total={budget}, warmup={warmup}, end_ratio=0.1)",
            "two-stage": "two_stage(peak={peak}, warmup={warmup}, drop_step={drop_step}, "
            "low={low})",
        },
        "verify": ["recommended", "wsd-20%-linear"],
        "tunnel": {
            "model": {"d_model": 64, "n_layers": 2, "n_heads": 4},
            "data": {"corpus": "stdlib", "max_bytes": 8_000_000},
            "train": {
                "batch_size": 16,
                "seq_len": 64,
                "eval_interval": 10,
                "eval_batches": 4,
                "checkpoint_interval": 100,
                "seed": 0,
            },
        },
    }
    assert [str(s) for s in StudyConfig().fit_runs().values()] == [
        "constant(peak=0.003, warmup=40)",
        "cosine(peak=0.003, total=800, warmup=40, end_ratio=0.1)",
        "two_stage(peak=0.003, drop_step=480, low=0.0003, warmup=40)",
    ]


def test_user_settings_override_the_default_study_field_by_field():
    config = StudyConfig.from_mapping(
        {
            "budget": 200.0,
            "verify": ["recommended"],
            "tunnel": {"model": {"d_model": 32}, "optim": {"beta2": 0.99}},
        }
    )
    assert config.budget == 200 and isinstance(config.budget, int)
    assert config.verify == ("recommended",)
    assert config.tunnel["model"] == {"d_model": 32, "n_layers": 2, "n_heads": 4}
    assert config.tunnel["optim"] == {"beta2": 0.99}
    assert config.tunnel["data"] == StudyConfig().tunnel["data"]
    assert StudyConfig(**config.to_dict()) == config  # merging again changes nothing
    assert StudyConfig.from_mapping(None) == StudyConfig()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"budgett": 100}, "study.yaml: unknown field 'budgett', did you mean 'budget'?"),
        ({"budget": -3}, "study.yaml: budget=-3 is out of range (an integer in [20, inf))"),
        ({"budget": True}, "study.yaml: budget=True is not an integer"),
        ({"peak": 0}, "study.yaml: peak=0 is out of range (a number in (0, inf))"),
        ({"warmup": 400}, "study.yaml: warmup=400 must be under half the budget"),
        ({"verify": ["best"]}, "study.yaml: verify: 'best' is not one of"),
        ({"verify": "recommended"}, "study.yaml: verify must be a list of strings"),
        ({"fit_schedules": {}}, "study.yaml: fit_schedules must map run names to schedule specs"),
        ({"fit_schedules": {"a": 3}}, "study.yaml: fit_schedules.a=3 must be a spec string"),
        (
            {"fit_schedules": {"a": "constant(peak={top})"}},
            "study.yaml: fit_schedules.a: unknown placeholder {top} (known: {budget}, {peak},",
        ),
        (
            {"fit_schedules": {"a": "constant(peak={})"}},
            "study.yaml: fit_schedules.a: unknown placeholder {} (known: {budget}",
        ),
        (
            {"fit_schedules": {"a": "cosine(peak={peak})"}},
            "study.yaml: fit_schedules.a: cosine: total is required",
        ),
        ({"tunnel": {"model": 64}}, "study.yaml: tunnel.model=64 must be a mapping"),
        ({"tunnel": []}, "study.yaml: tunnel=[] must be a mapping"),
        ([1, 2], "study.yaml: must be a mapping of fields"),
        ({"source": "x"}, "study.yaml: unknown field 'source'"),
    ],
)
def test_study_config_errors_name_the_file_and_field(data, message):
    with pytest.raises(LrlabError, match=re.escape(message)):
        StudyConfig.from_mapping(data, source="study.yaml")


def test_default_study_on_a_tiny_setup_trains_verifies_and_resumes(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from lrlab.tunnel import threads

    # On two cores (whatever this machine has), the three fit runs train two at a time.
    monkeypatch.setattr(threads, "usable_cores", lambda: threads.Cores(2, 2, "2 cores"))
    monkeypatch.delenv("LRLAB_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    config = {
        "budget": 120,
        "peak": 3e-3,
        "warmup": 10,
        "verify": ["recommended"],
        "tunnel": {
            "model": {"d_model": 32, "n_layers": 1, "n_heads": 2},
            "data": {
                "corpus": "english",
                "max_bytes": 60_000,
                "cache_dir": str(tmp_path / "cache"),
            },
            "train": {
                "batch_size": 4,
                "seq_len": 32,
                "eval_interval": 5,
                "eval_batches": 2,
                "progress": "off",
            },
        },
    }
    messages: list[str] = []
    summary = study_default(tmp_path / "study", config, progress=messages.append)
    assert [v["name"] for v in summary["verification"]] == ["recommended"]
    check = summary["verification"][0]
    assert check["measured"] > 0 and check["inside_band"] in (True, False)
    assert (tmp_path / "study" / "report.html").exists()
    assert sum("training" in m for m in messages) == 4  # three fit runs and one check
    records = {
        folder.name.rsplit("-", 1)[0]: json.loads((folder / "record.json").read_text())
        for folder in (tmp_path / "study" / "runs").iterdir()
    }
    assert set(records) == {"fit-constant", "fit-cosine", "fit-two-stage", "verify-recommended"}
    for name, record in records.items():
        assert record["threads"] == 1
        # The workers chose their threads knowing they shared the cores; the check ran alone.
        assert ("shared by 2 runs at once" in record["threads_reason"]) == name.startswith("fit")

    messages.clear()  # a second run reuses every finished run
    again = study_default(tmp_path / "study", config, progress=messages.append)
    assert sum("already finished, reused" in m for m in messages) == 4
    assert again["recommended"]["text"] == summary["recommended"]["text"]


def test_command_line_errors_are_one_line(capsys):
    assert main(["study", "--runs"]) == 2
    assert "lrlab: error: --runs needs at least one log file" in capsys.readouterr().err


def test_the_readme_study_config_example_is_valid():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    example = readme.split("```yaml\n", 1)[1].split("```", 1)[0]
    config = StudyConfig.from_mapping(yaml.safe_load(example), source="README.md")
    assert config.budget == 1500 and list(config.fit_runs()) == ["constant", "cosine"]
    assert config.tunnel["model"] == {"d_model": 96, "n_layers": 3, "n_heads": 4}


def test_a_json_spec_in_fit_schedules_keeps_its_braces_and_fills_placeholders():
    json_spec = '{"name": "constant", "peak": {peak}, "warmup": {warmup}}'
    config = StudyConfig.from_mapping({"fit_schedules": {"a": json_spec}})
    assert str(config.fit_runs()["a"]) == str(from_spec("constant(peak=0.003, warmup=40)"))
