"""Hostile and broken input (issue 18): every case goes through the real command line
(`lrlab.cli.main`, or a subprocess where the process matters) and must end in a non-zero exit
with one short ``lrlab: error: ...`` line naming the file, field or option - never a traceback,
a minutes-long parse, NaN printed with exit 0, or an input overwritten.

The cases are those of ``benchmarks/hostile.py`` that need no training (which prints the counts
of every case it knows); its fixtures (small logs, a power-law and an lrlab-law fit) are reused.
Names added by the fixes are imported inside the tests that use them, so that every test can be
run against the code before them (and fails there).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lrlab
from hostile import BIG, billion_laughs, deep, fit_with, make_fixtures
from lrlab.cli import main
from lrlab.errors import LrlabError

SRC = Path(lrlab.__file__).resolve().parents[1]
COSINE = "'cosine(peak=1e-3, total=400, warmup=20)'"
NAN = float("nan")


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fixtures")
    make_fixtures(folder)
    return folder


@pytest.fixture
def work(fixtures: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh copy of the fixtures, as the current folder."""
    folder = tmp_path / "work"
    shutil.copytree(fixtures, folder)
    monkeypatch.chdir(folder)
    return folder


def run(argv: str | list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """The CLI's exit status, stdout and stderr for `argv` (a shell-quoted string or a list)."""
    try:
        code = main(shlex.split(argv) if isinstance(argv, str) else argv)
    except SystemExit as exit:  # argparse refuses an argument this way
        code = exit.code
    out, err = capsys.readouterr()
    return code, out, err


def error_line(argv: str | list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one ``lrlab: error:`` line of a command that must fail: non-zero exit, at most 300
    characters, no other stderr lines but lrlab's own progress and warnings."""
    code, _, err = run(argv, capsys)
    lines = err.strip().splitlines()
    errors = [line for line in lines if line.startswith("lrlab: error: ")]
    assert code != 0, err
    assert len(errors) == 1, err[:2000]
    assert all(line.startswith("lrlab: ") for line in lines), err[:2000]
    assert len(errors[0]) <= 300, errors[0][:2000]
    assert "\x1b" not in err
    return errors[0]


def write(folder: Path, name: str, content: str | bytes) -> None:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)


# --- YAML and JSON: bombs, depth, size, echo --------------------------------------------------

BOMB = billion_laughs()
SPEC = "schedule show s.yaml --steps 5"
SPEC_JSON = "schedule show s.json --steps 5"
PREDICT_FIT = "predict f.yaml --schedule 'constant(peak=1e-3)' --steps 10"

MAPPING_CASES = [
    ("billion laughs spec", SPEC, {"s.yaml": f"name: constant\npeak: {BOMB}\n"}, "alias"),
    ("billion laughs fit", PREDICT_FIT, {"f.yaml": f"format: {BOMB}\n"}, "alias"),
    ("12-level bomb", SPEC, {"s.yaml": f"name: c\npeak: {billion_laughs(12)}\n"}, "alias"),
    ("recursive alias", SPEC, {"s.yaml": "name: constant\npeak: &a [*a]\n"}, "contains itself"),
    ("deep JSON", SPEC_JSON, {"s.json": '{"peak": ' + deep(100_000) + "}"}, "nested more than"),
    ("deep YAML flow", SPEC, {"s.yaml": f"peak: {deep(50_000)}\n"}, "nesting depth"),
    ("deep YAML, 100", SPEC, {"s.yaml": f"peak: {deep(100)}\n"}, "nested more than 64"),
    (
        "nested schedules in JSON",
        SPEC_JSON,
        {"s.json": '{"name": "scale", "factor": 1, "schedule": ' * 2000 + "{}" + "}" * 2000},
        "nested more than",
    ),
    (
        "deep JSON sidecar",
        "fit constant.csv --law power",
        {"constant.schedule.json": '{"name": "constant", "peak": ' + deep(100_000) + "}"},
        "constant.schedule.json: lists and mappings nested more than 64 deep",
    ),
    (
        "1 MB string echoed",
        SPEC_JSON,
        {"s.json": '{"name": "constant", "peak": "' + "x" * 1_000_000 + '"}'},
        "(1000000 characters)",
    ),
    (
        "1 MB key echoed",
        SPEC_JSON,
        {"s.json": '{"name": "constant", "' + "k" * 1_000_000 + '": 1}'},
        "unknown field 'kkk",
    ),
    (
        "1 MB name echoed",
        SPEC_JSON,
        {"s.json": '{"name": "' + "n" * 1_000_000 + '"}'},
        "unknown schedule 'nnn",
    ),
    (
        "100k-item list echoed",
        SPEC_JSON,
        {"s.json": '{"name": "constant", "peak": [' + ",".join(["1"] * 100_000) + "]}"},
        "(100000 items)",
    ),
    ("duplicate YAML key", SPEC, {"s.yaml": "name: c\npeak: 1\npeak: 2\n"}, "line 3: key 'peak'"),
    ("duplicate JSON key", SPEC_JSON, {"s.json": '{"peak": 1, "peak": 2}'}, "key 'peak' appears"),
    (
        "400-digit integer",
        SPEC_JSON,
        {"s.json": '{"name": "cosine", "peak": 1, "total": ' + BIG + "}"},
        "total=1000",
    ),
    (
        "5000-digit integer",
        SPEC_JSON,
        {"s.json": '{"name": "cosine", "total": ' + "9" * 5000 + "}"},
        "too many digits",
    ),
    ("non-UTF-8", SPEC, {"s.yaml": b"name: constant\npeak: \xff\n"}, "line 2: schedule spec is"),
]


@pytest.mark.parametrize(
    ("argv", "files", "fragment"),
    [pytest.param(*case[1:], id=case[0]) for case in MAPPING_CASES],
)
def test_yaml_and_json_are_bounded(work, capsys, argv, files, fragment):
    for name, content in files.items():
        write(work, name, content)
    assert fragment in error_line(argv, capsys)


def test_a_huge_or_endless_file_is_refused_unread(work, capsys):
    (work / "big.yaml").touch()
    os.truncate(work / "big.yaml", 2 << 30)  # sparse: 2 GiB that take no disk
    assert "larger than 256 MiB" in error_line("schedule show big.yaml --steps 5", capsys)
    line = error_line("predict /dev/zero --schedule 'constant(peak=1)' --steps 5", capsys)
    assert "/dev/zero: law fit larger than 256 MiB" in line


def test_inline_specs_are_bounded(work, capsys):
    line = error_line(
        ["schedule", "show", '{"peak": ' + deep(20_000) + "}", "--steps", "5"], capsys
    )
    assert "nested more than 64 deep" in line
    line = error_line(["schedule", "show", f"constant(peak={deep(5000)})", "--steps", "5"], capsys)
    assert "too many nested parentheses" in line
    nested = "scale(schedule=" * 150 + "constant(peak=1e-3)" + ", factor=1)" * 150
    assert "nested more than" in error_line(["schedule", "show", nested, "--steps", "5"], capsys)
    # Within the bound, nesting works.
    nested = "scale(schedule=" * 40 + "constant(peak=1e-3)" + ", factor=1)" * 40
    code, out, _ = run(["schedule", "show", nested, "--steps", "2"], capsys)
    assert code == 0 and out.splitlines()[1] == "0,0.001"


def test_load_data_bounds_and_keeps_valid_anchors(tmp_path):
    from lrlab.mapping_file import MAX_ALIAS_NODES, MAX_DEPTH, load_data, read_mapping

    # Anchors that share a section a few times are fine; the bound is on repeated values.
    shared = "base: &b {d_model: 64, n_layers: 2}\na: *b\nc: {<<: *b, n_layers: 3}\n"
    assert load_data(shared, "x")["c"] == {"d_model": 64, "n_layers": 3}
    many = (
        "items: &i ["
        + ",".join(["1"] * 100)
        + "]\n"
        + "".join(f"k{n}: *i\n" for n in range(MAX_ALIAS_NODES // 101 + 2))
    )
    with pytest.raises(LrlabError, match="aliases repeat more than"):
        load_data(many, "x")
    with pytest.raises(LrlabError, match=f"nested more than {MAX_DEPTH}"):
        load_data(deep(MAX_DEPTH + 1), "x", json_syntax=True)
    assert isinstance(load_data(deep(MAX_DEPTH), "x", json_syntax=True), list)
    (tmp_path / "bom.json").write_bytes(b'\xef\xbb\xbf{"a": 1}')
    assert read_mapping(tmp_path / "bom.json") == {"a": 1}


def test_a_yaml_bomb_in_a_set_override_is_refused():
    from lrlab.tunnel.config import apply_overrides

    with pytest.raises(LrlabError, match=r"--set train.steps, line 1: .*aliases repeat"):
        apply_overrides({}, [f"train.steps={BOMB}"])
    # Text that is not YAML is still taken as it is.
    assert apply_overrides({}, ["train.schedule=a: b: c"]) == {"train": {"schedule": "a: b: c"}}


def test_brief_keeps_errors_short():
    from lrlab.errors import brief

    assert brief("x" * 1000).endswith("(1000 characters)") and len(brief("x" * 1000)) < 90
    assert brief("a\nb") == "'a\\nb'"
    assert len(brief(10**400)) <= 60 and brief(3e-4) == "0.0003"


# --- fit files: validated on load ---------------------------------------------------------------

PREDICT = f"predict f.json --schedule {COSINE} --steps 400"
OPTIMIZE = "optimize f.json --budget 200 --family cosine"

FIT_CASES = [
    ("NaN parameter", {"params.L0": NAN}, "params L0 = nan is not a finite number in [0, inf]"),
    ("infinite parameter", {"params.A": float("inf")}, "params A = inf"),
    ("negative amplitude", {"params.A": -5.0}, "params A = -5 is not a finite number in [0, 100]"),
    ("alpha out of range", {"params.alpha": 1e300}, "params alpha = 1e+300"),
    ("400-digit parameter", {"params.L0": 10**400}, "params L0 = inf"),
    ("parameter as text", {"params.alpha": "abc"}, "params alpha = 'abc' is not a number"),
    ("format_version true", {"format_version": True}, "'format_version' is True"),
    ("band_scale 0", {"band_scale": 0.0}, "band_scale = 0 must be finite and > 0"),
    ("band_scale negative", {"band_scale": -1.0}, "band_scale = -1"),
    ("band_scale NaN", {"band_scale": NAN}, "band_scale = nan"),
    ("noise_sd negative", {"noise_sd": -0.5}, "noise_sd = -0.5 must be finite and >= 0"),
    ("noise_sd NaN", {"noise_sd": NAN}, "noise_sd = nan"),
    ("replicate NaN", {"replicates": [[NAN, 1.0, 0.5], [1.0, 1.0, 0.5]]}, "replicates[0] L0 = nan"),
    ("replicate range", {"replicates": [[1.0, -50.0, 0.5]]}, "replicates[0] A = -50"),
    ("covariance shape", {"covariance": [[1.0]]}, "covariance must be 3 x 3 numbers"),
    ("param_errors NaN", {"param_errors.A": NAN}, "param_errors must be numbers of at least 0"),
    ("law a list", {"law": ["power"]}, "field 'law' names unknown law ['power']"),
    ("fit peak NaN", {"fit.peak": NAN}, "fit peak = nan must be a finite LR > 0"),
    ("fit warmup 2.5", {"fit.warmup": 2.5}, "fit warmup = 2.5 must be a whole number"),
    ("fit warmup -50", {"fit.warmup": -50}, "fit warmup = -50"),
]


@pytest.mark.parametrize(
    ("changes", "fragment"), [pytest.param(*case[1:], id=case[0]) for case in FIT_CASES]
)
@pytest.mark.parametrize("command", [PREDICT, OPTIMIZE, "evaluate f.json constant.csv"])
def test_fit_files_are_validated_on_load(work, capsys, changes, fragment, command):
    (work / "f.json").write_text(fit_with(work, changes))
    line = error_line(command, capsys)
    assert line.startswith("lrlab: error: f.json") and fragment in line


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"learned.lr_ref": 0.0}, "learned lr_ref = 0 must be finite and > 0"),
        ({"learned.lr_ref": NAN}, "learned lr_ref = nan"),
        ({"params.p": -7.0}, "params p = -7 is not a finite number in [0.2, 3]"),
    ],
)
def test_learned_values_and_law_bounds_are_validated(work, capsys, changes, fragment):
    (work / "f.json").write_text(fit_with(work, changes, "lrlab_fit.json"))
    assert fragment in error_line(PREDICT, capsys)


