"""The sizes section of the study report (a study across model sizes, `lrlab.study`): the
forecast at the target size with its band, and per size the fitted runs, each size's own optimum,
the target's schedule there and which named schedule wins. Rendered with the page's own helpers
(`lrlab.report.html`), every string from the user escaped."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lrlab.report.html import _band, _e, _image, _number, _table


def render_sizes(sizes: Mapping[str, Any], figure: Path) -> str:
    """The HTML of the summary's ``sizes`` entry (`lrlab.report.study_report`) and its figure."""
    target = sizes["target"]
    best = target["recommended"]
    fitted = ", ".join(
        f"{_e(row['name'])} ({_e(row['params_text'])})"
        for row in sizes["per_size"]
        if row["fitted"]
    )
    held = target["held_at_bound"]
    held_text = (
        f' <span class="bad">Held at its bound there: {_e(", ".join(held))}.</span>' if held else ""
    )
    names = list(sizes["per_size"][0]["comparisons"])
    rows = []
    for row in sizes["per_size"]:
        label = f"<b>{_e(row['name'])}</b>" if row["target"] else _e(row["name"])
        tokens = row["tokens_per_param"]
        wsd = row["wsd_optimum"]
        rows.append(
            [
                f'{label}<br><span class="n">{_e(row["params_text"])}</span>'
                + (" (target)" if row["target"] else ""),
                "–" if tokens is None else f"{tokens:.1f}",
                (
                    f"{_number(row['recommended']['final_loss'])} "
                    f"{_band(row['recommended']['band'])}"
                ),
                (
                    f"{_number(wsd['final_loss'])}<br>cooldown "
                    f'<span class="n">{100 * wsd["cooldown_fraction"]:.0f}%</span> '
                    f"{_e(wsd['decay'])}"
                ),
                *(_number(row["comparisons"][name]["final_loss"]) for name in names),
                _e(row["winner_text"]),
            ]
        )
    return "\n".join(
        [
            "<h2>Across sizes</h2>",
            (
                f"<p>One law ({_e(sizes['law'])}) fitted across the sizes {fitted}, its scale "
                "parameters functions of the parameter count, its shape shared; the "
                "recommendation above is for the target size.</p>"
            ),
            (
                '<div class="card"><div>Target size '
                f"{_e(target['params_text'])} ({_e(target['name'])})</div>"
            ),
            (
                f'<div class="big">forecast final loss {_number(best["final_loss"])} '
                f'<span class="muted">band {_band(best["band"])}</span></div>'
            ),
            f"<p>{_e(target['note'])}{held_text}</p></div>",
            _table(
                [
                    "size",
                    "tokens per parameter",
                    "recommended (for the target)",
                    "best WSD at this size",
                    *names,
                    "lowest named schedule",
                ],
                rows,
                numeric={1, *range(4, 4 + len(names))},
            ),
            f"<p>{_e(sizes['optimum_moves'])}</p>",
            _image(figure, "the recommended schedule forecast at each size"),
        ]
    )
