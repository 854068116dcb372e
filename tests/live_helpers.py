"""Loss curves with a known answer for the live-forecast tests: the multi-power law with the
published 25M parameters (Luo et al. 2025) under any schedule, with a little seeded noise."""

from __future__ import annotations

import numpy as np

from lrlab.laws import Law, get_law
from lrlab.runs import Run
from lrlab.schedules import parse

TRUTH = np.array(
    [3.04045406, 0.52468604, 0.50786857, 363.78751622, 2.06560812, 0.58279013, 0.64142257]
)


def truth_law() -> Law:
    """The multi-power law at the published 25M parameters: the curves' generator."""
    law = get_law("mpl")
    law.params_ = TRUTH.copy()
    law.replicates_ = np.empty((0, TRUTH.size))  # no band beyond the noise: the truth
    law.noise_sd_ = 1e-4
    law.band_scale_ = 1.0
    return law


def curve(
    spec: str, total: int, every: int = 20, noise: float = 2e-4, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Logged steps, losses and the per-step LR of a run of `total` steps of schedule `spec`."""
    lr = parse(spec)(np.arange(total))
    steps = np.arange(every, total, every)
    loss = truth_law().predict(lr, steps)
    rng = np.random.default_rng(seed)
    return steps, loss * (1 + noise * rng.standard_normal(steps.size)), lr


def truth_final(spec: str, total: int) -> float:
    """The generator's loss at the last step of `spec` run for `total` steps."""
    lr = parse(spec)(np.arange(total))
    return float(truth_law().predict(lr, np.array([total - 1]))[0])


def run_until(spec: str, total: int, last: int, **options: float) -> Run:
    """The run of `spec` logged up to step `last`."""
    steps, loss, lr = curve(spec, total, **options)
    keep = steps <= last
    return Run("synthetic", lr[: int(steps[keep][-1]) + 1], steps[keep], loss[keep])


def write_csv(path, steps, loss, lr, with_lr: bool = True) -> None:
    """A CSV log ``step,loss[,lr]``."""
    header = "step,loss,lr\n" if with_lr else "step,loss\n"
    rows = [
        f"{s},{l!r},{float(lr[s])!r}\n" if with_lr else f"{s},{l!r}\n"
        for s, l in zip(steps.tolist(), loss.tolist(), strict=True)
    ]
    path.write_text(header + "".join(rows))