def test_fit_files_written_by_the_old_code_still_load():
    from lrlab.laws import load_law

    data = Path(__file__).parent / "data"
    for name in ("old_lrlab_fit.json", "old_momentum_fit.json"):
        assert np.all(np.isfinite(load_law(data / name).params_))


# --- predictions: never NaN, inf or negative with exit 0 ---------------------------------------


def test_undefined_predictions_are_empty_cells_not_nan(work, capsys):
    # from0.csv logs step 0, where the LR is 0: no law predicts it.
    code, out, _ = run("predict fit.json from0.csv", capsys)
    assert code == 0 and "nan" not in out.lower()
    assert out.splitlines()[1].split(",")[4:] == ["", "", ""]
    code, out, _ = run("fit from0.csv cosine.csv --law power --no-bands", capsys)
    assert code == 0 and "nan" not in out.lower()


def test_undefined_metrics_are_shown_as_such(work, capsys):
    write(work, "one.csv", "step,loss,lr\n10,3.0,0.001\n")  # R2 of one point is undefined
    code, out, _ = run("evaluate fit.json one.csv", capsys)
    assert code == 0 and "nan" not in out.lower() and "n/a" in out
    code, out, _ = run("evaluate fit.json one.csv --json", capsys)
    assert code == 0 and json.loads(out)["runs"]["one"]["R2"] is None


