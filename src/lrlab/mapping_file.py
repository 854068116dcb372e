"""Reading YAML and JSON (configs, schedule specs, law fits, sidecars), bounded against hostile
files.

YAML is read with the safe loader (data only, no object construction). Every read is bounded, so
that a small file cannot cost minutes or gigabytes, and every error is one short line naming the
file (and the line, where the parser knows it) that never echoes more than a short piece of it:

- files larger than `MAX_BYTES` are refused before parsing (at most that much is read, so
  ``/dev/zero`` or a sparse file of gigabytes costs no more);
- nesting deeper than `MAX_DEPTH` is refused (lrlab's deepest real data, a join of schedules
  inside a config, is a few levels; JSON deeper than Python's recursion limit would otherwise end
  in a `RecursionError`);
- YAML aliases may repeat at most `MAX_ALIAS_NODES` values in all (a "billion laughs" file of a
  few hundred bytes expands to 10^9 strings), and an alias may not contain itself;
- a key given twice in one mapping is an error (YAML and JSON parsers silently keep the last).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from lrlab.errors import LrlabError, brief

#: The largest file read: a per-step table of 10^7 learning rates, as lrlab writes one (about
#: 25 bytes a value), fits with room to spare.
MAX_BYTES = 256 << 20
#: The deepest nesting of lists and mappings accepted.
MAX_DEPTH = 64
#: How many values YAML aliases may repeat in one file, all aliases together (anchors that share
#: a config section a few times stay far below it).
MAX_ALIAS_NODES = 10_000

# libyaml's loader, where PyYAML has it: several times faster than the pure-Python one (a 4 MB
# table: 3.6x with this module's checks, `benchmarks/hostile.py --yaml-speed`), and it bounds
# nesting itself.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class NotParsed(LrlabError):
    """The text is not valid YAML or JSON (rather than valid but beyond a bound): a caller that
    takes plain text as well, such as ``--set``, may then use the text as it is."""


def read_mapping(path: str | Path, kind: str = "config") -> dict[str, Any]:
    """A YAML/JSON file's top-level mapping (JSON for a ``.json`` suffix, YAML otherwise); errors
    name the file (and line, for syntax) and say what `kind` of file was wanted."""
    path = Path(path)
    data = load_data(read_text(path, kind), str(path), json_syntax=path.suffix == ".json")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        found = type(data).__name__
        raise LrlabError(
            f"{path}: must be a mapping of sections or fields (name: value), got {found}"
        )
    return data


def read_text(path: Path, kind: str = "config") -> str:
    """The UTF-8 text of a file of at most `MAX_BYTES` (a byte-order mark is dropped)."""
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise LrlabError(f"{path}: cannot read {kind} (no such file)") from None
    except IsADirectoryError:
        raise LrlabError(f"{path}: cannot read {kind} (it is a folder)") from None
    except OSError as error:
        raise LrlabError(f"{path}: cannot read {kind} ({error.strerror or error})") from None
    if len(raw) > MAX_BYTES:
        raise LrlabError(
            f"{path}: {kind} larger than {MAX_BYTES >> 20} MiB, the most lrlab reads of such a file"
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        byte = raw[error.start : error.start + 1].hex()
        raise LrlabError(f"{path}, line {line}: {kind} is not UTF-8 text (byte 0x{byte})") from None


def load_data(text: str, source: str, *, json_syntax: bool = False) -> Any:
    """Parse YAML (or, with `json_syntax`, JSON) text within the bounds of this module; errors
    start with `source` (a file name, or a description such as ``--set train.steps``)."""
    if len(text) > MAX_BYTES:
        raise LrlabError(f"{source}: larger than {MAX_BYTES >> 20} MiB, the most lrlab reads")
    return _load_json(text, source) if json_syntax else _load_yaml(text, source)


def check_depth(data: Any, source: str, limit: int = MAX_DEPTH) -> None:
    """Refuse lists and mappings nested deeper than `limit` (walked without recursion, so any
    depth is measured safely)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children = list(value.values())
        elif isinstance(value, (list, tuple)):
            children = list(value)
        else:
            continue
        if depth > limit:
            raise _too_deep(source, limit)
        stack.extend((child, depth + 1) for child in children)


