"""Which RUN logs go together: the one rule by which ``lrlab fit --joint``, ``lrlab fit
--size-law`` and ``lrlab study --size-law`` group runs (one group per model size, say).

A run's group is a directory on its path as given (made absolute, symbolic links not followed,
so logs linked into ``25M/`` are 25M's wherever they point), below the directory the runs share:
the nearest one named by ``--params DIR=COUNT`` (the size law's), else the nearest one named
like a parameter count (``25M``, ``124m``, ``1.3B``), else the top one below the shared
directory. So ``mpl/25M/cosine.csv`` is in group ``25M``, the wind tunnel's
``out/laws_tunnel/d64/<run>/eval.csv`` in ``d64`` when runs of ``d96`` are given too, and runs
that all lie in one directory are one group. Names below the shared directory only: those are
what set the runs apart (a directory above them all, ``/data/7B/...``, says nothing about which
run is which size)."""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence
from pathlib import Path

from lrlab.laws.sizes import count_in_name

#: How the groups are formed, in the words the errors use.
GROUPING = (
    "runs are grouped by the top directory below the one they all share, or a nearer one named "
    "like a parameter count, such as 25M"
)


def group_folders(paths: Sequence[str], nearer: Collection[Path] = ()) -> list[Path]:
    """The group directory of the run at each of `paths` (see the module's docstring);
    `nearer` are further directories (absolute) that make a group of the runs below them, as
    ``--params DIR=COUNT`` does, and win over names that are counts."""
    folders = [Path(os.path.abspath(path)).parent for path in paths]
    common = Path(os.path.commonpath(folders))
    return [_group_folder(folder, common, nearer) for folder in folders]


def _group_folder(folder: Path, common: Path, nearer: Collection[Path]) -> Path:
    below = [d for d in (folder, *folder.parents) if common in d.parents]  # nearest first
    if not below:  # the run lies in the shared directory itself
        return folder
    for directory in below:
        if directory in nearer:
            return directory
    for directory in below:
        if count_in_name(directory.name) is not None:
            return directory
    return below[-1]
