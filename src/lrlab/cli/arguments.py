"""Typed command-line values: each function here is an argparse ``type`` that reads one option's
text and checks its range, so that a bad value (a word, a 400-digit number, NaN, a step count no
machine can hold) is one ``lrlab: error: lrlab CMD: argument --flag: ...`` line before any work.

Step counts are bounded by `lrlab.schedules.MAX_STEPS` (10^7: a per-step array of that many
steps is 80 MB, and a forecast builds about a dozen; see there).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from lrlab.errors import brief
from lrlab.schedules import MAX_STEPS, MAX_STEPS_TEXT


def steps(low: int = 1) -> Callable[[str], int]:
    """A whole number of steps from `low` to `MAX_STEPS`."""

    def convert(text: str) -> int:
        value = _whole(text)
        if value is None or not low <= value <= MAX_STEPS:
            raise argparse.ArgumentTypeError(
                f"must be a whole number from {low} to {MAX_STEPS_TEXT} (lrlab's step limit), "
                f"got {brief(text)}"
            )
        return value

    return convert


def steps_list(text: str) -> list[int]:
    """Comma-separated step counts, each from 1 to `MAX_STEPS`."""
    values = [_whole(item) for item in text.split(",")]
    if not values or any(value is None or not 1 <= value <= MAX_STEPS for value in values):
        raise argparse.ArgumentTypeError(
            f"must be comma-separated whole numbers from 1 to {MAX_STEPS_TEXT}, got {brief(text)}"
        )
    return [value for value in values if value is not None]


def count(low: int) -> Callable[[str], int]:
    """A whole number of at least `low` (and at most `MAX_STEPS`, more than any count needs)."""

    def convert(text: str) -> int:
        value = _whole(text)
        if value is None or not low <= value <= MAX_STEPS:
            raise argparse.ArgumentTypeError(
                f"must be a whole number of at least {low}, got {brief(text)}"
            )
        return value

    return convert


def number(
    low: float | None = None,
    high: float | None = None,
    *,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> Callable[[str], float]:
    """A finite number in the interval from `low` to `high` (either may be open or absent)."""
    left = "(-inf" if low is None else ("[" if low_inclusive else "(") + f"{low:g}"
    right = "inf)" if high is None else f"{high:g}" + ("]" if high_inclusive else ")")
    interval = f"{left}, {right}"

    def convert(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        too_low = low is not None and (value < low or (value == low and not low_inclusive))
        too_high = high is not None and (value > high or (value == high and not high_inclusive))
        if not math.isfinite(value) or too_low or too_high:
            raise argparse.ArgumentTypeError(
                f"must be a finite number in {interval}, got {brief(text)}"
            )
        return value

    return convert


def _whole(text: str) -> int | None:
    """`text` as an integer, or None: digits only (an optional sign), at most 30 of them, so that
    a 400-digit number is refused before Python converts it."""
    stripped = text.strip().replace("_", "")
    digits = stripped.lstrip("+-")
    if not digits.isdigit() or len(digits) > 30 or len(stripped) - len(digits) > 1:
        return None
    return int(stripped)
