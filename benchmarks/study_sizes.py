"""Check a wind-tunnel study across sizes (`lrlab study --config` with ``sizes:``) against the
target width's measured curves.

Reads the study's ``summary.json`` (run the study first, docs/study.md "Across sizes"):

    printf 'sizes: [32, 48, 64]\\n' > out/study_sizes.yaml
    lrlab study --config out/study_sizes.yaml --params 246240 --out out/study_sizes
    python benchmarks/study_sizes.py [--study out/study_sizes] [--tunnel out/laws_tunnel/d96]

and prints: the target and the forecast there, the rule the design was kept to (its trust region,
`lrlab.runs.regime`) and by how much each checked schedule falls faster than the fitted runs, each
checked schedule's forecast final loss against its measured one, the schedule the same law would
recommend without the trust region (forecast only, not trained), and the study's law at the
target scored on the nine benchmark runs of
that width that `benchmarks/sizes.py` trains (same model and corpus; their warmup and evaluation
batches differ from the study's), beside the per-size 3-run fit of that width (which has seen
runs of it) as the reference, as `benchmarks/sizes.py` reports its own size law.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

import shared_data as shared
from laws import score  # benchmarks/laws.py
from lrlab.design.optimize import optimize_schedule
from lrlab.laws import get_law
from lrlab.laws.registry import REGISTRY
from lrlab.runs import read_run
from lrlab.runs.regime import fitted_regime
from lrlab.schedules import from_spec


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default="out/study_sizes")
    parser.add_argument("--tunnel", default="out/laws_tunnel/d96")
    args = parser.parse_args()
    summary_path = Path(args.study) / "summary.json"
    if not summary_path.is_file():
        print(f"{summary_path} not found: run the study first (see this script's docstring)")
        return 1
    summary = json.loads(summary_path.read_text())
    sizes = summary["sizes"]
    target = sizes["target"]
    best = target["recommended"]
    print(f"study across {', '.join(sizes['fitted_sizes'])}, law {sizes['law']!r}")
    print(f"target {target['name']} ({target['params']:,.0f} parameters): {target['note']}")
    print(
        f"  forecast final loss of the recommended schedule {best['final_loss']:.4f} "
        f"[{best['band'][0]:.4f}, {best['band'][1]:.4f}] (half-width "
        f"{(best['band'][1] - best['band'][0]) / (2 * best['final_loss']):.1%})"
    )
    for row in sizes["per_size"]:
        tokens = row["tokens_per_param"]
        print(
            f"  {row['name']}: {row['params']:,.0f} parameters, "
            f"{'?' if tokens is None else f'{tokens:.1f}'} tokens/parameter, recommended "
            f"{row['recommended']['final_loss']:.4f}, best WSD cooldown "
            f"{row['wsd_optimum']['cooldown_fraction']:.3f} ({row['wsd_optimum']['decay']}), "
            f"{row['winner_text']}"
        )
    print(f"  {sizes['optimum_moves']}")
    fit = summary["fit"]
    law = REGISTRY[fit["law"]].from_dict(fit, source=str(summary_path))
    budget, peak = summary["budget"], summary["peak"]
    regime = fitted_regime(law.fit_info_)
    print(f"design: {summary.get('trust_region') or 'no rule recorded (an older study)'}")
    for check in summary["verification"]:
        if regime is not None:
            lr = from_spec(check["spec"])(np.arange(budget))
            print(
                f"  {check['name']} falls faster than the fitted runs by "
                f"{regime.excess(lr, peak):.1%} of the peak"
            )
        print(
            f"checked {check['name']}: forecast {check['final_loss']:.4f} "
            f"[{check['band'][0]:.4f}, {check['band'][1]:.4f}], measured {check['measured']:.4f}, "
            f"error {check['error']:+.4f} ({check['error'] / check['measured']:+.2%}), "
            f"{'inside' if check['inside_band'] else 'OUTSIDE'} the band"
        )
    for verdict in summary["verdicts"]:
        print(verdict["text"])
    free = optimize_schedule(
        law, budget, peak=peak, warmup=summary["warmup"], trust_region=False
    ).best
    lr = free.schedule(np.arange(budget))
    print(
        f"without the trust region (not trained): forecast {free.final_loss:.4f} "
        f"[{free.low:.4f}, {free.high:.4f}], LR at the last step {lr[-1]:.3g}"
        + ("" if regime is None else f", {regime.excess(lr, peak):.1%} of the peak too fast")
    )
    tunnel = Path(args.tunnel)
    names = list(shared.benchmark_schedules(800, 72, 3e-3, 3e-4))
    if not all((tunnel / name / "eval.csv").is_file() for name in names):
        print(f"{tunnel}: the benchmark's runs of the target width are not there; skipped")
        return 0
    runs = [read_run(tunnel / name / "eval.csv", name=name) for name in names]
    table = score(law, runs)
    print(f"the study's law at {target['name']} on the nine benchmark runs of {tunnel}:")
    print(
        f"  PredE {table['PredE']:.4f}, WorstE {table['WorstE']:.4f}, R2 {table['R2']:.4f}, "
        f"90% band coverage {table['coverage']:.2f}"
    )
    reference = get_law(fit["law"]).fit([run for run in runs if run.name in shared.TRAIN])
    table = score(reference, runs)
    print(
        f"  reference, {fit['law']!r} fitted on the width's own three training runs: PredE "
        f"{table['PredE']:.4f}, WorstE {table['WorstE']:.4f}, coverage {table['coverage']:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
