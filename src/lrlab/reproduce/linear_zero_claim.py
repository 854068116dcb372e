"""Claim 2: linear decay to zero (D2Z) beats cosine to 10% at the same budget, by more at more
tokens per parameter.

Runs (in ``DIR/runs``): cosine-to-10% and linear-to-zero at budgets ``U, 4U, 16U`` (``U`` the
scale's unit; the same model, so the tokens per parameter grow with the budget), and both at more
seeds at ``4U`` for the noise. The cosine runs at ``U`` and ``4U`` are claim 1's.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from lrlab.reproduce import setups
from lrlab.reproduce.claim import Claim, ClaimContext, ClaimResult, TrainedRun, TunnelRunSpec
from lrlab.reproduce.setups import combine, judge, paired_noise
from lrlab.reproduce.wsd_cosine_claim import cosine_spec, parameters_text, tpp_text

BUDGETS = (1, 4, 16)  # in units of the scale's `unit`
NOISE_AT = 4  # the budget (in units) trained at more seeds


def d2z_spec(scale: str, budget: int, seed: int) -> TunnelRunSpec:
    """The shared linear-to-zero run of `budget` steps at `seed` (claims 2 and 5 use it)."""
    return setups.shared_run(scale, "d2z", setups.linear_to_zero(scale, budget), budget, seed)


class LinearToZero(Claim):
    name = "linear-to-zero"
    number = 2
    title = "Linear decay to zero beats cosine to 10%"
    paper = (
        "Bergsma et al. 2025, 'Straight to Zero: Why Linearly Decaying the Learning Rate to "
        "Zero Works Best for LLMs' (arXiv:2502.15938)"
    )
    statement = (
        "Linearly decaying the learning rate to zero (D2Z) beats cosine decay to 10% of the peak "
        "at the same budget, and its advantage grows with the tokens per parameter trained."
    )
    scales: ClassVar[str] = (
        "Budgets U, 4U, 16U of one model: 2.6, 10 and 42 tokens per parameter at tiny "
        "(U = 300 steps, about 6 minutes of 2 CPU cores, half of it the 16U pair), U = 1000 at "
        "small; at full (U = 4000, 25M parameters) 16U is 2B tokens, 80 per parameter: a day of "
        "one GPU; 3 seeds at 4U for the noise."
    )

    def run(self, context: ClaimContext) -> ClaimResult:
        scale = context.scale
        base = setups.setup(scale)
        budgets = [base.unit * k for k in BUDGETS]
        middle = base.unit * NOISE_AT
        specs: dict[str, TunnelRunSpec] = {}
        for budget in budgets:
            specs[f"cosine-{budget}-s0"] = cosine_spec(scale, budget, 0)
            specs[f"d2z-{budget}-s0"] = d2z_spec(scale, budget, 0)
        for seed in range(1, base.seeds):
            specs[f"cosine-{middle}-s{seed}"] = cosine_spec(scale, middle, seed)
            specs[f"d2z-{middle}-s{seed}"] = d2z_spec(scale, middle, seed)
        runs = context.train_roles(specs)
        return measure(context, runs, budgets, middle)


def measure(
    context: ClaimContext, runs: dict[str, TrainedRun], budgets: list[int], middle: int
) -> ClaimResult:
    """The claim's two parts on its `runs` (by role: ``cosine-B-sK``, ``d2z-B-sK``)."""
    seeds = setups.setup(context.scale).seeds
    cosine_seeds = [runs[f"cosine-{middle}-s{s}"].final_loss for s in range(seeds)]
    d2z_seeds = [runs[f"d2z-{middle}-s{s}"].final_loss for s in range(seeds)]
    noise = paired_noise(
        cosine_seeds, d2z_seeds, [runs[f"cosine-{middle}-s0"].eval, runs[f"d2z-{middle}-s0"].eval]
    )
    finals = {
        kind: {str(b): runs[f"{kind}-{b}-s0"].final_loss for b in budgets}
        for kind in ("cosine", "d2z")
    }
    gains = {str(b): finals["cosine"][str(b)] - finals["d2z"][str(b)] for b in budgets}
    middle_gain = float(np.mean(np.subtract(cosine_seeds, d2z_seeds)))
    # Part 1: D2Z ends lower than cosine beyond the noise at every budget (at the middle one,
    # the seed mean against its own threshold).
    verdicts = [
        judge(middle_gain, noise.mean_threshold)
        if b == middle
        else judge(gains[str(b)], noise.threshold)
        for b in budgets
    ]
    beats = combine(verdicts)
    # Part 2: the gain at the most tokens per parameter exceeds that at the fewest, beyond the
    # noise of a difference of two independent differences.
    growth = gains[str(budgets[-1])] - gains[str(budgets[0])]
    grows = judge(growth, math.sqrt(2.0) * noise.threshold)
    parts = {
        "D2Z beats cosine-10% at every budget": {
            "verdict": beats,
            "rule": "final(cosine) - final(D2Z) against the noise threshold at each budget (at "
            f"{middle} steps: the seed mean against its threshold); holds if above at all",
        },
        "by more at more tokens per parameter": {
            "verdict": grows,
            "rule": "gain at the longest budget - gain at the shortest, against sqrt(2) x the "
            "noise threshold",
        },
    }
    if noise.single == 0:
        parts = {
            name: {**part, "verdict": "inconclusive"} for name, part in parts.items()
        }  # no noise measured: no difference can be told from noise
    verdict = combine([part["verdict"] for part in parts.values()])
    tpp = {str(b): runs[f"cosine-{b}-s0"].tokens_per_parameter for b in budgets}
    figure = _figure(context, budgets, tpp, finals, gains, noise.single)
    numbers: dict[str, Any] = {
        "parts": parts,
        "budgets": budgets,
        "tokens_per_parameter": tpp,
        "final_loss": finals,
        "gain_of_d2z": gains,
        f"gain_of_d2z_seed_mean_{middle}": middle_gain,
        "gain_growth_longest_minus_shortest": growth,
        "cosine_finals_by_seed": cosine_seeds,
        "d2z_finals_by_seed": d2z_seeds,
        "noise": noise.to_dict(),
    }
    gain_text = ", ".join(
        f"{gains[str(b)]:+.4f} at {tpp[str(b)]:.3g} TPP" if tpp[str(b)] else f"{gains[str(b)]:+.4f}"
        for b in budgets
    )
    summary = (
        f"Cosine-10%'s final loss minus D2Z's: {gain_text} (noise threshold "
        f"{noise.threshold:.4f} for one run pair; seed mean at {middle} steps {middle_gain:+.4f}); "
        f"the gain changes by {growth:+.4f} from the shortest budget to the longest."
    )
    comparison = (
        "Bergsma et al. train 111M-1.7B-parameter models from about 20 to several hundred tokens "
        "per parameter and find D2Z ahead of 10x decay at every size, by more the more tokens "
        "per parameter. Here one model of "
        f"{parameters_text(runs[f'cosine-{budgets[0]}-s0'])} parameters trains "
        f"{tpp_text(runs[f'cosine-{budgets[0]}-s0'])} to "
        f"{tpp_text(runs[f'cosine-{budgets[-1]}-s0'])} tokens per parameter; it is byte-level "
        "and its warmup short, unlike the paper's models."
    )
    return ClaimResult(verdict, summary, numbers, [figure], comparison)


