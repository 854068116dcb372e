"""Readers for tabular logs: CSV, TSV, JSON Lines and Parquet, into one `Table` of raw cells.

Each reader is told which columns to keep once it knows every column name (`Chooser`), so a wide
export costs only the columns the run needs. Cells stay as read (strings, numbers or None), except
where a fast path has already parsed a whole column to floats; `lrlab.runs.columns` converts them,
so a bad cell is reported with the file and line it came from.

Million-row logs are normal (a value logged every step), so clean files take a fast path: a CSV or
TSV whose lines all have the header's number of fields, with no quotes and no blank lines, is
parsed by numpy's C reader, and a JSON Lines file is decoded in one call. Anything else, or any
failure of the fast path, takes the careful line-by-line reader, which names the offending line.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import io
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lrlab.errors import LrlabError

# Given every column name of a file, the names to read (raising an `LrlabError` if one is missing).
Chooser = Callable[[Sequence[str]], Sequence[str]]


@dataclasses.dataclass(frozen=True)
class Table:
    """The chosen columns of a log: raw cells, or floats where a fast path parsed them already.
    ``lines[i]`` is where row ``i`` sits in the file (a line, or a row number for Parquet, as
    `unit` says); `names` are all the file's columns, for messages."""

    source: str
    columns: dict[str, list[Any] | np.ndarray]
    lines: np.ndarray
    names: tuple[str, ...]
    unit: str = "line"


def read_text(path: Path) -> str:
    """The file as text; bytes that are not UTF-8 are an error naming their line (a log is
    numbers and names: guessing another encoding would only hide a damaged file)."""
    data = path.read_bytes()
    data = data.removeprefix(codecs.BOM_UTF8)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise LrlabError(
            f"{path}, line {line}: not UTF-8 text (byte 0x{data[error.start]:02x}); "
            "save the log as UTF-8"
        ) from None


def check_names(names: Sequence[str], source: str, where: str) -> None:
    """A column name given twice is an error: which of the two holds the values is a guess."""
    seen: set[str] = set()
    for name in names:
        if name and name in seen:
            raise LrlabError(f"{source}, {where}: column {name!r} appears twice")
        seen.add(name)


def read_delimited(path: Path, delimiter: str, choose: Chooser) -> Table:
    """A CSV (``,``) or TSV (``\\t``) file with a header row; blank lines are skipped."""
    source = str(path)
    text = read_text(path)
    consumed = 0

    def physical_lines() -> Any:
        nonlocal consumed
        for line in io.StringIO(text, newline=""):
            consumed += len(line)
            yield line

    reader = csv.reader(physical_lines(), delimiter=delimiter)
    header = next(reader, None)
    while header is not None and not any(cell.strip() for cell in header):
        header = next(reader, None)
    if header is None:
        raise LrlabError(f"{source}: the file is empty")
    names = [cell.strip() for cell in header]
    header_line = reader.line_num
    check_names(names, source, f"line {header_line}")
    wanted = list(choose(names))
    body = text[consumed:]
    fast = _fast_delimited(body, delimiter, names, wanted, header_line)
    if fast is not None:
        return Table(source, *fast, tuple(names))
    index = [names.index(name) for name in wanted]
    cells: list[list[str]] = [[] for _ in wanted]
    lines: list[int] = []
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(names):
            raise LrlabError(
                f"{source}, line {reader.line_num}: {len(row)} fields, the header has {len(names)}"
            )
        for column, position in zip(cells, index, strict=True):
            column.append(row[position])
        lines.append(reader.line_num)
    if not lines:
        raise LrlabError(f"{source}: the file has a header but no data rows")
    columns: dict[str, list[Any] | np.ndarray] = dict(zip(wanted, cells, strict=True))
    return Table(source, columns, np.array(lines, dtype=np.int64), tuple(names))