def test_a_forecast_that_is_no_loss_is_an_error(work, capsys):
    line = error_line("predict fit.json --schedule 'constant(peak=1e300)' --steps 100", capsys)
    assert "at most 1000" in line
    # A fit at its bounds (alpha = 3) and a tiny LR: A * S1^-alpha overflows.
    (work / "f.json").write_text(fit_with(work, {"params.alpha": 3.0}))
    line = error_line("predict f.json --schedule 'constant(peak=1e-300)' --steps 100", capsys)
    assert "law 'power': the forecast at step 0 is inf, not a loss (LR 1e-300 there" in line
    line = error_line("optimize f.json --budget 200 --family cosine --peak 1e-300", capsys)
    assert "forecasts no finite loss for a cosine schedule of peak 1e-300" in line


# --- arguments: ranges checked before any work -------------------------------------------------

ARGUMENT_CASES = [
    ("show --steps 400 digits", f"schedule show {COSINE} --steps {BIG}", "--steps: must be"),
    ("show --steps 1e12", f"schedule show {COSINE} --steps 1000000000000", "1 to 10^7"),
    ("show --every 0", f"schedule show {COSINE} --steps 5 --every 0", "--every: must be"),
    ("compare --steps big", f"schedule compare {COSINE} --steps {BIG}", "--steps: must be"),
    ("predict --steps big", f"predict fit.json --schedule {COSINE} --steps {BIG}", "2 to 10^7"),
    ("predict --every 0", f"predict fit.json --schedule {COSINE} --steps 9 --every 0", "--every"),
    ("predict --level nan", "predict fit.json constant.csv --level nan", "--level: must be"),
    ("optimize --budget 0", "optimize fit.json --budget 0", "--budget: must be"),
    ("optimize --budget -5", "optimize fit.json --budget -5", "--budget: must be"),
    ("optimize --budget big", f"optimize fit.json --budget {BIG}", "--budget: must be"),
    ("optimize --knots 0", "optimize fit.json --budget 200 --knots 0", "--knots: must be"),
    ("optimize --smoothness -1", "optimize fit.json --budget 200 --smoothness -1", "[0, inf)"),
    ("optimize --smoothness nan", "optimize fit.json --budget 200 --smoothness nan", "finite"),
    ("optimize --peak nan", "optimize fit.json --budget 200 --peak nan", "--peak: must be"),
    ("optimize --peak inf", "optimize fit.json --budget 200 --peak inf", "--peak: must be"),
    ("optimize --peak 1e300", "optimize fit.json --budget 200 --peak 1e300", "(0, 1000]"),
    ("optimize --warmup -5", "optimize fit.json --budget 200 --warmup -5", "--warmup: must be"),
    ("optimize --budgets 0", "optimize fit.json --budget 200 --budgets 0,100", "--budgets"),
    ("optimize --budgets 5", "optimize fit.json --budget 200 --budgets 5", "too few steps"),
    ("refine --peak -1", "refine grad.csv -o r.json --peak -1", "--peak: must be a finite"),
    ("refine, no grad_norm", "refine constant.csv -o r.json", "for the gradient norms"),
    (
        "plan --base-steps -5",
        f"plan-continual fit.json --base {COSINE} --base-steps -5 --stage-steps 100",
        "--base-steps: must be",
    ),
    (
        "plan --base-steps big",
        f"plan-continual fit.json --base {COSINE} --base-steps {BIG} --stage-steps 100",
        "--base-steps: must be",
    ),
    (
        "plan --stage-steps 0",
        f"plan-continual fit.json --base {COSINE} --base-steps 400 --stage-steps 0",
        "--stage-steps: must be",
    ),
    (
        "plan --warmup = stage",
        f"plan-continual fit.json --base {COSINE} --base-steps 400 --stage-steps 100 --warmup 100",
        "warmup=100 must be less than the stage's 100 steps",
    ),
    (
        "study --budget 0",
        "study --runs constant.csv cosine.csv --budget 0 --out st",
        "--budget: must be",
    ),
    ("schedules, 100 kB name", ["schedules", "x" * 100_000], "unknown schedule 'xxx"),
]


