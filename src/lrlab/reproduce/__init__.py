"""Reproduce published learning-rate-schedule claims in the wind tunnel: ``lrlab reproduce``.

A claim is one file: every module of this package whose name ends in ``_claim`` is imported (on
the first call of `claims`, so importing this package stays cheap) and every concrete `Claim`
subclass it defines is registered under its `name`, ordered by `number`. Adding a claim is
adding such a file; no other file lists the claims.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from lrlab.errors import LrlabError
from lrlab.reproduce.claim import (
    SCALES,
    Claim,
    ClaimContext,
    ClaimResult,
    TrainedRun,
    TunnelRunSpec,
    Verdict,
)

REGISTRY: dict[str, type[Claim]] = {}
_DISCOVERED: list[bool] = []  # made true once the claim modules are imported


def claims() -> dict[str, type[Claim]]:
    """Every claim by name (those of this package's modules, and any added to `REGISTRY`), in
    the order of their numbers."""
    if not _DISCOVERED:
        found: dict[str, type[Claim]] = {}
        for module in pkgutil.iter_modules(__path__):
            if not module.name.endswith("_claim"):
                continue
            loaded = importlib.import_module(f"{__name__}.{module.name}")
            for _, cls in inspect.getmembers(loaded, inspect.isclass):
                if issubclass(cls, Claim) and not inspect.isabstract(cls):
                    if cls.name in found and found[cls.name] is not cls:
                        raise LrlabError(f"two claims are named {cls.name!r}")
                    found[cls.name] = cls
        REGISTRY.update(found)
        _DISCOVERED.append(True)
    return dict(sorted(REGISTRY.items(), key=lambda item: (item[1].number, item[0])))


def select(names: list[str]) -> list[type[Claim]]:
    """The claims `names` asks for, by name or number, in number order; none or ``all``: every
    claim. An unknown one is an `LrlabError` listing the claims."""
    every = claims()
    if not names or "all" in names:
        return list(every.values())
    by_number = {str(cls.number): cls for cls in every.values()}
    chosen = []
    for name in names:
        cls = every.get(name) or by_number.get(name)
        if cls is None:
            known = ", ".join(f"{cls.number} {key}" for key, cls in every.items())
            raise LrlabError(f"unknown claim {name!r} (claims: {known}, or all)")
        chosen.append(cls)
    return sorted(dict.fromkeys(chosen), key=lambda cls: cls.number)


__all__ = [
    "REGISTRY",
    "SCALES",
    "Claim",
    "ClaimContext",
    "ClaimResult",
    "TrainedRun",
    "TunnelRunSpec",
    "Verdict",
    "claims",
    "select",
]
