"""``lrlab train`` and ``lrlab sweep``: the wind tunnel on the command line (needs PyTorch)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from lrlab.errors import LrlabError

# Shortcut flags of `lrlab train`: (flag, section, field, type).
_SHORTCUTS: list[tuple[str, str, str, type]] = [
    ("--schedule", "train", "schedule", str),
    ("--steps", "train", "steps", int),
    ("--batch-size", "train", "batch_size", int),
    ("--seq-len", "train", "seq_len", int),
    ("--seed", "train", "seed", int),
    ("--device", "train", "device", str),
    ("--progress", "train", "progress", str),
    ("--branch-from", "train", "branch_from", str),
    ("--init-from", "train", "init_from", str),
    ("--corpus", "data", "corpus", str),
    ("--d-model", "model", "d_model", int),
    ("--n-layers", "model", "n_layers", int),
    ("--n-heads", "model", "n_heads", int),
]


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser(
        "train",
        help="train a small transformer on real text under an lrlab schedule",
        description="Train a small language model (the wind tunnel). Settings come from "
        "--config, then --set, then the shortcut flags; see docs/tunnel.md.",
    )
    train.add_argument("--config", metavar="FILE", help="YAML or JSON config file")
    train.add_argument("--out", metavar="DIR", help="run folder (default: the config's 'out')")
    train.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its latest checkpoint"
    )
    train.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="override one config field (repeat)",
    )
    for flag, section, field, kind in _SHORTCUTS:
        train.add_argument(
            flag,
            dest=f"short_{section}_{field}",
            type=kind,
            metavar="VALUE",
            help=f"same as --set {section}.{field}=VALUE",
        )
    train.set_defaults(handler=train_command)

    sweep = subparsers.add_parser(
        "sweep",
        help="train a grid of runs (peak LR x schedule x seed x width) in parallel",
        description="Run a sweep config (see docs/tunnel.md); finished runs are skipped, so "
        "running it again resumes it.",
    )
    sweep.add_argument("--config", metavar="FILE", required=True, help="sweep YAML/JSON file")
    sweep.add_argument("--out", metavar="DIR", help="sweep folder (default: the config's 'out')")
    sweep.add_argument("--workers", type=int, metavar="N", help="worker processes")
    sweep.set_defaults(handler=sweep_command)


def _config_mapping(args: argparse.Namespace) -> dict[str, Any]:
    from lrlab.mapping_file import read_mapping
    from lrlab.tunnel.config import apply_overrides

    if args.config:
        data = read_mapping(args.config)
    elif args.resume and args.out and (Path(args.out) / "config.json").is_file():
        data = read_mapping(Path(args.out) / "config.json")
    else:
        data = {}
    apply_overrides(data, args.overrides)
    for _flag, section, field, _kind in _SHORTCUTS:
        value = getattr(args, f"short_{section}_{field}")
        if value is not None:
            section_data = data.setdefault(section, {})
            if not isinstance(section_data, dict):
                raise LrlabError(f"config: section {section!r} must be a mapping of fields")
            section_data[field] = value
    return data


def _require_torch() -> None:
    try:
        import torch  # noqa: F401
    except ModuleNotFoundError:
        raise LrlabError("the wind tunnel needs PyTorch: pip install 'lrlab[torch]'") from None


def train_command(args: argparse.Namespace) -> int:
    _require_torch()
    from lrlab.tunnel.config import config_from_dict
    from lrlab.tunnel.train import train

    data = _config_mapping(args)
    config = config_from_dict(data, args.config or "config")
    out = args.out or config.out
    if not out:
        raise LrlabError("no run folder: give --out DIR or 'out' in the config")
    record = train(config, out, resume=args.resume)
    final = record["final_val_loss"]
    final_text = "n/a" if final is None else f"{final:.4f}"
    extended = record.get("extended_from")
    print(
        f"{out}: {record['status']} after {record['steps_done']} steps"
        + (f" (extended from {extended})" if extended else "")
        + f", validation loss {final_text}, {record['elapsed_s']:.1f} s"
    )
    if record["diverged"]:
        print(
            f"  diverged: {record['diverged']['reason']}; last checkpoint "
            f"{record['last_checkpoint']}",
            file=sys.stderr,
        )
        return 1
    return 0


def sweep_command(args: argparse.Namespace) -> int:
    _require_torch()
    from lrlab.tunnel.sweep import format_table, load_sweep, run_sweep

    sweep = load_sweep(args.config)
    if args.workers is not None:
        if args.workers < 1:
            raise LrlabError(f"--workers={args.workers} must be at least 1")
        sweep.workers = args.workers
    out = args.out or sweep.out
    if not out:
        raise LrlabError(f"{args.config}: no sweep folder: give --out DIR or 'out' in the config")
    results = run_sweep(sweep, out, log=lambda line: print(line, file=sys.stderr))
    print(format_table(results))
    return 0 if all(row["status"] in ("finished", "diverged") for row in results["runs"]) else 1