def _figure(
    context: ClaimContext,
    budgets: list[int],
    tpp: dict[str, float | None],
    finals: dict[str, dict[str, float]],
    gains: dict[str, float],
    sd: float,
) -> str:
    from lrlab.reproduce.figures import COLORS, panels, save

    x = [tpp[str(b)] or float(b) for b in budgets]
    label = "tokens per parameter" if all(tpp.values()) else "budget (steps)"
    with panels(2, height=2.5) as (figure, axes):
        top, bottom = axes[0][0], axes[1][0]
        for kind, name, color in (
            ("cosine", "cosine to 10%", COLORS[0]),
            ("d2z", "linear to zero", COLORS[1]),
        ):
            top.plot(x, [finals[kind][str(b)] for b in budgets], "o-", color=color, label=name)
        top.set_title("final validation loss")
        top.set_ylabel("loss")
        top.legend(fontsize=8)
        bottom.errorbar(
            x, [gains[str(b)] for b in budgets], yerr=sd, fmt="o-", color=COLORS[2], capsize=3
        )
        bottom.axhline(0.0, color="#5c6b7a", lw=0.8)
        bottom.set_title("cosine's final loss minus D2Z's (bars: one run-to-run sd)")
        bottom.set_ylabel("gain of D2Z")
        for axis in (top, bottom):
            axis.set_xscale("log")
            axis.set_xticks(x, [f"{value:.3g}" for value in x])
            axis.minorticks_off()
            axis.set_xlabel(label)
        return save(figure, context.figure_path("linear-to-zero"))
