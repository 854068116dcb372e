"""The wind-tunnel setup of each scale, and the noise rule the schedule claims judge by.

A scale fixes the model, data and batch of every run, the peak LR and warmup the schedule claims
use, and their base budget (`Setup.unit` steps; a claim trains multiples of it). ``test`` trains
in seconds, for the test suite; ``tiny`` is the model of `lrlab study` (0.1M parameters, byte
level, on the Python standard library's source), trained on 2 CPU cores; ``small`` is a few
times wider, deeper and longer, for a many-core machine; ``full`` is for one GPU.

Noise: two runs of the same schedule with other seeds (weights and data order) end apart; a
difference between two schedules is a finding only beyond that. `paired_noise` measures it from
the paired differences over seeds, `scatter` from the wiggle of one curve about its smooth.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from lrlab.errors import LrlabError
from lrlab.reproduce.claim import TunnelRunSpec
from lrlab.runs import Run

# How many standard deviations a difference must exceed to count: about 95% two-sided.
Z = 2.0


@dataclasses.dataclass(frozen=True)
class Setup:
    """One scale's runs: the tunnel sections every run shares, the peak LR and warmup steps of
    the schedule claims, their base budget `unit` (steps) and the seeds measuring noise."""

    model: dict[str, Any]
    data: dict[str, Any]
    train: dict[str, Any]
    peak: float
    warmup: int
    unit: int
    seeds: int


SETUPS = {
    "test": Setup(
        model={"d_model": 16, "n_layers": 1, "n_heads": 2},
        data={"corpus": "english", "max_bytes": 60_000},
        train={
            "batch_size": 4,
            "seq_len": 16,
            "eval_interval": 2,
            "eval_batches": 2,
            "checkpoint_interval": 10,
            "threads": 1,
        },
        peak=3e-3,
        warmup=2,
        unit=10,
        seeds=2,
    ),
    # The study's default model and data: its runs of 800 steps take about 10 s each on a quiet
    # core.
    "tiny": Setup(
        model={"d_model": 64, "n_layers": 2, "n_heads": 4},
        data={"corpus": "stdlib", "max_bytes": 8_000_000},
        train={
            "batch_size": 16,
            "seq_len": 64,
            "eval_interval": 10,
            "eval_batches": 4,
            "checkpoint_interval": 100,
        },
        peak=3e-3,
        warmup=40,
        unit=300,
        seeds=3,
    ),
    "small": Setup(
        model={"d_model": 128, "n_layers": 4, "n_heads": 4},
        data={"corpus": "stdlib", "max_bytes": 32_000_000},
        train={
            "batch_size": 32,
            "seq_len": 128,
            "eval_interval": 20,
            "eval_batches": 8,
            "checkpoint_interval": 250,
        },
        peak=2e-3,
        warmup=100,
        unit=1000,
        seeds=3,
    ),
    "full": Setup(
        model={"d_model": 512, "n_layers": 8, "n_heads": 8},
        data={"corpus": "stdlib"},
        train={
            "batch_size": 64,
            "seq_len": 512,
            "eval_interval": 100,
            "eval_batches": 16,
            "checkpoint_interval": 1000,
            "device": "cuda",
        },
        peak=1e-3,
        warmup=500,
        unit=4000,
        seeds=3,
    ),
}


def setup(scale: str) -> Setup:
    """The `Setup` of `scale`."""
    if scale not in SETUPS:
        raise LrlabError(f"scale {scale!r}: choose one of {', '.join(SETUPS)}")
    return SETUPS[scale]


def tunnel(scale: str, schedule: str, steps: int, seed: int = 0, **train: Any) -> dict[str, Any]:
    """The tunnel config mapping of a run of `scale`: `schedule` (a spec) for `steps` steps with
    `seed`, progress in lines; `train` fields (``keep_steps``, ``branch_from``) added."""
    base = setup(scale)
    return {
        "model": dict(base.model),
        "data": dict(base.data),
        "train": {
            **base.train,
            "schedule": schedule,
            "steps": steps,
            "seed": seed,
            "progress": "lines",
            **train,
        },
    }


def shared_run(scale: str, label: str, schedule: str, budget: int, seed: int) -> TunnelRunSpec:
    """A run several claims share: `schedule` (a spec, `label` in the name) over `budget` steps
    at `seed`. Its name ``<scale>-<label>-<budget>-s<seed>`` says all of its config, as a shared
    run's must: the claims naming it get the same run."""
    return TunnelRunSpec(
        f"{scale}-{label}-{budget}-s{seed}", tunnel(scale, schedule, budget, seed), shared=True
    )