def _too_deep(source: str, limit: int = MAX_DEPTH, line: int | None = None) -> LrlabError:
    where = f", line {line}" if line is not None else ""
    return LrlabError(f"{source}{where}: lists and mappings nested more than {limit} deep")


@contextlib.contextmanager
def _parser_limits(source: str, language: str) -> Iterator[None]:
    """The failures both parsers share, as one-line errors: nesting too deep for Python's
    recursion, and an integer of more digits than Python converts (a `ValueError`; lrlab's own
    errors, `ValueError`s too, pass)."""
    try:
        yield
    except RecursionError:
        raise _too_deep(source) from None
    except LrlabError:
        raise
    except ValueError:
        raise LrlabError(f"{source}: not valid {language} (a number of too many digits)") from None


def _load_json(text: str, source: str) -> Any:
    with _parser_limits(source, "JSON"):
        try:
            data = json.loads(text, object_pairs_hook=lambda pairs: _unique(pairs, source))
        except json.JSONDecodeError as error:
            line = f"{source}, line {error.lineno}"
            raise NotParsed(f"{line}: not valid JSON ({error.msg})") from None
    check_depth(data, source)
    return data


def _unique(pairs: list[tuple[str, Any]], source: str) -> dict[str, Any]:
    mapping = dict(pairs)
    if len(mapping) < len(pairs):
        seen: set[str] = set()
        twice = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise LrlabError(f"{source}: key {brief(twice)} appears twice in one mapping")
    return mapping


def _load_yaml(text: str, source: str) -> Any:
    loader = _YAML_LOADER(text)
    with _parser_limits(source, "YAML"):
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            _check_nodes(node, source)
            return loader.construct_document(node)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f", line {mark.line + 1}" if mark is not None else ""
            problem = " ".join(str(getattr(error, "problem", None) or "not valid YAML").split())
            raise NotParsed(f"{source}{where}: {problem[:160]}") from None
        finally:
            loader.dispose()


def _check_nodes(root: yaml.Node, source: str) -> None:
    """Bound a composed YAML document before it becomes data: nesting depth, values repeated
    through aliases (an alias is a node met a second time), aliases inside themselves, keys given
    twice. One walk without recursion; each node's expanded size is computed once."""
    sizes: dict[int, int] = {}  # expanded size of each finished node
    open_nodes: set[int] = set()  # nodes on the path from the root
    repeated = 0
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, finished = stack.pop()
        key = id(node)
        if finished:
            open_nodes.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in _children(node))
            continue
        if key in sizes:
            repeated += sizes[key]
            if repeated > MAX_ALIAS_NODES:
                raise LrlabError(
                    f"{source}, line {node.start_mark.line + 1}: YAML aliases repeat more than "
                    f"{MAX_ALIAS_NODES} values (an alias bomb?)"
                )
            continue
        if key in open_nodes:
            raise LrlabError(
                f"{source}, line {node.start_mark.line + 1}: a YAML alias contains itself"
            )
        if depth > MAX_DEPTH:
            raise _too_deep(source, line=node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            _check_keys(node, source)
        open_nodes.add(key)
        stack.append((node, depth, True))
        stack.extend((child, depth + 1, False) for child in _children(node))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _check_keys(node: yaml.MappingNode, source: str) -> None:
    seen: set[tuple[str, str]] = set()
    for key, _ in node.value:
        if not isinstance(key, yaml.ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
            continue
        if (key.tag, key.value) in seen:
            raise LrlabError(
                f"{source}, line {key.start_mark.line + 1}: key {brief(key.value)} appears "
                "twice in one mapping"
            )
        seen.add((key.tag, key.value))
