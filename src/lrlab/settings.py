"""Typed settings: the one way lrlab declares, coerces and checks user-given options.

A class that takes settings (a schedule, a wind-tunnel config section, a law, the study config) is
a keyword-only dataclass whose fields are declared with the helpers below (`real`, `integer`,
`choice`, `flag`, `text`, `mapping`, ...). Each helper stores a `Rule` - the help text and the
allowed values - in the field's metadata, so the same declaration gives the documentation
(`lrlab schedules`), the checks and the error messages. The class calls
``check_fields(self, owner)`` in ``__post_init__``, which coerces every value (an int where a float
is wanted, a list where a tuple is stored) and fails on the first bad one with a one-line
`LrlabError` naming the owner, the field and the allowed values::

    wsd: cooldown_fraction=1.5 is out of range (a number in (0, 1])

`from_mapping` builds such a class from user data (a YAML section, a spec dict): unknown keys are
an error with a close-match suggestion, missing required fields are named with their help.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from lrlab.errors import LrlabError, brief

MISSING: Any = dataclasses.MISSING
#: The largest integer setting: beyond 2^53 a float64, in which steps and schedules are computed,
#: no longer holds every integer (and numpy's int64 ends at 2^63).
MAX_INTEGER = 2**53
_INTEGER_LIMIT = "at most 2^53 = 9007199254740992 in size"

_NOUNS = {
    "real": "a number",
    "integer": "an integer",
    "flag": "true or false",
    "text": "a string",
    "mapping": "a mapping",
    "reals": "a list of numbers",
    "integers": "a list of integers",
    "texts": "a list of strings",
    "points": "a list of [step, lr] pairs",
}


@dataclasses.dataclass(frozen=True)
class Rule:
    """How one setting is typed and bounded (stored in its dataclass field's metadata).

    `kind` is one of real, integer, choice, flag, text, mapping, reals, integers, texts, points or
    custom. A custom kind (a nested schedule, say) names its values in `noun` and checks them with
    ``convert(where, value)``, which returns the stored value or raises an `LrlabError` whose
    message starts with `where`.
    """

    kind: str
    help: str
    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    choices: tuple[str, ...] = ()
    optional: bool = False
    noun: str = ""
    convert: Callable[[str, Any], Any] | None = None

    def describe(self) -> str:
        """The allowed values in words, e.g. ``a number in (0, 1]``."""
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        noun = self.noun or _NOUNS[self.kind]
        if self.low is None and self.high is None:
            return noun
        left = "[" if self.low_inclusive else "("
        low = "-inf" if self.low is None else number_text(self.low)
        high = "inf)" if self.high is None else number_text(self.high) + "]"
        return f"{noun} in {left}{low}, {high}"


# --- declaring fields ---------------------------------------------------------------------------


def _field(default: Any, rule: Rule) -> Any:
    rule = dataclasses.replace(rule, optional=default is None)
    metadata = {"rule": rule}
    if default is MISSING:
        return dataclasses.field(metadata=metadata)
    if isinstance(default, (list, dict)):  # a fresh copy for every instance
        return dataclasses.field(default_factory=lambda: default.copy(), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def real(
    default: Any = MISSING,
    *,
    help: str,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
) -> Any:
    """A float; ``default=None`` makes it optional. Ints are accepted and stored as floats."""
    return _field(default, Rule("real", help, low, high, low_inclusive))


def integer(
    default: Any = MISSING, *, help: str, low: int | None = 0, high: int | None = None
) -> Any:
    """An integer (a step count by default, hence ``low=0``); ``default=None`` makes it optional.
    A float with an integer value is accepted."""
    return _field(default, Rule("integer", help, low, high))


def choice(default: Any = MISSING, *, help: str, choices: Sequence[str]) -> Any:
    """One of a fixed set of names."""
    return _field(default, Rule("choice", help, choices=tuple(choices)))


def flag(default: bool, *, help: str) -> Any:
    """A bool; only ``true``/``false`` are accepted (not 0, 1 or ``"yes"``)."""
    return _field(default, Rule("flag", help))


def text(default: Any = MISSING, *, help: str) -> Any:
    """A string (a path, a name); ``default=None`` makes it optional."""
    return _field(default, Rule("text", help))


def mapping(default: Any = None, *, help: str) -> Any:
    """A dict; only its type is checked here, its contents are the owner's to check. ``None``
    (the default) makes it optional."""
    return _field(default, Rule("mapping", help))


def reals(default: Any = MISSING, *, help: str, low: float | None = None) -> Any:
    """A list of floats, stored as a tuple."""
    return _field(default, Rule("reals", help, low))


def integers(default: Any = MISSING, *, help: str, low: int | None = 0) -> Any:
    """A list of integers (steps by default, hence ``low=0``), stored as a tuple."""
    return _field(default, Rule("integers", help, low))


def texts(default: Any = MISSING, *, help: str) -> Any:
    """A list of strings, stored as a tuple."""
    return _field(default, Rule("texts", help))


def points(*, help: str) -> Any:
    """A list of ``[step, lr]`` pairs of non-negative numbers, stored as a tuple of pairs."""
    return _field(MISSING, Rule("points", help))


def custom(
    default: Any = MISSING, *, help: str, noun: str, convert: Callable[[str, Any], Any]
) -> Any:
    """A field of a kind this module does not know (a nested schedule): `noun` names its values,
    ``convert(where, value)`` checks and converts one (see `Rule`)."""
    return _field(default, Rule("custom", help, noun=noun, convert=convert))


def rule_of(field: dataclasses.Field) -> Rule | None:
    """The `Rule` of a dataclass field, or None for a field not declared with this module."""
    return field.metadata.get("rule")


def rules(cls: Any) -> dict[str, Rule]:
    """Every rule-carrying field of a dataclass (class or instance), by name, in field order."""
    found = {field.name: rule_of(field) for field in dataclasses.fields(cls)}
    return {name: rule for name, rule in found.items() if rule is not None}


def number_text(value: float) -> str:
    """Shortest text that reads back as the same number: ``1e-05``, ``3``, ``0.0003``."""
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


# --- checking -----------------------------------------------------------------------------------


def check_fields(obj: Any, owner: str, *, error: type[LrlabError] = LrlabError) -> None:
    """Coerce and check every rule-carrying field of the dataclass instance `obj` in place (frozen
    ones too); the first bad value raises `error` (an `LrlabError` subclass) prefixed with
    ``owner: field``."""
    try:
        for field in dataclasses.fields(obj):
            rule = rule_of(field)
            if rule is not None:
                value = _coerce(owner, field.name, rule, getattr(obj, field.name))
                object.__setattr__(obj, field.name, value)
    except LrlabError as problem:
        raise _as(error, problem) from None


def from_mapping(
    cls: type,
    data: Any,
    owner: str,
    *,
    error: type[LrlabError] = LrlabError,
    **extra: Any,
) -> Any:
    """Build the dataclass `cls` from user data, ``cls(**data, **extra)``, after checking that
    `data` is a mapping of known fields that gives every required one. Errors are `error`s that
    start with `owner` (a file, a section). `extra` are arguments from the program, not the user
    (not checked against unknown keys)."""
    try:
        values = _known_fields(cls, data, owner)
    except LrlabError as problem:
        raise _as(error, problem) from None
    try:
        # The class checks its values itself (`check_fields` in `__post_init__`), so valid data
        # is checked once; a table schedule can hold a value per step.
        return cls(**values, **extra)
    except LrlabError as problem:
        # Check again under `owner` to name it in the message; an error none of the fields
        # gives (a cross-field check of the class) stands as the class raised it.
        try:
            for field in dataclasses.fields(cls):
                rule = rule_of(field)
                if rule is not None and field.name in values:
                    _coerce(owner, field.name, rule, values[field.name])
        except LrlabError as named:
            raise _as(error, named) from None
        raise _as(error, problem) from None


def _known_fields(cls: type, data: Any, owner: str) -> dict[str, Any]:
    """`data` as a dict, after checking that it names only fields of `cls` and all the required
    ones."""
    if not isinstance(data, Mapping):
        raise LrlabError(f"{owner}: must be a mapping of fields (name: value), got {brief(data)}")
    fields = {field.name: field for field in dataclasses.fields(cls) if field.init}
    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(str(key), fields, n=1)
            hint = f", did you mean {close[0]!r}?" if close else ""
            known = ", ".join(fields)
            raise LrlabError(f"{owner}: unknown field {brief(key)}{hint} (fields: {known})")
    for name, field in fields.items():
        rule = rule_of(field)
        no_default = field.default is MISSING and field.default_factory is MISSING
        if no_default and rule is not None and name not in data:
            raise LrlabError(f"{owner}: {name} is required ({rule.describe()}: {rule.help})")
    return dict(data)


def _as(error: type[LrlabError], problem: LrlabError) -> LrlabError:
    """`problem` as an `error` (the owner's error class), same message."""
    return problem if isinstance(problem, error) else error(str(problem))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _coerce(owner: str, name: str, rule: Rule, value: Any) -> Any:
    where = f"{owner}: {name}"
    if value is None:
        if rule.optional:
            return None
        raise LrlabError(f"{where} is required ({rule.describe()})")
    if rule.kind in ("real", "integer"):
        return _coerce_number(where, rule, value)
    if rule.kind == "choice":
        if not isinstance(value, str) or value not in rule.choices:
            raise LrlabError(f"{where}={brief(value)} is not allowed ({rule.describe()})")
        return value
    if rule.kind in ("flag", "text", "mapping"):
        wanted = {"flag": bool, "text": str, "mapping": dict}[rule.kind]
        if not isinstance(value, wanted):
            raise LrlabError(f"{where}={brief(value)} must be {rule.describe()}")
        return value
    if rule.kind in ("reals", "integers"):
        return _coerce_numbers(where, rule, _as_list(where, rule, value))
    if rule.kind == "texts":
        items = _as_list(where, rule, value)
        for index, item in enumerate(items):
            if not isinstance(item, str):
                raise LrlabError(f"{where}[{index}]={brief(item)} must be a string")
        return tuple(items)
    if rule.kind == "points":
        return _coerce_points(where, rule, value)
    if rule.kind == "custom":
        return rule.convert(where, value)
    raise AssertionError(rule.kind)


def _as_list(where: str, rule: Rule, value: Any) -> Sequence[Any]:
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        raise LrlabError(f"{where} must be {rule.describe()}, got {brief(value)}")
    return value


def _coerce_points(where: str, rule: Rule, value: Any) -> tuple[tuple[float, float], ...]:
    pairs = []
    for i, pair in enumerate(_as_list(where, rule, value)):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise LrlabError(f"{where}[{i}] must be a [step, lr] pair")
        step = _coerce_number(f"{where}[{i}] step", Rule("real", "", low=0), pair[0])
        lr = _coerce_number(f"{where}[{i}] lr", Rule("real", "", low=0), pair[1])
        pairs.append((step, lr))
    return tuple(pairs)


def _coerce_numbers(where: str, rule: Rule, items: Sequence[Any]) -> tuple[float | int, ...]:
    """A list of numbers, checked in one vectorised pass (tables can hold a value per step)."""
    item_rule = dataclasses.replace(rule, kind=rule.kind[:-1], high=None)
    try:
        array = np.asarray(items, dtype=np.float64)
        valid = array.ndim == 1 and all(_is_number(item) for item in items)
    except (TypeError, ValueError, OverflowError):
        valid = False
    if valid:
        valid = bool(np.all(np.isfinite(array))) and (
            rule.low is None or array.min(initial=rule.low) >= rule.low
        )
        if rule.kind == "integers":
            valid = valid and bool(np.all(array == np.round(array)))
            valid = valid and bool(np.abs(array).max(initial=0) <= MAX_INTEGER)
    if not valid:  # find and name the first bad item
        for index, item in enumerate(items):
            _coerce_number(f"{where}[{index}]", item_rule, item)
        raise LrlabError(f"{where} must be {rule.describe()}")
    return tuple(array.astype(int).tolist() if rule.kind == "integers" else array.tolist())


def _coerce_number(where: str, rule: Rule, value: Any) -> float | int:
    if not _is_number(value):
        raise LrlabError(f"{where}={brief(value)} is not {rule.describe()}")
    try:
        number = float(value)
    except OverflowError:  # an integer beyond float64's range, e.g. 400 digits
        number = math.inf
    if not math.isfinite(number):
        raise LrlabError(f"{where}={brief(value)} must be finite ({rule.describe()})")
    if rule.kind == "integer":
        if not number.is_integer():
            raise LrlabError(f"{where}={brief(value)} is not {rule.describe()}")
        if abs(number) > MAX_INTEGER:
            raise LrlabError(f"{where}={brief(value)} is too large ({_INTEGER_LIMIT})")
        number = int(number)
    too_low = rule.low is not None and (
        number < rule.low or (number == rule.low and not rule.low_inclusive)
    )
    too_high = rule.high is not None and number > rule.high
    if too_low or too_high:
        raise LrlabError(f"{where}={number_text(number)} is out of range ({rule.describe()})")
    return number
