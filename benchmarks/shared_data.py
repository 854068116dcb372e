"""The shared development benchmark: real loss curves of Luo et al. (2025), "A Multi-Power Law for
Loss Curve Prediction Across Learning Rate Schedules" (ICLR 2025, arXiv:2503.12811).

The data lives outside the repository, in ``<repo>/../shared/data/mpl-loss-curves/`` (override
with the ``LRLAB_SHARED_DATA`` environment variable); its README defines every schedule's per-step
LR, which `SCHEDULE_SPECS` rebuilds exactly as lrlab schedule specs, and publishes the
multi-power-law parameters and results, which `published_parameters` / `published_results` read
from it.

This is a fixture of the benchmarks and the tests, not part of the installed library: the scripts
in ``benchmarks/`` import it as ``shared_data`` (their own folder is on the path), and
``tests/conftest.py`` puts this folder on the tests' path.

A second real data set sits beside it, ``../shared/data/wsd-cooldown-124m/`` (50 validation-loss
curves of a 124M model by another group, Schaipp et al. 2025): `wsd_cooldown_dir`,
`wsd_cooldown_records` (its ``runs.json``) and `load_wsd_cooldown_run` read it as a user would,
from the logged ``lr`` column with the 300-step warmup its README gives (the logs start at step 400,
after the warmup). `load_logged_run` reads a multi-power-law curve the same way (logged ``lr``,
``--warmup 2160``), where `load_shared_run` rebuilds its exact per-step LR from a spec.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np

from lrlab.errors import LrlabError
from lrlab.runs.model import Run
from lrlab.runs.read import read_run

SIZES = ("25M", "100M", "400M")
TRAIN = ("cosine_24000", "constant_24000", "wsdcon_9")
HELD_OUT = (
    "constant_72000",
    "cosine_72000",
    "wsd_20000_24000",
    "wsdld_20000_24000",
    "wsdcon_3",
    "wsdcon_18",
)
TRAIN_TWO = ("constant_24000", "cosine_24000")
HELD_OUT_TWO = tuple(name for name in TRAIN + HELD_OUT if name not in TRAIN_TWO)
METRIC_NAMES = ("R2", "MAE", "RMSE", "PredE", "WorstE")


def benchmark_schedules(
    total: int, warmup: int, peak: float, end: float
) -> dict[str, tuple[str, int]]:
    """The nine schedules of the benchmark, ``{name: (spec, steps)}``, for a short run of `total`
    steps: the shared data's are ``benchmark_schedules(24000, 2160, 3e-4, 3e-5)``, and other
    values scale them (the wind-tunnel benchmark, ``benchmarks/laws_tunnel.py``), keeping the
    names of the roles they play. Long runs are 3x `total`; WSD decays over the last 1/6 of
    `total`; ``wsdcon_k`` runs 2/3 of `total` and drops at 1/3 of it to ``k * end / 3``."""
    # lr[0:W] = linspace(0, peak, W): peak is reached at t = W - 1.
    ramp = f"piecewise_linear(points=[[0, 0], [{warmup - 1}, {peak}]])"

    def after_warmup(*phases: str, boundaries: tuple[int, ...] = ()) -> str:
        joined = ", ".join([ramp, *phases])
        marks = ", ".join(str(b) for b in (warmup, *boundaries))
        return f"join(schedules=[{joined}], boundaries=[{marks}])"

    def wsd_tail(decay: str) -> str:
        return (
            f"wsd(peak={peak}, total={total - warmup}, warmup=0, cooldown_steps={total // 6}, "
            f"decay={decay}, end={end})"
        )

    long, short_drop = 3 * total, 2 * total // 3
    return {
        "constant_24000": (after_warmup(f"constant(peak={peak})"), total),
        "constant_72000": (after_warmup(f"constant(peak={peak})"), long),
        "cosine_24000": (
            after_warmup(f"cosine(peak={peak}, total={total - warmup}, end={end})"),
            total,
        ),
        "cosine_72000": (
            after_warmup(f"cosine(peak={peak}, total={long - warmup}, end={end})"),
            long,
        ),
        "wsd_20000_24000": (after_warmup(wsd_tail("exponential")), total),
        "wsdld_20000_24000": (after_warmup(wsd_tail("linear")), total),
        **{
            f"wsdcon_{k}": (
                after_warmup(
                    f"constant(peak={peak})",
                    f"constant(peak={k * end / 3:.6g})",
                    boundaries=(total // 3,),
                ),
                short_drop,
            )
            for k in (3, 9, 18)
        },
    }


_SHARED_SCHEDULES = benchmark_schedules(24000, 2160, 3e-4, 3e-5)
SCHEDULE_SPECS: dict[str, str] = {name: spec for name, (spec, _) in _SHARED_SCHEDULES.items()}
TOTAL_STEPS: dict[str, int] = {name: steps for name, (_, steps) in _SHARED_SCHEDULES.items()}


def shared_data_dir() -> Path:
    """``$LRLAB_SHARED_DATA``, else ``<repo root>/../shared/data/mpl-loss-curves``."""
    override = os.environ.get("LRLAB_SHARED_DATA")
    if override:
        return Path(override)
    repo_root = Path(__file__).resolve().parents[1]  # this file is <repo>/benchmarks/shared_data.py
    return repo_root.parent / "shared" / "data" / "mpl-loss-curves"


def shared_data_available() -> bool:
    """Whether the shared data (its README and the 25M curves at least) is there."""
    root = shared_data_dir()
    return (root / "README.md").is_file() and (root / "25M").is_dir()


def load_shared_run(size: str, name: str) -> Run:
    """One shared curve with its exact per-step LR; steps up to the schedule's total are kept
    (``step < total``, as the reference code does)."""
    path = shared_data_dir() / size / f"{name}.csv"
    if not path.is_file():
        raise LrlabError(f"{path}: shared curve not found (set LRLAB_SHARED_DATA?)")
    run = read_run(path, schedule=SCHEDULE_SPECS[name], name=name)
    return run.until(TOTAL_STEPS[name] - 1)


def load_shared_runs(size: str, names: tuple[str, ...]) -> list[Run]:
    """Several shared curves of one model size."""
    return [load_shared_run(size, name) for name in names]


# The multi-power-law runs' warmup (the README's; their logs start at its end, step 2160).
LOGGED_WARMUP = 2160


def load_logged_run(size: str, name: str) -> Run:
    """One shared curve as ``lrlab fit --warmup 2160`` reads it: the per-step LR interpolated from
    the logged ``lr`` column, the warmup (which the log, starting at its end, cannot show) given."""
    path = shared_data_dir() / size / f"{name}.csv"
    if not path.is_file():
        raise LrlabError(f"{path}: shared curve not found (set LRLAB_SHARED_DATA?)")
    return read_run(path, name=name, warmup=LOGGED_WARMUP)


def wsd_cooldown_dir() -> Path:
    """The 124M WSD-cooldown curves: ``wsd-cooldown-124m`` beside the multi-power-law folder."""
    return shared_data_dir().parent / "wsd-cooldown-124m"


def wsd_cooldown_available() -> bool:
    """Whether the 124M WSD-cooldown data (its ``runs.json``) is there."""
    return (wsd_cooldown_dir() / "runs.json").is_file()


def wsd_cooldown_records() -> dict[str, dict]:
    """The records of ``runs.json`` by run name: ``kind``, ``peak_lr``, ``schedule``, ``decay``,
    ``cooldown_fraction``, ``total_steps``, ``warmup``."""
    path = wsd_cooldown_dir() / "runs.json"
    if not path.is_file():
        raise LrlabError(f"{path}: not found (the wsd-cooldown-124m data set)")
    return {record["name"]: record for record in json.loads(path.read_text(encoding="utf-8"))}


def load_wsd_cooldown_run(name: str) -> Run:
    """One 124M curve as ``lrlab fit --warmup 300`` reads it (logged ``lr``, the README's
    warmup). A WSD run's file holds its whole curve: the constant phase it shares with
    ``stable-124m`` up to the checkpoint it branched from, then its own steps."""
    record = wsd_cooldown_records().get(name)
    if record is None:
        raise LrlabError(f"{wsd_cooldown_dir() / 'runs.json'}: no run named {name!r}")
    return read_run(wsd_cooldown_dir() / f"{name}.csv", name=name, warmup=int(record["warmup"]))


def _readme() -> str:
    path = shared_data_dir() / "README.md"
    if not path.is_file():
        raise LrlabError(f"{path}: shared data README not found")
    return path.read_text(encoding="utf-8")


def published_parameters() -> dict[str, np.ndarray]:
    """Published multi-power-law parameters ``[L0, A, alpha, B, C, beta, gamma]`` per size, read
    from the shared README."""
    found = re.findall(r"^- (\d+M): `\[([^\]]+)\]`", _readme(), flags=re.MULTILINE)
    params = {size: np.array([float(v) for v in values.split(",")]) for size, values in found}
    if set(params) != set(SIZES):
        raise LrlabError("shared README: cannot find the published parameters of every size")
    return params


def published_results() -> dict[str, dict[str, float]]:
    """The published multi-power-law table (R2, MAE, RMSE, PredE, WorstE) per size."""
    rows = re.findall(r"^\| (\d+M) \|([^\n]+)\|$", _readme(), flags=re.MULTILINE)
    table = {
        size: dict(zip(METRIC_NAMES, (float(cell) for cell in cells.split("|")), strict=True))
        for size, cells in rows
    }
    if set(table) != set(SIZES):
        raise LrlabError("shared README: cannot find the published results of every size")
    return table
