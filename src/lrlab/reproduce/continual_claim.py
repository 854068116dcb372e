"""Claim 3: continual pre-training (Gupta et al. 2023; Ibrahim et al. 2024).

Stage A trains on the Python standard library's source (``stdlib``), stage B continues from A's
final checkpoint on English prose (``english``); every run evaluates on both corpora. The claim
has four parts, each measured and judged on its own (`lrlab.reproduce.setups.judge`):

1. **The bump.** Re-warming the LR raises the loss first: the loss on B of the run re-warmed to
   the highest peak, minus that of a run continuing at A's final LR (no re-warming), at its
   largest within the first two warmups of stage B. Holds when it is above the noise; the final
   loss on B of the re-warmed runs is reported for each peak ("depends on the peak" holds when
   the spread between peaks is above the noise).
2. **Replay limits forgetting.** Forgetting is A's validation loss at the end of stage B minus
   at the end of stage A, for replay of A at 0, 5 and 25% of the sequences (same peak). Holds
   when 25% replay forgets less than none by more than the noise and forgetting does not grow
   with replay beyond the noise.
3. **Close to training on A and B together.** A union run trains from scratch on both corpora
   mixed in the stages' proportions for the stages' total steps. The continual recipe (re-warm
   + re-decay + 25% replay, the paper's choice for a strong distribution shift) is "close" when
   its mean loss over the two corpora is at most 2% (our threshold) plus the noise above the
   union's; its compute is stage B's steps over the union's.
4. **The infinite schedule.** Stage A under the infinite schedule (warmup, cooldown to a
   constant LR, constant), stage B continuing at that constant LR and annealing at its end, no
   re-warming; it holds its own when its mean loss is not above the re-warmed recipe's (same
   replay) by more than the noise.

Noise: the evaluation scatter of a final loss about its smooth curve (`setups.scatter`), as the
standard deviation of a difference of two final losses; two standard deviations count
(`setups.Z`). One seed per run: differences between seeds of the same run are not measured here,
which the summary says.
"""

from __future__ import annotations

import csv
import dataclasses
import itertools
import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from lrlab.errors import LrlabError
from lrlab.reproduce import figures
from lrlab.reproduce.claim import Claim, ClaimContext, ClaimResult, TrainedRun, TunnelRunSpec
from lrlab.reproduce.setups import Z, combine, judge, scatter, setup

A_CORPUS = "stdlib"
B_CORPUS = "english"
REPLAYS = (0.0, 0.05, 0.25)
RECIPE_REPLAY = 0.25  # Ibrahim et al.'s replay for a strong shift (English -> German there)
PEAK_FACTORS = (1 / 3, 1.0, 3.0)  # re-warm peaks relative to stage A's peak
CLOSE = 0.02  # "close to the union run": within 2% of its mean loss (our threshold)
FLOOR_RATIO = 0.1  # both papers decay to 10% of the peak
# Each part of the claim: its title in the report and the rule its verdict follows ("noise": the
# standard deviation of a difference of two final losses, see the module's docstring).
PARTS = {
    "bump": (
        "re-warming raises the loss first",
        (
            "the largest (B loss re-warmed to the highest peak - B loss not re-warmed) over the "
            "first two warmups of stage B, against 2 x the noise"
        ),
    ),
    "peak_matters": (
        "the final loss on B depends on the re-warm peak",
        "max - min of the final B loss over the peaks, against 2 x the noise",
    ),
    "replay": (
        "replay of A (0, 5, 25%) limits forgetting of A",
        (
            "forgetting (A loss after stage B - after stage A) without replay minus with 25%, "
            "against 2 x the noise; does not hold if forgetting grows with replay beyond it"
        ),
    ),
    "close_to_union": (
        "re-warm + re-decay + 25% replay comes close to training on A and B from scratch",
        (
            "mean final loss over A and B of the recipe - of the union run: holds up to 2% of the "
            "union's plus 2 x the noise"
        ),
    ),
    "infinite": (
        "the infinite schedule holds its own against re-warm + re-decay",
        (
            "mean final loss of the infinite schedule - of re-warm + re-decay (both 25% replay): "
            "holds unless above 2 x the noise"
        ),
    ),
}


