"""The laws by name: `REGISTRY`, `LAW_NAMES`, `DEFAULT_LAW`, `DEFAULT_SINGLE_LAW`, `get_law`,
`fit`, `load_law`.

A law is one file: every module of this package whose name ends in ``_law`` (``power_law.py``,
``lrlab_law.py``, ...) is imported here, and every concrete `Law` subclass it defines is
registered under its `name`. Adding a law is adding such a file; no other file lists the laws.
A law defined outside the package (in a user's own code) is added with `register`.

Importing the law modules stays cheap (numpy and scipy; no torch or matplotlib), so listing the
laws costs little.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import math
import pkgutil
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from lrlab.errors import LrlabError, brief
from lrlab.laws.base import FORMAT, FitWarning, Law, Progress
from lrlab.mapping_file import read_mapping
from lrlab.runs import Run, read_run
from lrlab.settings import from_mapping

# The laws of the paper trail first, in order of complexity, then any other law by name.
_FIRST = ("power", "momentum", "mpl", "lrlab")
# The default law of a fit: the average of the laws with an annealing term (`auto`), chosen on
# training-only folds and the wind tunnel, then scored once on the held-out scoreboard
# (docs/laws.md, "Eighth round").
DEFAULT_LAW = "auto"
# The default where one law's own form is needed: a joint or size-aware fit stacks one law's
# least-squares problems, and a live forecast holds or falls back on one law's parameters.
DEFAULT_SINGLE_LAW = "lrlab"
REGISTRY: dict[str, type[Law]] = {}


def register(cls: type[Law]) -> type[Law]:
    """Make the law class `cls` reachable by its `name` (`get_law`, `load_law`, ``lrlab
    laws``); the law files of this package need not call it."""
    if not (inspect.isclass(cls) and issubclass(cls, Law)) or inspect.isabstract(cls):
        raise LrlabError(f"register: {cls!r} is not a law class (a concrete subclass of Law)")
    taken = REGISTRY.get(cls.name)
    if taken is not None and taken is not cls:
        raise LrlabError(
            f"law name {cls.name!r} of {cls.__module__}.{cls.__qualname__} is taken by "
            f"{taken.__module__}.{taken.__qualname__}"
        )
    REGISTRY[cls.name] = cls
    return cls


def discover(directory: Path, package: str) -> None:
    """Import every ``*_law`` module of the package `package` (whose files are in `directory`)
    and register the concrete `Law` subclasses each defines."""
    for info in sorted(pkgutil.iter_modules([str(directory)]), key=lambda info: info.name):
        if not info.name.endswith("_law"):
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        for value in vars(module).values():
            defined_here = inspect.isclass(value) and value.__module__ == module.__name__
            if defined_here and issubclass(value, Law) and not inspect.isabstract(value):
                register(value)


def _put_in_order() -> tuple[str, ...]:
    """Reorder `REGISTRY` as documented (the laws of `_FIRST`, then the others by name), so that
    every listing of the laws agrees; return the names."""
    rank = {name: index for index, name in enumerate(_FIRST)}
    names = sorted(REGISTRY, key=lambda name: (rank.get(name, len(rank)), name))
    for name in names:
        REGISTRY[name] = REGISTRY.pop(name)
    return tuple(names)


discover(Path(__file__).parent, __package__)
#: The laws of this package: power, momentum, mpl, lrlab, then any others by name (a law added
#: later with `register` is in `REGISTRY` only).
LAW_NAMES = _put_in_order()


def get_law(name: str, **params: Any) -> Law:
    """A new, unfitted law by registered name, built from keyword parameters (checked: an unknown
    one is an error that names the law's parameters)."""
    if name not in REGISTRY:
        raise LrlabError(f"unknown law {name!r} (laws: {', '.join(REGISTRY)})")
    return from_mapping(REGISTRY[name], params, f"law {name!r}")


def fit(
    runs: Iterable[Run | str | Path],
    law: str = DEFAULT_LAW,
    *,
    progress: Progress | None = None,
    **params: Any,
) -> Law:
    """Fit the law named `law` (built with the keyword `params`) to `runs`: `Run` objects or log
    paths, read with `lrlab.runs.read_run` (per-step LR from a sidecar or the logged ``lr``).
    The Python form of ``lrlab fit``: ``fit(["constant.csv", "cosine.csv"]).save("fit.json")``."""
    read = [run if isinstance(run, Run) else read_run(run) for run in runs]
    fitted = get_law(law, **params).fit(read, progress=progress)
    warn_if_unpinned(fitted)
    return fitted


# Fewer logged points than this per free parameter leave a fit's errors themselves unknown.
POINTS_PER_PARAMETER = 3


def pinned_down(law: Law) -> bool:
    """Whether a fit's points determine the law: fewer than a third of its free parameters, or
    fewer than two, have errors larger than their values (``fit_info_["unpinned"]``). One such
    parameter is common in a sound fit; a third of them means the runs lack what the law needs."""
    free = len(law.param_names) - len(law.fixed_parameters())
    return len(law.fit_info_.get("unpinned", [])) < max(2, math.ceil(free / 3))


def warn_if_unpinned(law: Law) -> None:
    """Warn (`FitWarning`) where a fit's points cannot pin the law down, naming the laws with
    fewer parameters: fewer than `POINTS_PER_PARAMETER` points per free parameter (nine
    parameters fitted to ten points), or a third or more of the free parameters, and at least
    two, with errors larger than their values (``fit_info_["unpinned"]``). One such parameter is
    common in a sound fit (the multi-power laws' saturation constant ``C`` often is one); a
    third of them means the runs lack what the law needs (a run without an LR decay tells
    nothing of the decay's benefit), and its forecasts rest on values the runs do not support.
    For an average of laws (``auto``), each member is checked in turn."""
    members = getattr(law, "members_", None)
    if members is not None:  # an average (`auto`): what its members' points leave undetermined
        for member in members.values():
            warn_if_unpinned(member)
        return
    points = int(law.fit_info_["points"])
    free = len(law.param_names) - len(law.fixed_parameters())
    reasons = []
    if points < POINTS_PER_PARAMETER * free:
        reasons.append(f"fewer than {POINTS_PER_PARAMETER} points per parameter")
    if not pinned_down(law):
        unpinned = law.fit_info_["unpinned"]
        reasons.append(f"{', '.join(unpinned)} have errors larger than their values")
    if not reasons:
        return
    smaller = sorted(
        (
            (name, len(cls.param_names))
            for name, cls in REGISTRY.items()
            if len(cls.param_names) < len(law.param_names) and not _averages(cls)
        ),
        key=lambda item: -item[1],  # the closest to the law first
    )
    named = [f"{name} ({count})" for name, count in smaller]
    hint = ""
    if named:
        named[0] = f"{smaller[0][0]} ({smaller[0][1]} parameters)"
        choices = named[0] if len(named) == 1 else f"{', '.join(named[:-1])} or {named[-1]}"
        hint = f"; a law with fewer parameters may forecast better: --law {choices}"
    warnings.warn(
        f"law {law.name!r}: {points} points do not pin down its {free} free parameters "
        f"({'; '.join(reasons)}){hint}",
        FitWarning,
        stacklevel=2,
    )


def _averages(cls: type[Law]) -> bool:
    """Whether the law class averages other laws (``auto``: its parameters are their weights, not
    a form with fewer parameters to suggest)."""
    return any(field.name == "members" for field in dataclasses.fields(cls))


# Fit files of other formats, by their "format" field: the function that reads one (its data and
# the file's name for errors), added with `register_format`.
FORMATS: dict[str, Callable[[dict[str, Any], str], Any]] = {}


def register_format(name: str, loader: Callable[[dict[str, Any], str], Any]) -> None:
    """Make `load_law` read fit files whose "format" field is `name` with `loader`."""
    FORMATS[name] = loader


def load_law(path: str | Path) -> Any:
    """Read a saved law fit: a `Law`, looked up by the name stored in the file, or an object of a
    registered format (`register_format`: a size-aware fit, `lrlab.laws.sizes.SizeLaw`)."""
    path = Path(path)
    data = read_mapping(path, "law fit")
    kind = data.get("format")
    if isinstance(kind, str) and kind in FORMATS:
        return FORMATS[kind](data, str(path))
    if data.get("format") != FORMAT:
        raise LrlabError(f"{path}: not an lrlab law fit (field 'format' is not {FORMAT!r})")
    name = data.get("law")
    if not isinstance(name, str) or name not in REGISTRY:
        raise LrlabError(
            f"{path}: field 'law' names unknown law {brief(name)} (laws: {', '.join(REGISTRY)})"
        )
    return REGISTRY[name].from_dict(data, source=str(path))
