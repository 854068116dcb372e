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
"""

from __future__ import annotations

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
