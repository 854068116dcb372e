"""Plotting helpers (matplotlib, an optional dependency: ``pip install 'lrlab[plot]'``).

Figures are rendered off-screen (Agg) and written atomically as PNG, into a folder that must
exist (a mistyped path is an error before any drawing, not a tree of new folders). Labels and
titles are shown as given: a ``$`` (file names may hold one) is escaped, since matplotlib reads
text between two of them as math and fails on what is not.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lrlab.atomic import atomic_write_bytes
from lrlab.errors import LrlabError


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
    figure.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    pyplot().close(figure)
    return atomic_write_bytes(path, buffer.getvalue())


@dataclasses.dataclass(frozen=True)
class LossCurve:
    """A predicted loss curve with its band, and the observed loss when there is one."""

    name: str
    steps: np.ndarray
    pred: np.ndarray
    low: np.ndarray
    high: np.ndarray
    loss: np.ndarray | None = None


def plot_loss_curves(
    curves: Sequence[LossCurve],
    path: str | Path,
    *,
    title: str = "",
    zoom_from: float | None = None,
) -> Path:
    """Predicted curves with shaded bands; observed losses as dots in the same colour. With
    `zoom_from`, a second panel shows the steps from there on, where schedules differ most."""
    check_figure_path(path)
    plt = pyplot()
    panels = 1 if zoom_from is None else 2
    figure, axes = plt.subplots(1, panels, figsize=(9 if panels == 1 else 11, 5), squeeze=False)
    for column, axis in enumerate(axes[0]):
        for index, curve in enumerate(curves):
            keep = np.ones(curve.steps.size, bool) if column == 0 else curve.steps >= zoom_from
            color = f"C{index % 10}"
            steps = curve.steps[keep]
            axis.fill_between(
                steps, curve.low[keep], curve.high[keep], color=color, alpha=0.18, linewidth=0
            )
            name = literal(curve.name)
            axis.plot(
                steps, curve.pred[keep], color=color, linewidth=1.4, label=f"{name} predicted"
            )
            if curve.loss is not None:
                axis.plot(
                    steps,
                    curve.loss[keep],
                    ".",
                    color=color,
                    markersize=3,
                    label=f"{name} observed",
                )
        axis.set_xlabel("step")
        axis.set_ylabel("loss")
        axis.grid(alpha=0.3)
        if column == 1:
            axis.set_title(f"from step {zoom_from:.0f}")
    if title:
        figure.suptitle(literal(title))
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure.legend(
        handles,
        labels,
        fontsize=8,
        loc="lower center",
        ncol=2,
        frameon=False,
        bbox_to_anchor=(0.5, -0.02 - 0.03 * ((len(labels) + 1) // 2)),
    )
    return save_figure(figure, path)


def plot_schedules(
    curves: Sequence[tuple[str, np.ndarray]], path: str | Path, *, title: str = ""
) -> Path:
    """One line per ``(label, lr_per_step)`` on shared axes: step against learning rate."""
    check_figure_path(path)
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(9, 4.8))
    for label, lrs in curves:
        axes.plot(np.arange(len(lrs)), lrs, label=literal(label), linewidth=1.6)
    axes.set_xlabel("step")
    axes.set_ylabel("learning rate")
    axes.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    axes.grid(alpha=0.3)
    if title:
        axes.set_title(literal(title))
    # Below the axes: spec strings are long and would hide the curves.
    axes.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), frameon=False)
    return save_figure(figure, path)