@pytest.mark.parametrize(
    ("argv", "fragment"), [pytest.param(*case[1:], id=case[0]) for case in ARGUMENT_CASES]
)
def test_arguments_are_checked(work, capsys, argv, fragment):
    assert fragment in error_line(argv, capsys)


def test_refine_names_the_gradient_norms_not_the_loss(work, capsys):
    write(work, "g.csv", "step,loss,lr,grad_norm\n1,3,0.001,1\n2,2.9,0.001,0\n3,2.8,0.001,1\n")
    line = error_line("refine g.csv -o r.json", capsys)
    assert "grad_norm 0.0 is not positive" in line and "loss" not in line.split(":", 2)[2]


def test_design_functions_check_their_arguments(work):
    from lrlab.design import budget_sweep, optimize_schedule, plan_continual
    from lrlab.design.refine import refined_lr
    from lrlab.laws import load_law
    from lrlab.schedules import parse

    law = load_law(work / "fit.json")
    with pytest.raises(LrlabError, match="knots=0 must be a whole number of at least 3"):
        optimize_schedule(law, 200, peak=1e-3, knots=0)
    with pytest.raises(LrlabError, match="smoothness=-1"):
        optimize_schedule(law, 200, peak=1e-3, smoothness=-1)
    with pytest.raises(LrlabError, match="budget=100000000000 must be a whole number"):
        optimize_schedule(law, 10**11, peak=1e-3)
    with pytest.raises(LrlabError, match="peak=nan"):
        optimize_schedule(law, 200, peak=NAN)
    with pytest.raises(LrlabError, match="budget=0"):
        budget_sweep(law, [0, 100], peak=1e-3)
    with pytest.raises(LrlabError, match="base_steps=0"):
        plan_continual(law, parse("constant(peak=1e-3)"), 0, 100, peak=1e-3, warmup=1)
    with pytest.raises(LrlabError, match="peak=-1"):
        refined_lr(np.ones(10), peak=-1)


