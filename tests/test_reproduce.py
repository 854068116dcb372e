"""`lrlab reproduce`'s framework: the claim registry, the runner's files (claims.json, the
self-contained claims.html, in Chromium), its lock and scale check, the CLI, and the training
context (waves of branched runs, shared runs, reuse). The claims themselves are in
test_reproduce_claims.py."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import ClassVar

import pytest

from browser_helpers import chromium, render
from lrlab.cli import main
from lrlab.errors import LrlabError
from lrlab.locks import FolderLock
from lrlab.reproduce import REGISTRY, claims, select, setups
from lrlab.reproduce.claim import (
    Claim,
    ClaimContext,
    ClaimResult,
    TunnelRunSpec,
    _repoint,
    _trained,
    _waves,
)
from lrlab.reproduce.runner import reproduce


class _Drawn(Claim):
    """A claim that trains nothing: it draws a figure and reports one number."""

    name = "drawn"
    number = 99
    title = "A <drawn> claim"
    paper = "Nobody 2026 (arXiv:0000.00000)"
    statement = "Figures are embedded & escaped."
    scales: ClassVar[str] = "none"

    def run(self, context: ClaimContext) -> ClaimResult:
        from lrlab.reproduce.figures import panels, save

        with panels(1) as (figure, axes):
            axes[0][0].plot([0, 1], [1, 0])
            name = save(figure, context.figure_path("drawn"))
        return ClaimResult(
            "inconclusive",
            "nothing measured <here>",
            {"x": 1.5, "parts": {"only": {"verdict": "inconclusive", "rule": "none"}}},
            [name],
            "no paper",
        )


def test_every_claim_module_registers_its_claims_in_number_order():
    found = claims()
    assert {"wsd-vs-cosine", "linear-to-zero", "annealing-laws"} <= set(found)
    numbers = [cls.number for cls in found.values()]
    assert numbers == sorted(numbers)
    for cls in found.values():
        assert cls.title and cls.statement and cls.scales and "arXiv:" in cls.paper


def test_select_takes_names_numbers_and_all():
    assert [cls.name for cls in select(["5", "wsd-vs-cosine"])] == [
        "wsd-vs-cosine",
        "annealing-laws",
    ]
    assert select(["all"]) == list(claims().values()) == select([])
    with pytest.raises(LrlabError, match="unknown claim 'nope'"):
        select(["nope"])


def test_runner_writes_json_and_a_self_contained_page(tmp_path):
    pytest.importorskip("matplotlib")
    records = reproduce([_Drawn], tmp_path, "test")
    data = json.loads((tmp_path / "claims.json").read_text())
    assert data["format"] == "lrlab.claims" and data["claims"] == records
    (record,) = records
    for field in ("name", "number", "title", "paper", "statement", "verdict", "summary"):
        assert (
            record[field]
            == {
                "name": "drawn",
                "number": 99,
                "title": "A <drawn> claim",
                "paper": _Drawn.paper,
                "statement": _Drawn.statement,
                "verdict": "inconclusive",
                "summary": "nothing measured <here>",
            }[field]
        )
    assert record["figures"] == ["drawn/drawn.png"] and record["scale"] == "test"
    assert record["command"].startswith("lrlab reproduce drawn --scale test --out ")
    assert (record["runs_trained"], record["runs_reused"]) == (0, 0)
    page = (tmp_path / "claims.html").read_text()
    assert "data:image/png;base64," in page and "<script" not in page
    assert "A &lt;drawn&gt; claim" in page and "<drawn>" not in page
    assert record["command"] in page


def test_a_second_writer_is_refused(tmp_path):
    errors = []

    def other() -> None:  # the lock is re-entrant in one thread: ask from another
        try:
            reproduce([], tmp_path, "test")
        except LrlabError as error:
            errors.append(str(error))

    with FolderLock(tmp_path, "lrlab reproduce"):
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
    assert errors and f"{tmp_path}: in use" in errors[0]
    assert not (tmp_path / "claims.json").exists()


def test_results_of_another_scale_are_refused_not_mixed(tmp_path):
    pytest.importorskip("matplotlib")
    reproduce([_Drawn], tmp_path, "test")
    with pytest.raises(LrlabError, match="holds test-scale results .* another --out"):
        reproduce([_Drawn], tmp_path, "tiny")


def test_cli_lists_runs_and_reports(tmp_path, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    assert main(["reproduce", "--list"]) == 0
    listed = capsys.readouterr().out
    assert "1  wsd-vs-cosine" in listed and "arXiv:2405.18392" in listed
    monkeypatch.setitem(REGISTRY, "drawn", _Drawn)
    assert main(["reproduce", "drawn", "--out", str(tmp_path / "out")]) == 0
    out, err = capsys.readouterr()
    assert "99. drawn: inconclusive" in out
    assert "claim 1/1 drawn" in err and "claims.html" in err
    assert main(["reproduce", "nope", "--out", str(tmp_path / "x")]) == 2
    assert "lrlab: error: unknown claim 'nope'" in capsys.readouterr().err
    assert main(["reproduce", "--list", "1"]) == 2


def test_branched_runs_train_after_their_parent(tmp_path):
    context = ClaimContext(tmp_path / "c", "test", print)
    parent = TunnelRunSpec("parent", {"train": {}})
    child = TunnelRunSpec(
        "child",
        {"train": {"branch_from": str(context.run_folder("parent") / "checkpoints/x.pt")}},
    )
    shared = TunnelRunSpec("other", {"train": {"init_from": str(tmp_path / "elsewhere")}}, True)
    waves = _waves([child, parent, shared], context.folder_of)
    assert [[spec.name for spec in wave] for wave in waves] == [["parent", "other"], ["child"]]
    loop = TunnelRunSpec("parent", {"train": {"branch_from": str(context.run_folder("child"))}})
    with pytest.raises(LrlabError, match="cycle"):
        _waves([child, loop], context.folder_of)
    assert context.folder_of(shared) == tmp_path / "runs" / "other"


def test_run_names_must_be_slugs():
    with pytest.raises(LrlabError, match="run name"):
        TunnelRunSpec("../escape", {})


def test_context_trains_once_then_reuses(tmp_path, monkeypatch):
    monkeypatch.setenv("LRLAB_CACHE", str(tmp_path / "cache"))
    spec = TunnelRunSpec(
        "run", setups.tunnel("test", "constant(peak=3e-3, warmup=2)", 6), shared=True
    )
    first = ClaimContext(tmp_path / "a", "test", lambda _: None, shared=tmp_path / "runs")
    runs = first.train([spec])
    assert first.trained == ["run"] and first.reused == []
    assert runs["run"].record["status"] == "finished" and runs["run"].eval.steps[-1] == 5
    second = ClaimContext(tmp_path / "b", "test", lambda _: None, shared=tmp_path / "runs")
    again = second.train([spec])
    assert second.trained == [] and second.reused == ["run"]
    assert again["run"].final_loss == runs["run"].final_loss


def test_a_run_diverged_before_its_first_evaluation_is_a_diverged_run(tmp_path):
    # NaN before the first evaluation: the tunnel leaves eval.csv with its header only.
    folder = tmp_path / "runs" / "blown"
    folder.mkdir(parents=True)
    (folder / "record.json").write_text(json.dumps({"status": "diverged", "steps_done": 3}))
    (folder / "eval.csv").write_text("step,lr,loss\n")
    run = _trained("blown", folder)
    assert run.diverged and run.curve is None
    with pytest.raises(LrlabError, match="'blown' diverged before its first evaluation"):
        _ = run.final_loss
    # A finished run with no evaluations is not passed off as diverged: reading it fails.
    (folder / "record.json").write_text(json.dumps({"status": "finished", "steps_done": 3}))
    with pytest.raises(LrlabError, match="eval.csv"):
        _trained("blown", folder)


@pytest.mark.skipif(chromium() is None, reason="Chromium is not installed")
@pytest.mark.parametrize("width", [420, 1280])
def test_page_fits_the_window_in_chromium(tmp_path, width):
    pytest.importorskip("matplotlib")
    reproduce([_Drawn], tmp_path, "test")
    page = (tmp_path / "claims.html").read_text(encoding="utf-8")
    shot = tmp_path / f"claims-{width}px.png"
    layout = render(page, width, tmp_path / f"browser-{width}", screenshot=shot)
    assert layout.viewport == width
    assert layout.width <= width, f"the page is {layout.width} px wide in {width} px; see {shot}"
    assert layout.wrapped_numbers == 0, f"numbers broken over two lines; see {shot}"


def test_a_claim_result_refuses_an_unknown_verdict():
    with pytest.raises(LrlabError, match="verdict 'maybe'"):
        ClaimResult("maybe", "", {}, [])  # type: ignore[arg-type]


def test_figure_paths_are_in_the_claims_folder(tmp_path):
    context = ClaimContext(tmp_path / "claim", "test", print)
    assert context.figure_path("f") == Path(tmp_path / "claim" / "f.png")


def test_only_a_moved_folders_links_are_re_pointed(tmp_path):
    # A run trained in /old/claims, branched from a run there; the folder now lies in tmp_path.
    root = tmp_path / "claims"
    folder = root / "runs" / "child"
    folder.mkdir(parents=True)
    stored = {
        "train": {"branch_from": "/old/claims/runs/stable/checkpoints/step_4.pt", "steps": 8},
        "out": "/old/claims/runs/child",
    }
    (folder / "config.json").write_text(json.dumps(stored))

    def spec(parent: str) -> dict:
        return {"train": {"branch_from": str(root / "runs" / parent / "checkpoints/step_4.pt")}}

    # Another parent under the new folder is another run: left for training to refuse.
    assert not _repoint(spec("other"), folder, root)
    assert json.loads((folder / "config.json").read_text()) == stored
    assert _repoint(spec("stable"), folder, root)
    moved = json.loads((folder / "config.json").read_text())
    assert moved["train"] == {**spec("stable")["train"], "steps": 8}
    assert moved["out"] == str(folder)
    assert not _repoint(spec("stable"), folder, root)  # nothing left to re-point
