"""Figures of the claims, in the house style of `lrlab.report.plots` (Agg, the report's type
sizes, narrow panels stacked), saved small: docs/claims.md keeps each under 100 KB."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

from lrlab.atomic import atomic_write_bytes
from lrlab.report.plots import PALETTE, figure_panels, pyplot

# 110 dpi at 6.4 inches: about 700 px wide, sharp in the page, and a PNG of tens of KB.
DPI = 110
COLORS = PALETTE


def panels(
    rows: int, height: float = 2.8, columns: int = 1
) -> contextlib.AbstractContextManager[tuple[Any, Any]]:
    """A figure of `rows` x `columns` panels (`axes` indexed ``[row][column]``), closed if
    drawing fails: the report's `figure_panels`, with the claims' panel height."""
    return figure_panels(rows, columns, height)


def save(figure: Any, path: Path, dpi: int = DPI) -> str:
    """Write `figure` to `path` as PNG (atomically), close it, and return the file's name."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    pyplot().close(figure)
    atomic_write_bytes(path, buffer.getvalue())
    return path.name
