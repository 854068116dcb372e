"""How early is a live forecast good, and does ``lrlab whatif`` pick a good cooldown start?
(What forecasting costs the training loop: `benchmarks/live_overhead.py`.)

    python benchmarks/live.py [--out DIR] [--parts shared,wsd124,tunnel] [--all-124m]

- ``shared``: each curve of the shared multi-power-law data (25M/100M/400M, nine schedules) cut at
  10, 25, 50 and 75% of its length; the final loss forecast from the part seen (schedule known)
  by `lrlab.live.LiveForecaster` - alone (the default), and with a reference fit of another model
  size's three training runs (``--reference``) - against two baselines a user would try: a power
  law in steps fitted to the loss alone, and the last smoothed value (mean of the last 5 points).
  Error ``|forecast / final - 1|`` (the final loss: the last logged point), band coverage, and how
  often there is no forecast (too few points, a plan that decays the LR while the run has not yet
  and no reference, or a band wider than 20%). Without a reference, ``live`` takes a decay the run
  has not begun from the decay prior ``--prior`` (lrlab's, `lrlab.laws.prior`) less the data
  set's own members (leave-one-data-set-out; ``--prior none``: none); ``live_no_prior`` is the
  same forecast where the prior was not used, none where it was.
- ``wsd124``: the same on the 124M WSD-cooldown curves (another group's runs); a WSD branch's
  prefix is the stable run's. The reference is a fit of the stable run and the cosine-to-10% run
  of 25000 steps at the same peak LR (the README's suggested task), and is scored on the others.
- ``tunnel``: wind-tunnel runs of the study's default model (800 steps): the study's three fit
  runs (the reference), a WSD-20%-linear run (the plan) and a cosine run, cut as above; then the
  cooldown decision - at 50% of the WSD run, the start `lrlab whatif` picks, trained, against
  WSD-20%, both also with two more seeds to show the scatter between runs. Runs are cached under
  ``--out`` and reused.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from scipy import optimize

import shared_data as shared
from lrlab.laws import get_law
from lrlab.laws.prior import DEFAULT_PRIOR_FILE, DecayPrior
from lrlab.live import LiveForecaster
from lrlab.runs import Run, read_run
from lrlab.schedules import parse

CUTS = (0.10, 0.25, 0.50, 0.75)
REFERENCE_SIZE = {"25M": "100M", "100M": "25M", "400M": "100M"}
DATA_124M = shared.shared_data_dir().parent / "wsd-cooldown-124m"
SMOOTH = 5  # points averaged by the last-smoothed-value baseline
SEEDS = (0, 1, 2)  # tunnel: the cooldown decision's runs, repeated to show their scatter
# The decay prior (`--prior`), used leave-one-data-set-out: a data set's forecasts never use
# its own members.
PRIOR: DecayPrior | None = None


# --- forecasts from a cut curve -----------------------------------------------------------------


def power_in_steps(run: Run, final_step: int) -> float:
    """Baseline: ``L0 + A t^-alpha`` fitted to the loss alone (by least squares on log-loss),
    evaluated at the final step."""
    steps, loss = run.steps.astype(float), run.loss
    if steps.size < 4:
        return float("nan")  # fewer points than the three parameters need

    def residuals(theta: np.ndarray) -> np.ndarray:
        return np.log(theta[0] + theta[1] * steps ** -theta[2]) - np.log(loss)

    start = np.array([0.8 * loss.min(), loss.max(), 0.3])
    fitted = optimize.least_squares(
        residuals, start, bounds=([0, 0, 0.01], [loss.min(), np.inf, 3.0]), x_scale="jac"
    ).x
    return float(fitted[0] + fitted[1] * final_step ** -fitted[2])


def last_smoothed(run: Run) -> float:
    """Baseline: the mean of the last `SMOOTH` losses."""
    return float(np.mean(run.loss[-SMOOTH:]))


def score_cuts(
    name: str,
    run: Run,
    schedule: str,
    references: dict,
    rows: list[dict],
    group: str,
    dataset: str,
) -> None:
    """Cut `run` at each of `CUTS`, forecast its last logged loss every way, append rows. The
    forecasts without a reference use the decay prior without `dataset`'s members (`PRIOR`)."""
    final_step, final = int(run.steps[-1]), float(run.loss[-1])
    for cut in CUTS:
        if run.steps[0] > cut * final_step:
            continue  # nothing logged yet (the shared logs start after the warmup)
        part = run.until(int(cut * final_step))
        if part.steps.size < 2:
            continue
        row = {"group": group, "curve": name, "cut": cut, "final": final}
        row["power_steps"] = power_in_steps(part, final_step)
        row["last_smoothed"] = last_smoothed(part)
        for method, reference in {"live": None, **references}.items():
            forecaster = LiveForecaster(
                schedule=schedule,
                total_steps=final_step + 1,
                reference=reference,
                whatifs=False,
                prior=PRIOR.without(dataset) if PRIOR and reference is None else None,
            )
            result = forecaster.forecast(part)
            row[method] = result.final_loss if result.status == "forecast" else None
            row[f"{method}_band"] = (result.final_low, result.final_high)
            row[f"{method}_status"] = result.status
            if method == "live" and PRIOR is not None:
                # Without the prior: the same, except where the prior made the forecast.
                if result.decay_prior:
                    row["live_no_prior"] = None
                    row["live_no_prior_band"] = (None, None)
                else:
                    row["live_no_prior"] = row["live"]
                    row["live_no_prior_band"] = row["live_band"]
        rows.append(row)


