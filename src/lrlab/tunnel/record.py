"""What a run writes: per-step and per-eval CSV logs, ``record.json``, progress, TensorBoard.

The CSV files are appended one row at a time and flushed, so a killed run loses at most the row
being written; on resume `CsvLog` drops the rows after the checkpoint (and a torn last line), so
the log and the model agree. Floats are written with `repr`, which reads back bit-exactly.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from lrlab.atomic import atomic_write_text
from lrlab.errors import LrlabError

TRAIN_COLUMNS = ["step", "lr", "loss", "grad_norm", "update_norm", "param_norm", "tokens_per_s"]


def eval_columns(labels: list[str], n_layers: int) -> list[str]:
    """``step,lr,loss`` (validation loss on the main corpus), then the per-corpus losses and the
    instability signals."""
    return [
        "step",
        "lr",
        "loss",
        *(f"val_loss_{label}" for label in labels),
        *(f"max_attn_logit_l{i}" for i in range(n_layers)),
        "logit_mean",
        "logit_max",
        "log_z",
    ]


class ColumnsDiffer(LrlabError):
    """A log's header is not the columns this run writes (its configuration changed)."""


def _text(value: Any) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


class CsvLog:
    """An append-only CSV log keyed by an integer ``step`` column."""

    def __init__(self, path: Path, columns: list[str], rows: list[list[str]]) -> None:
        """Start `path` afresh with the header and `rows` (kept from before a resume or a
        branch point), then open it for appending."""
        self.path, self.columns = path, columns
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
        atomic_write_text(path, buffer.getvalue())
        self._file: TextIO = path.open("a", encoding="utf-8", newline="")
        self._writer = csv.writer(self._file, lineterminator="\n")

    @staticmethod
    def read_rows(
        path: Path, columns: list[str], *, before: int, required: bool = False
    ) -> list[list[str]]:
        """Complete rows with ``step < before``; a missing file has none, unless `required`
        (resuming a run: its log of the steps before the checkpoint). A torn last line (a kill
        mid-write) is dropped; any other damage, and a file with other columns (the run's
        configuration changed), is an error naming the file and line: resuming would otherwise
        drop or keep garbage rows silently."""
        if not path.is_file():
            if required:
                raise LrlabError(
                    f"{path}: missing; resuming from step {before} needs its rows before that step"
                )
            return []
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as error:
            line = path.read_bytes()[: error.start].count(b"\n") + 1
            raise LrlabError(f"{path}, line {line}: damaged log, not UTF-8 text") from None
        lines = text.splitlines(keepends=True)
        if lines and not lines[-1].endswith("\n"):
            lines.pop()  # torn by a kill mid-write
        try:
            parsed = list(csv.reader(lines))
        except csv.Error as error:
            raise LrlabError(f"{path}: damaged log ({error})") from None
        if not parsed:
            return []
        if parsed[0] != columns:
            header = ",".join(parsed[0])
            header = header if len(header) <= 200 else header[:197] + "..."
            raise ColumnsDiffer(
                f"{path}: columns {header} differ from this run's {','.join(columns)}"
            )
        kept: list[list[str]] = []
        previous = -1
        for number, row in enumerate(parsed[1:], start=2):
            step = int(row[0]) if row and row[0].isdigit() and row[0].isascii() else None
            if len(row) != len(columns) or step is None or step <= previous:
                problem = (
                    f"{len(row)} fields, not {len(columns)}"
                    if len(row) != len(columns)
                    else "its step is not a whole number above the previous row's"
                )
                raise LrlabError(
                    f"{path}, line {number}: damaged log row ({problem}); repair the file or "
                    "train the run afresh"
                )
            previous = step
            if step < before:
                kept.append(row)
        return kept

    def write(self, row: list[Any]) -> None:
        self._writer.writerow([_text(value) for value in row])
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomically write JSON; non-finite floats become null (JSON has no NaN)."""
    atomic_write_text(path, json.dumps(_finite(data), indent=2) + "\n")


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def progress_style(setting: str, stream: TextIO) -> str:
    """``bar``, ``lines`` or ``off`` for the `train.progress` setting on `stream`: ``auto`` is
    the bar on a terminal and lines elsewhere (in a pipe or a log file a redrawn bar is one
    endless line), ``on`` the bar anywhere, ``lines`` lines anywhere."""
    if setting == "auto":
        isatty = getattr(stream, "isatty", None)
        return "bar" if isatty is not None and isatty() else "lines"
    return {"on": "bar", "lines": "lines", "off": "off"}[setting]


class Progress:
    """What a run tells its user on stderr while it trains: step, loss, tokens/s and time left.

    As a ``bar`` it is one line redrawn at most 5x/s; as ``lines`` (stderr is a pipe or a file,
    or runs train side by side) it is a line ``lrlab: train NAME: step 1250/5000 loss 3.4100
    12.3k tok/s, 1m40s left`` at most every `every` seconds and at the last step, so a log shows
    the run moving without a line per step; ``off`` shows nothing. `note` writes one-off
    messages (what a resume found) in the same voice."""

    def __init__(
        self,
        name: str,
        total: int,
        start: int,
        style: str,
        *,
        every: float = 10.0,
        stream: TextIO | None = None,
    ) -> None:
        if style not in ("bar", "lines", "off"):
            raise ValueError(f"progress style {style!r}")
        self.name, self.total, self.start, self.style, self.every = name, total, start, style, every
        self.stream = sys.stderr if stream is None else stream
        self.began = time.perf_counter()
        self.last_draw = -math.inf
        self.drawn = False  # a bar is on screen, unfinished: a note starts on a new line

    def note(self, message: str) -> None:
        """One line ``lrlab: train NAME: message``, unless the progress is off."""
        if self.style == "off":
            return
        self._end_bar()
        self.stream.write(f"lrlab: train {self.name}: {message}\n")
        self.stream.flush()

    def update(self, step: int, loss: float, tokens_per_s: float) -> None:
        """Show the state after `step` (0-based) finished, if it is time to."""
        if self.style == "off":
            return
        now = time.perf_counter()
        done = step + 1
        # The first step of this process waits out an interval too: a line then would show
        # only the start-up, not a rate.
        last = self.began if self.last_draw == -math.inf else self.last_draw
        pause = 0.2 if self.style == "bar" else self.every
        if now - last < pause and done < self.total:
            return
        self.last_draw = now
        rate = (done - self.start) / max(now - self.began, 1e-9)
        left = (self.total - done) / rate if rate > 0 else math.inf
        speed = f"{tokens_per_s / 1000:.1f}k tok/s"
        if self.style == "lines":
            self.stream.write(
                f"lrlab: train {self.name}: step {done}/{self.total} loss {loss:.4f} {speed}, "
                f"{_duration(left)} left\n"
            )
        else:
            width = 24
            filled = int(width * done / self.total)
            bar = "#" * filled + "." * (width - filled)
            self.stream.write(
                f"\r[{bar}] {done}/{self.total} loss {loss:.4f} {speed} ETA {_duration(left)}   "
            )
            self.drawn = True
        self.stream.flush()

    def close(self) -> None:
        """End the bar's line (lines need no ending)."""
        self._end_bar()

    def _end_bar(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


class TensorBoard:
    """Scalars to TensorBoard (optional: needs the ``tensorboard`` package)."""

    def __init__(self, folder: Path, start: int) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise LrlabError(
                "train.tensorboard=true needs the 'tensorboard' package (pip install tensorboard)"
            ) from None
        # purge_step drops events a killed run wrote after its checkpoint.
        self.writer = SummaryWriter(str(folder), purge_step=start or None)

    def write(self, prefix: str, columns: list[str], row: list[Any]) -> None:
        step = int(row[0])
        for name, value in zip(columns[1:], row[1:], strict=True):
            self.writer.add_scalar(f"{prefix}/{name}", float(value), step)

    def close(self) -> None:
        self.writer.close()
