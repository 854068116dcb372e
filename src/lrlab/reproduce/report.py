"""The claims page, ``claims.html``: one self-contained file (figures embedded as PNG data), one
section per claim: the claim as the paper states it, the figure, the measured numbers, the
verdict and the exact command that reproduces it. It is laid out like the study report (its
style sheet and helpers, `lrlab.report.html`): readable on a phone, no script, every string
escaped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lrlab import __version__
from lrlab.report.html import _STYLE, _e, _image, _table

_VERDICT_CLASS = {"holds": "good", "does not hold": "bad", "inconclusive": "unsure"}
_EXTRA_STYLE = """
.unsure { color: #8a5a00; }
.verdict { font-size: 1.15em; font-weight: 600; }
ul.parts { margin: 6px 0; padding-left: 20px; }
"""


def _flat(numbers: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Nested numbers as ``(dotted.name, value)`` rows; lists of numbers stay one value."""
    rows: list[tuple[str, Any]] = []
    for key, value in numbers.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            rows.extend(_flat(value, f"{name}."))
        else:
            rows.append((name, value))
    return rows


def _value(value: Any) -> str:
    """A measured value as the table shows it: floats to 4 significant places."""
    if isinstance(value, bool) or value is None:
        return _e(value)
    if isinstance(value, float):
        return _e(f"{value:.4g}")
    if isinstance(value, list) and all(isinstance(item, float) for item in value):
        return _e("[" + ", ".join(f"{item:.4g}" for item in value) + "]")
    if isinstance(value, (list, dict)):
        return _e(json.dumps(value))
    return _e(value)


def _parts(numbers: Mapping[str, Any]) -> str:
    """The verdict of each part of a claim (``numbers["parts"]``), as a list."""
    parts = numbers.get("parts")
    if not isinstance(parts, Mapping) or not parts:
        return ""
    items = []
    for name, part in parts.items():
        if not isinstance(part, Mapping):
            continue
        verdict = str(part.get("verdict", ""))
        css = _VERDICT_CLASS.get(verdict, "")
        items.append(
            f'<li><b>{_e(name)}</b>: <span class="{css}">{_e(verdict)}</span>'
            f" — {_e(part.get('rule', ''))}</li>"
        )
    return f'<ul class="parts">{"".join(items)}</ul>'


def _section(record: Mapping[str, Any], out: Path) -> str:
    verdict = str(record["verdict"])
    figures = "".join(
        _image(out / name, f"figure of claim {record['number']}")
        for name in record["figures"]
        if (out / name).is_file()
    )
    numbers = {key: value for key, value in record["numbers"].items() if key != "parts"}
    table = _table(
        ["quantity", "measured"],
        [[f"<code>{_e(name)}</code>", _value(value)] for name, value in _flat(numbers)],
        numeric={1},
    )
    cost = (
        f"{record['seconds']:.0f} s; runs trained {record['runs_trained']}, reused "
        f"{record['runs_reused']}; {record['train_cpu_seconds']:.0f} s of training)"
    )
    return "".join(
        [
            f'<h2 id="{_e(record["name"])}">{record["number"]}. {_e(record["title"])}</h2>',
            f'<p class="muted">{_e(record["paper"])}</p>',
            f'<div class="card"><b>The claim:</b> {_e(record["statement"])}</div>',
            (
                f'<p class="verdict">Verdict at the {_e(record["scale"])} scale: '
                f'<span class="{_VERDICT_CLASS.get(verdict, "")}">{_e(verdict)}</span></p>'
            ),
            f"<p>{_e(record['summary'])}</p>",
            _parts(record["numbers"]),
            figures,
            f"<p><b>Against the paper:</b> {_e(record['comparison'])}</p>",
            f"<details><summary>Measured numbers</summary>{table}</details>",
            f'<p class="muted">Scales: {_e(record["scales"])}</p>',
            (
                f"<p>Reproduce: <code>{_e(record['command'])}</code> "
                f'<span class="muted">({_e(cost)})</span></p>'
            ),
        ]
    )


def render_page(records: Sequence[Mapping[str, Any]], out: Path) -> str:
    """The HTML page of the claim `records` (as in ``claims.json``), figures read from `out`."""
    rows = [
        [
            f'<a href="#{_e(record["name"])}">{record["number"]}. {_e(record["title"])}</a>',
            (
                f'<span class="{_VERDICT_CLASS.get(str(record["verdict"]), "")}">'
                f"{_e(record['verdict'])}</span>"
            ),
            _e(record["scale"]),
        ]
        for record in records
    ]
    body = "".join(
        [
            "<h1>Published schedule claims, checked in the wind tunnel</h1>",
            (
                f'<p class="muted">lrlab {_e(__version__)} · each verdict compares a measured '
                "difference with the run-to-run noise measured alongside it; a verdict holds at "
                "the scale it was measured at, not beyond it.</p>"
            ),
            _table(["claim", "verdict", "scale"], rows),
            *(_section(record, out) for record in records),
        ]
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>lrlab reproduce</title><style>{_STYLE}{_EXTRA_STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )
