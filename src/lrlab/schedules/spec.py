"""Schedule specs: JSON/YAML dicts and compact command-line strings, both ways.

A spec dict is ``{"name": "wsd", "peak": 3e-4, ...}``; nested schedules are nested dicts. The compact
string is a call, ``wsd(peak=3e-4, total=24000, warmup=2160, cooldown_fraction=0.2, decay=linear)``,
with keyword arguments only: numbers, bare or quoted names, lists ``[...]`` and nested calls. It is
read with Python's `ast` parser and turned into plain data, never evaluated.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import json
import re
from pathlib import Path
from typing import Any

import yaml

from lrlab.atomic import atomic_write_text
from lrlab.errors import LrlabError, SpecError
from lrlab.mapping_file import read_mapping
from lrlab.schedules.base import REGISTRY, Schedule, number_text

_SPEC_FILE_SUFFIXES = (".json", ".yaml", ".yml")


def from_spec(spec: Schedule | dict[str, Any] | str) -> Schedule:
    """Build a schedule from a spec dict, a compact string, JSON text, or return it unchanged."""
    if isinstance(spec, Schedule):
        return spec
    if isinstance(spec, str):
        return parse(spec)
    if not isinstance(spec, dict):
        raise SpecError(f"a schedule spec must be a mapping with a 'name', got {spec!r}")
    if "name" not in spec:
        raise SpecError(f"schedule spec has no 'name' field: {spec!r}")
    name = spec["name"]
    cls = REGISTRY.get(name) if isinstance(name, str) else None
    if cls is None:
        close = difflib.get_close_matches(str(name), REGISTRY, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise SpecError(f"unknown schedule {name!r}{hint} (see `lrlab schedules`)")
    fields = {field.name: field for field in dataclasses.fields(cls)}
    values = {key: value for key, value in spec.items() if key != "name"}
    for key in values:
        if key not in fields:
            raise SpecError(f"{name}: unknown field {key!r} (fields: {', '.join(fields)})")
    for field_name, field in fields.items():
        no_default = (
            field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        )
        if no_default and field_name not in values:
            rule = field.metadata["rule"]
            raise SpecError(f"{name}: {field_name} is required ({rule.describe()}: {rule.help})")
    return cls(**values)


def parse(text: str) -> Schedule:
    """Parse a compact spec string, JSON text (starting with ``{``) or the path of a spec file."""
    stripped = text.strip()
    if stripped.endswith(_SPEC_FILE_SUFFIXES) and "(" not in stripped:
        return load_spec(stripped)
    if stripped.startswith("{"):
        try:
            return from_spec(json.loads(stripped))
        except json.JSONDecodeError as error:
            raise SpecError(f"schedule spec is not valid JSON: {error}") from None
    try:
        tree = ast.parse(stripped, mode="eval")
    except SyntaxError as error:
        raise SpecError(
            f"cannot read schedule spec {text!r} at column {error.offset}: "
            "expected name(field=value, ...)"
        ) from None
    data = _to_data(tree.body, stripped)
    if isinstance(data, str):  # a bare name: a schedule whose fields all have defaults
        data = {"name": data}
    if not isinstance(data, dict):
        raise SpecError(f"schedule spec {text!r} must look like name(field=value, ...)")
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
    raise SpecError(f"cannot read {segment!r} in schedule spec (column {node.col_offset})")


def to_string(schedule: Schedule) -> str:
    """The compact string of a schedule; fields at their default value are left out."""
    parts = []
    for name, _rule, default in schedule.parameters():
        value = getattr(schedule, name)
        if default is not dataclasses.MISSING and _same(value, default):
            continue
        parts.append(f"{name}={_value_text(value)}")
    return f"{schedule.name}({', '.join(parts)})"


def _same(value: Any, default: Any) -> bool:
    if isinstance(value, tuple):
        return isinstance(default, (list, tuple)) and list(value) == list(default)
    return value == default


def _value_text(value: Any) -> str:
    if isinstance(value, Schedule):
        return to_string(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(_value_text(item) for item in value) + "]"
    if isinstance(value, str):
        return value if value.isidentifier() else repr(value)
    if isinstance(value, float):
        return number_text(value)
    return repr(value)


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