@dataclasses.dataclass(frozen=True)
class Stages:
    """The steps of each stage at one scale; warmups are shares of them."""

    a: int
    b: int

    @property
    def warmup_a(self) -> int:
        return max(1, round(0.02 * self.a))

    @property
    def warmup_b(self) -> int:
        # 5% of stage B: long enough for the bump to be evaluated a few times.
        return max(1, round(0.05 * self.b))

    @property
    def cooldown_a(self) -> int:
        """The infinite schedule's cooldown to its constant LR: 30% of stage A."""
        return max(1, round(0.3 * self.a))


STAGES = {
    "test": Stages(a=10, b=8),
    "tiny": Stages(a=900, b=450),
    "small": Stages(a=3000, b=1500),
    "full": Stages(a=12000, b=6000),
}


def read_columns(folder: Path) -> dict[str, np.ndarray]:
    """Every column of a run's ``eval.csv`` as floats (the tunnel writes it: step, lr, loss,
    ``val_loss_<corpus>``, per-layer max attention logits, output-logit statistics)."""
    path = folder / "eval.csv"
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as error:
        raise LrlabError(f"{path}: cannot read the run's evaluations ({error})") from None
    if not rows:
        raise LrlabError(f"{path}: no evaluations")
    try:
        return {key: np.array([float(row[key]) for row in rows]) for key in rows[0]}
    except (TypeError, ValueError) as error:
        raise LrlabError(f"{path}: a value is not a number ({error})") from None


def _tunnel(scale: str, corpus: str, schedule: str, steps: int, **data: Any) -> dict[str, Any]:
    """A run of `scale`'s model training on `corpus`, evaluated on both corpora."""
    base = setup(scale)
    other = B_CORPUS if corpus == A_CORPUS else A_CORPUS
    return {
        "model": dict(base.model),
        "data": {**base.data, "corpus": corpus, "eval_corpora": [other], **data},
        "train": {
            **base.train,
            "schedule": schedule,
            "steps": steps,
            "progress": "lines",
        },
    }


def _slug(value: float) -> str:
    """A number as a run-name part: ``0.003`` -> ``3e-3``."""
    mantissa, exponent = f"{value:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def plan(context: ClaimContext) -> dict[str, TunnelRunSpec]:
    """Every run of the claim at the context's scale, by role."""
    scale, stages = context.scale, STAGES[context.scale]
    peak = setup(scale).peak
    floor = FLOOR_RATIO * peak
    a, b = stages.a, stages.b
    specs: dict[str, TunnelRunSpec] = {}

    def add(role: str, name: str, tunnel: dict[str, Any]) -> None:
        specs[role] = TunnelRunSpec(name, tunnel)

    cosine_a = f"cosine(peak={peak}, total={a}, warmup={stages.warmup_a}, end_ratio={FLOOR_RATIO})"
    add("a", "a-cosine", _tunnel(scale, A_CORPUS, cosine_a, a))
    infinite_a = (
        f"infinite(peak={peak}, warmup={stages.warmup_a}, cooldown_steps={stages.cooldown_a}, "
        f"min_ratio={FLOOR_RATIO})"
    )
    add("a_infinite", "a-infinite", _tunnel(scale, A_CORPUS, infinite_a, a))
    union = f"cosine(peak={peak}, total={a + b}, warmup={stages.warmup_a}, end_ratio={FLOOR_RATIO})"
    add(
        "union",
        "union",
        _tunnel(
            scale,
            B_CORPUS,
            union,
            a + b,
            replay_corpus=A_CORPUS,
            replay_fraction=round(a / (a + b), 6),
        ),
    )
    # Absolute: the stored config (which a rerun compares to reuse the run) then does not depend
    # on the folder in which, or the spelling with which, the claim was started.
    from_a = str(context.run_folder("a-cosine").resolve())
    for factor in PEAK_FACTORS:
        top = factor * peak
        for replay in REPLAYS if factor == 1.0 else (0.0,):
            rewarm = (
                f"rewarm_redecay(start={floor}, peak={top}, warmup={stages.warmup_b}, total={b}, "
                f"end_ratio={FLOOR_RATIO})"
            )
            tunnel = _tunnel(
                scale, B_CORPUS, rewarm, b, replay_corpus=A_CORPUS, replay_fraction=replay
            )
            tunnel["train"]["init_from"] = from_a
            add(
                f"b/{factor:g}/{replay:g}",
                f"b-rewarm-{_slug(top)}-replay{round(100 * replay)}",
                tunnel,
            )
    still = _tunnel(scale, B_CORPUS, f"constant(peak={floor})", b, replay_corpus=A_CORPUS)
    still["train"]["init_from"] = from_a
    add("no_rewarm", "b-no-rewarm", still)
    # Stage B of the infinite schedule: its constant LR, then its exponential anneal to the
    # floor over the last 20% (taken here, as the paper does, to compare converged models).
    constant = 0.55 * peak  # `infinite`'s default constant_ratio
    anneal = (
        f"wsd(peak={constant}, total={b}, warmup=0, cooldown_fraction=0.2, decay=exponential, "
        f"end={floor})"
    )
    tunnel = _tunnel(
        scale, B_CORPUS, anneal, b, replay_corpus=A_CORPUS, replay_fraction=RECIPE_REPLAY
    )
    tunnel["train"]["init_from"] = str(context.run_folder("a-infinite").resolve())
    add("b_infinite", f"b-infinite-replay{round(100 * RECIPE_REPLAY)}", tunnel)
    return specs