# --- schedules: overflowing boundaries and factors ----------------------------------------------

TWO = "constant(peak=1e-3), constant(peak=1e-4)"


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        (f"join(schedules=[{TWO}], boundaries=[1e20])", "boundaries[0]=1e+20 is too large"),
        (f"join(schedules=[{TWO}], boundaries=[{2**63}])", "is too large (at most 2^53"),
        (f"join(schedules=[{TWO}], boundaries=[{BIG}])", "must be finite"),
        ("scale(schedule=constant(peak=1e300), factor=1e300)", "overflows"),
        ("scale(schedule=scale(schedule=constant(peak=1), factor=1e200), factor=1e200)", "over"),
        (f"cosine(peak=1e-3, total={BIG})", "total=1000"),
        (f"table(values=[1, {BIG}])", "values[1]="),
        ("cosine(peak=1e-3, total=1e21, warmup=1e20)", "is too large"),
    ],
)
def test_schedules_refuse_overflow(work, capsys, spec, fragment):
    assert fragment in error_line(["schedule", "show", spec, "--steps", "20"], capsys)


def test_scale_refuses_an_overflow_its_fields_cannot_bound():
    from lrlab.schedules import Schedule, scale

    class Huge(Schedule):  # a user's schedule, with no field that bounds its LR
        name = "huge"

        def _lr(self, t: np.ndarray) -> np.ndarray:
            return np.full_like(t, 1e300)

    with pytest.raises(LrlabError, match="factor=1e\\+10 makes the LR overflow at step 0"):
        scale(Huge(), 1e10)(np.arange(3))
    assert scale(Huge(), 1.0)(2) == 1e300


