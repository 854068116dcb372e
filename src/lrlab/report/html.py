"""The study report: one self-contained HTML file (plots embedded as PNG data), readable on a
laptop and on a phone (420 px) without scrolling the page sideways: numbers never wrap inside
themselves, a table too wide for the screen scrolls in its own box, figures shrink to fit.

Every string that comes from the user or their files (run names, paths, specs, metadata) goes
through `html.escape`; the page has no script.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0;
       color: #1d2733; background: #f6f7f9; line-height: 1.45; }
main { max-width: 980px; margin: 0 auto; padding: 24px 20px 48px; }
h1 { font-size: 1.6em; margin: 0 0 4px; overflow-wrap: anywhere; }
h2 { font-size: 1.2em; margin: 32px 0 8px; border-bottom: 1px solid #d9dee5; padding-bottom: 4px; }
.muted { color: #5c6b7a; font-size: 0.9em; }
.card { background: #fff; border: 1px solid #d9dee5; border-radius: 8px; padding: 14px 18px;
        margin: 12px 0; }
.big { font-size: 1.35em; font-weight: 600; }
.good { color: #1a7f37; } .bad { color: #b42318; }
code, pre { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size: 0.85em; }
pre { background: #f0f2f5; padding: 8px 10px; border-radius: 6px; white-space: pre-wrap;
      overflow-wrap: anywhere; word-break: break-word; margin: 6px 0; }
.scroll { overflow-x: auto; margin: 8px 0; }
table { border-collapse: collapse; width: 100%; background: #fff; font-size: 0.92em; }
th, td { border: 1px solid #d9dee5; padding: 5px 8px; text-align: left; vertical-align: top; }
th { background: #eef1f5; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num, .n { white-space: nowrap; }
td code, .name { overflow-wrap: anywhere; }
img { display: block; width: 100%; max-width: 720px; height: auto; margin: 8px auto;
      background: #fff; border: 1px solid #d9dee5; border-radius: 6px; box-sizing: border-box; }
@media (max-width: 600px) {
  main { padding: 16px 8px 32px; }
  h1 { font-size: 1.35em; }
  .card { padding: 10px 10px; }
  table { font-size: 0.76em; }
  th, td { padding: 3px; }
}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _number(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    return f"{float(value):.{digits}f}"


def _band(values: Iterable[float]) -> str:
    """``[low, high]``, which may wrap between its numbers but never inside one."""
    low, high = values
    return f'<span class="n">[{_number(low)},</span> <span class="n">{_number(high)}]</span>'


def _table(header: list[str], rows: list[list[str]], numeric: set[int] = frozenset()) -> str:
    head = "".join(f"<th>{_e(cell)}</th>" for cell in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{cell}</td>' if i in numeric else f"<td>{cell}</td>"
            for i, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    # In its own box: a table wider than a phone's screen scrolls there, not the whole page.
    return (
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def _image(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def _simple_equivalent(simple: Mapping[str, Any] | None) -> str:
    """Beside a free-form recommendation, the nearest WSD or two-stage spec and its forecast
    (`lrlab.design.simple_family`); nothing where the recommendation is simple already."""
    if not simple:
        return ""
    return (
        f"<p>Nearest simple schedule ({_e(simple['fitted_by'])}): <code>{_e(simple['text'])}"
        f"</code>, forecast final loss {_number(simple['final_loss'])} "
        f'<span class="muted">band {_band(simple["band"])}</span></p>'
    )


def render_report(
    summary: Mapping[str, Any], figures: Mapping[str, Path], sections: Sequence[str] = ()
) -> str:
    """The HTML page for a study summary (see `lrlab.report.study_report`) and its figure files;
    `sections` (HTML, escaped by their makers) follow the recommendation and its checks."""
    best = summary["recommended"]
    peak = f"{summary['peak']:g}"
    parts = [
        f"<h1>{_e(summary['title'])}</h1>",
        (
            f'<p class="muted">lrlab {_e(summary["lrlab"])} · {_e(summary["created"])} · budget '
            f"{_e(summary['budget'])} steps · peak LR {_e(peak)} · warmup "
            f"{_e(summary['warmup'])} steps · law <b>{_e(describe_law(summary))}</b></p>"
        ),
        '<div class="card"><div>Recommended schedule</div>',
        (
            f'<div class="big">forecast final loss {_number(best["final_loss"])} '
            f'<span class="muted">band {_band(best["band"])}</span></div>'
        ),
        f"<p>{_e(best['shape'])}.</p>",
        f'<p class="muted">Design: {_e(summary.get("trust_region") or "no rule recorded")}.</p>',
        (
            f"<details><summary>lrlab spec (for <code>--schedule</code>, the adapters and the wind "
            f"tunnel)</summary><pre>{_e(best['text'])}</pre></details>"
        ),
        _simple_equivalent(summary.get("simple_equivalent")),
        _table(
            ["compared with", "forecast final loss", "band", "recommended gains"],
            [
                [
                    _e(name),
                    _number(c["final_loss"]),
                    _band(c["band"]),
                    # Coloured only where the band of the difference excludes 0 (study_report).
                    (
                        f'<span class="{"good" if c["gain"] > 0 else "bad"}">'
                        f"{_e(c['gain_text'])}</span>"
                        if c["separated"]
                        else _e(c["gain_text"])
                    ),
                ]
                for name, c in summary["comparisons"].items()
            ],
            numeric={1},
        ),
        "</div>",
    ]
    if summary.get("verification"):
        parts += [
            "<h2>Forecasts checked by training</h2>",
            "<p>These schedules were trained after the forecast was made.</p>",
            *(f"<p><b>{_e(v['text'])}</b></p>" for v in summary.get("verdicts", [])),
            _table(
                ["schedule", "forecast", "band", "measured", "error", "inside band"],
                [
                    [
                        _e(v["name"]),
                        _number(v["final_loss"]),
                        _band(v["band"]),
                        _number(v["measured"]),
                        f"{v['error']:+.4f}",
                        '<span class="good">yes</span>'
                        if v["inside_band"]
                        else '<span class="bad">no</span>',
                    ]
                    for v in summary["verification"]
                ],
                numeric={1, 3, 4},
            ),
        ]
        if "verification" in figures:
            parts.append(_image(figures["verification"], "forecast vs measured"))
    parts += [
        *sections,
        "<h2>Schedules</h2>",
        _image(figures["schedules"], "learning-rate schedules"),
        "<h2>Forecast over the budget</h2>",
        (
            f"<p>Each line is law {_e(summary['chosen_law'])}'s forecast; the shaded band is its "
            "calibrated band.</p>"
        ),
        _image(figures["forecast"], "forecast loss curves"),
        "<h2>Which law</h2>",
        (
            f"<p>The forecasts are law {_e(describe_law(summary))}'s, "
            f"{_e(summary['law_choice'] or 'the law given')}. Each single law forecast each run "
            "from a fit that never saw it (leave one run out; a single run is forecast on its "
            "last 30% from its first 70%):</p>"
        ),
        _law_table(summary),
        "<h2>Fit to the runs</h2>",
        _image(figures["fit"], "observed vs fitted loss"),
        _table(
            ["run and its file", "last step", "final loss", "fit PredE", "band coverage"],
            [
                [
                    # The file under the name, not in a column of its own: a path is long, and
                    # beside the numbers it would squeeze them off a phone's screen.
                    f'<span class="name">{_e(r["name"])}</span><br><code>{_e(r["source"])}</code>',
                    _e(r["last_step"]),
                    _number(r["final_loss"]),
                    _number(r["fit_PredE"], 5),
                    _number(r["band_coverage"], 2),
                ]
                for r in summary["runs"]
            ],
            numeric={1, 2, 3, 4},
        ),
        (
            '<p class="muted">Parameters, bands and every number on this page are in '
            "<code>summary.json</code> beside this file.</p>"
        ),
    ]
    body = "\n".join(parts)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(summary['title'])}</title><style>{_STYLE}</style></head>"
        f"<body><main>\n{body}\n</main></body></html>\n"
    )


def describe_law(summary: Mapping[str, Any]) -> str:
    """The study's law in words: its name, and for an average its members with their weights
    ("auto (average of momentum 0.33, mpl 0.33, lrlab 0.33)")."""
    name, weights = summary["chosen_law"], summary["law_weights"]
    if list(weights) == [name]:
        return name
    members = ", ".join(f"{member} {weight:.2f}" for member, weight in weights.items())
    return f"{name} (average of {members})"


def _law_table(summary: Mapping[str, Any]) -> str:
    """Every single law's cross-validation scores, the law used or the members of the average
    used marked as such."""
    weights = summary["law_weights"]
    rows = []
    for name, scores in summary["laws"].items():
        chosen = ""
        if name == summary["chosen_law"]:
            chosen = " (chosen)"
        elif name in weights:
            chosen = f" (in the average, weight {weights[name]:.2f})"
        if "error" in scores:
            rows.append([f"{_e(name)}{chosen}", "–", "–", _e(scores["error"])])
            continue
        per_run = "; ".join(
            f'{_e(run)}: <span class="n">{s["PredE"]:.5f}</span>'
            for run, s in scores["runs"].items()
        )
        rows.append(
            [
                f"<b>{_e(name)}</b>{chosen}" if chosen else _e(name),
                _number(scores["PredE"], 5),
                _number(scores["WorstE"], 5),
                per_run,
            ]
        )
    return _table(
        ["law", "mean PredE", "mean WorstE", "PredE per held-out run"], rows, numeric={1, 2}
    )
