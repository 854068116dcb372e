"""Choosing a law for a set of runs: each law is scored by forecasting runs it was not fitted on.

With several runs every run is held out in turn (leave one run out) and forecast from a fit to
the others; a single run is forecast on its last `HOLDOUT_FRACTION` from a fit to the rest. The
law with the lowest mean PredE forecasts best, which is what a schedule design relies on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from lrlab.errors import LrlabError
from lrlab.laws.metrics import pred_e, worst_e
from lrlab.laws.registry import LAW_NAMES, get_law
from lrlab.runs import Run

HOLDOUT_FRACTION = 0.3  # a single run is scored on its last 30% from a fit to the rest
# The laws a choice is made among: every law but ``auto``, the average of these very laws weighted
# by the same kind of out-of-run error (cross-validating it would refit every law in every fold).
CANDIDATES = tuple(name for name in LAW_NAMES if name != "auto")


def _silent(_: str) -> None:
    pass


def cross_validate(name: str, runs: Sequence[Run]) -> dict[str, dict[str, float]]:
    """PredE and WorstE of law `name` on each run, forecast by a fit that never saw it."""
    scores = {}
    for index, run in enumerate(runs):
        if len(runs) > 1:
            law = get_law(name, bands=False).fit([r for i, r in enumerate(runs) if i != index])
            target = run
        else:  # one run: fit its beginning, forecast its end
            cut = int(run.steps[-1] * (1 - HOLDOUT_FRACTION))
            law = get_law(name, bands=False).fit([run.until(cut)])
            keep = run.steps > cut
            target = dataclasses.replace(run, steps=run.steps[keep], loss=run.loss[keep])
        pred = law.predict_run(target)
        defined = np.isfinite(pred)
        if not np.any(defined):
            raise LrlabError(f"run {run.name!r}: no logged step to score after the LR starts")
        scores[run.name] = {
            "PredE": pred_e(target.loss[defined], pred[defined]),
            "WorstE": worst_e(target.loss[defined], pred[defined]),
        }
    return scores


def choose_law(
    runs: Sequence[Run],
    names: Sequence[str] = CANDIDATES,
    progress: Callable[[str], None] = _silent,
) -> tuple[str, dict[str, dict[str, Any]]]:
    """The law with the lowest mean cross-validated PredE, and every law's scores (a law that
    cannot be fitted to the runs gets ``{"error": message}`` instead)."""
    table: dict[str, dict[str, Any]] = {}
    for name in names:
        progress(f"cross-validating law {name!r} on {len(runs)} run(s)")
        try:
            scores = cross_validate(name, runs)
        except LrlabError as error:  # a law that cannot fit these runs is reported, not chosen
            table[name] = {"error": str(error)}
            continue
        table[name] = law_row(scores)
    return lowest_law(table, "no law could be fitted to these runs"), table


def law_row(scores: dict[str, dict[str, float]]) -> dict[str, Any]:
    """A law's row of a choice's table: its per-run scores and their means."""
    return {
        "runs": scores,
        "PredE": float(np.mean([s["PredE"] for s in scores.values()])),
        "WorstE": float(np.mean([s["WorstE"] for s in scores.values()])),
    }


def lowest_law(table: dict[str, dict[str, Any]], none_fitted: str) -> str:
    """The law of `table` (rows of `law_row`, or ``{"error": ...}``) with the lowest mean
    PredE; `none_fitted` is the error where no law has scores."""
    scored = [name for name in table if "PredE" in table[name]]
    if not scored:
        raise LrlabError(none_fitted)
    return min(scored, key=lambda name: table[name]["PredE"])
