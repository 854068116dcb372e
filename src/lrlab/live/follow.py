"""Follow a log that a running job is writing, with the readers of `lrlab.runs`.

`LogFollower.read()` returns the run as logged so far whenever the log has changed since the last
read (None otherwise), read with `lrlab.runs.read_run` and its rules (last value per step wins, so
a resumed run that re-logs earlier steps replaces them; NaN losses are dropped and said).

- A table (CSV, TSV, JSONL, W&B export): only its complete lines are read - up to the last
  newline - so a line the writer is half-way through is left for the next read.
- A file rewritten in place (shorter, or a new file under the same name) is read again from its
  start. When the new file starts at a later step than the old one (a rotated log: the earlier
  rows moved away), the old file's rows are kept before the new ones.
- A TensorBoard log directory or event file: its records are CRC-checked, a cut-off last record is
  left for the next read, and the files a resumed run adds are read in order.
- A wind-tunnel run folder: its ``eval.csv`` (or ``train.csv``, with ``metric="train"``), with
  the schedule of its sidecar and the run's total steps from its ``config.json``.

The schedule is the one given, else the log's sidecar ``<log>.schedule.json``, else the logged LR.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

from lrlab.errors import LrlabError
from lrlab.runs import Run, RunWarning, read_run
from lrlab.runs.read import TABLE_READERS, is_tensorboard, sidecar_schedule

_HEADER_FORMATS = (".csv", ".tsv")  # tables whose first line is a header
METRICS = ("eval", "train")


def tunnel_log(folder: Path, metric: str) -> tuple[Path, int | None] | None:
    """A wind-tunnel run folder's log of `metric` and the run's total steps (from
    ``config.json``); None if `folder` is not a run folder."""
    if not (folder / "config.json").is_file() and not (folder / f"{metric}.csv").is_file():
        return None
    total = None
    config = folder / "config.json"
    if config.is_file():
        try:
            total = int(json.loads(config.read_text(encoding="utf-8"))["train"]["steps"])
        except (ValueError, KeyError, TypeError):
            raise LrlabError(f"{config}: no train.steps (not a wind-tunnel run config?)") from None
    return folder / f"{metric}.csv", total


class LogFollower:
    """Read a growing log again whenever it changes (module docstring)."""

    def __init__(
        self,
        path: str | Path,
        *,
        schedule: Any = None,
        columns: Mapping[str, str] | None = None,
        metric: str = "eval",
    ) -> None:
        if metric not in METRICS:
            raise LrlabError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
        self.path = Path(path)
        self.schedule = schedule
        self.columns = dict(columns or {})
        self.metric = metric
        self.notes: list[str] = []
        self.total_steps: int | None = None
        self._log: Path | None = None
        self._signature: Any = None
        self._identity: tuple[int, int] | None = None
        self._kept = b""  # the complete lines of a log that was rotated away
        self._kept_first_step: int | None = None
        self._last: Run | None = None
        self._last_size = 0
        self._last_text = b""
        self._rotated_note: str | None = None
        self._scratch = Path(tempfile.mkdtemp(prefix="lrlab-watch-"))

    def close(self) -> None:
        """Remove the scratch copies."""
        shutil.rmtree(self._scratch, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def log(self) -> Path:
        """The file (or TensorBoard directory) read: the path, or a run folder's log."""
        return self._log or self.path

    def exists(self) -> bool:
        """Whether the log is there yet (a job that has not started has not written it)."""
        self._resolve()
        return self._log is not None and self._log.exists()

    def _resolve(self) -> None:
        if self._log is not None:
            return
        if self.path.is_dir():
            found = tunnel_log(self.path, self.metric)
            if found is not None:
                self._log, self.total_steps = found
                return
        if self.path.exists():
            self._log = self.path
        elif self.path.suffix == "" and not self.path.name.startswith("events"):
            return  # maybe a run folder or a TensorBoard directory, not created yet
        else:
            self._log = self.path

    def schedule_spec(self) -> Any:
        """The schedule given, else the log's sidecar spec, else None (the logged LR)."""
        if self.schedule is not None:
            return self.schedule
        found = sidecar_schedule(self.log)
        return None if found is None else found[0]

    def read(self) -> Run | None:
        """The run logged so far if the log changed since the last read (and has a complete
        data line), else None. `notes` then holds what reading it had to say."""
        if not self.exists():
            return None
        signature = self._current_signature()
        if signature == self._signature:
            return None
        self._signature = signature
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RunWarning)
            if is_tensorboard(self.log) or self.log.suffix.lower() not in TABLE_READERS:
                run = self._read(self.log)
            elif self.log.suffix.lower() == ".parquet":
                run = self._read(self.log)  # written whole by its writer, not line by line
            else:
                run = self._read_table()
        notes = [str(w.message) for w in caught if "is cut off" not in str(w.message)]
        if self._rotated_note and self._kept:
            notes.append(self._rotated_note)
        # The copy read stands for the user's log: name it as they gave it.
        copy, folder = str(self._scratch / self.log.name), str(self._scratch)
        self.notes = [
            note.replace(copy, str(self.log)).replace(folder, str(self.log.parent))
            for note in notes
        ]
        if run is not None:
            self._last = run
        return run

    def _current_signature(self) -> Any:
        log = self.log
        try:
            if log.is_dir():
                files = sorted(p for p in log.iterdir() if "tfevents" in p.name)
                return tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files)
            status = log.stat()
        except FileNotFoundError:
            return None
        return (status.st_ino, status.st_dev, status.st_size, status.st_mtime_ns)

    def _read(self, path: Path, source: Path | None = None) -> Run:
        source = source or self.log
        try:
            run = read_run(path, schedule=self.schedule_spec(), columns=self.columns)
        except LrlabError as error:
            raise LrlabError(str(error).replace(str(path), str(source))) from None
        name = source.name if source.is_dir() else source.stem
        return Run(name, run.lr, run.steps, run.loss, source=str(source), metadata=run.metadata)

    def _read_table(self) -> Run | None:
        try:
            status = self.log.stat()
            data = self.log.read_bytes()
        except FileNotFoundError:
            return None
        complete = data[: data.rfind(b"\n") + 1]
        identity = (status.st_dev, status.st_ino)
        replaced = self._identity is not None and identity != self._identity
        self._identity = identity
        if self._last is not None and (replaced or len(data) < self._last_size):
            # Rewritten or rotated: a later first step means the earlier rows moved away.
            if self._kept:
                self._kept += _without_header(self._last_text, self.log.suffix)
            else:
                self._kept = self._last_text
            self._kept_first_step = int(self._last.steps[0])
        self._last_size = len(data)
        self._last_text = complete
        if not _has_data(complete, self.log.suffix.lower()):
            return None
        if self._kept and self._kept_first_step is not None:
            # Where the new file starts decides what the run is; what reading it alone says (an
            # LR that seems to start at its first step) is not said of the run read.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RunWarning)
                first = int(self._parse(complete).steps[0])
            if first <= self._kept_first_step:
                self._kept = b""  # the new file has the whole history: a rewrite
            else:
                self._rotated_note = (
                    f"{self.log} was rotated: the rows before step {first} are kept from the "
                    "earlier file"
                )
                return self._parse(self._kept + _without_header(complete, self.log.suffix))
        return self._parse(complete)

    def _parse(self, text: bytes) -> Run:
        copy = self._scratch / self.log.name
        copy.write_bytes(text)
        return self._read(copy)


def _has_data(text: bytes, suffix: str) -> bool:
    lines = [line for line in text.splitlines() if line.strip()]
    return len(lines) > (1 if suffix in _HEADER_FORMATS else 0)


def _without_header(text: bytes, suffix: str) -> bytes:
    if suffix.lower() not in _HEADER_FORMATS:
        return text
    return text.split(b"\n", 1)[1] if b"\n" in text else b""


def describe_wait(path: Path) -> str:
    """The message while a log does not exist yet."""
    return f"waiting for {path} to appear (the job has not written it yet)"
