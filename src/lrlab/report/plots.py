"""Plotting helpers (matplotlib, an optional dependency: ``pip install 'lrlab[plot]'``).

Figures are rendered off-screen (Agg) and written atomically as PNG, into a folder that must
exist (a mistyped path is an error before any drawing, not a tree of new folders). Labels and
titles are shown as given: a ``$`` (file names may hold one) is escaped, since matplotlib reads
text between two of them as math and fails on what is not.

Figures are read on a laptop and on a phone (the study report scales them to the page): they are
narrow (panels stacked, legends below), with few step ticks written short (``32.5k``). One
schedule keeps one `Style` in every figure of a report (`assign_styles`); lines of the same shape
stay visible on top of each other (each one drawn thinner than the one before, and dashed
differently).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import itertools
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lrlab.atomic import atomic_write_bytes
from lrlab.errors import LrlabError
from lrlab.runs.model import Run

# matplotlib's ten default colours ("tab10"), named here so that a style is a plain value.
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
# Dash patterns (on, off, ... in line widths); None is solid. Four patterns against ten colours:
# the first twenty names all differ in colour or dash.
DASHES: tuple[tuple[float, ...] | None, ...] = (None, (4.0, 1.5), (1.2, 1.2), (5.0, 1.5, 1.2, 1.5))
FITTED = "#1d2733"  # the fitted line over a run's own coloured dots: dark, to tell them apart
WIDTH = 6.4  # inches: about 680 px in the report on a laptop, and the width of a phone
RC = {
    "font.size": 11,
    "axes.titlesize": 11,
    "legend.fontsize": 10,
    "figure.titlesize": 12,
    "axes.grid": True,
    "grid.alpha": 0.3,
}
# Full-range panels start their y-axis where the curves are after this share of the steps: the
# first steps' high loss would otherwise squash every later difference into one line.
SETTLED = 0.1
# Zoom panels show this last share of the steps, where the schedules decay and differ most.
ZOOM_SHARE = 0.3


def pyplot() -> Any:
    """matplotlib.pyplot on the off-screen backend, or a clear error saying how to install it."""
    try:
        import matplotlib
    except ModuleNotFoundError:
        raise LrlabError("plotting needs matplotlib: pip install 'lrlab[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def literal(text: str) -> str:
    """`text` as matplotlib shows it verbatim: dollar signs escaped (no math text)."""
    return text.replace("$", r"\$")


def check_figure_path(path: str | Path) -> Path:
    """`path` if a figure can be written there: its folder exists and it is not a folder."""
    path = Path(path)
    if path.is_dir():
        raise LrlabError(f"{path}: is a folder; give the figure a file name")
    if not path.parent.is_dir():
        raise LrlabError(f"{path}: folder {path.parent} does not exist")
    return path


def save_figure(figure: Any, path: str | Path) -> Path:
    """Write a figure to a PNG file atomically and close it."""
    path = check_figure_path(path)
    buffer = io.BytesIO()
    # 150 dpi: sharp when the report shows the figure at its 6.4 inches on a high-density screen.
    figure.savefig(buffer, format="png", dpi=150, bbox_inches="tight")
    pyplot().close(figure)
    return atomic_write_bytes(path, buffer.getvalue())


@dataclasses.dataclass(frozen=True)
class Style:
    """How one schedule (or run) is drawn: its colour and dash pattern (None: solid)."""

    color: str
    dashes: tuple[float, ...] | None = None


def assign_styles(names: Iterable[str]) -> dict[str, Style]:
    """A style for each distinct name, in order of first appearance. Give every figure of a
    report the same mapping, so that a schedule has one colour throughout."""
    styles: dict[str, Style] = {}
    for name in names:
        if name not in styles:
            index = len(styles)
            styles[name] = Style(PALETTE[index % len(PALETTE)], DASHES[index % len(DASHES)])
    return styles


def _styles_for(names: Sequence[str], styles: Mapping[str, Style] | None) -> list[Style]:
    """The style of each name: from `styles` where it has one, else the next one not in use."""
    given = dict(styles or {})
    every = list(assign_styles(str(i) for i in range(len(PALETTE) * len(DASHES))).values())
    spare = itertools.cycle([style for style in every if style not in given.values()] or every)
    return [given[name] if name in given else next(spare) for name in names]


def _line(style: Style, order: int) -> dict[str, Any]:
    """Line properties for the `order`-th line of a panel: each later line is drawn thinner and
    on top, so a line of the same shape as an earlier one shows inside it, not hidden by it."""
    properties: dict[str, Any] = {
        "color": style.color,
        "linewidth": max(1.2, 2.6 - 0.35 * order),
        "zorder": 3 + order,
    }
    if style.dashes is not None:
        properties["dashes"] = style.dashes
    return properties


def step_label(value: float, scale: float | None = None) -> str:
    """A step count as a short tick label, in thousands (``32.5k``) or millions (``1.5M``) when
    `scale` (the largest step on the axis; by default `value`) reaches 10^4 or 10^6: the labels of
    a zoom on steps 30000 to 37500 ran together, and one axis writes all its steps alike."""
    if value == 0:
        return "0"
    scale = abs(value) if scale is None else abs(scale)
    if scale >= 1e6:
        return f"{value / 1e6:g}M"
    if scale >= 1e4:
        return f"{value / 1e3:g}k"
    return f"{value:g}"


def _step_axis(axis: Any) -> None:
    """Few, short step ticks on the x-axis."""
    from matplotlib.ticker import Formatter, MaxNLocator

    class StepFormatter(Formatter):
        def __call__(self, value: float, position: Any = None) -> str:
            return step_label(value)

        def format_ticks(self, values: Any) -> list[str]:
            scale = max((abs(value) for value in values), default=0.0)
            return [step_label(value, scale) for value in values]

    axis.xaxis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10], integer=True))
    axis.xaxis.set_major_formatter(StepFormatter())
    axis.set_xlabel("step")


def _loss_axis(axis: Any, label: str) -> None:
    """A loss y-axis with its name and plain tick values (no offset: "+3.2" confused readers)."""
    from matplotlib.ticker import MaxNLocator, ScalarFormatter

    axis.yaxis.set_major_locator(MaxNLocator(nbins=6))
    axis.yaxis.set_major_formatter(ScalarFormatter(useOffset=False))
    axis.set_ylabel(literal(label))


# Words that mark a log's loss column (or, when the column is plain ``loss``, its file) as the
# validation loss; any other loss is the training loss.
_VALIDATION = {"val", "valid", "validation", "eval", "evaluation", "heldout"}


def _words(text: str) -> set[str]:
    return set(re.split(r"[^a-z]+", text.lower()))


def loss_label(runs: Iterable[Run]) -> str:
    """What the loss axes show, from the runs' loss column (``loss_column`` in their metadata, as
    `lrlab.runs.read_run` records it) and file: a column naming validation (``val/loss``,
    ``eval_loss``) or a plain ``loss`` column in a file that does (the wind tunnel's
    ``eval.csv``) is the validation loss; any other the training loss (trainers log that as plain
    ``loss``: Hugging Face's ``loss`` beside ``eval_loss``). A column named otherwise than plain
    ``loss`` is named too. Runs that differ get every name, joined by " / "."""
    labels = []
    for run in runs:
        column = run.metadata.get("loss_column")
        hint = _words(str(column or ""))
        if column in (None, "loss"):
            hint |= _words(Path(run.source).stem)
        label = "validation loss" if hint & _VALIDATION else "training loss"
        labels.append(label if column in (None, "loss") else f'{label} ("{column}")')
    return " / ".join(dict.fromkeys(labels)) or "loss"


@contextlib.contextmanager
def figure_panels(rows: int, columns: int, height: float, width: float = WIDTH) -> Iterator[Any]:
    """A figure of `rows` x `columns` panels, each `height` inches high, in the report's type
    sizes (the settings stay in force until it is saved, which lays out its text). Closed if
    drawing it fails: pyplot would keep it otherwise."""
    plt = pyplot()
    with plt.rc_context(RC):
        figure, axes = plt.subplots(
            rows, columns, figsize=(width, height * rows), squeeze=False, layout="constrained"
        )
        try:
            yield figure, axes
        except BaseException:
            plt.close(figure)
            raise


@dataclasses.dataclass(frozen=True)
class LossCurve:
    """A predicted loss curve with its band, and the observed loss when there is one."""

    name: str
    steps: np.ndarray
    pred: np.ndarray
    low: np.ndarray
    high: np.ndarray
    loss: np.ndarray | None = None


def _settled_top(curves: Sequence[LossCurve], start: float, stop: float) -> float | None:
    """The highest value (prediction, band or observation) at steps from `start` to `stop`."""
    highs = []
    for curve in curves:
        keep = (curve.steps >= start) & (curve.steps <= stop)
        for values in (curve.pred, curve.high, curve.loss):
            if values is not None and np.any(np.isfinite(values[keep])):
                highs.append(float(np.nanmax(values[keep])))
    return max(highs) if highs else None


def _draw_curves(
    axis: Any,
    curves: Sequence[LossCurve],
    styles: Sequence[Style],
    start: float = -np.inf,
    line_color: str | None = None,
) -> list[tuple[Any, str]]:
    """Bands, predicted lines and observed dots of `curves` from step `start` on (the lines in
    `line_color` if given, else each curve's colour); returns a legend handle and label per curve
    (line and dots together)."""
    legend = []
    for order, (curve, style) in enumerate(zip(curves, styles, strict=True)):
        keep = curve.steps >= start
        steps = curve.steps[keep]
        axis.fill_between(
            steps, curve.low[keep], curve.high[keep], color=style.color, alpha=0.15, linewidth=0
        )
        if curve.loss is None:
            (line,) = axis.plot(steps, curve.pred[keep], **_line(style, order))
            legend.append((line, literal(curve.name)))
            continue
        # Like lines, each later curve's dots are smaller and on top (runs that share their first
        # steps log the same losses there), all under the lines, which are solid (dashed, they
        # would read as more dots) and thinner for each later curve.
        (dots,) = axis.plot(
            steps,
            curve.loss[keep],
            "o",
            color=style.color,
            markersize=max(1.4, 2.8 - 0.9 * order),
            zorder=2 + order / 100,
        )
        (line,) = axis.plot(
            steps,
            curve.pred[keep],
            color=line_color or style.color,
            linewidth=max(0.9, 1.8 - 0.45 * order),
            zorder=3 + order,
        )
        legend.append(((line, dots), literal(curve.name)))
    return legend


def _legend_below(figure: Any, legend: list[tuple[Any, str]]) -> None:
    """One legend for the whole figure, under its panels (long names would hide the curves)."""
    from matplotlib.legend_handler import HandlerTuple

    handles, labels = zip(*legend, strict=True) if legend else ((), ())
    figure.legend(
        handles,
        labels,
        loc="outside lower center",
        ncol=2 if len(labels) > 1 else 1,
        frameon=False,
        handlelength=3.2,
        handler_map={tuple: HandlerTuple(ndivide=None)},
    )


def plot_loss_curves(
    curves: Sequence[LossCurve],
    path: str | Path,
    *,
    title: str = "",
    zoom_from: float | None = None,
    loss: str = "loss",
    styles: Mapping[str, Style] | None = None,
) -> Path:
    """Predicted curves with shaded bands on shared axes; observed losses as dots in the same
    colour. The y-axis is cut above the highest value after the first `SETTLED` share of the
    steps. With `zoom_from`, a second panel below shows the steps from there on, where the
    schedules differ most. `loss` names the loss (the y-axis); `styles` maps curve names to their
    styles (`assign_styles`), the others get the next free ones."""
    check_figure_path(path)
    drawn = _styles_for([curve.name for curve in curves], styles)
    last = max((float(curve.steps[-1]) for curve in curves if curve.steps.size), default=0.0)
    first = min((float(curve.steps[0]) for curve in curves if curve.steps.size), default=0.0)
    rows = 1 if zoom_from is None else 2
    with figure_panels(rows, 1, 3.6 if rows == 1 else 3.3) as (figure, axes):
        legend = _draw_curves(axes[0][0], curves, drawn)
        top = _settled_top(curves, first + SETTLED * (last - first), last)
        if top is not None:
            bottom, high = axes[0][0].get_ylim()
            if top < high:
                axes[0][0].set_ylim(bottom, top + 0.08 * (top - bottom))
        if zoom_from is not None:
            _draw_curves(axes[1][0], curves, drawn, start=zoom_from)
            axes[1][0].set_title(f"from step {step_label(zoom_from)}")
            axes[0][0].axvline(zoom_from, color="#5c6b7a", linewidth=0.8, linestyle=":")
        for (axis,) in axes:
            _step_axis(axis)
            _loss_axis(axis, loss)
        if title:
            figure.suptitle(literal(title))
        _legend_below(figure, legend)
        return save_figure(figure, path)


def plot_run_fits(
    curves: Sequence[LossCurve],
    path: str | Path,
    *,
    title: str = "",
    loss: str = "loss",
    styles: Mapping[str, Style] | None = None,
) -> Path:
    """One small panel per run: its observed loss (dots) and the fitted curve with its band,
    each on its own scale from `SETTLED` of its steps on, where a misfit shows (on shared axes
    the runs' first steps squash all of them into one line)."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    check_figure_path(path)
    if not curves:
        raise LrlabError("no runs to plot")
    drawn = _styles_for([curve.name for curve in curves], styles)
    columns = 1 if len(curves) <= 4 else 2
    rows = -(-len(curves) // columns)
    with figure_panels(rows, columns, 2.4, WIDTH * (1 if columns == 1 else 1.5)) as (figure, axes):
        for index, axis in enumerate(axes.flat):
            if index >= len(curves):
                axis.set_visible(False)
                continue
            curve = curves[index]
            first, last = float(curve.steps[0]), float(curve.steps[-1])
            start = first + SETTLED * (last - first)
            _draw_curves(axis, [curve], [drawn[index]], start=start, line_color=FITTED)
            axis.set_title(literal(curve.name), loc="left")
            _step_axis(axis)
            _loss_axis(axis, loss if index % columns == 0 else "")
        if title:
            figure.suptitle(literal(title))
        key = [
            (Line2D([], [], color=FITTED, linewidth=1.5), "fitted"),
            (Line2D([], [], color="#444", marker="o", linestyle="", markersize=3), "observed"),
            (Patch(color="#444", alpha=0.15), "band"),
        ]
        figure.legend(*zip(*key, strict=True), loc="outside lower center", ncol=3, frameon=False)
        return save_figure(figure, path)


def plot_schedules(
    curves: Sequence[tuple[str, np.ndarray]],
    path: str | Path,
    *,
    title: str = "",
    styles: Mapping[str, Style] | None = None,
) -> Path:
    """One line per ``(label, lr_per_step)`` on shared axes: step against learning rate.
    `styles` maps labels to their styles (`assign_styles`), the others get the next free ones."""
    check_figure_path(path)
    drawn = _styles_for([label for label, _ in curves], styles)
    with figure_panels(1, 1, 3.8) as (figure, axes):
        axis = axes[0][0]
        legend = []
        for order, ((label, lrs), style) in enumerate(zip(curves, drawn, strict=True)):
            (line,) = axis.plot(np.arange(len(lrs)), lrs, **_line(style, order))
            legend.append((line, literal(label)))
        _step_axis(axis)
        axis.set_ylabel("learning rate")
        axis.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
        if title:
            axis.set_title(literal(title))
        _legend_below(figure, legend)
        return save_figure(figure, path)
