"""lrlab.settings: declaring typed settings, coercing and checking them, building from mappings."""

from __future__ import annotations

import dataclasses

import pytest

from lrlab.errors import LrlabError, SpecError
from lrlab.settings import (
    Rule,
    check_fields,
    choice,
    custom,
    flag,
    from_mapping,
    integer,
    integers,
    mapping,
    real,
    rule_of,
    rules,
    text,
    texts,
)


def _upper(where: str, value: object) -> str:
    if not isinstance(value, str):
        raise LrlabError(f"{where}={value!r} must be a word")
    return value.upper()


@dataclasses.dataclass(frozen=True, kw_only=True)
class Example:
    rate: float = real(help="a rate", low=0.0, high=1.0, low_inclusive=False)
    steps: int = integer(10, help="a step count", low=1)
    mode: str = choice("fast", help="how", choices=("fast", "slow"))
    verbose: bool = flag(False, help="talk more")
    path: str | None = text(None, help="where")
    extra: dict | None = mapping(help="anything")
    names: tuple[str, ...] = texts([], help="some names")
    marks: tuple[int, ...] = integers([], help="some steps", low=1)
    word: str = custom("a", help="a word", noun="a word", convert=_upper)
    plain: int = 0  # not a setting: left alone

    def __post_init__(self) -> None:
        check_fields(self, "example")


def test_fields_are_coerced_in_place_on_a_frozen_dataclass() -> None:
    example = Example(rate=1, steps=3.0, names=["a"], marks=(2.0, 5), extra={"k": 1})
    assert example.rate == 1.0 and isinstance(example.rate, float)
    assert example.steps == 3 and isinstance(example.steps, int)
    assert example.names == ("a",) and example.marks == (2, 5)
    assert example.word == "A" and example.plain == 0


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"rate": 0}, "example: rate=0 is out of range (a number in (0, 1])"),
        ({"rate": "x"}, "example: rate='x' is not a number in (0, 1]"),
        ({"rate": True}, "example: rate=True is not a number in (0, 1]"),
        ({"rate": 0.5, "steps": 0}, "example: steps=0 is out of range (an integer in [1, inf))"),
        ({"rate": 0.5, "steps": None}, "example: steps is required (an integer in [1, inf))"),
        (
            {"rate": 0.5, "mode": "slowly"},
            "example: mode='slowly' is not allowed (one of fast, slow)",
        ),
        ({"rate": 0.5, "verbose": "yes"}, "example: verbose='yes' must be true or false"),
        ({"rate": 0.5, "verbose": 1}, "example: verbose=1 must be true or false"),
        ({"rate": 0.5, "path": 3}, "example: path=3 must be a string"),
        ({"rate": 0.5, "extra": [1]}, "example: extra=[1] must be a mapping"),
        ({"rate": 0.5, "names": "a"}, "example: names must be a list of strings, got 'a'"),
        ({"rate": 0.5, "names": ["a", 1]}, "example: names[1]=1 must be a string"),
        ({"rate": 0.5, "marks": [3, 0]}, "example: marks[1]=0 is out of range"),
        ({"rate": 0.5, "word": 3}, "example: word=3 must be a word"),
    ],
)
def test_bad_values_name_owner_field_and_allowed_values(values: dict, message: str) -> None:
    with pytest.raises(LrlabError) as error:
        Example(**values)
    assert str(error.value) == message or str(error.value).startswith(message)


def test_from_mapping_checks_keys_and_names_the_owner() -> None:
    built = from_mapping(Example, {"rate": 0.5, "mode": "slow"}, "c.yaml: example", plain=7)
    assert (built.rate, built.mode, built.plain) == (0.5, "slow", 7)
    with pytest.raises(LrlabError, match=r"^c\.yaml: example: unknown field 'rat', did you mean"):
        from_mapping(Example, {"rat": 0.5}, "c.yaml: example")
    with pytest.raises(LrlabError, match=r"^c\.yaml: example: rate is required \(a number in"):
        from_mapping(Example, {}, "c.yaml: example")
    # Values are checked under the caller's owner, not only the class's own.
    with pytest.raises(LrlabError, match=r"^c\.yaml: example: steps=0 is out of range"):
        from_mapping(Example, {"rate": 0.5, "steps": 0}, "c.yaml: example")
    with pytest.raises(LrlabError, match="must be a mapping of fields"):
        from_mapping(Example, [1, 2], "c.yaml: example")


def test_the_owner_chooses_the_error_class() -> None:
    with pytest.raises(SpecError):
        from_mapping(Example, {"rate": 2.0}, "spec", error=SpecError)
    with pytest.raises(SpecError):
        from_mapping(Example, {"nope": 1}, "spec", error=SpecError)


def test_rules_describe_each_setting() -> None:
    found = rules(Example)
    assert "plain" not in found and list(found)[:2] == ["rate", "steps"]
    assert found["rate"].describe() == "a number in (0, 1]"
    assert found["word"].describe() == "a word"
    assert found["path"].optional and not found["rate"].optional
    field = next(f for f in dataclasses.fields(Example) if f.name == "plain")
    assert rule_of(field) is None
    assert Rule("integers", "", low=1).describe() == "a list of integers in [1, inf)"


def test_mapping_defaults_are_copied_per_instance() -> None:
    @dataclasses.dataclass(kw_only=True)
    class Options:
        table: dict = mapping({"a": 1}, help="a table")

        def __post_init__(self) -> None:
            check_fields(self, "options")

    first, second = Options(), Options()
    first.table["b"] = 2
    assert second.table == {"a": 1}


def test_from_mapping_keeps_a_cross_field_error_of_the_class() -> None:
    @dataclasses.dataclass(kw_only=True)
    class Span:
        low: int = integer(0, help="first step")
        high: int = integer(1, help="last step")

        def __post_init__(self) -> None:
            check_fields(self, "span")
            if self.high <= self.low:
                raise LrlabError(f"span: high={self.high} must exceed low={self.low}")

    assert from_mapping(Span, {"high": 3.0}, "c.yaml: span").high == 3
    with pytest.raises(LrlabError, match=r"^c\.yaml: span: low=-1 is out of range"):
        from_mapping(Span, {"low": -1}, "c.yaml: span")
    with pytest.raises(SpecError, match=r"^span: high=1 must exceed low=2$"):
        from_mapping(Span, {"low": 2}, "c.yaml: span", error=SpecError)
