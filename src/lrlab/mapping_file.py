"""Reading a YAML or JSON file whose top level is a mapping (configs, schedule specs).

YAML is read with the safe loader (no object construction); errors name the file and, for syntax
errors, the line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from lrlab.errors import LrlabError


def read_mapping(path: str | Path, kind: str = "config") -> dict[str, Any]:
    """A YAML/JSON file's top-level mapping; errors name the file (and line, for syntax) and say
    what `kind` of file was wanted."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LrlabError(f"{path}: cannot read {kind} (no such file)") from None
    except (OSError, UnicodeDecodeError) as error:
        raise LrlabError(f"{path}: cannot read {kind} ({error})") from None
    try:
        if path.suffix == ".json":
            data = json.loads(text)
        else:
            data = yaml.safe_load(text)
    except json.JSONDecodeError as error:
        raise LrlabError(f"{path}, line {error.lineno}: not valid JSON ({error.msg})") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or "not valid YAML"
        raise LrlabError(f"{path}{where}: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise LrlabError(
            f"{path}: must be a mapping of sections or fields (name: value), got {kind}"
        )
    return data
