"""How close can a law's form come to the shared benchmark's goal at all? A diagnosis, not a
forecast.

For each model size and law, two fits of the same form:
- the benchmark's fit, on the three training runs only (`cosine_24000, constant_24000, wsdcon_9`);
- a capacity fit on all nine curves, the six held-out ones included, so its "held-out" PredE is
  in-sample: the best this form reaches on those curves (as the law's Huber/log-loss fit finds it),
  whatever the training runs say.
Beside each: the RMS of the log-loss residuals on the training runs, which tells whether the
training runs could tell the two parameter sets apart, and the goal (0.6x the published PredE).
Rows "LAW/joint" fit all sizes together with the shape parameters shared (`lrlab.laws.joint`).

Last, the scatter between training runs. Most curves follow the same schedule as another for
their first 8000-24000 steps (`constant_72000` and `constant_24000` up to step 24000, the WSD runs
up to 20000, `wsdcon_*` up to 8000). Many are branches of one run and identical there, but some
pairs are separate training runs whose losses differ: a law cannot predict two losses for one
schedule, so this difference is noise no law removes (the within-curve scatter in the data's
README, 1-2.5e-4, measures only the wiggle about a smooth curve).

    python benchmarks/laws_capacity.py [--sizes 25M,100M,400M] [--laws momentum,mpl,lrlab]

No parameter of any shipped law or default is chosen from this script: the capacity fits see the
held-out curves, so they are only a measure of the form.
"""

from __future__ import annotations

import sys

import numpy as np

import shared_data as shared
from laws import sizes_and_laws  # benchmarks/laws.py
from lrlab.laws import REGISTRY, get_law
from lrlab.laws.joint import fit_joint
from lrlab.laws.metrics import evaluate, mean_metrics
from lrlab.runs import Run


def log_rms(law, runs: list) -> float:
    """RMS of ``log pred - log loss`` over all logged points of `runs`."""
    residuals = np.concatenate([np.log(law.predict_run(run)) - np.log(run.loss) for run in runs])
    return float(np.sqrt(np.mean(residuals**2)))


def held_out_prede(law, runs: list) -> float:
    """Mean PredE of `law` over `runs`."""
    return mean_metrics(evaluate(run.loss, law.predict_run(run)) for run in runs)["PredE"]


def shared_prefix(run: Run, other: Run) -> int:
    """How many first steps `run` and `other` train with the same per-step LR."""
    length = min(run.lr.size, other.lr.size)
    differs = np.flatnonzero(run.lr[:length] != other.lr[:length])
    return int(differs[0]) if differs.size else length


def separate_runs(
    train: list[Run], held_out: list[Run], min_steps: int = 8000
) -> list[tuple[str, str, int, float, float]]:
    """Pairs of a training run and another curve that follow the same schedule for at least
    `min_steps` steps yet differ there (separate training runs, not branches of one): ``(name,
    name, shared steps, mean |difference| / loss over the shared logged steps, the same over
    their last fifth)``."""
    pairs = []
    for index, run in enumerate(train):
        for other in train[index + 1 :] + held_out:
            length = shared_prefix(run, other)
            common = np.intersect1d(run.steps[run.steps < length], other.steps)
            if length < min_steps or common.size == 0:
                continue
            ours = run.loss[np.searchsorted(run.steps, common)]
            relative = np.abs(ours - other.loss[np.searchsorted(other.steps, common)]) / ours
            if relative.max() > 0:
                tail = relative[-max(1, relative.size // 5) :]
                pairs.append(
                    (run.name, other.name, length, float(relative.mean()), float(tail.mean()))
                )
    return pairs


def main() -> int:
    chosen = sizes_and_laws(__doc__.splitlines()[0], "momentum,mpl,lrlab")
    if chosen is None:
        return 1
    sizes, laws = chosen
    published = shared.published_results()
    train = {size: shared.load_shared_runs(size, shared.TRAIN) for size in sizes}
    held_out = {size: shared.load_shared_runs(size, shared.HELD_OUT) for size in sizes}
    every = {size: train[size] + held_out[size] for size in sizes}
    print(
        "PredE on the six held-out curves; train RMS = RMS log-loss residual on the 3 training runs"
    )
    print(
        f"{'size':<5} {'law':<14} {'goal':>8}   {'training-run fit':^19}   "
        f"{'capacity fit (all nine)':^23}"
    )
    print(
        f"{'':<5} {'':<14} {'PredE':>8}   {'PredE':>8} {'train RMS':>10}   "
        f"{'PredE':>8} {'train RMS':>10}"
    )

    def row(size: str, name: str, fitted, capacity) -> None:
        print(
            f"{size:<5} {name:<14} {0.6 * published[size]['PredE']:>8.5f}   "
            f"{held_out_prede(fitted, held_out[size]):>8.5f} "
            f"{log_rms(fitted, train[size]):>10.5f}   "
            f"{held_out_prede(capacity, held_out[size]):>8.5f} "
            f"{log_rms(capacity, train[size]):>10.5f}",
            flush=True,
        )

    for size in sizes:
        for name in laws:
            fitted = get_law(name, bands=False).fit(train[size])
            row(size, name, fitted, get_law(name, bands=False).fit(every[size]))
    if len(sizes) >= 2:
        for name in laws:
            if REGISTRY[name].shape_params:
                fitted = fit_joint(name, train, bands=False)
                capacity = fit_joint(name, every, bands=False)
                for size in sizes:
                    row(size, f"{name}/joint", fitted[size], capacity[size])
    print()
    print(
        "training runs and other curves with the same schedule for >= 8000 steps but separate runs"
    )
    for size in sizes:
        for name, other, length, mean, tail in separate_runs(train[size], held_out[size]):
            print(
                f"{size:<5} {name:<17} {other:<17} first {length:>5} steps: "
                f"mean |difference| / loss {mean:.5f}, over the last fifth {tail:.5f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
