"""Does the warmup matter to a fit, and does the fit warning stay quiet on sound fits?

    python benchmarks/warmup_given.py

- ``warmup``: logs that start after their warmup (no trace of it in the logged LR), read as the
  command line reads them (the logged LR interpolated, LR 0 at step 0) without and with the true
  warmup given (``--warmup``, which makes the LR rise from 0 to the first logged value over it):
  the 124M WSD-cooldown runs at peak 5e-4 (warmup 300, logs from step 400), `lrlab`'s law fitted
  to ``stable-124m`` and ``cos-10-124m`` T=25000 and scored (PredE) on the other constant and
  cosine runs at that peak; and the multi-power-law curves (warmup 2160, logs from 2176), fitted
  on the published split (cosine_24000, constant_24000, wsdcon_9) and scored on the six others,
  for each model size. The ratio with / without is measured in the same run.
- ``warning``: how often `lrlab.laws.registry.warn_if_unpinned` fires on the benchmark fits of
  every law (the shared split at each size, the 124M pair), where it should stay quiet, and on
  the first 10 points of each, where it should not.

Data: ``../shared/data/mpl-loss-curves`` and ``../shared/data/wsd-cooldown-124m`` (skipped with a
message where absent).
"""

from __future__ import annotations

import platform
import time
import warnings
from pathlib import Path

import numpy as np

import shared_data as shared
from lrlab.laws import LAW_NAMES, get_law
from lrlab.laws.base import FitWarning
from lrlab.laws.registry import warn_if_unpinned
from lrlab.runs import Run, RunWarning, read_run

DATA_124M = shared.shared_data_dir().parent / "wsd-cooldown-124m"
TRAIN_124M = ("stable-124m_lr0.0005_linear_0.0_T50000", "cos-10-124m_lr0.0005_sqrt_0.0_T25000")
HELD_OUT_124M = (
    "cos-10-124m_lr0.0005_sqrt_0.0_T50000",
    "cos-zero-124m_lr0.0005_sqrt_0.0_T25000",
    "cos-zero-124m_lr0.0005_sqrt_0.0_T50000",
)


def pred_e(law, runs: list[Run]) -> float:
    """Mean PredE of `law` over `runs` (the points it predicts)."""
    errors = []
    for run in runs:
        pred = law.predict_run(run)
        defined = np.isfinite(pred)
        errors.append(np.mean(np.abs(pred[defined] - run.loss[defined]) / run.loss[defined]))
    return float(np.mean(errors))


def read(path: Path, warmup: int | None) -> Run:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RunWarning)
        return read_run(path, warmup=warmup)


def split_scores(train: list[Path], held_out: list[Path], warmup: int) -> tuple[float, float]:
    """Held-out PredE of lrlab's law fitted without, then with, the warmup given."""
    scores = []
    for given in (None, warmup):
        law = get_law("lrlab", bands=False).fit([read(path, given) for path in train])
        scores.append(pred_e(law, [read(path, given) for path in held_out]))
    return scores[0], scores[1]


def warmup_part() -> None:
    print("held-out PredE, lrlab's law: warmup not given (first logged step) vs given")
    cases = []
    if DATA_124M.is_dir():
        cases.append(
            (
                "124M, peak 5e-4 (warmup 300)",
                [DATA_124M / f"{name}.csv" for name in TRAIN_124M],
                [DATA_124M / f"{name}.csv" for name in HELD_OUT_124M],
                300,
            )
        )
    else:
        print(f"  (skipped: {DATA_124M} absent)")
    if shared.shared_data_available():
        for size in shared.SIZES:
            folder = shared.shared_data_dir() / size
            cases.append(
                (
                    f"{size} (warmup 2160)",
                    [folder / f"{name}.csv" for name in shared.TRAIN],
                    [folder / f"{name}.csv" for name in shared.HELD_OUT],
                    2160,
                )
            )
    else:
        print(f"  (skipped: {shared.shared_data_dir()} absent)")
    for label, train, held_out, warmup in cases:
        without, given = split_scores(train, held_out, warmup)
        print(
            f"  {label:<30} without {without:.5f}  given {given:.5f}  "
            f"ratio given/without {given / without:.2f}"
        )


def warns(law_name: str, runs: list[Run]) -> tuple[bool, bool]:
    """Whether the fit of `runs` warns, and whether any parameter has an error larger than its
    value (the rule the warning does not use alone)."""
    law = get_law(law_name, bands=False).fit(runs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FitWarning)
        warn_if_unpinned(law)
    return bool(caught), bool(law.fit_info_["unpinned"])


def warning_part() -> None:
    print("fits that warn (points cannot pin the law down), per law")
    splits = []
    if shared.shared_data_available():
        splits += [(size, shared.load_shared_runs(size, shared.TRAIN)) for size in shared.SIZES]
    if DATA_124M.is_dir():
        splits.append(("124M", [read(DATA_124M / f"{n}.csv", 300) for n in TRAIN_124M]))
    for law_name in LAW_NAMES:
        sound = [warns(law_name, runs) for _, runs in splits]
        short = [warns(law_name, [runs[0].until(int(runs[0].steps[9]))])[0] for _, runs in splits]
        loose = [name for (name, _), (_, any_unpinned) in zip(splits, sound) if any_unpinned]
        print(
            f"  {law_name:<9} benchmark fits: {sum(w for w, _ in sound)}/{len(sound)} warn "
            f"(one parameter's error above its value: {', '.join(loose) or 'none'})   "
            f"first 10 points of one run: {sum(short)}/{len(short)} warn"
        )


def main() -> None:
    began = time.perf_counter()
    print(f"python {platform.python_version()}, {platform.machine()}")
    warmup_part()
    warning_part()
    print(f"({time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main()
