"""Run names that tell runs apart: two logs of one file name (``25M/constant_24000.csv`` and
``100M/constant_24000.csv``) would otherwise be keyed, scored and tabled as one run."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

from lrlab.errors import LrlabError
from lrlab.runs.model import Run


def unique_run_names(runs: Sequence[Run]) -> list[Run]:
    """`runs`, those sharing a name renamed by the end of their source path: ``25M/constant``
    and ``100M/constant`` for ``logs/25M/constant.csv`` and ``logs/100M/constant.csv``
    (the study keys runs by name, and would otherwise score one for both). One file given
    twice, or runs of one name without a source to tell them apart, is an `LrlabError`."""
    names = [run.name for run in runs]
    clashes = {name for name in names if names.count(name) > 1}
    if not clashes:
        return list(runs)
    for i, run in enumerate(runs):
        for j in range(i):
            if run.name != runs[j].name:
                continue
            if not run.source or not runs[j].source:
                raise LrlabError(
                    f"two runs are named {run.name!r}, without a source to tell them apart; "
                    "rename one"
                )
            if os.path.realpath(run.source) == os.path.realpath(runs[j].source):
                raise LrlabError(f"run {run.source} is given twice; give each run once")
    paths = [Path(run.source).with_suffix("").parts for run in runs]
    renamed = list(names)
    depth = 2  # the file's name and its folder's, then more folders until the names differ
    while len(set(renamed)) < len(renamed):
        if depth > max(len(parts) for parts in paths):  # they differ in the suffix: name them so
            renamed = [run.source if run.name in clashes else run.name for run in runs]
            if len(set(renamed)) < len(renamed):
                raise LrlabError(f"runs {min(clashes)!r}: cannot tell apart runs of one name")
            break
        renamed = [
            "/".join(parts[-depth:]) if run.name in clashes else run.name
            for run, parts in zip(runs, paths, strict=True)
        ]
        depth += 1
    return [dataclasses.replace(run, name=name) for run, name in zip(runs, renamed, strict=True)]