def cosine(scale: str, budget: int) -> str:
    """Cosine to 10% of the peak over `budget` steps (the usual baseline)."""
    base = setup(scale)
    return f"cosine(peak={base.peak}, total={budget}, warmup={base.warmup}, end_ratio=0.1)"


def constant(scale: str) -> str:
    """Constant at the peak after the warmup (the stable phase of WSD)."""
    base = setup(scale)
    return f"constant(peak={base.peak}, warmup={base.warmup})"


def wsd(scale: str, budget: int, fraction: float, decay: str) -> str:
    """WSD over `budget` steps with a cooldown of `fraction` of them, of shape `decay`, to 0."""
    base = setup(scale)
    return (
        f"wsd(peak={base.peak}, total={budget}, warmup={base.warmup}, "
        f"cooldown_fraction={fraction}, decay={decay})"
    )


def linear_to_zero(scale: str, budget: int) -> str:
    """Linear decay to zero over `budget` steps (D2Z)."""
    base = setup(scale)
    return f"linear(peak={base.peak}, total={budget}, warmup={base.warmup}, end=0)"


def cooldown_start(budget: int, fraction: float) -> int:
    """The first step of a WSD cooldown of `fraction` of `budget` (as `WSD.cooldown` rounds)."""
    return budget - math.floor(fraction * budget + 0.5)


def scatter(run: Run, tail: float = 0.25) -> float:
    """The scatter of one evaluated loss of `run` about its smooth curve, from the last `tail` of
    its points (at least five): ``1.4826 * median(|second difference|) / sqrt(6)`` (independent
    scatter of sd ``s`` has second differences of sd ``s * sqrt(6)``; a smooth curve's own are far
    smaller, and the median ignores a spike). 0 for a run of under five points."""
    count = max(5, round(tail * run.loss.size))
    if run.loss.size < count:
        return 0.0
    second = np.diff(run.loss[-count:], 2)
    return float(1.4826 * np.median(np.abs(second)) / np.sqrt(6))


@dataclasses.dataclass(frozen=True)
class Noise:
    """The run-to-run noise of a difference of final losses between two schedules: `sd` of one
    paired difference (same seed), from `pairs` seeds (0 when fewer than two), and `scatter`,
    the evaluation scatter of one final loss. `threshold` is what one difference must exceed,
    `mean_threshold` what the mean over the `pairs` seeds must exceed."""

    sd: float
    pairs: int
    scatter: float

    @property
    def single(self) -> float:
        """The standard deviation of one difference: the seeds' where measured, and never below
        what the evaluation scatter of two final losses alone gives."""
        return max(self.sd, math.sqrt(2.0) * self.scatter)

    @property
    def threshold(self) -> float:
        return Z * self.single

    @property
    def mean_threshold(self) -> float:
        return Z * self.single / math.sqrt(max(self.pairs, 1))

    def to_dict(self) -> dict[str, float]:
        """The numbers a claim's record keeps."""
        return {
            "seed_sd_of_difference": self.sd,
            "seed_pairs": self.pairs,
            "eval_scatter": self.scatter,
            "threshold_one_run": self.threshold,
            "threshold_seed_mean": self.mean_threshold,
        }


def paired_noise(
    finals_a: Sequence[float], finals_b: Sequence[float], runs: Sequence[Run]
) -> Noise:
    """The `Noise` of a difference from final losses of schedules a and b at the same seeds
    (in order), and the evaluation scatter (median over `runs`)."""
    differences = np.asarray(finals_a, dtype=float) - np.asarray(finals_b, dtype=float)
    sd = float(np.std(differences, ddof=1)) if differences.size >= 2 else 0.0
    wiggle = float(np.median([scatter(run) for run in runs])) if runs else 0.0
    return Noise(sd, int(differences.size), wiggle)


def judge(difference: float, threshold: float) -> str:
    """The verdict of a claim that says `difference` > 0: "holds" beyond `threshold`, "does not
    hold" below -`threshold`, "inconclusive" within it."""
    if difference > threshold:
        return "holds"
    if difference < -threshold:
        return "does not hold"
    return "inconclusive"


def combine(verdicts: Sequence[str]) -> str:
    """A claim of several parts: "does not hold" if any part does not, "holds" if all hold,
    "inconclusive" otherwise."""
    if "does not hold" in verdicts:
        return "does not hold"
    if verdicts and all(verdict == "holds" for verdict in verdicts):
        return "holds"
    return "inconclusive"
