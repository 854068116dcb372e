"""Reading runs: formats, the per-step LR rule, and messy real-world logs."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from law_helpers import shared_slice_csv, write_csv
from lrlab.errors import LrlabError
from lrlab.runs import Run, RunWarning, read_run
from lrlab.runs.columns import parse_column_mapping


def test_csv_run_with_logged_lr_is_interpolated_from_zero(tmp_path):
    path = write_csv(tmp_path / "a.csv", "step,lr,loss", ["10,1e-3,5.0", "20,2e-3,4.0"])
    run = read_run(path)
    assert run.name == "a"
    assert run.steps.tolist() == [10, 20]
    assert run.loss.tolist() == [5.0, 4.0]
    assert run.lr.size == 21
    assert run.lr[0] == 0.0
    assert run.lr[5] == pytest.approx(0.5e-3)
    assert run.lr[15] == pytest.approx(1.5e-3)
    assert run.metadata["lr_source"] == "interpolated"


def test_sparse_lr_log_warns(tmp_path):
    rows = ["1000,1e-3,5.0", "1001,1e-3,4.9", "1002,1e-3,4.8"]
    path = write_csv(tmp_path / "sparse.csv", "step,lr,loss", rows)
    with pytest.warns(RunWarning, match="apart"):
        read_run(path)


def test_tsv_jsonl_and_csv_read_the_same_run(tmp_path):
    rows = [(100, 1e-3, 3.5), (200, 8e-4, 3.25), (300, 5e-4, 3.0)]
    csv_path = write_csv(tmp_path / "r.csv", "step,lr,loss", [f"{s},{a},{b}" for s, a, b in rows])
    tsv_path = write_csv(
        tmp_path / "r.tsv", "step\tlr\tloss", [f"{s}\t{a}\t{b}" for s, a, b in rows]
    )
    jsonl_path = tmp_path / "r.jsonl"
    jsonl_path.write_text(
        "".join(json.dumps({"step": s, "lr": a, "loss": b}) + "\n" for s, a, b in rows)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RunWarning)
        runs = [read_run(p) for p in (csv_path, tsv_path, jsonl_path)]
    for run in runs[1:]:
        np.testing.assert_array_equal(run.steps, runs[0].steps)
        np.testing.assert_array_equal(run.loss, runs[0].loss)
        np.testing.assert_array_equal(run.lr, runs[0].lr)


def test_resumed_run_keeps_last_value_per_step_sorted(tmp_path):
    # first segment to step 30, then a resume from a checkpoint at step 20 re-logs 20 and 30
    rows = [
        "10,1e-3,5.0",
        "20,1e-3,4.0",
        "30,1e-3,3.9",
        "20,1e-3,4.1",
        "30,1e-3,3.7",
        "40,1e-3,3.5",
    ]
    run = read_run(write_csv(tmp_path / "resumed.csv", "step,lr,loss", rows))
    assert run.steps.tolist() == [10, 20, 30, 40]
    assert run.loss.tolist() == [5.0, 4.1, 3.7, 3.5]


def test_nan_and_inf_losses_are_dropped_with_count(tmp_path):
    rows = ["10,1e-3,5.0", "20,1e-3,nan", "30,1e-3,inf", "40,1e-3,3.5"]
    with pytest.warns(RunWarning, match=r"dropped 2 NaN/inf loss value\(s\), the first at line 3"):
        run = read_run(write_csv(tmp_path / "nan.csv", "step,lr,loss", rows))
    assert run.steps.tolist() == [10, 40]


def test_missing_lr_without_schedule_is_a_clear_error(tmp_path):
    path = write_csv(tmp_path / "nolr.csv", "step,loss", ["10,5.0", "20,4.0"])
    with pytest.raises(LrlabError, match="no 'lr' values and no schedule"):
        read_run(path)


def test_schedule_gives_per_step_lr(tmp_path):
    path = write_csv(tmp_path / "nolr.csv", "step,loss", ["10,5.0", "20,4.0"])
    run = read_run(path, schedule="constant(peak=1e-3)")
    np.testing.assert_allclose(run.lr, np.full(21, 1e-3))
    assert run.metadata["lr_source"] == "schedule"


def test_sidecar_schedule_is_used(tmp_path):
    path = write_csv(tmp_path / "run7.csv", "step,loss", ["10,5.0", "20,4.0"])
    (tmp_path / "run7.schedule.json").write_text(json.dumps({"name": "constant", "peak": 2e-3}))
    np.testing.assert_allclose(read_run(path).lr, np.full(21, 2e-3))


def test_bad_sidecar_names_the_sidecar(tmp_path):
    path = write_csv(tmp_path / "run8.csv", "step,loss", ["10,5.0"])
    (tmp_path / "run8.schedule.json").write_text("{not json")
    with pytest.raises(LrlabError, match=r"run8\.schedule\.json, line 1"):
        read_run(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty"),
        ("step,lr,loss\n", "header but no data"),
        ("step,lr,loss\n10,1e-3,5.0\n20,1e-3,abc\n", r"line 3: column 'loss' has 'abc'"),
        ("step,lr,loss\n10.5,1e-3,5.0\n", r"line 2: step 10.5"),
        ("step,lr,loss\n10,1e-3\n", r"line 2: 2 fields"),
        ("step,loss_x\n10,5.0\n", "no loss column"),
    ],
)
def test_malformed_files_name_file_and_line(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(LrlabError, match=message) as error:
        read_run(path)
    assert "bad.csv" in str(error.value)


def test_bad_jsonl_line_is_reported(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"step": 1, "lr": 0.1, "loss": 2}\n{"step": 2,\n')
    with pytest.raises(LrlabError, match=r"bad\.jsonl, line 2"):
        read_run(path)


def test_unknown_extension_and_missing_file(tmp_path):
    (tmp_path / "x.xlsx").write_text("a")
    with pytest.raises(LrlabError, match="unknown log format"):
        read_run(tmp_path / "x.xlsx")
    with pytest.raises(LrlabError, match="no such file"):
        read_run(tmp_path / "absent.csv")


def test_parquet_without_pyarrow_says_to_install(tmp_path):
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        (tmp_path / "r.parquet").write_bytes(b"PAR1")
        with pytest.raises(LrlabError, match="pip install pyarrow"):
            read_run(tmp_path / "r.parquet")
    else:
        pytest.skip("pyarrow is installed")


def test_wandb_history_export_columns_are_mapped(tmp_path):
    header = "_step,_runtime,_timestamp,train/loss,train/lr,eval/loss"
    rows = [
        "0,1.0,1700000000,,0.0,",
        "50,2.0,1700000050,4.5,5e-4,",
        "100,3.0,1700000100,4.0,1e-3,4.2",
    ]
    run = read_run(write_csv(tmp_path / "wandb_export.csv", header, rows))
    assert run.steps.tolist() == [50, 100]
    assert run.lr[100] == pytest.approx(1e-3)
    assert run.metadata["format"] == "wandb-csv"


def test_column_mapping_option(tmp_path):
    path = write_csv(tmp_path / "m.csv", "it,val_loss,eta", ["5,3.0,1e-3", "6,2.9,1e-3"])
    mapping = parse_column_mapping("step=it,loss=val_loss,lr=eta")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RunWarning)
        run = read_run(path, columns=mapping)
    assert run.loss.tolist() == [3.0, 2.9]
    with pytest.raises(LrlabError, match="FIELD=NAME"):
        parse_column_mapping("speed=it")


def test_run_validates_its_arrays():
    with pytest.raises(LrlabError, match="strictly increasing"):
        Run("r", np.ones(5), np.array([2, 1]), np.array([1.0, 2.0]))
    with pytest.raises(LrlabError, match="covers steps"):
        Run("r", np.ones(3), np.array([1, 5]), np.array([1.0, 2.0]))


def test_shared_slice_reads_with_its_logged_lr(tmp_path):
    path = shared_slice_csv(tmp_path, "25M", "wsdcon_9")
    with pytest.warns(RunWarning, match="apart"):  # the log starts at step 2176: warmup unseen
        run = read_run(path)
    assert run.steps[0] == 2176
    assert run.lr[9000] == pytest.approx(9e-5)


step_values = st.lists(st.integers(0, 500), min_size=1, max_size=40)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=step_values, data=st.data())
def test_messy_log_property_last_value_wins(tmp_path, steps, data):
    losses = data.draw(
        st.lists(
            st.floats(0.5, 10.0) | st.just(float("nan")), min_size=len(steps), max_size=len(steps)
        )
    )
    path = write_csv(
        tmp_path / "messy.csv", "step,lr,loss", [f"{s},1e-3,{v!r}" for s, v in zip(steps, losses)]
    )
    expected = {}
    for step, loss in zip(steps, losses):
        expected[step] = loss
    finite = {s: v for s, v in sorted(expected.items()) if np.isfinite(v)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RunWarning)
        if not finite:
            with pytest.raises(LrlabError, match="no finite loss"):
                read_run(path)
            return
        run = read_run(path)
    assert run.steps.tolist() == list(finite)
    assert run.loss.tolist() == list(finite.values())


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    points=st.dictionaries(
        st.integers(0, 300), st.tuples(st.floats(0, 1e-2), st.floats(0.1, 20)), min_size=1
    )
)
def test_jsonl_round_trip_property(tmp_path, points):
    path = tmp_path / "round.jsonl"
    ordered = sorted(points.items())
    path.write_text(
        "".join(json.dumps({"step": s, "lr": a, "loss": b}) + "\n" for s, (a, b) in ordered)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RunWarning)
        run = read_run(path)
    assert run.steps.tolist() == [s for s, _ in ordered]
    assert run.loss.tolist() == [b for _, (_, b) in ordered]
    np.testing.assert_allclose(run.logged_lr, [a for _, (a, _) in ordered])


# --- hostile or broken logs: one-line errors naming the file and line (issue 18) --------------


def _single_line_error(path, **kwargs) -> str:
    with pytest.raises(LrlabError) as error:
        read_run(path, **kwargs)
    message = str(error.value)
    assert "\n" not in message and len(message) < 300 and path.name in message
    return message


def test_non_utf8_bytes_name_their_line(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes(b"step,lr,loss\n1,1e-3,5.0\n2,1e-3,4.\xff5\n")
    assert "line 3: not UTF-8" in _single_line_error(path)
    jsonl = tmp_path / "latin.jsonl"
    jsonl.write_bytes(b'{"step": 1, "lr": 0.001, "loss": 5.0}\n{"step": 2, "note": "\xe9"}\n')
    assert "line 2: not UTF-8" in _single_line_error(jsonl)


def test_a_non_utf8_log_is_a_clear_error_in_lrlab_study(tmp_path, capsys):
    from lrlab.cli import main

    path = tmp_path / "latin.csv"
    path.write_bytes(b"step,lr,loss\n1,1e-3,5.0\n2,1e-3,4.\xff5\n")
    out = tmp_path / "study"
    assert main(["study", "--runs", str(path), "--budget", "100", "--out", str(out)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("lrlab: error:") and "line 3: not UTF-8" in error
    assert "\n" not in error


@pytest.mark.parametrize(("loss", "line"), [("0", 3), ("-1.5", 3), ("0.0", 3)])
def test_a_loss_that_is_not_positive_names_its_line(tmp_path, loss, line):
    path = write_csv(tmp_path / "zero.csv", "step,lr,loss", ["1,1e-3,5.0", f"2,1e-3,{loss}"])
    assert f"line {line}: loss" in _single_line_error(path)


@pytest.mark.parametrize("lr", ["1e20", "1e300", "-1e-3", "inf"])
def test_an_absurd_lr_names_its_line(tmp_path, lr):
    path = write_csv(tmp_path / "lr.csv", "step,lr,loss", ["1,1e-3,5.0", f"2,{lr},4.0"])
    assert "line 3: lr" in _single_line_error(path)


def test_a_schedule_above_the_largest_lr_is_refused(tmp_path):
    path = write_csv(tmp_path / "s.csv", "step,loss", ["1,5.0", "2,4.0"])
    with pytest.raises(LrlabError, match="above 1000"):
        read_run(path, schedule="constant(peak=1e5)")


def test_a_stray_row_far_beyond_the_step_limit_is_refused(tmp_path):
    from lrlab.schedules import MAX_STEPS

    rows = ["1,1e-3,5.0", f"{MAX_STEPS + 1},1e-3,4.0"]
    path = write_csv(tmp_path / "stray.csv", "step,lr,loss", rows)
    assert "line 3: step" in _single_line_error(path)
    ok = write_csv(tmp_path / "ok.csv", "step,lr,loss", ["1,1e-3,5.0", "100000,1e-3,4.0"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RunWarning)
        assert read_run(ok).steps[-1] == 100_000


def test_a_column_named_twice_is_an_error(tmp_path):
    path = write_csv(tmp_path / "twice.csv", "step,loss,loss,lr", ["1,5.0,5.0,1e-3"])
    assert "column 'loss' appears twice" in _single_line_error(path)


def test_deeply_nested_and_overlong_json_lines_name_their_line(tmp_path):
    deep = tmp_path / "deep.jsonl"
    nested = "[" * 100_000 + "]" * 100_000
    deep.write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "loss": ' + nested + "}\n")
    assert "line 2: JSON nested too deeply" in _single_line_error(deep)
    long = tmp_path / "long.jsonl"
    long.write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "loss": 1' + "0" * 5000 + "}\n")
    assert "line 2" in _single_line_error(long)
    huge = tmp_path / "huge.jsonl"
    huge.write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "loss": 1' + "0" * 400 + "}\n")
    assert "line 2: column 'loss'" in _single_line_error(huge)
    cell = tmp_path / "cell.jsonl"
    cell.write_text(
        '{"step": 1, "loss": 2.0}\n{"step": 2, "loss": ' + "[" * 500 + "]" * 500 + "}\n"
    )
    assert "not a number" in _single_line_error(cell)  # the cell is cut short in the message


def test_a_one_row_log_reads_and_fits_with_a_clear_error(tmp_path):
    from lrlab.laws import get_law

    path = write_csv(tmp_path / "one.csv", "step,lr,loss", ["0,1e-3,3.5"])
    run = read_run(path)
    assert run.steps.tolist() == [0] and run.lr.size == 1
    with pytest.raises(LrlabError, match="usable logged points"):
        get_law("lrlab").fit([run])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RunWarning)  # the slice starts at step 2176
        fitted = read_run(shared_slice_csv(tmp_path, "25M", "constant_24000"))
    law = get_law("lrlab").fit([fitted])
    assert np.isfinite(law.predict(run.lr, run.steps)).all()