# --- outputs: checked before any work; no input overwritten, no folder created ------------------

OUTPUT_CASES = [
    ("fit -o a folder", "fit constant.csv --law power -o out", "-o out: is a folder"),
    ("fit -o under a file", "fit constant.csv --law power -o constant.csv/x.json", "not a folder"),
    ("fit -o its log", "fit constant.csv --law power -o constant.csv", "is an input"),
    ("predict -o the fit", "predict fit.json constant.csv -o fit.json", "is an input"),
    ("predict -o a pipe", "predict fit.json constant.csv -o pipe.csv", "not a regular file"),
    ("predict --plot the log", "predict fit.json constant.csv --plot constant.csv", "is an input"),
    ("predict -o = --plot", "predict fit.json constant.csv -o p.png --plot p.png", "same file"),
    ("optimize -o the fit", "optimize fit.json --budget 200 -o fit.json", "is an input"),
    ("refine -o its log", "refine grad.csv -o grad.csv", "is an input"),
    (
        "plan -o the fit",
        f"plan-continual fit.json --base {COSINE} --base-steps 9 --stage-steps 9 -o fit.json",
        "is an input",
    ),
    ("show --plot its spec", "schedule show spec.json --steps 9 --plot spec.json", "is an input"),
    ("fit -o /proc", "fit constant.csv --law power --no-bands -o /proc/x.json", "/proc/"),
]


@pytest.mark.parametrize(
    ("argv", "fragment"), [pytest.param(*case[1:], id=case[0]) for case in OUTPUT_CASES]
)
def test_outputs_are_checked_and_inputs_kept(work, capsys, argv, fragment):
    (work / "out").mkdir()
    os.mkfifo(work / "pipe.csv")
    before = {path.name: path.read_bytes() for path in work.iterdir() if path.is_file()}
    assert fragment in error_line(argv, capsys)
    assert {path.name: path.read_bytes() for path in work.iterdir() if path.is_file()} == before


@pytest.mark.parametrize(
    "argv",
    [
        "fit constant.csv --law power --no-bands -o a/b/f.json",
        "predict fit.json constant.csv --plot a/b/p.png",
        "evaluate fit.json constant.csv --plot a/b/p.png",
        "optimize fit.json --budget 200 --family cosine --plot a/b/p.png",
        "schedule compare 'constant(peak=1e-3)' --steps 10 --plot a/b/p.png",
    ],
)
def test_no_missing_folder_is_created(work, capsys, argv):
    assert "folder a/b does not exist" in error_line(argv, capsys)
    assert not (work / "a").exists()


