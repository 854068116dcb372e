"""`read_run`: any supported log file (or TensorBoard log directory) to a `Run`.

Formats by extension: ``.csv`` (also W&B run-history exports, with ``_step``/``train/loss``
columns), ``.tsv``, ``.jsonl``, ``.parquet`` (needs pyarrow), and TensorBoard event files
(``events.out.tfevents.*``, or a directory of them, read in name order so resumed runs append).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lrlab.errors import LrlabError
from lrlab.mapping_file import read_mapping
from lrlab.runs.columns import choose_columns, pick_column, table_records
from lrlab.runs.model import Run, RunWarning
from lrlab.runs.per_step_lr import logged_lr_and_warmup, lr_from_schedule
from lrlab.runs.records import Records, clean
from lrlab.runs.tables import Chooser, Table, read_delimited, read_jsonl, read_parquet
from lrlab.runs.tensorboard import event_files, read_scalars
from lrlab.runs.warmup import schedule_warmup
from lrlab.schedules import MAX_STEPS

# Each reader takes the path and a `Chooser` of the columns to keep.
TABLE_READERS = {
    ".csv": lambda path, choose: read_delimited(path, ",", choose),
    ".tsv": lambda path, choose: read_delimited(path, "\t", choose),
    ".jsonl": read_jsonl,
    ".ndjson": read_jsonl,
    ".parquet": read_parquet,
}
SIDECAR_SUFFIX = ".schedule.json"
SCHEDULE_MISMATCH_TOLERANCE = 0.01


def is_tensorboard(path: Path) -> bool:
    """An event file or a directory (TensorBoard log dirs hold event files)."""
    return path.is_dir() or "tfevents" in path.name


def is_log_path(path: str | Path) -> bool:
    """Whether `read_run` takes `path` for a log, by its suffix or as TensorBoard (so that a
    command can tell a log from a schedule spec given in the same place)."""
    path = Path(path)
    return path.suffix.lower() in TABLE_READERS or is_tensorboard(path)


def tensorboard_records(path: Path, mapping: Mapping[str, str]) -> Records:
    """Scalars of the loss and LR tags as records; ``record N`` locates each value."""
    scalars = [row for file in event_files(path) for row in read_scalars(file)]
    tags = list(dict.fromkeys(tag for _, _, tag, _ in scalars))
    if not tags:
        raise LrlabError(f"{path}: no scalar values in the event file(s)")
    loss_tag = pick_column("loss", tags, mapping, str(path))
    lr_tag = pick_column("lr", tags, mapping, str(path))
    if loss_tag is None:
        raise LrlabError(
            f"{path}: no loss tag (tags: {', '.join(tags)}); map one with --columns loss=TAG"
        )
    rows = [
        (number, float(step), value if tag == loss_tag else None, value if tag == lr_tag else None)
        for number, step, tag, value in scalars
        if tag in (loss_tag, lr_tag)
    ]
    return Records.from_rows(str(path), rows, unit="record")


def load_table(path: Path, choose: Chooser) -> Table:
    """Read a tabular log by its extension, keeping the columns `choose` picks."""
    reader = TABLE_READERS.get(path.suffix.lower())
    if reader is None:
        known = ", ".join(sorted(TABLE_READERS))
        raise LrlabError(
            f"{path}: unknown log format {path.suffix!r} (known: {known}, TensorBoard event files)"
        )
    return reader(path, choose)


def sidecar_schedule(path: Path) -> tuple[dict[str, Any], Path] | None:
    """The schedule spec in ``<run>.schedule.json`` (or ``<run file>.schedule.json``) and that
    file, if there is one."""
    candidates = [Path(str(path) + SIDECAR_SUFFIX)]
    if path.suffix:
        candidates.insert(0, path.with_suffix(SIDECAR_SUFFIX))
    for candidate in candidates:
        if candidate.is_file():
            spec = read_mapping(candidate, "schedule sidecar")
            return spec, candidate
    return None


def _schedule_lr(spec: Any, last_step: int, origin: str) -> np.ndarray:
    """Per-step LR from a spec; errors in the spec name `origin` (the sidecar or the run)."""
    try:
        return lr_from_schedule(spec, last_step, origin)
    except LrlabError as error:
        message = str(error)
        raise LrlabError(
            message if message.startswith(origin) else f"{origin}: {message}"
        ) from None


def _warn_if_schedule_disagrees(
    lr: np.ndarray, lr_steps: np.ndarray, logged: np.ndarray, source: str
) -> None:
    inside = lr_steps < lr.size
    if not np.any(inside):
        return
    expected = lr[lr_steps[inside]]
    difference = np.abs(expected - logged[inside]) / np.maximum(np.abs(expected), 1e-30)
    worst = int(np.argmax(difference))
    if difference[worst] > SCHEDULE_MISMATCH_TOLERANCE:
        warnings.warn(
            f"{source}: the logged lr differs from the schedule by {difference[worst]:.1%} at step "
            f"{lr_steps[inside][worst]}; the schedule is used",
            RunWarning,
            stacklevel=3,
        )


def read_run(
    path: str | Path,
    *,
    schedule: Any = None,
    columns: Mapping[str, str] | None = None,
    name: str | None = None,
    warmup: int | None = None,
) -> Run:
    """Read a run from a log file and build its per-step LR.

    `schedule` (a `Schedule`, spec dict or spec string) gives the LR at every step; without it a
    sidecar ``<run>.schedule.json`` is used, else the logged ``lr`` values are interpolated (see
    `lrlab.runs.per_step_lr`). `columns` maps ``step``/``loss``/``lr`` to the file's column (or tag)
    names. Resumed runs may log overlapping segments: the last value per step wins.

    The run's warmup, and where it was found, go in its metadata (``warmup``, ``warmup_from``):
    `warmup` if given (it also shapes an interpolated LR before the peak), else from the schedule
    or the logged LR, None where the log starts after the warmup (`lrlab.runs.warmup`).
    """
    path = Path(path)
    if not path.exists():
        raise LrlabError(f"{path}: no such file")
    whole = isinstance(warmup, int | np.integer) and not isinstance(warmup, bool)
    if warmup is not None and not (whole and 0 <= warmup <= MAX_STEPS):
        raise LrlabError(f"{path}: warmup={warmup!r} must be a whole number of steps >= 0")
    mapping = dict(columns or {})
    chosen: dict[str, str | None] = {}
    if is_tensorboard(path):
        records, log_format = tensorboard_records(path, mapping), "tensorboard"
    else:

        def choose(names: Sequence[str]) -> list[str]:
            chosen.update(choose_columns(names, mapping, str(path)))
            return list(dict.fromkeys(name for name in chosen.values() if name is not None))

        records = table_records(load_table(path, choose), chosen)
        log_format = "wandb-csv" if chosen["step"] == "_step" else path.suffix.lower().lstrip(".")
    log = clean(records)
    last_step = int(log.steps[-1])
    spec, origin = schedule, str(path)
    if spec is None and (sidecar := sidecar_schedule(path)) is not None:
        spec, origin = sidecar[0], str(sidecar[1])
    # The loss column's name tells which loss it is (training or validation) on report axes.
    metadata: dict[str, Any] = {"format": log_format, "loss_column": chosen.get("loss")}
    if spec is not None:
        lr = _schedule_lr(spec, last_step, origin)
        _warn_if_schedule_disagrees(lr, log.lr_steps, log.lr, str(path))
        metadata["lr_source"] = "schedule"
        metadata["schedule"] = spec if isinstance(spec, str | dict) else spec.to_spec()
        found = schedule_warmup(lr, warmup, str(path))
    else:
        lr, found = logged_lr_and_warmup(log.lr_steps, log.lr, last_step, str(path), warmup)
        metadata["lr_source"] = "interpolated"
    metadata.update(found.metadata())
    run_name = name or (path.name if path.is_dir() else path.stem)
    return Run(run_name, lr, log.steps, log.loss, source=str(path), metadata=metadata)
