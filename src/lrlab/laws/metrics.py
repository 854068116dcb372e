"""Accuracy of a predicted loss curve, as defined by Luo et al. (2025, arXiv:2503.12811):

- PredE = mean(|pred - loss| / loss), WorstE = max(|pred - loss| / loss)
- R2 = 1 - sum((loss - pred)^2) / sum((loss - mean(loss))^2)
- MAE = mean(|pred - loss|), RMSE = sqrt(mean((pred - loss)^2))

and of a band: `coverage` (the fraction of points inside it) and `relative_widths`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from lrlab.errors import LrlabError

METRICS = ("PredE", "WorstE", "R2", "MAE", "RMSE")


def _pair(observed: np.ndarray, predicted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    observed = np.asarray(observed, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.float64)
    if observed.shape != predicted.shape or observed.ndim != 1 or observed.size == 0:
        raise LrlabError(
            f"metrics need two non-empty curves of the same length, got {observed.shape} and "
            f"{predicted.shape}"
        )
    return observed, predicted


def pred_e(observed: np.ndarray, predicted: np.ndarray) -> float:
    """Mean relative error."""
    observed, predicted = _pair(observed, predicted)
    return float(np.mean(np.abs(predicted - observed) / observed))


def worst_e(observed: np.ndarray, predicted: np.ndarray) -> float:
    """Largest relative error."""
    observed, predicted = _pair(observed, predicted)
    return float(np.max(np.abs(predicted - observed) / observed))


def r2(observed: np.ndarray, predicted: np.ndarray) -> float:
    """Coefficient of determination (NaN for a flat observed curve)."""
    observed, predicted = _pair(observed, predicted)
    total = np.sum((observed - observed.mean()) ** 2)
    if total == 0:
        return float("nan")
    return float(1.0 - np.sum((observed - predicted) ** 2) / total)


def mae(observed: np.ndarray, predicted: np.ndarray) -> float:
    """Mean absolute error."""
    observed, predicted = _pair(observed, predicted)
    return float(np.mean(np.abs(predicted - observed)))


def rmse(observed: np.ndarray, predicted: np.ndarray) -> float:
    """Root-mean-square error."""
    observed, predicted = _pair(observed, predicted)
    return float(np.sqrt(np.mean((predicted - observed) ** 2)))


_FUNCTIONS = {"PredE": pred_e, "WorstE": worst_e, "R2": r2, "MAE": mae, "RMSE": rmse}


def evaluate(observed: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """All metrics of one predicted curve."""
    return {name: _FUNCTIONS[name](observed, predicted) for name in METRICS}


def mean_metrics(per_curve: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """The average of each metric over several curves (as the published tables report)."""
    rows = list(per_curve)
    if not rows:
        raise LrlabError("no curves to average metrics over")
    return {name: float(np.mean([row[name] for row in rows])) for name in METRICS}


def coverage(observed: np.ndarray, low: np.ndarray, high: np.ndarray) -> float:
    """Fraction of observed points inside the band ``[low, high]``."""
    observed = np.asarray(observed, dtype=np.float64)
    return float(np.mean((observed >= low) & (observed <= high)))


def relative_widths(predicted: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Each point's band width relative to its prediction, ``(high - low) / pred``: what a band
    that covers must be reported beside, since any coverage can be bought with width."""
    predicted = np.asarray(predicted, dtype=np.float64)
    return (np.asarray(high, dtype=np.float64) - np.asarray(low, dtype=np.float64)) / predicted
