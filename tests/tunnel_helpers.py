"""The tiny wind-tunnel run the tunnel tests train: 2 layers of width 32 on 60 kB of English, a
second or two of training on one thread."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def tiny_config(
    tmp_path: Path, *, steps: int = 30, sections: dict[str, dict[str, Any]] | None = None, **train
) -> dict[str, Any]:
    """A run config mapping: `train` fields override the tiny defaults (a cosine schedule over
    `steps`, progress off), `sections` the other sections' fields one by one."""
    data: dict[str, Any] = {
        "model": {"d_model": 32, "n_layers": 2, "n_heads": 2},
        "data": {"corpus": "english", "max_bytes": 60_000, "cache_dir": str(tmp_path / "cache")},
        "train": {
            "steps": steps,
            "batch_size": 4,
            "seq_len": 32,
            "eval_interval": 10,
            "eval_batches": 2,
            "checkpoint_interval": 10,
            "threads": 1,
            "progress": "off",
            "schedule": f"cosine(peak=3e-3, total={steps}, warmup=3)",
            **train,
        },
    }
    for name, values in (sections or {}).items():
        data[name] = {**data.get(name, {}), **values}
    return data
