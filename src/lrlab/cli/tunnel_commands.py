"""``lrlab train`` and ``lrlab sweep``: the wind tunnel on the command line (needs PyTorch)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lrlab.cli.run_options import report_progress
from lrlab.errors import LrlabError

if TYPE_CHECKING:  # the pool's module is for the commands that train, not for the parser
    from lrlab.tunnel.pool import Backend

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
    train.add_argument(
        "--nproc",
        type=int,
        metavar="N",
        help="train the run on N processes of this machine, each with an equal share of every "
        "batch (DistributedDataParallel: gloo on CPU, one GPU each with NCCL); docs/tunnel.md",
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
    sweep.add_argument(
        "--workers", type=int, metavar="N", help="worker processes (the local backend)"
    )
    add_backend_options(sweep)
    sweep.set_defaults(handler=sweep_command)


def add_backend_options(parser: argparse.ArgumentParser) -> None:
    """``--backend`` and ``--address``: where a command's independent runs train (docs/cluster.md).
    Shared by `lrlab sweep` and `lrlab study`."""
    parser.add_argument(
        "--backend",
        choices=["local", "ray"],
        default="local",
        help="local: worker processes of this machine (default); ray: one Ray task per run, "
        "on a Ray cluster (needs lrlab[ray]; see docs/cluster.md)",
    )
    parser.add_argument(
        "--address",
        metavar="ADDR",
        help="the Ray cluster to use (e.g. HEAD:6379; default: $RAY_ADDRESS, else a Ray "
        "instance started on this machine); needs --backend ray",
    )


def backend_from_args(args: argparse.Namespace) -> Backend:
    """The `lrlab.tunnel.pool.Backend` the options say; an `LrlabError` for --address without
    --backend ray, or for the ray backend without Ray installed (before any work starts)."""
    from lrlab.tunnel.pool import Backend

    if args.address is not None and args.backend != "ray":
        raise LrlabError("--address names a Ray cluster: give --backend ray too")
    if args.backend == "ray":
        from lrlab.tunnel.ray_backend import require_ray

        require_ray()
    return Backend(args.backend, args.address)


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
    from lrlab.tunnel.distributed import from_environment
    from lrlab.tunnel.train import train, train_processes

    data = _config_mapping(args)
    config = config_from_dict(data, args.config or "config")
    out = args.out or config.out
    if not out:
        raise LrlabError("no run folder: give --out DIR or 'out' in the config")
    # Under torchrun every process runs this command; rank 0 speaks for the run.
    processes = from_environment()
    try:
        if args.nproc is None:
            record = train(config, out, resume=args.resume)
        else:
            record = train_processes(config, out, nproc=args.nproc, resume=args.resume)
    except LrlabError:
        if processes.main:
            raise
        raise SystemExit(2) from None  # every rank has the error; rank 0 prints it
    if not processes.main:
        return 1 if record["diverged"] else 0
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

    backend = backend_from_args(args)
    sweep = load_sweep(args.config)
    if args.workers is not None:
        if args.workers < 1:
            raise LrlabError(f"--workers={args.workers} must be at least 1")
        if backend.name == "ray":
            raise LrlabError(
                "--workers sizes the local pool; on Ray each run reserves its resources "
                "(the sweep file's resources: num_cpus, num_gpus)"
            )
        sweep.workers = args.workers
    out = args.out or sweep.out
    if not out:
        raise LrlabError(f"{args.config}: no sweep folder: give --out DIR or 'out' in the config")
    # One "lrlab:" line each on stderr, as the runs' own progress lines are.
    results = run_sweep(sweep, out, log=report_progress, backend=backend)
    print(format_table(results))
    return 0 if all(row["status"] in ("finished", "diverged") for row in results["runs"]) else 1
