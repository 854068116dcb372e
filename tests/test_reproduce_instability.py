"""Claim 4 (instabilities at small scale) at the test scale: its runs train, its figures are
written, its verdict and numbers are well formed, the paper's LR-sensitivity metric and the AUC
compute what they define, and a second run reuses every run. The paper's conclusions are not
asserted: the test scale trains for seconds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("matplotlib")

from lrlab.reproduce.claim import VERDICTS, ClaimContext
from lrlab.reproduce.instability_claim import (
    GRIDS,
    Instabilities,
    Outcome,
    auc,
    lr_sensitivity,
    plan,
    spearman,
)
from lrlab.tunnel.config import config_from_dict


def _outcome(lr: float, final: float, initial: float = 5.5) -> Outcome:
    return Outcome(lr, initial, final, False, 1.0, 1.0, 0.0, 0.0, 0.0)


def test_lr_sensitivity_is_the_papers_metric() -> None:
    # Inside [3e-4, 3e-1]: losses 3.0, 2.5, 9.0 (blown up: counted as l0 = 5.5); the run at
    # 1e-4 is outside the range and ignored. Mean of (3.0, 2.5, 5.5) - 2.5 = 3.5 / 3.
    outcomes = [
        _outcome(1e-4, 1.0),
        _outcome(3e-4, 3.0),
        _outcome(3e-3, 2.5),
        _outcome(3e-1, 9.0),
    ]
    assert lr_sensitivity(outcomes) == pytest.approx(3.5 / 3)
    assert lr_sensitivity([_outcome(1e-3, 2.0), _outcome(1e-2, 2.0)]) == 0.0


def test_auc_counts_ranked_pairs() -> None:
    assert auc([1.0, 2.0, 3.0, 4.0], [False, False, True, True]) == 1.0
    assert auc([1.0, 2.0, 3.0, 4.0], [True, True, False, False]) == 0.0
    assert auc([1.0, 1.0], [True, False]) == 0.5
    assert auc([1.0, 2.0], [False, False]) is None


def test_spearman_ranks() -> None:
    assert spearman([1.0, 2.0, 30.0], [0.1, 0.5, 0.6]) == pytest.approx(1.0)
    assert spearman([1.0, 2.0, 3.0], [3.0, 2.0, -9.0]) == pytest.approx(-1.0)
    assert spearman([1.0, 2.0], [1.0, 2.0]) is None
    assert spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]) is None


def test_plan_covers_every_setting_and_emulates_independent_decay() -> None:
    grid = GRIDS["tiny"]
    specs = plan("tiny")
    assert len({spec.name for spec in specs.values()}) == len(specs)
    assert len(specs) == len(grid.lrs) * (2 * len(grid.widths) + 5)
    assert len(grid.widths) >= 3
    assert min(grid.lrs) <= 3e-4 and max(grid.lrs) >= 3e-1
    for spec in list(specs.values())[:: len(grid.lrs)]:
        config_from_dict(json.loads(json.dumps(spec.tunnel)), spec.name)
    for lr in grid.lrs:
        # AdamW decays by weight_decay * lr(t): 1e-4 * lr(t) / peak, whatever the peak.
        optim = specs["independent_wd", grid.sensitivity_width, lr].tunnel["optim"]
        assert optim["weight_decay"] * lr == pytest.approx(1e-4)
    qk = specs["qk_norm", grid.widths[0], grid.lrs[0]].tunnel
    assert qk["model"]["qk_norm"] is True and qk["train"]["spike_factor"] == 0.0


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LRLAB_CACHE", str(tmp_path / "cache"))


def test_claim_runs_measures_and_reuses(tmp_path: Path, cache: None) -> None:
    folder = tmp_path / "instabilities"
    folder.mkdir()
    first = ClaimContext(folder, "test", [].append)
    result = Instabilities().run(first)
    assert result.verdict in VERDICTS
    assert result.figures == ["instabilities.png", "instabilities_sensitivity.png"]
    for name in result.figures:
        assert (folder / name).stat().st_size > 1000
    json.dumps(result.numbers, allow_nan=False)  # what claims.json needs
    parts = result.numbers["parts"]
    assert len(parts) == 7
    assert all(part["verdict"] in VERDICTS and part["rule"] for part in parts.values())
    assert len(first.trained) == len(plan("test")) and not first.reused
    grid = GRIDS["test"]
    sensitivities = result.numbers["lr_sensitivity"]
    assert {f"baseline/w{width}" for width in grid.widths} <= set(sensitivities)
    assert all(value >= 0 for value in sensitivities.values())
    assert "LR sensitivity" in result.summary

    again = ClaimContext(folder, "test", [].append)
    second = Instabilities().run(again)
    assert again.trained == [] and len(again.reused) == len(first.trained)
    assert second.numbers == result.numbers
