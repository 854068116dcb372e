"""Progress of a schedule search: how many forecasts it made and the lowest so far."""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class Ticker:
    """Counts a search's forecasts and keeps the lowest; every `every` seconds it hands
    `progress` one line: ``optimize: free-form search (start 2 of 4): 340 forecasts, lowest
    final loss 3.2012, 14 s``. Without `progress` it does nothing."""

    def __init__(self, progress: Callable[[str], None] | None, every: float) -> None:
        self.progress, self.every = progress, every
        self.began = self.last = time.perf_counter()
        self.what, self.count, self.lowest = "search", 0, math.inf

    def stage(self, what: str) -> None:
        """Name what is searched from now on (the line says it)."""
        self.what = what

    def tick(self, loss: float) -> None:
        """One forecast made, of final loss `loss` (inf when the law gives none)."""
        if self.progress is None:
            return
        self.count += 1
        self.lowest = min(self.lowest, loss)
        now = time.perf_counter()
        if now - self.last < self.every:
            return
        self.last = now
        lowest = f"{self.lowest:.4f}" if math.isfinite(self.lowest) else "none yet"
        self.progress(
            f"optimize: {self.what}: {self.count} forecasts, lowest final loss {lowest}, "
            f"{now - self.began:.0f} s"
        )
