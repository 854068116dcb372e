"""Which column holds the step, the loss and the LR, and turning its cells into numbers.

Names are matched exactly, first the user's mapping (``--columns loss=train/loss``), then the usual
names below, which cover plain logs, W&B run-history CSV exports (``_step``, ``train/loss``, ...)
and TensorBoard scalar tags.
"""

from __future__ import annotations

import reprlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from lrlab.errors import LrlabError
from lrlab.runs.records import Records
from lrlab.runs.tables import Table

FIELDS = ("step", "loss", "lr")

USUAL_NAMES: dict[str, tuple[str, ...]] = {
    "step": ("step", "_step", "global_step", "trainer/global_step", "iteration", "iter"),
    "loss": (
        "loss",
        "train/loss",
        "train_loss",
        "training_loss",
        "loss/train",
        "Loss/train",
        "train/lm_loss",
    ),
    "lr": (
        "lr",
        "learning_rate",
        "train/lr",
        "train/learning_rate",
        "trainer/learning_rate",
        "optimizer/lr",
        "lr-AdamW",
        "lr/train",
    ),
}


def parse_column_mapping(text: str | None) -> dict[str, str]:
    """``"step=_step,loss=train/loss"`` -> ``{"step": "_step", "loss": "train/loss"}``."""
    if not text:
        return {}
    mapping: dict[str, str] = {}
    for item in text.split(","):
        field, sep, name = item.partition("=")
        field, name = field.strip(), name.strip()
        if not sep or field not in FIELDS or not name:
            raise LrlabError(
                f"--columns: {item!r} must be FIELD=NAME with FIELD one of {', '.join(FIELDS)}"
            )
        mapping[field] = name
    return mapping


def pick_column(
    field: str, available: Iterable[str], mapping: Mapping[str, str], source: str
) -> str | None:
    """The column for `field`; an explicitly mapped name must exist, usual names are optional."""
    names = list(available)
    if field in mapping:
        if mapping[field] not in names:
            raise LrlabError(
                f"{source}: no column {mapping[field]!r} for {field} (columns: {', '.join(names)})"
            )
        return mapping[field]
    return next((name for name in USUAL_NAMES[field] if name in names), None)


def choose_columns(
    names: Sequence[str], mapping: Mapping[str, str], source: str
) -> dict[str, str | None]:
    """The column of each field (None for an LR column the file does not have); a file without a
    step or a loss column is an error."""
    chosen = {field: pick_column(field, names, mapping, source) for field in FIELDS}
    for field in ("step", "loss"):
        if chosen[field] is None:
            raise LrlabError(
                f"{source}: no {field} column (columns: {', '.join(names)}); "
                f"map one with --columns {field}=NAME"
            )
    return chosen


def _short_repr() -> reprlib.Repr:
    short = reprlib.Repr()  # Python 3.11's Repr takes no keyword arguments
    short.maxstring = short.maxother = short.maxlong = 40
    short.maxlevel, short.maxlist, short.maxdict = 2, 4, 4
    return short


_SHORT = _short_repr()


def show_cell(cell: Any) -> str:
    """A cell for an error message, cut short: an error never echoes more than a line."""
    return _SHORT.repr(cell)


def to_number(cell: Any, table: Table, row: int, column: str) -> float | None:
    """A cell as a float; empty cells are None; anything else that is not a number is an error."""
    if cell is None or (isinstance(cell, str) and not cell.strip()):
        return None
    problem = "not a number"
    if isinstance(cell, int | float | str) and not isinstance(cell, bool):
        try:
            return float(cell)
        except OverflowError:  # an integer beyond the largest float
            problem = "too large for a floating-point number"
        except ValueError:
            pass
    raise LrlabError(
        f"{table.source}, {table.unit} {table.lines[row]}: column {column!r} has "
        f"{show_cell(cell)}, {problem}"
    )


def numeric_column(table: Table, column: str) -> tuple[np.ndarray, np.ndarray]:
    """A column as floats (NaN where a cell is empty) and which cells hold a value.

    Whole columns are converted at once where they are plainly numeric; otherwise cell by cell,
    so that the first cell that is not a number is named with its line."""
    cells = table.columns[column]
    if isinstance(cells, np.ndarray):  # parsed by a reader's fast path: every cell is a number
        return cells, np.ones(cells.size, dtype=bool)
    kinds = set(map(type, cells))
    try:
        if kinds <= {float, int}:
            return np.array(cells, dtype=np.float64), np.ones(len(cells), dtype=bool)
        if kinds == {str}:
            text = np.array(cells)
            present = np.char.str_len(np.char.strip(text)) > 0
            values = np.full(text.size, np.nan)
            values[present] = text[present].astype(np.float64)
            return values, present
    except (ValueError, OverflowError):
        pass  # the cell-by-cell conversion below names the cell at fault
    numbers = [to_number(cell, table, row, column) for row, cell in enumerate(cells)]
    present = np.array([number is not None for number in numbers], dtype=bool)
    values = np.array([np.nan if number is None else number for number in numbers])
    return values, present


def table_records(table: Table, chosen: Mapping[str, str | None]) -> Records:
    """The chosen step/loss/LR columns of a table (`choose_columns`) as `Records`."""
    steps, step_present = numeric_column(table, str(chosen["step"]))
    bad = ~step_present | ~np.isfinite(steps)
    if np.any(bad):
        row = int(np.argmax(bad))
        step = float(steps[row]) if step_present[row] else None
        raise LrlabError(
            f"{table.source}, {table.unit} {table.lines[row]}: column {chosen['step']!r} "
            f"has no finite step ({step!r})"
        )
    loss, loss_present = numeric_column(table, str(chosen["loss"]))
    if chosen["lr"] is None:
        lr, lr_present = np.full(steps.size, np.nan), np.zeros(steps.size, dtype=bool)
    else:
        lr, lr_present = numeric_column(table, chosen["lr"])
    return Records(
        table.source, steps, loss, loss_present, lr, lr_present, table.lines, unit=table.unit
    )
