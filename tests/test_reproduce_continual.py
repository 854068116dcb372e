"""Claim 3 (continual pre-training) at the test scale: its runs train, its figure is written,
its verdict and numbers are well formed, and a second run reuses every run. The paper's
conclusion is not asserted: the test scale trains for seconds."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("matplotlib")

from lrlab.reproduce.claim import VERDICTS, ClaimContext
from lrlab.reproduce.continual_claim import (
    ContinualPretraining,
    plan,
    read_columns,
)
from lrlab.tunnel.config import config_from_dict


def _context(folder: Path, lines: list[str]) -> ClaimContext:
    return ClaimContext(folder, "test", lines.append)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LRLAB_CACHE", str(tmp_path / "cache"))


def test_plan_builds_valid_configs_linked_to_stage_a(tmp_path: Path) -> None:
    context = _context(tmp_path / "continual", [])
    specs = plan(context)
    for spec in specs.values():
        config_from_dict(json.loads(json.dumps(spec.tunnel)), spec.name)
    a_folder = str(context.run_folder("a-cosine").resolve())
    stage_b = [spec for role, spec in specs.items() if role.startswith("b/")]
    assert len(stage_b) == 5  # three peaks without replay, two more replays at the middle peak
    assert all(spec.tunnel["train"]["init_from"] == a_folder for spec in stage_b)
    infinite = specs["b_infinite"].tunnel["train"]["init_from"]
    assert infinite == str(context.run_folder("a-infinite").resolve())
    union = specs["union"].tunnel
    steps_a = specs["a"].tunnel["train"]["steps"]
    steps_b = specs["b/1/0"].tunnel["train"]["steps"]
    assert union["train"]["steps"] == steps_a + steps_b
    assert union["data"]["replay_fraction"] == pytest.approx(steps_a / (steps_a + steps_b))


def test_claim_runs_measures_and_reuses(
    tmp_path: Path, cache: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "continual"
    folder.mkdir()
    lines: list[str] = []
    first = _context(folder, lines)
    result = ContinualPretraining().run(first)
    assert result.verdict in VERDICTS
    assert result.figures == ["continual.png"]
    assert (folder / "continual.png").stat().st_size > 1000
    json.dumps(result.numbers, allow_nan=False)  # what claims.json needs
    parts = result.numbers["parts"]
    assert len(parts) == 5
    assert all(part["verdict"] in VERDICTS and part["rule"] for part in parts.values())
    assert len(first.trained) == len(plan(first)) and not first.reused
    # Every stage-B run evaluates both corpora from its first evaluation on.
    columns = read_columns(first.run_folder("b-rewarm-3e-3-replay25"))
    assert {"val_loss_stdlib", "val_loss_english"} <= set(columns)
    forgetting = result.numbers["forgetting_by_replay"]
    assert set(forgetting) == {"0", "0.05", "0.25"}
    assert all(math.isfinite(value) for value in forgetting.values())
    assert result.numbers["union"]["compute_fraction"] == pytest.approx(8 / 18)
    assert "Bump" in result.summary

    # Rerun from the folder above, naming the claim's folder relatively: stage B's link to
    # stage A is the same, so every run is reused.
    monkeypatch.chdir(tmp_path)
    again = _context(Path("continual"), [])
    second = ContinualPretraining().run(again)
    assert again.trained == [] and len(again.reused) == len(first.trained)
    assert second.numbers == result.numbers

    # Moved into another output folder: stage B's init_from still names the old stage A, and
    # is re-pointed, so every run is reused again.
    (tmp_path / "moved").mkdir()
    moved = _context(folder.rename(tmp_path / "moved" / "continual"), [])
    third = ContinualPretraining().run(moved)
    assert moved.trained == [] and len(moved.reused) == len(first.trained)
    assert third.numbers == result.numbers
