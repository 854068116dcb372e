"""Reading schedule specs: JSON/YAML dicts, spec files and compact command-line strings.

A spec dict is ``{"name": "wsd", "peak": 3e-4, ...}``; nested schedules are nested dicts. The
compact string is a call,
``wsd(peak=3e-4, total=24000, warmup=2160, cooldown_fraction=0.2, decay=linear)``, with keyword
arguments only: numbers, bare or quoted names, lists ``[...]`` and nested calls. It is read with
Python's `ast` parser and turned into plain data, never evaluated. Writing them is the schedule's
own job (`Schedule.to_spec`, `str(schedule)`); `save_spec` writes a spec file.

`schedule_field` and `schedules_field` declare settings that hold nested schedules (`join`,
`scale`, ...): they are built from specs, so they live here rather than in `lrlab.settings`.
"""

from __future__ import annotations

import ast
import difflib
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from lrlab.atomic import atomic_write_text
from lrlab.errors import LrlabError, SpecError, brief
from lrlab.mapping_file import check_depth, load_data, read_mapping
from lrlab.schedules.base import REGISTRY, Schedule
from lrlab.settings import custom, from_mapping

_SPEC_FILE_SUFFIXES = (".json", ".yaml", ".yml")


def from_spec(spec: Schedule | dict[str, Any] | str) -> Schedule:
    """Build a schedule from a spec dict, a compact string, JSON text, or return it unchanged."""
    if isinstance(spec, Schedule):
        return spec
    if isinstance(spec, str):
        return parse(spec)
    if not isinstance(spec, dict):
        raise SpecError(f"a schedule spec must be a mapping with a 'name', got {brief(spec)}")
    if "name" not in spec:
        raise SpecError(f"schedule spec has no 'name' field: {brief(spec)}")
    name = spec["name"]
    cls = REGISTRY.get(name) if isinstance(name, str) else None
    if cls is None:
        close = difflib.get_close_matches(str(name), REGISTRY, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise SpecError(f"unknown schedule {brief(name)}{hint} (see `lrlab schedules`)")
    values = {key: value for key, value in spec.items() if key != "name"}
    return from_mapping(cls, values, name, error=SpecError)


def schedule_field(*, help: str) -> Any:
    """A settings field holding a nested schedule (a `Schedule`, a spec dict or a string)."""
    return custom(help=help, noun="a schedule", convert=_nested)


def schedules_field(*, help: str) -> Any:
    """A settings field holding a list of nested schedules, stored as a tuple."""
    return custom(help=help, noun="a list of schedules", convert=_nested_list)


def _nested(where: str, value: Any) -> Schedule:
    try:
        return from_spec(value)
    except SpecError as error:
        raise SpecError(f"{where}: {error}") from None


def _nested_list(where: str, value: Any) -> tuple[Schedule, ...]:
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        raise SpecError(f"{where} must be a list of schedules, got {brief(value)}")
    return tuple(_nested(f"{where}[{i}]", item) for i, item in enumerate(value))


def parse(text: str) -> Schedule:
    """Parse a compact spec string, JSON text (starting with ``{``) or the path of a spec file."""
    stripped = text.strip()
    if stripped.endswith(_SPEC_FILE_SUFFIXES) and "(" not in stripped:
        return load_spec(stripped)
    if stripped.startswith("{"):
        try:
            return from_spec(load_data(stripped, "schedule spec (JSON)", json_syntax=True))
        except SpecError:
            raise
        except LrlabError as error:  # not JSON, or nested too deep: a spec error all the same
            raise SpecError(str(error)) from None
    try:
        tree = ast.parse(stripped, mode="eval")
    except SyntaxError as error:
        # Python's own message says why (e.g. "too many nested parentheses").
        raise SpecError(
            f"cannot read schedule spec {brief(text)} at column {error.offset} "
            f"({error.msg}): expected name(field=value, ...)"
        ) from None
    data = _to_data(tree.body, stripped)
    if isinstance(data, str):  # a bare name: a schedule whose fields all have defaults
        data = {"name": data}
    if not isinstance(data, dict):
        raise SpecError(f"schedule spec {brief(text)} must look like name(field=value, ...)")
    try:
        check_depth(data, "schedule spec")
    except LrlabError as error:
        raise SpecError(str(error)) from None
    return from_spec(data)


def _to_data(node: ast.AST, source: str) -> Any:
    """Turn a parsed spec expression into plain data, accepting only literal shapes."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        if node.args or any(keyword.arg is None for keyword in node.keywords):
            raise SpecError(
                f"{node.func.id}(...): give every field as field=value (column {node.col_offset})"
            )
        data: dict[str, Any] = {"name": node.func.id}
        for keyword in node.keywords:
            data[keyword.arg] = _to_data(keyword.value, source)
        return data
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, type(None))):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _to_data(node.operand, source)
        if isinstance(value, (int, float)):
            return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_to_data(element, source) for element in node.elts]
    if isinstance(node, ast.BinOp):
        # Bare names with a dash, such as `decay=1-sqrt`, parse as arithmetic: keep the text.
        return re.sub(r"\s+", "", ast.get_source_segment(source, node) or "")
    segment = ast.get_source_segment(source, node)
    raise SpecError(f"cannot read {brief(segment)} in schedule spec (column {node.col_offset})")


def load_spec(path: str | Path) -> Schedule:
    """Read a schedule from a ``.json``, ``.yaml`` or ``.yml`` file."""
    try:
        return from_spec(read_mapping(path, "schedule spec"))
    except SpecError as error:
        raise SpecError(f"{path}: {error}") from None
    except LrlabError as error:  # unreadable or not a mapping: a spec error all the same
        raise SpecError(str(error)) from None


def save_spec(schedule: Schedule, path: str | Path) -> Path:
    """Write a schedule's spec to a JSON or YAML file (by suffix), atomically."""
    path = Path(path)
    spec = schedule.to_spec()
    if path.suffix in (".yaml", ".yml"):
        text = yaml.safe_dump(spec, sort_keys=False)
    else:
        text = json.dumps(spec, indent=2) + "\n"
    return atomic_write_text(path, text)