def summarise(rows: list[dict], methods: list[str], title: str) -> None:
    """Mean error per cut, band coverage and forecasts given, per method."""
    print(f"\n{title}")
    print(
        f"{'cut':>4} {'method':<15} {'curves':>6} {'given':>6} {'mean err':>9} {'max err':>9} "
        f"{'cover90':>7}  (errors over the curves with a forecast; baselines on the same curves)"
    )
    for cut in CUTS:
        at_cut = [row for row in rows if row["cut"] == cut]
        if not at_cut:
            continue
        for method in methods:
            scored = [row for row in at_cut if method in row]
            # No forecast: too few points or too wide a band (ours), a failed fit (the power law)
            given = [row for row in scored if row[method] is not None and np.isfinite(row[method])]
            if not scored:
                continue
            errors = [abs(row[method] / row["final"] - 1) for row in given]
            band = f"{method}_band"
            covered = [row[band][0] <= row["final"] <= row[band][1] for row in given if band in row]
            coverage = f"{np.mean(covered):>7.2f}" if covered else f"{'-':>7}"
            mean = f"{np.mean(errors):>9.5f}" if errors else f"{'-':>9}"
            worst = f"{np.max(errors):>9.5f}" if errors else f"{'-':>9}"
            print(
                f"{cut:>4.0%} {method:<15} {len(scored):>6} {len(given):>6} {mean} {worst} "
                f"{coverage}"
            )
            if method.startswith("live") and given and len(given) < len(scored):
                # The baselines on the same curves, so that the comparison is like for like.
                for base in ("power_steps", "last_smoothed"):
                    same = np.nanmean([abs(row[base] / row["final"] - 1) for row in given])
                    print(f"{'':>4} {'  ' + base:<15} {'':>6} {len(given):>6} {same:>9.5f}")


# --- the data sets ------------------------------------------------------------------------------


def shared_part(rows: list[dict], sizes: list[str]) -> None:
    references = {}
    for size in sizes:
        began = time.perf_counter()
        other = REFERENCE_SIZE[size]
        if other not in references:
            references[other] = get_law("lrlab").fit(shared.load_shared_runs(other, shared.TRAIN))
        same = get_law("lrlab").fit(shared.load_shared_runs(size, shared.TRAIN))
        for name in shared.TRAIN + shared.HELD_OUT:
            run = shared.load_shared_run(size, name)
            refs = {"live_ref_other": references[other]}
            if name not in shared.TRAIN:  # the same size's fit has not seen these
                refs["live_ref_same"] = same
            spec = shared.SCHEDULE_SPECS[name]
            score_cuts(name, run, spec, refs, rows, f"shared {size}", "mpl")
        print(f"shared {size}: {time.perf_counter() - began:.0f} s", file=sys.stderr, flush=True)


def spec_124m(record: dict) -> str:
    peak, total = record["peak_lr"], record["total_steps"]
    warmup = record["warmup"]
    kind = record["kind"]
    if kind.startswith("stable"):
        return f"constant(peak={peak}, warmup={warmup})"
    if kind.startswith("cos"):
        end = 0.1 if kind.startswith("cos-10") else 0.0
        return f"cosine(peak={peak}, total={total}, warmup={warmup}, end_ratio={end})"
    decay = "1-sqrt" if record["decay"] == "sqrt" else "linear"
    fraction = record["cooldown_fraction"]
    return (
        f"wsd(peak={peak}, total={total}, warmup={warmup}, cooldown_fraction={fraction}, "
        f"decay={decay})"
    )


def load_124m(record: dict, stable: Run | None) -> Run:
    """A run of the 124M set; a WSD branch gets the stable run's points before its own."""
    spec = spec_124m(record)
    run = read_run(DATA_124M / f"{record['name']}.csv", schedule=spec)
    if stable is None or not record["kind"].startswith("ann"):
        return run
    before = stable.steps < run.steps[0]
    steps = np.concatenate([stable.steps[before], run.steps])
    loss = np.concatenate([stable.loss[before], run.loss])
    lr = parse(spec)(np.arange(int(steps[-1]) + 1))
    return Run(record["name"], lr, steps, loss, source=run.source)