# --- plots: labels shown as given ---------------------------------------------------------------


def test_math_text_in_a_run_name_is_plotted_verbatim(work, capsys):
    pytest.importorskip("matplotlib")
    name = "$\\frac{a$.csv"
    shutil.copy(work / "constant.csv", work / name)
    for command in ("predict", "evaluate"):
        code, _, err = run([command, "fit.json", name, "--plot", "p.png"], capsys)
        assert code == 0, err
        assert (work / "p.png").stat().st_size > 0
        (work / "p.png").unlink()


# --- the command line itself ---------------------------------------------------------------------


def test_escape_codes_and_newlines_never_reach_the_terminal(work, capsys):
    from lrlab.cli import one_line

    line = error_line(
        ["schedule", "show", "\x1b[2J\x1b]0;title\x07x\ny.json", "--steps", "5"], capsys
    )
    assert "x y.json" in line or "x\\ny.json" in line
    assert one_line("a\x1b[31mb\x1b[0m\n\tc\x07") == "ab c\\x07"


def test_argparse_errors_are_one_line(work, capsys):
    line = error_line("predict fit.json --steps", capsys)
    assert line.startswith("lrlab: error: lrlab predict: argument --steps") and "--help" in line


def test_an_unexpected_exception_is_one_line_unless_asked(work, capsys, monkeypatch):
    import lrlab.cli.schedule_commands as commands

    def broken(args):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(commands, "list_schedules", broken)
    code, _, err = run("schedules", capsys)
    assert code == 70
    assert err.strip() == (
        "lrlab: internal error: RuntimeError: boom second line (a bug in lrlab: please report it;"
        " LRLAB_TRACEBACK=1 shows where)"
    )
    monkeypatch.setenv("LRLAB_TRACEBACK", "1")
    with pytest.raises(RuntimeError, match="boom"):
        main(["schedules"])


def test_a_closed_pipe_ends_quietly(work):
    command = [sys.executable, "-m", "lrlab", "schedule", "show", "constant(peak=1e-3)"]
    producer = subprocess.Popen(
        [*command, "--steps", "1000000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(SRC)},  # the lrlab under test
    )
    assert producer.stdout is not None
    producer.stdout.readline()
    producer.stdout.close()  # what `| head -1` does
    _, err = producer.communicate(timeout=120)
    assert err == b"" and producer.returncode == 141


# --- log readers (the cases of the readers' own part of issue 18) ------------------------------

ROWS = "step,loss,lr\n" + "".join(f"{s},{3 - s / 1000:.4f},0.001\n" for s in range(1, 200))

LOG_CASES = [
    ("non-UTF-8", b"step,loss,lr\n1,3.0,0.001\n2,2\xff.9,0.001\n", "log.csv"),
    ("duplicate columns", "step,loss,loss\n1,3,2\n2,3,2\n", "column 'loss' appears twice"),
    ("row at step 1e8", ROWS + "100000000,2.5,0.001\n", "log.csv"),
    ("zero loss", ROWS + "300,0,0.001\n", "log.csv"),
    ("negative loss", ROWS + "300,-1,0.001\n", "log.csv"),
    ("LR 1e300", ROWS.replace("0.001", "1e300"), "log.csv"),
]


@pytest.mark.parametrize(
    ("content", "fragment"), [pytest.param(*case[1:], id=case[0]) for case in LOG_CASES]
)
def test_broken_logs_are_one_line_errors(work, capsys, content, fragment):
    write(work, "log.csv", content)
    assert fragment in error_line("fit log.csv --law power --no-bands", capsys)


def test_deeply_nested_jsonl_is_one_line_error(work, capsys):
    write(work, "log.jsonl", '{"step": 1, "loss": ' + deep(100_000) + "}\n")
    assert "log.jsonl" in error_line("fit log.jsonl --law power", capsys)
