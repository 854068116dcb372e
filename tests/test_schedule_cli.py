"""`lrlab schedules` and `lrlab schedule show|compare`, as a user runs them."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest

from lrlab.cli import main
from lrlab.schedules import REGISTRY

WSD = "wsd(peak=3e-4, total=24000, warmup=2160, cooldown_fraction=0.2, decay=linear)"


def test_schedules_lists_every_schedule_with_parameters_and_reference(capsys):
    assert main(["schedules"]) == 0
    out = capsys.readouterr().out
    for name, cls in REGISTRY.items():
        assert f"\n{name}\n" in f"\n{out}"
        assert cls.reference in out
    assert "cooldown_fraction (optional): decay length as a fraction of total steps" in out


def test_show_prints_csv_and_json(capsys):
    assert main(["schedule", "show", WSD, "--steps", "24000", "--every", "4000"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    # every 4000th step from step 0, and the last step
    assert [int(row["step"]) for row in rows] == [0, 4000, 8000, 12000, 16000, 20000, 23999]
    assert float(rows[1]["lr"]) == 3e-4
    assert float(rows[-2]["lr"]) == pytest.approx(3e-4 * 4000 / 4800)
    assert main(["schedule", "show", WSD, "--steps", "10", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["spec"]["name"] == "wsd" and len(data["lr"]) == 10


def test_compare_writes_a_png(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    plot = tmp_path / "compare.png"
    specs = [WSD, "cosine(peak=3e-4, total=24000, warmup=2160, end_ratio=0.1)"]
    assert main(["schedule", "compare", *specs, "--steps", "24000", "--plot", str(plot)]) == 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = capsys.readouterr().out
    assert "sum(lr)" in out and "cosine(" in out


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            [
                "schedule",
                "show",
                "wsd(peak=3e-4, total=100, cooldown_fraction=1.5)",
                "--steps",
                "10",
            ],
            "wsd: cooldown_fraction=1.5 is out of range (a number in (0, 1])",
        ),
        (["schedule", "show", "nope(peak=1)", "--steps", "10"], "unknown schedule 'nope'"),
        (["schedule", "show", "cosine(peak=1e-3)", "--steps", "10"], "cosine: total is required"),
        (
            ["schedule", "show", "constant(peak=1e-3)", "--steps", "-5"],
            "lrlab schedule show: argument --steps: must be a whole number from 1 to 10^7",
        ),
        (
            ["schedule", "compare", "constant(peak=1e-3)", "--steps", "0"],
            "lrlab schedule compare: argument --steps: must be a whole number from 1 to 10^7",
        ),
    ],
)
def test_bad_input_exits_non_zero_with_one_line(arguments, message):
    result = subprocess.run(
        [sys.executable, "-m", "lrlab", *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"lrlab: error: {message}")
    assert "Traceback" not in result.stderr