def wsd124_part(rows: list[dict], every_run: bool) -> None:
    records = json.loads((DATA_124M / "runs.json").read_text())
    for peak in sorted({record["peak_lr"] for record in records}):
        began = time.perf_counter()
        at_peak = [record for record in records if record["peak_lr"] == peak]
        by_name = {record["name"]: record for record in at_peak}
        stable_record = next(r for r in at_peak if r["kind"].startswith("stable"))
        stable = load_124m(stable_record, None)
        cosine_name = next(
            r["name"]
            for r in at_peak
            if r["kind"].startswith("cos-10") and r["total_steps"] == 25000
        )
        reference = get_law("lrlab").fit([stable, load_124m(by_name[cosine_name], None)])
        for record in at_peak:
            chosen = (
                every_run
                or record["kind"].startswith(("stable", "cos"))
                or (
                    record["total_steps"] in (25000, 50000)
                    and record["cooldown_fraction"] in (0.2, 0.4, 0.8)
                )
            )
            if not chosen:
                continue
            run = load_124m(record, stable)
            refs = {}
            if record["name"] not in (stable_record["name"], cosine_name):
                refs["live_ref_same"] = reference
            spec = spec_124m(record)
            score_cuts(record["name"], run, spec, refs, rows, f"124M lr {peak:g}", "124M")
        print(f"124M lr {peak:g}: {time.perf_counter() - began:.0f} s", file=sys.stderr, flush=True)


# --- the wind tunnel ----------------------------------------------------------------------------