@dataclasses.dataclass(frozen=True)
class Curves:
    """A run's evaluations: steps, loss on A and on B, and its final-loss noise."""

    steps: np.ndarray
    a: np.ndarray
    b: np.ndarray
    noise: float

    @classmethod
    def of(cls, run: TrainedRun) -> Curves:
        columns = read_columns(run.folder)
        a, b = columns[f"val_loss_{A_CORPUS}"], columns[f"val_loss_{B_CORPUS}"]
        # The scatter of the mean of the two losses bounds that of each well enough.
        mean = dataclasses.replace(run.eval, loss=(a + b) / 2)
        return cls(columns["step"], a, b, scatter(mean))

    @property
    def final_mean(self) -> float:
        return float((self.a[-1] + self.b[-1]) / 2)


def _noise(*curves: Curves) -> float:
    """The standard deviation of a difference of two final losses: the larger scatter of the
    runs compared, for each of the two (sqrt(2) times it)."""
    return math.sqrt(2.0) * max(curve.noise for curve in curves)


class ContinualPretraining(Claim):
    """Re-warming, replay and the infinite schedule in continual pre-training."""

    name: ClassVar[str] = "continual"
    number: ClassVar[int] = 3
    title: ClassVar[str] = "Continual pre-training: re-warm, re-decay, replay"
    paper: ClassVar[str] = (
        "Gupta et al. 2023, 'Continual Pre-Training of Large Language Models: How to (re)warm "
        "your model?' (arXiv:2308.04014); Ibrahim et al. 2024, 'Simple and Scalable Strategies "
        "to Continually Pre-train Large Language Models' (arXiv:2403.08763)"
    )
    statement: ClassVar[str] = (
        "Continuing a model trained on corpus A on a new corpus B: re-warming the LR raises the "
        "loss first, and the final loss on B depends on the re-warm peak; replaying a little of "
        "A (5%, 25%) limits forgetting of A; re-warming + re-decaying + replay comes close to "
        "training from scratch on A and B together at a fraction of the compute; infinite LR "
        "schedules (constant between stages, annealed when a model is wanted) are competitive "
        "with re-warming and re-decaying."
    )
    scales: ClassVar[str] = (
        "Stage A on the standard library's source, stage B on English prose, each model "
        "evaluated on both. tiny: the study's 0.1M-parameter byte-level model, A 900 steps, B "
        "450 steps, 3 re-warm peaks, replay 0/5/25%, a no-re-warm run, an infinite-schedule "
        "pair and a 1350-step union run: 10 runs, 2 minutes on 2 quiet cores "
        "(measured 117 s). small: width 128, 4 layers, A 3000 and B 1500 steps (a many-core "
        "machine, about an hour). full (one GPU): width 512, 8 layers, 64 x 512 tokens a step, "
        "A 12000 and B 6000 steps. The English corpus CPython ships is 0.7 MB: tiny's stage B "
        "reads it less than once, small's about 9 times and full's about 280 times: those "
        "scales repeat it, and their stage B measures memorising it as much as adapting to "
        "English. The papers' 405M-10B models on hundreds of billions of tokens show the "
        "effects with much less noise than any of these scales."
    )

    def run(self, context: ClaimContext) -> ClaimResult:
        specs = plan(context)
        runs = context.train_roles(specs)
        curves = {role: Curves.of(run) for role, run in runs.items()}
        before_a = float(curves["a"].a[-1])  # stage B starts from this model
        stages = STAGES[context.scale]
        checks, numbers = {}, {"stage_a_steps": stages.a, "stage_b_steps": stages.b}
        numbers["stage_a_final"] = {A_CORPUS: before_a, B_CORPUS: float(curves["a"].b[-1])}

        # 1. The bump, and the final loss on B against the peak.
        window = 2 * stages.warmup_b + setup(context.scale).train["eval_interval"]
        still = curves["no_rewarm"]
        bumps: dict[float, float | None] = {}
        finals_b: dict[float, float] = {}
        for factor in PEAK_FACTORS:
            run = curves[f"b/{factor:g}/0"]
            early = run.steps < window
            excess = run.b[early] - still.b[: int(early.sum())]
            bumps[factor] = float(excess.max()) if excess.size else None
            finals_b[factor] = float(run.b[-1])
        highest = curves[f"b/{PEAK_FACTORS[-1]:g}/0"]
        bump_noise = _noise(highest, still)
        bump = bumps[PEAK_FACTORS[-1]]
        # No evaluation inside the window (an eval interval longer than it): nothing measured.
        checks["bump"] = "inconclusive" if bump is None else judge(bump, Z * bump_noise)
        peaks = [curves[f"b/{factor:g}/0"] for factor in PEAK_FACTORS]
        spread = max(finals_b.values()) - min(finals_b.values())
        checks["peak_matters"] = judge(spread, Z * _noise(*peaks))
        peak = setup(context.scale).peak
        numbers["bump"] = {
            "rule": "max over the first two warmups of (B loss re-warmed - B loss not re-warmed)",
            "by_peak": {_slug(f * peak): bumps[f] for f in PEAK_FACTORS},
            "noise_sd": bump_noise,
        }
        numbers["final_b_by_peak"] = {_slug(f * peak): finals_b[f] for f in PEAK_FACTORS}
        numbers["final_b_no_rewarm"] = float(still.b[-1])

        # 2. Forgetting against replay, at the middle peak.
        by_replay = [curves[f"b/1/{replay:g}"] for replay in REPLAYS]
        forgetting = [float(curve.a[-1]) - before_a for curve in by_replay]
        replay_noise = _noise(*by_replay)
        rises = max(later - earlier for earlier, later in itertools.pairwise(forgetting))
        drop = judge(forgetting[0] - forgetting[-1], Z * replay_noise)
        checks["replay"] = "does not hold" if rises > Z * replay_noise else drop
        numbers["forgetting_by_replay"] = {f"{r:g}": f for r, f in zip(REPLAYS, forgetting)}
        numbers["replay_noise_sd"] = replay_noise

        # 3. The recipe against the union run.
        recipe, union = curves[f"b/1/{RECIPE_REPLAY:g}"], curves["union"]
        gap = recipe.final_mean - union.final_mean
        allowed = CLOSE * union.final_mean + Z * _noise(recipe, union)
        checks["close_to_union"] = "holds" if gap <= allowed else "does not hold"
        numbers["union"] = {
            "recipe_mean_loss": recipe.final_mean,
            "union_mean_loss": union.final_mean,
            "gap": gap,
            "allowed": allowed,
            "compute_fraction": stages.b / (stages.a + stages.b),
            "recipe_final": {A_CORPUS: float(recipe.a[-1]), B_CORPUS: float(recipe.b[-1])},
            "union_final": {A_CORPUS: float(union.a[-1]), B_CORPUS: float(union.b[-1])},
        }

        # 4. The infinite schedule against re-warm + re-decay, at the same replay.
        infinite = curves["b_infinite"]
        lead = infinite.final_mean - recipe.final_mean
        checks["infinite"] = judge(-lead, Z * _noise(infinite, recipe))
        if checks["infinite"] == "inconclusive":
            checks["infinite"] = "holds"  # within the noise: as good, which is the claim
        numbers["infinite"] = {
            "infinite_mean_loss": infinite.final_mean,
            "rewarm_mean_loss": recipe.final_mean,
            "difference": lead,
            "infinite_forgetting": float(infinite.a[-1]) - float(curves["a_infinite"].a[-1]),
            "rewarm_forgetting": forgetting[-1],
        }
        numbers["parts"] = {
            PARTS[key][0]: {"verdict": verdict, "rule": PARTS[key][1]}
            for key, verdict in checks.items()
        }
        numbers["diverged_runs"] = sorted(run.name for run in runs.values() if run.diverged)

        figure = self._figure(context, curves, before_a)
        verdict = combine(list(checks.values()))
        summary = (
            f"Bump: re-warming to {_slug(PEAK_FACTORS[-1] * peak)} raised the B loss by up to "
            f"{'n/a' if bump is None else f'{bump:.3f}'} over not re-warming ({checks['bump']}, "
            f"noise sd {bump_noise:.3f}); final "
            f"B loss by peak {', '.join(f'{v:.3f}' for v in finals_b.values())} "
            f"({checks['peak_matters']}). Forgetting of A at replay 0/5/25%: "
            f"{', '.join(f'{f:+.3f}' for f in forgetting)} ({checks['replay']}). Recipe vs "
            f"union mean loss {recipe.final_mean:.3f} vs {union.final_mean:.3f} at "
            f"{stages.b / (stages.a + stages.b):.0%} of its compute ({checks['close_to_union']});"
            f" infinite schedule {infinite.final_mean:.3f} ({checks['infinite']}). One seed each."
        )
        comparison = (
            "Gupta et al. and Ibrahim et al. train 405M-10B-parameter models on hundreds of "
            "billions of tokens (Pile -> SlimPajama / German); here a 0.1M-parameter byte model "
            "sees about a million tokens, so the bump lasts a few evaluations and a single "
            "seed's scatter decides the close calls."
        )
        return ClaimResult(verdict, summary, numbers, [figure], comparison)

    def _figure(self, context: ClaimContext, curves: dict[str, Curves], before_a: float) -> str:
        """Three panels: B loss in stage B by re-warm peak; A loss (forgetting) by replay; final
        mean loss of the continual runs against the union run."""
        peak = setup(context.scale).peak
        with figures.panels(3, height=2.3) as (figure, axes):
            top, middle, bottom = axes[0][0], axes[1][0], axes[2][0]
            still = curves["no_rewarm"]
            top.plot(still.steps, still.b, color="#7f7f7f", label="no re-warm")
            for index, factor in enumerate(PEAK_FACTORS):
                curve = curves[f"b/{factor:g}/0"]
                color = figures.COLORS[index]
                top.plot(curve.steps, curve.b, color=color, label=f"peak {_slug(factor * peak)}")
            top.set_title(f"stage B: loss on B ({B_CORPUS}) by re-warm peak, no replay")
            top.set_xlabel("stage-B step")
            top.set_ylabel("val loss")
            top.legend(fontsize=8)
            for index, replay in enumerate(REPLAYS):
                curve = curves[f"b/1/{replay:g}"]
                color = figures.COLORS[index + 3]
                middle.plot(curve.steps, curve.a, color=color, label=f"replay {replay:.0%}")
            infinite = curves["b_infinite"]
            middle.plot(
                infinite.steps,
                infinite.a,
                color=figures.COLORS[6],
                linestyle="--",
                label=f"infinite, replay {RECIPE_REPLAY:.0%}",
            )
            middle.axhline(before_a, color="#1d2733", linewidth=0.8, linestyle=":")
            middle.set_title(f"stage B: loss on A ({A_CORPUS}): forgetting; dotted: end of A")
            middle.set_xlabel("stage-B step")
            middle.set_ylabel("val loss")
            middle.legend(fontsize=8)
            roles = [f"b/1/{replay:g}" for replay in REPLAYS] + ["b_infinite", "union"]
            labels = [f"re-warm\nreplay {r:.0%}" for r in REPLAYS] + ["infinite", "union"]
            x = np.arange(len(roles))
            a_final = [curves[role].a[-1] for role in roles]
            b_final = [curves[role].b[-1] for role in roles]
            bottom.bar(x - 0.2, a_final, 0.4, color=figures.COLORS[0], label=f"A ({A_CORPUS})")
            bottom.bar(x + 0.2, b_final, 0.4, color=figures.COLORS[1], label=f"B ({B_CORPUS})")
            bottom.set_xticks(x, labels, fontsize=8)
            low = min(a_final + b_final)
            bottom.set_ylim(low * 0.9, max(a_final + b_final) * 1.03)
            bottom.set_title("final val loss after stage B (union: A+B from scratch)")
            bottom.legend(fontsize=8)
        return figures.save(figure, context.figure_path("continual"))
