"""Run claims into an output folder: train (or reuse) their runs, measure, and write
``DIR/claims.json`` and ``DIR/claims.html``.

The folder is locked while claims run there (`lrlab.locks`): a second ``lrlab reproduce`` on it
is refused. Each claim works in ``DIR/<claim name>/``; runs several claims need live in
``DIR/runs/`` and train once. Running again reuses every finished run, resumes interrupted ones
and measures afresh (seconds, when nothing is left to train). A folder keeps one scale: results
of another scale are refused, not mixed.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lrlab import __version__
from lrlab.atomic import atomic_write_text
from lrlab.errors import LrlabError
from lrlab.locks import FolderLock
from lrlab.reproduce.claim import SCALES, Claim, ClaimContext

if TYPE_CHECKING:
    from lrlab.tunnel.pool import Backend

RESULTS = "claims.json"
PAGE = "claims.html"
FORMAT = "lrlab.claims"


def _silent(_: str) -> None:
    """No progress."""


def read_records(out: Path) -> list[dict[str, Any]]:
    """The claim records of ``out/claims.json`` (none if it is missing)."""
    path = out / RESULTS
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise LrlabError(f"{path}: not JSON ({error}); remove it to start afresh") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise LrlabError(f"{path}: not an lrlab claims file")
    return list(data.get("claims") or [])


def command_for(name: str, out: Path, scale: str) -> str:
    """The command that reproduces claim `name` into `out` at `scale`."""
    return shlex.join(["lrlab", "reproduce", name, "--scale", scale, "--out", str(out)])


def reproduce(
    chosen: Sequence[type[Claim]],
    out: str | Path,
    scale: str = "tiny",
    *,
    backend: Backend | None = None,
    progress: Callable[[str], None] = _silent,
) -> list[dict[str, Any]]:
    """Run the `chosen` claims at `scale` in folder `out`, and return every record of
    ``out/claims.json`` (the claims run now, and those of earlier calls kept); the page
    ``out/claims.html`` shows them. Both files are rewritten after each claim."""
    if scale not in SCALES:
        raise LrlabError(f"scale {scale!r}: choose one of {', '.join(SCALES)}")
    out = Path(out)
    with FolderLock(out, "lrlab reproduce"):
        records = {record["name"]: record for record in read_records(out)}
        for record in records.values():
            if record.get("scale") != scale:
                raise LrlabError(
                    f"{out}: holds {record.get('scale')}-scale results (claim "
                    f"{record['name']}); use another --out for the {scale} scale"
                )
        for index, cls in enumerate(chosen, 1):
            counter = f"claim {index}/{len(chosen)} {cls.name}"

            def say(message: str, counter: str = counter) -> None:
                progress(f"{counter}: {message}")

            say(cls.title)
            context = ClaimContext(out / cls.name, scale, say, backend=backend, shared=out / "runs")
            context.folder.mkdir(parents=True, exist_ok=True)
            began = time.monotonic()
            result = cls().run(context)
            seconds = time.monotonic() - began
            missing = [name for name in result.figures if not (context.folder / name).is_file()]
            if missing:
                raise LrlabError(f"{cls.name}: its figure {missing[0]} was not written")
            records[cls.name] = {
                "name": cls.name,
                "number": cls.number,
                "title": cls.title,
                "paper": cls.paper,
                "statement": cls.statement,
                "scales": cls.scales,
                "verdict": result.verdict,
                "summary": result.summary,
                "numbers": result.numbers,
                "figures": [f"{cls.name}/{name}" for name in result.figures],
                "comparison": result.comparison,
                "scale": scale,
                "command": command_for(cls.name, out, scale),
                "seconds": round(seconds, 1),
                "runs_trained": len(context.trained),
                "runs_reused": len(context.reused),
                "train_cpu_seconds": round(context.cpu_seconds, 1),
                "lrlab": __version__,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            say(
                f"{result.verdict}: {result.summary} ({seconds:.0f} s; runs trained "
                f"{len(context.trained)}, reused {len(context.reused)})"
            )
            _write(out, records)
        return sorted(records.values(), key=lambda record: record["number"])


def _write(out: Path, records: dict[str, dict[str, Any]]) -> None:
    """``claims.json`` and ``claims.html`` of `records`, each written whole or not at all."""
    from lrlab.reproduce.report import render_page

    ordered = sorted(records.values(), key=lambda record: record["number"])
    data = {"format": FORMAT, "version": 1, "claims": ordered}
    atomic_write_text(out / RESULTS, json.dumps(data, indent=2, allow_nan=False) + "\n")
    atomic_write_text(out / PAGE, render_page(ordered, out))