def _fast_delimited(
    body: str, delimiter: str, names: list[str], wanted: list[str], header_line: int
) -> tuple[dict[str, list[Any] | np.ndarray], np.ndarray] | None:
    """The wanted columns as floats by numpy's C parser, or None where the careful reader must
    look (quotes, blank or ragged lines, a cell that is not a plain number)."""
    if not body or '"' in body or body.count("\r") != body.count("\r\n"):
        return None
    raw = np.frombuffer(body.encode("utf-8"), dtype=np.uint8)
    ends = np.flatnonzero(raw == ord("\n"))
    if raw[-1] != ord("\n"):
        ends = np.append(ends, raw.size)
    starts = np.concatenate([[0], ends[:-1] + 1])
    # Every line must hold exactly the header's fields: no blank lines (numpy would skip them and
    # the rows would lose their line numbers) and no ragged rows (numpy ignores unused fields).
    delimiters = np.flatnonzero(raw == ord(delimiter))
    per_line = np.diff(np.searchsorted(delimiters, np.append(starts, raw.size)))
    if np.any(per_line != len(names) - 1) or np.any(ends - starts == 0):
        return None
    try:
        values = np.loadtxt(
            io.StringIO(body),
            delimiter=delimiter,
            dtype=np.float64,
            comments=None,
            usecols=[names.index(name) for name in wanted],
            ndmin=2,
        )
    except ValueError:
        return None
    if values.shape[0] != starts.size:
        return None
    columns: dict[str, list[Any] | np.ndarray] = {
        name: np.ascontiguousarray(values[:, i]) for i, name in enumerate(wanted)
    }
    return columns, header_line + 1 + np.arange(starts.size, dtype=np.int64)


def _decode_line(text: str, number: int, source: str) -> dict[str, Any]:
    """One JSON Lines record; any way it fails is a one-line error naming the line."""
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        raise LrlabError(f"{source}, line {number}: not valid JSON ({error.msg})") from None
    except RecursionError:
        raise LrlabError(f"{source}, line {number}: JSON nested too deeply") from None
    except ValueError:  # the one other way: an integer of more digits than Python converts
        raise LrlabError(f"{source}, line {number}: a number with too many digits") from None
    if not isinstance(record, dict):
        raise LrlabError(f"{source}, line {number}: expected a JSON object")
    return record


def read_jsonl(path: Path, choose: Chooser) -> Table:
    """A JSON Lines file: one JSON object per line; keys are column names."""
    source = str(path)
    # Lines end at \n, \r\n or \r, as in a file opened as text (not at the other characters
    # str.splitlines takes for line ends, which JSON strings may hold).
    text = read_text(path).replace("\r\n", "\n").replace("\r", "\n")
    numbered = [
        (number, line) for number, line in enumerate(text.split("\n"), start=1) if line.strip()
    ]
    if not numbered:
        raise LrlabError(f"{source}: the file is empty")
    records = _decode_all(numbered)
    if records is None:
        records = [_decode_line(text, number, source) for number, text in numbered]
    names = list(dict.fromkeys(key for record in records for key in record))
    wanted = list(choose(names))
    columns: dict[str, list[Any] | np.ndarray] = {
        name: [record.get(name) for record in records] for name in wanted
    }
    lines = np.array([number for number, _ in numbered], dtype=np.int64)
    return Table(source, columns, lines, tuple(names))


def _decode_all(numbered: list[tuple[int, str]]) -> list[dict[str, Any]] | None:
    """Every line decoded in one call (several times faster than one call per line), or None
    where a line is not one JSON object, for the line-by-line reader to name it."""
    texts = [text.strip() for _, text in numbered]
    if not all(text[0] == "{" and text[-1] == "}" for text in texts):
        return None
    try:
        records = json.loads("[" + ",".join(texts) + "]")
    except (ValueError, RecursionError):
        return None
    if len(records) != len(texts) or not all(type(record) is dict for record in records):
        return None
    return records


def read_parquet(path: Path, choose: Chooser) -> Table:
    """A Parquet file (needs the optional ``pyarrow`` package)."""
    try:
        from pyarrow import parquet
    except ImportError:
        raise LrlabError(
            f"{path}: reading Parquet needs pyarrow; install it with `pip install pyarrow`"
        ) from None
    try:
        names = list(parquet.read_schema(path).names)
    except (OSError, ValueError) as error:  # pyarrow's errors subclass these
        raise LrlabError(f"{path}: cannot read Parquet ({error})") from None
    check_names(names, str(path), "schema")
    wanted = list(choose(names))
    try:
        columns = parquet.read_table(path, columns=wanted).to_pydict()
    except (OSError, ValueError) as error:
        raise LrlabError(f"{path}: cannot read Parquet ({error})") from None
    length = len(next(iter(columns.values()), []))
    if length == 0:
        raise LrlabError(f"{path}: the file has no data rows")
    lines = np.arange(1, length + 1, dtype=np.int64)
    return Table(str(path), dict(columns), lines, tuple(names), unit="row")