def tunnel_part(out: Path, rows: list[dict]) -> None:
    from lrlab.study import StudyConfig, train_tunnel_run

    study = StudyConfig()
    setup = {section: dict(values) for section, values in study.tunnel.items()}
    setup["train"].update(eval_interval=10, eval_batches=16)  # a smoother eval curve
    budget, peak, warmup = study.budget, study.peak, study.warmup
    config = {"budget": budget, "tunnel": setup}

    def train(name: str, spec: str, seed: int = 0) -> Run:
        """The run of `spec` (seed 0: the study's; others: the scatter between runs)."""
        run_config = config
        if seed:
            seeded = {section: dict(values) for section, values in setup.items()}
            seeded["train"]["seed"] = seed
            run_config, name = {"budget": budget, "tunnel": seeded}, f"{name}-seed{seed}"
        return train_tunnel_run(
            run_config,
            out / "tunnel" / name,
            name,
            parse(spec),
            lambda message: print(message, file=sys.stderr, flush=True),
            "[live]",
        )

    fit_runs = {name: train(name, str(s)) for name, s in study.fit_runs().items()}
    reference = get_law("lrlab").fit(list(fit_runs.values()))
    common = f"peak={peak}, total={budget}, warmup={warmup}"
    wsd20 = f"wsd({common}, cooldown_fraction=0.2, decay=linear)"
    plans = {"wsd-20%": wsd20, "cosine-10%": f"cosine({common}, end_ratio=0.1)"}
    runs = {name: train(name, spec) for name, spec in plans.items()}
    for name, spec in plans.items():
        refs = {"live_ref_same": reference}
        score_cuts(name, runs[name], spec, refs, rows, "tunnel", "tunnel")
    summarise(
        [row for row in rows if row["group"] == "tunnel"],
        ["live", "live_no_prior", "live_ref_same", "power_steps", "last_smoothed"],
        "wind tunnel (study model, 800 steps): final-loss forecast error by the part seen",
    )

    print("\ncooldown decision at 50% of the WSD-20% run (budget 800 steps), measured:")
    half = runs["wsd-20%"].until(budget // 2)
    final_wsd = float(runs["wsd-20%"].loss[-1])
    print(f"  WSD-20%-linear (cooldown at {budget - round(0.2 * budget)}): {final_wsd:.4f}")
    picked = None
    for label, ref in (("lrlab whatif", None), ("lrlab whatif --reference", reference)):
        prior = PRIOR.without("tunnel") if PRIOR and ref is None else None
        forecaster = LiveForecaster(schedule=wsd20, total_steps=budget, reference=ref, prior=prior)
        result = forecaster.forecast(half)
        if result.status != "forecast" or result.best is None:
            print(f"  {label}: no forecast ({result.status}): {'; '.join(result.notes)}")
            continue
        start = result.best.whatif.start
        picked = picked or start
        name = f"wsd-cooldown-at-{start}"
        measured = float(train(name, f"wsd({common}, cooldown_steps={budget - start})").loss[-1])
        best = result.best
        print(
            f"  {label}: best start {start}, forecast {best.final_loss:.4f} "
            f"[{best.low:.4f}, {best.high:.4f}], gain over the plan {best.gain:+.4f} "
            f"[{best.gain_low:+.4f}, {best.gain_high:+.4f}] (planned WSD-20% forecast "
            f"{result.final_loss:.4f} [{result.final_low:.4f}, {result.final_high:.4f}]); "
            f"measured {measured:.4f}: "
            f"{'at least as low' if measured <= final_wsd else 'higher'} than WSD-20% by "
            f"{final_wsd - measured:+.4f}"
        )
    scatter = np.std(np.diff(runs["wsd-20%"].loss[-20:])) / np.sqrt(2)
    print(f"  eval-loss scatter of one point near the end (successive differences): {scatter:.4f}")
    if picked is not None:
        seeds_part(train, picked, f"wsd({common}, cooldown_steps={budget - picked})", wsd20)


def seeds_part(train, start: int, spec: str, wsd20: str) -> None:
    """The picked start and WSD-20% trained again with other seeds (initialisation and data
    order): the scatter between runs, against which a difference of the two is read."""
    pairs = []
    for seed in SEEDS:
        picked = float(train(f"wsd-cooldown-at-{start}", spec, seed).loss[-1])
        plan = float(train("wsd-20%", wsd20, seed).loss[-1])
        pairs.append((plan, picked))
    differences = np.array([plan - picked for plan, picked in pairs])
    plans = np.array([plan for plan, _ in pairs])
    print(
        f"  seeds {', '.join(map(str, SEEDS))}: WSD-20% "
        + ", ".join(f"{plan:.4f}" for plan, _ in pairs)
        + f"; cooldown at {start} "
        + ", ".join(f"{picked:.4f}" for _, picked in pairs)
    )
    print(
        f"  per seed, WSD-20% minus the pick: {', '.join(f'{d:+.4f}' for d in differences)}; "
        f"mean {differences.mean():+.4f}, sd {differences.std(ddof=1):.4f} (standard error "
        f"{differences.std(ddof=1) / np.sqrt(differences.size):.4f}); the final loss of one "
        f"WSD-20% run scatters by sd {plans.std(ddof=1):.4f} between seeds"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out/live")
    parser.add_argument("--parts", default="shared,wsd124,tunnel")
    parser.add_argument("--sizes", default=",".join(shared.SIZES))
    parser.add_argument("--all-124m", action="store_true", help="every 124M curve, not a subset")
    parser.add_argument(
        "--cuts", help="fractions seen to forecast from, e.g. 0.5 (default: 0.1,0.25,0.5,0.75)"
    )
    parser.add_argument(
        "--prior",
        default=str(DEFAULT_PRIOR_FILE),
        help="the decay prior of all three data sets (each part leaves its own out); 'none': "
        "no prior, runs that have not begun their decay get no forecast without a reference",
    )
    args = parser.parse_args()
    global PRIOR
    PRIOR = None if args.prior == "none" else DecayPrior.load(args.prior)
    if args.cuts:
        global CUTS
        CUTS = tuple(float(cut) for cut in args.cuts.split(","))
    parts = args.parts.split(",")
    warnings.simplefilter("ignore")  # logged-LR mismatches of the 124M logs, fit warnings
    print(
        f"machine: {platform.machine()}, python {platform.python_version()}; "
        f"parts: {', '.join(parts)}"
    )
    began = time.perf_counter()
    rows: list[dict] = []
    methods = [
        "live",
        "live_no_prior",
        "live_ref_other",
        "live_ref_same",
        "power_steps",
        "last_smoothed",
    ]
    if "shared" in parts and shared.shared_data_available():
        shared_part(rows, args.sizes.split(","))
        for group in sorted({row["group"] for row in rows}):
            for label, names in (
                (
                    "24000-step curves",
                    ("cosine_24000", "constant_24000", "wsd_20000_24000", "wsdld_20000_24000"),
                ),
                ("all nine curves", shared.TRAIN + shared.HELD_OUT),
            ):
                summarise(
                    [r for r in rows if r["group"] == group and r["curve"] in names],
                    methods,
                    f"{group}, {label}: final-loss forecast error by the part seen",
                )
    if "wsd124" in parts and (DATA_124M / "runs.json").is_file():
        start = len(rows)
        wsd124_part(rows, args.all_124m)
        for group in sorted({row["group"] for row in rows[start:]}):
            summarise(
                [r for r in rows if r["group"] == group],
                ["live", "live_no_prior", "live_ref_same", "power_steps", "last_smoothed"],
                f"{group}: final-loss forecast error by the part seen",
            )
    if "tunnel" in parts:
        tunnel_part(Path(args.out), rows)
    print(f"\ntotal {time.perf_counter() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
