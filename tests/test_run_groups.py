"""The one rule that groups RUN logs for ``lrlab fit --joint`` and ``--size-law``
(`lrlab.cli.run_groups.group_folders`): paths as given, the top directory below the runs' shared
one, or a nearer directory named like a count or by ``--params DIR=COUNT``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lrlab.cli.run_groups import group_folders


def _names(paths: list[Path], nearer: tuple[Path, ...] = ()) -> list[str]:
    return [folder.name for folder in group_folders([str(p) for p in paths], nearer)]


def _before(paths: list[Path]) -> list[str]:
    """How ``--joint`` grouped runs before this rule: each run's own folder, links followed."""
    return [Path(path).resolve().parent.name for path in paths]


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("step,lr,loss\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "layout",
    [
        ["runs/a.csv", "runs2/b.csv"],  # the layouts --joint took before: one folder per group
        ["mpl/25M/cosine.csv", "mpl/25M/wsd.csv", "mpl/100M/cosine.csv", "mpl/100M/wsd.csv"],
        ["logs/small/a.csv", "logs/small/b.csv", "logs/large/a.csv", "logs/mid/c.csv"],
    ],
)
def test_layouts_that_worked_before_keep_their_groups(tmp_path, layout):
    paths = [_touch(tmp_path / name) for name in layout]
    assert _names(paths) == _before(paths)


def test_relative_paths_are_grouped_as_their_absolute_ones(tmp_path, monkeypatch):
    paths = [_touch(tmp_path / "25M" / "a.csv"), _touch(tmp_path / "100M" / "b.csv")]
    monkeypatch.chdir(tmp_path / "25M")
    relative = [os.path.relpath(path) for path in paths]  # a.csv, ../100M/b.csv
    assert group_folders(relative) == [tmp_path / "25M", tmp_path / "100M"]


def test_the_wind_tunnel_s_folder_per_run_is_grouped_by_width(tmp_path):
    """``out/laws_tunnel/d64/<run>/eval.csv``: the width, not the run's own folder."""
    paths = [
        tmp_path / "laws_tunnel" / width / run / "eval.csv"
        for width in ("d64", "d96")
        for run in ("constant_24000", "cosine_24000", "wsdcon_9")
    ]
    assert _names(paths) == ["d64"] * 3 + ["d96"] * 3


def test_links_gathered_into_folders_are_grouped_by_those_folders(tmp_path):
    """Links are taken as given: gathered into one folder, wherever their targets lie, they are
    one group; gathered into two, two groups that cross the targets' folders."""
    targets = [_touch(tmp_path / store / f"{name}.csv") for store in "ab" for name in "xy"]
    links = []
    for target, gathered in zip(targets, ("one", "two", "one", "two"), strict=True):
        link = tmp_path / "gathered" / gathered / f"{target.parent.name}-{target.name}"
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(target)
        links.append(link)
    assert _names(links) == ["one", "two", "one", "two"]
    same = [tmp_path / "gathered" / "one" / link.name for link in links[::2]]
    assert _names(same) == ["one", "one"]


def test_runs_in_one_folder_are_one_group(tmp_path):
    assert _names([tmp_path / "d64" / "a.csv", tmp_path / "d64" / "b.csv"]) == ["d64", "d64"]


def test_a_nearer_folder_named_like_a_count_is_the_group(tmp_path):
    """``exp1/25M``, ``exp1/100M`` and ``exp2/25M``: the sizes, not the experiments (which would
    put 25M and 100M runs in one group)."""
    paths = [tmp_path / "exp1" / "25M" / "a.csv", tmp_path / "exp1" / "100M" / "b.csv"]
    paths.append(tmp_path / "exp2" / "25M" / "seed1" / "c.csv")
    assert _names(paths) == ["25M", "100M", "25M"]


def test_a_folder_named_by_params_is_nearer_than_any_other(tmp_path):
    """``--params DIR=COUNT`` (the size law's) makes a group of DIR's runs, even below a folder
    named like a count; a directory at or above the shared one makes no group."""
    paths = [tmp_path / "25M" / "d32" / "a" / "eval.csv", tmp_path / "25M" / "d48" / "eval.csv"]
    paths.append(tmp_path / "100M" / "c.csv")
    assert _names(paths) == ["25M", "25M", "100M"]
    assert _names(paths, (tmp_path / "25M" / "d32",)) == ["d32", "25M", "100M"]
    assert _names(paths, (tmp_path,)) == ["25M", "25M", "100M"]


def test_a_run_in_the_shared_folder_itself_is_in_that_folder_s_group(tmp_path):
    paths = [tmp_path / "runs" / "a.csv", tmp_path / "runs" / "deep" / "x" / "b.csv"]
    assert _names(paths) == ["runs", "deep"]
