"""Throughput of the wind tunnel's train step against a minimal plain PyTorch loop.

Both sides train the same `Transformer` (same config and initial weights) with AdamW on the same
batches: lrlab's side is the loop body of `Trainer.run` (LR from the schedule, gradient, update and
parameter norms, the CSV row, the divergence check); the plain side is forward, backward, clip,
step. Repetitions come in back-to-back pairs, in alternating order, and the ratio is the median
of the pairs' ratios, so a machine that slows down or speeds up (other jobs on a shared CPU)
affects both sides of a pair alike. Goal: ratio >= 0.95.

On a GPU (``--device cuda``) the default model has about 50M parameters, runs in bf16 autocast,
and the model FLOPs utilisation is reported:
``MFU = (6 N + 12 L d T) * tokens/s / peak``, with N the parameters in matrix products, L layers,
d the width and T the sequence length (attention FLOPs as in PaLM, Chowdhery et al. 2022,
App. B), over the dense bf16 peak of an H100/H200 SXM, 989 TFLOP/s (``--peak-tflops``).

    python benchmarks/tunnel_throughput.py                    # CPU
    python benchmarks/tunnel_throughput.py --device cuda --compile
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from lrlab.tunnel.config import Config, config_from_dict
from lrlab.tunnel.model import Transformer
from lrlab.tunnel.train import GPU_FLUSH_STEPS, Trainer


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--d-model", type=int, help="width (default 256 on CPU, 640 on GPU)")
    parser.add_argument("--n-layers", type=int, help="depth (default 4 on CPU, 10 on GPU)")
    parser.add_argument("--n-heads", type=int, help="heads (default 4 on CPU, 10 on GPU)")
    parser.add_argument("--seq-len", type=int, help="sequence length (128 CPU, 1024 GPU)")
    parser.add_argument("--batch-size", type=int, help="sequences per step (8 CPU, 32 GPU)")
    parser.add_argument("--steps", type=int, default=4, help="steps per repetition")
    parser.add_argument("--reps", type=int, default=10, help="timed repetitions of each loop")
    parser.add_argument("--compile", action="store_true", help="torch.compile both models")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's)")
    parser.add_argument(
        "--peak-tflops",
        type=float,
        default=989.0,
        help="dense bf16 peak for the MFU (default: H100/H200 SXM, 989)",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    return parser.parse_args()


def make_config(args: argparse.Namespace, cache: Path) -> Config:
    gpu = args.device.startswith("cuda")
    steps = args.steps * (args.reps + 1)
    return config_from_dict(
        {
            "model": {
                "d_model": args.d_model or (640 if gpu else 256),
                "n_layers": args.n_layers or (10 if gpu else 4),
                "n_heads": args.n_heads or (10 if gpu else 4),
            },
            "data": {
                "corpus": "stdlib",
                "max_bytes": 20_000_000 if gpu else 4_000_000,
                "cache_dir": str(cache),
            },
            "train": {
                "steps": steps,
                "batch_size": args.batch_size or (32 if gpu else 8),
                "seq_len": args.seq_len or (1024 if gpu else 128),
                "device": args.device,
                "compile": args.compile,
                "progress": "off",
                "threads": args.threads,
                "schedule": f"cosine(peak=1e-3, total={steps}, warmup={args.steps})",
            },
        }
    )


class PlainLoop:
    """The minimal loop: forward, backward, clip, AdamW step, read the loss."""

    def __init__(self, config: Config, trainer: Trainer) -> None:
        self.trainer = trainer
        torch.manual_seed(config.train.seed)
        device = trainer.device
        self.model = Transformer(
            config.model, trainer.tokenizer.vocab_size, config.train.seq_len
        ).to(device)
        self.step_model = torch.compile(self.model) if config.train.compile else self.model
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(),
            lr=1e-3,
            betas=(0.9, 0.95),
            weight_decay=0.1,
            fused=device.type == "cuda",
        )

    def run(self, steps: range) -> float:
        """Train `steps`; return the seconds taken."""
        trainer = self.trainer
        losses = []
        start = time.perf_counter()
        for step in steps:
            for group in self.optimizer.param_groups:
                group["lr"] = trainer.lrs[step]
            x, y = trainer.batches.get(step, 0)
            x, y = x.to(trainer.device, non_blocking=True), y.to(trainer.device, non_blocking=True)
            with trainer.autocast():
                _, loss = self.step_model(x, y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            losses.append(loss.detach())
            if trainer.device.type == "cpu":
                losses[-1].item()
        torch.stack(losses).tolist()  # wait for the GPU
        return time.perf_counter() - start


def run_lrlab(trainer: Trainer, steps: range) -> float:
    """The body of `Trainer.run` without evaluations and checkpoints; return the seconds."""
    flush_every = 1 if trainer.device.type == "cpu" else GPU_FLUSH_STEPS
    pending = []
    start = time.perf_counter()
    for step in steps:
        pending.append((step, trainer.train_step(step)))
        if len(pending) >= flush_every or step == steps[-1]:
            trainer.log_steps(pending)
            pending = []
    return time.perf_counter() - start


def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory() as folder:
        config = make_config(args, Path(folder) / "cache")
        trainer = Trainer(config, Path(folder) / "run")
        plain = PlainLoop(config, trainer)
        tokens = trainer.tokens_per_step * args.steps
        rates: dict[str, list[float]] = {"lrlab": [], "plain": []}
        for rep in range(args.reps + 1):  # repetition 0 warms up (and compiles)
            steps = range(rep * args.steps, (rep + 1) * args.steps)
            if rep % 2:
                lrlab_s, plain_s = run_lrlab(trainer, steps), plain.run(steps)
            else:
                plain_s, lrlab_s = plain.run(steps), run_lrlab(trainer, steps)
            if rep:
                rates["lrlab"].append(tokens / lrlab_s)
                rates["plain"].append(tokens / plain_s)
        trainer.train_log.close()
        trainer.eval_log.close()
    lrlab, plain_rate = statistics.median(rates["lrlab"]), statistics.median(rates["plain"])
    model = trainer.model
    figures = {
        "date": time.strftime("%Y-%m-%d"),
        "device": (
            torch.cuda.get_device_name(trainer.device)
            if trainer.device.type == "cuda"
            else f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
        ),
        "torch": torch.__version__,
        "parameters": model.num_parameters(),
        "d_model": config.model.d_model,
        "n_layers": config.model.n_layers,
        "seq_len": config.train.seq_len,
        "batch_size": config.train.batch_size,
        "precision": "bf16" if trainer.bf16 else "fp32",
        "compile": config.train.compile,
        "lrlab_tokens_per_s": lrlab,
        "plain_tokens_per_s": plain_rate,
        "ratio": statistics.median(
            a / b for a, b in zip(rates["lrlab"], rates["plain"], strict=True)
        ),
        "lrlab_runs": rates["lrlab"],
        "plain_runs": rates["plain"],
    }
    if trainer.device.type == "cuda":
        flops_per_token = (
            6 * model.num_parameters(matmul_only=True)
            + 12 * config.model.n_layers * config.model.d_model * config.train.seq_len
        )
        figures["flops_per_token"] = flops_per_token
        figures["peak_tflops"] = args.peak_tflops
        figures["mfu"] = flops_per_token * lrlab / (args.peak_tflops * 1e12)
        figures["plain_mfu"] = flops_per_token * plain_rate / (args.peak_tflops * 1e12)
        figures["max_memory_gib"] = torch.cuda.max_memory_allocated(trainer.device) / 2**30
    for key, value in figures.items():
        if not isinstance(value, list):
            print(f"{key:>20}: {value:.4g}" if isinstance(value, float) else f"{key:>20}: {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
