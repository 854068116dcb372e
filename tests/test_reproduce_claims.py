"""Claims 1, 2 and 5 at the test scale (runs of seconds): each trains its runs, draws its
figure and fills every field of its record; the runs several claims need are trained once; and a
rerun trains nothing. No test asserts a paper's conclusion: the verdicts only have to be verdicts,
measured by the claim's stated rule."""

from __future__ import annotations

import json
import shutil

import pytest

from lrlab.reproduce import select
from lrlab.reproduce.claim import VERDICTS
from lrlab.reproduce.runner import reproduce

pytest.importorskip("torch")
pytest.importorskip("matplotlib")

NAMES = ["wsd-vs-cosine", "linear-to-zero", "annealing-laws"]


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    out = tmp_path_factory.mktemp("claims")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LRLAB_CACHE", str(out.parent / "cache"))
        first = {record["name"]: record for record in reproduce(select(NAMES), out, "test")}
        again = {record["name"]: record for record in reproduce(select(NAMES), out, "test")}
    return out, first, again


@pytest.mark.parametrize("name", NAMES)
def test_each_claim_trains_measures_and_draws(ran, name):
    out, first, _ = ran
    record = first[name]
    assert record["verdict"] in VERDICTS
    assert record["summary"] and record["comparison"]
    parts = record["numbers"]["parts"]
    assert parts and all(part["verdict"] in VERDICTS and part["rule"] for part in parts.values())
    for figure in record["figures"]:
        assert (out / figure).read_bytes()[:4] == b"\x89PNG"
    assert record["figures"]
    json.dumps(record, allow_nan=False)  # every number is plain, finite JSON


def test_runs_shared_between_claims_train_once(ran):
    _, first, _ = ran
    # Claim 5 fits and forecasts claim 1's and 2's runs: it finds all five trained.
    assert first["annealing-laws"]["runs_trained"] == 0
    assert first["annealing-laws"]["runs_reused"] == 5
    assert first["wsd-vs-cosine"]["runs_trained"] == 13
    # Claim 2's cosine runs at U and 4U (and the seeds at 4U) are claim 1's.
    assert first["linear-to-zero"]["runs_reused"] == 3


@pytest.mark.parametrize("where", ["same", "copied"])
def test_a_rerun_reuses_every_run_and_measures_the_same(ran, where, monkeypatch):
    out, first, again = ran
    if where == "copied":  # as `cp -r`/`mv` do: claim 1's cooldowns link by the old paths
        copy = shutil.copytree(out, out.parent / f"{out.name}-copied")
        monkeypatch.setenv("LRLAB_CACHE", str(out.parent / "cache"))
        again = {record["name"]: record for record in reproduce(select(NAMES), copy, "test")}
    for name in NAMES:
        assert again[name]["runs_trained"] == 0
        assert (
            again[name]["runs_reused"] == first[name]["runs_trained"] + first[name]["runs_reused"]
        )
        assert again[name]["numbers"] == first[name]["numbers"]
        assert again[name]["verdict"] == first[name]["verdict"]


def test_noise_is_measured_from_seeds(ran):
    _, first, _ = ran
    for name in ("wsd-vs-cosine", "linear-to-zero"):
        noise = first[name]["numbers"]["noise"]
        assert noise["seed_pairs"] == 2
        assert noise["threshold_one_run"] > 0
