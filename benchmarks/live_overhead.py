"""What live forecasts cost the training loop (issue 15: "the step-time overhead is under 1%").

    nice -n 5 python benchmarks/live_overhead.py [--parts loop,trainers] [--pairs 30]
        [--block 50] [--threads 1,2]

The default `lrlab.integrations.Forecaster` (fits in a child process at niceness +10) beside the
wind tunnel's model at width 64 (2 layers, batch 16x64, AdamW, bytes of the Python standard
library's source), with the loss logged every 5 steps and a refit every 10 logs:

- ``loop``, for each torch thread count in ``--threads``: the training process's added work,
  timed by itself - the time inside ``Forecaster.update`` (recording the point, handing every
  10th over, polling for a forecast) and the CPU time of the process's threads that feed the
  child and read its answers - as a fraction of the step time. It times only the added work, so
  the machine's other load hardly moves it. Then the whole loop's wall-clock time with and
  without forecasts, in short interleaved blocks (pairs AB, BA, AB, ...): the median and mean of
  the per-pair ratios, each with a bootstrap 95% interval. During a block without forecasts the
  child is stopped (SIGSTOP; SIGCONT before a block with them), so that no fit runs beside it
  and all of the fitting lands in the blocks with forecasts, each of which hands a refit over at
  its first logged step; the child's CPU seconds in those blocks show how much fitting ran.
- ``trainers``: the added work, timed the same way, in a Hugging Face Trainer (GPT-2 at width
  64) and a Lightning loop (the tunnel's model) with their callbacks: the time inside every hook
  of the callback each step, and the feeding threads' CPU time, as a fraction of the step time;
  the one-time start (the child process) and end (stopping it) are reported apart.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lrlab.live.background import THREAD_NAMES

LOG_EVERY = 5  # steps per logged loss
REFIT_EVERY = 10  # logged points per refit
WIDTH, LAYERS, BATCH, SEQ = 64, 2, 16, 64
RESAMPLES = 10_000


def corpus() -> Any:
    """Bytes of the Python standard library's source (the tunnel's ``stdlib`` corpus), 2 MB."""
    import torch

    folder = Path(os.__file__).parent
    text = b"".join(path.read_bytes() for path in sorted(folder.glob("*.py")))[: 2 << 20]
    return torch.frombuffer(bytearray(text), dtype=torch.uint8).long()


def helper_cpu(live: Any = None) -> float:
    """CPU seconds so far of the threads in this process that feed a child its points and read
    its answers: `live`'s (a `Forecaster`), else every forecaster's."""
    if live is None:
        threads = [t for t in threading.enumerate() if t.name in THREAD_NAMES]
    else:
        threads = [live._background._worker, live._background._reader]
    return sum(
        time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
        for thread in threads
        if thread.ident is not None and thread.is_alive()
    )


def child_cpu(pid: int) -> float:
    """CPU seconds (user + system) of process `pid` so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bootstrap(values: list[float], statistic: Callable[[np.ndarray], float]) -> tuple[float, ...]:
    """`statistic` of `values` and its bootstrap 95% interval (resampling the values)."""
    data = np.asarray(values)
    rng = np.random.default_rng(0)
    draws = rng.choice(data, size=(RESAMPLES, data.size), replace=True)
    low, high = np.percentile([statistic(row) for row in draws], [2.5, 97.5])
    return statistic(data), float(low), float(high)


# --- a plain loop -------------------------------------------------------------------------------


def parents_session_forecaster(**options: Any) -> Any:
    """A `Forecaster` whose child stays in the training process's session, niced but in its
    autogroup: the child as it was before it got a session of its own (``--old-session``)."""
    import subprocess

    from lrlab.integrations import Forecaster

    real = subprocess.Popen

    def popen(*args: Any, **kwargs: Any) -> Any:
        return real(*args, **{**kwargs, "start_new_session": False})

    subprocess.Popen = popen  # type: ignore[assignment,misc]
    try:
        return Forecaster(**options)
    finally:
        subprocess.Popen = real  # type: ignore[misc]


def loop_part(threads: int, rounds: int, block: int, old_session: bool) -> None:
    import torch

    from lrlab.integrations import Forecaster
    from lrlab.schedules import parse
    from lrlab.tunnel.config import ModelConfig
    from lrlab.tunnel.model import Transformer

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = Transformer(ModelConfig(d_model=WIDTH, n_layers=LAYERS, n_heads=4), 256, SEQ)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.0, betas=(0.9, 0.95))
    text = corpus()
    forecasters: dict[str, Any] = {}
    modes = ["without", "with"] + (["with, old session"] if old_session else [])
    total = (len(modes) * (rounds + 2)) * block
    schedule = parse(f"cosine(peak=3e-3, total={total}, warmup=50, end_ratio=0.1)")
    state = {"step": 0}
    calls: dict[str, list[tuple[float, float]]] = {mode: [] for mode in modes[1:]}

    def run_block(mode: str, steps: int = block) -> tuple[float, float]:
        """Wall-clock and process CPU seconds per step over `steps` steps; with forecasts, the
        loss goes to the mode's forecaster every LOG_EVERY steps."""
        live = forecasters.get(mode)
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(steps):
            step = state["step"]
            starts = torch.randint(0, text.numel() - SEQ - 1, (BATCH,))
            batch = torch.stack([text[s : s + SEQ + 1] for s in starts.tolist()])
            for group in optimizer.param_groups:
                group["lr"] = float(schedule(step))
            loss, objective = model(batch[:, :-1], batch[:, 1:])
            optimizer.zero_grad(set_to_none=True)
            objective.backward()
            optimizer.step()
            if live is not None and step % LOG_EVERY == 0:
                value, lr = loss.item(), optimizer.param_groups[0]["lr"]
                began, began_cpu = time.perf_counter(), time.thread_time()
                live.update(step, value, lr)
                calls[mode].append((time.perf_counter() - began, time.thread_time() - began_cpu))
            state["step"] = step + 1
        return (time.perf_counter() - wall) / steps, (time.process_time() - cpu) / steps

    def only(mode: str | None) -> None:
        """Let the child of `mode` run and stop the others, mid-fit or idle: no fit runs beside
        a block of another mode, and all of a child's fitting lands in its own blocks. None:
        let every child run."""
        for other, live in forecasters.items():
            go = mode is None or other == mode
            os.kill(live._background._child.pid, signal.SIGCONT if go else signal.SIGSTOP)

    options = {"schedule": schedule, "every": REFIT_EVERY}
    forecasters["with"] = Forecaster(**options)
    if old_session:
        forecasters["with, old session"] = parents_session_forecaster(**options)
    # Warm-up, untimed: a block without forecasts; for each forecaster one block (its child's
    # start and first fit), then points up to one short of a refit, so that each timed block
    # with forecasts hands one over at its first logged step.
    try:
        only("without")
        run_block("without")
        for mode, live in forecasters.items():
            only(mode)
            run_block(mode)
            run_block(mode, (REFIT_EVERY - 1) * LOG_EVERY)
            live._background.wait(600)
        for timings in calls.values():
            timings.clear()
        helpers = {mode: helper_cpu(live) for mode, live in forecasters.items()}
        rows: list[dict[str, float]] = []
        for round_ in range(rounds):
            row: dict[str, float] = {}
            turn = round_ % len(modes)
            for mode in modes[turn:] + modes[:turn]:  # each mode in each place equally often
                only(mode)
                child = forecasters[mode]._background._child.pid if mode in forecasters else None
                fitted = child_cpu(child) if child else 0.0
                row[mode], row[f"{mode} cpu"] = run_block(mode)
                row[f"{mode} child"] = child_cpu(child) - fitted if child else 0.0
            rows.append(row)
            print(
                f"round {round_ + 1}/{rounds}: "
                + ", ".join(f"{m} {row[m] * 1000:.1f} ms" for m in modes),
                file=sys.stderr,
                flush=True,
            )
    finally:
        only(None)  # a stopped child would never read the end of its input, nor exit
    for mode, live in forecasters.items():
        helpers[mode] = helper_cpu(live) - helpers[mode]
        last = live.forecast()
        live.close()
        report_loop(threads, rounds, block, modes, mode, rows, calls[mode], helpers[mode], last)


def report_loop(
    threads: int,
    rounds: int,
    block: int,
    modes: list[str],
    mode: str,
    rows: list[dict[str, float]],
    calls: list[tuple[float, float]],
    helpers: float,
    last: dict[str, Any] | None,
) -> None:
    steps_with = rounds * block
    without = [row["without"] for row in rows]
    base = statistics.median(without)
    print(
        f"\nloop, {mode}: tunnel model d{WIDTH} x {LAYERS} layers, batch {BATCH}x{SEQ}, "
        f"{threads} torch thread(s), {rounds} rounds of {block}-step blocks ({', '.join(modes)}; "
        f"the order rotated each round), loss logged every {LOG_EVERY} steps, a refit every "
        f"{REFIT_EVERY} logs (one per block with forecasts)"
    )
    print(
        f"  step time without forecasts: median {base * 1000:.1f} ms (blocks "
        f"{min(without) * 1000:.1f}-{max(without) * 1000:.1f})"
    )
    print(f"  (a) added work in the training process ({len(calls)} updates, {steps_with} steps):")
    for label, index in (("wall clock", 0), ("training-thread CPU", 1)):
        each = sorted(call[index] for call in calls)
        per_step = sum(each) / steps_with
        print(
            f"      update(), {label}: median {each[len(each) // 2] * 1e6:.0f} us, 99th "
            f"percentile {each[int(0.99 * (len(each) - 1))] * 1e6:.0f} us, worst "
            f"{each[-1] * 1e3:.2f} ms; per step {per_step * 1e6:.1f} us = "
            f"{per_step / base * 100:.4f}% of the step"
        )
    cpu = sum(call[1] for call in calls) / steps_with
    print(
        f"      feeder and reader threads' CPU: {helpers / steps_with * 1e6:.1f} us per step "
        f"= {helpers / steps_with / base * 100:.4f}%; with update()'s CPU "
        f"{(cpu + helpers / steps_with) / base * 100:.4f}% of the step"
    )
    for label, key in (("wall clock", ""), ("process CPU", " cpu")):
        ratios = [row[mode + key] / row["without" + key] for row in rows]
        median, low, high = bootstrap(ratios, np.median)
        mean, mean_low, mean_high = bootstrap(ratios, np.mean)
        print(
            f"  (b) {label} ratio with/without: median {median:.4f} [95% {low:.4f}, {high:.4f}]"
            f", mean {mean:.4f} [{mean_low:.4f}, {mean_high:.4f}], per-round range "
            f"{min(ratios):.3f}-{max(ratios):.3f}"
        )
    fitting = sum(row[f"{mode} child"] for row in rows)
    seconds_with = sum(row[mode] for row in rows) * block
    print(
        f"  its child fitted for {fitting:.1f} CPU s during the {seconds_with:.0f} s of its blocks "
        f"({fitting / seconds_with * 100:.1f}% of a core), and was stopped during the others; "
        f"last forecast at step {last['step'] if last else None} "
        f"({last['status'] if last else 'none'})"
    )


# --- trainers -----------------------------------------------------------------------------------


class HookClock:
    """Times the ``on_*`` hooks a callback's class defines (the framework's calls of the base
    class's empty hooks are not counted), and reads the forecasts' threads' CPU time just
    before the hook that stops them."""

    def __init__(self, callback: Any, end_hook: str) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.helpers = 0.0
        for name in vars(type(callback)):
            if name.startswith("on_"):
                method = getattr(callback, name)
                setattr(callback, name, self._timed(name, method, name == end_hook))

    def _timed(self, name: str, method: Callable[..., Any], ends: bool) -> Callable[..., Any]:
        def hook(*args: Any, **kwargs: Any) -> Any:
            if ends:
                self.helpers = helper_cpu()
            began = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - began
                self.calls[name] = self.calls.get(name, 0) + 1

        return hook

    def report(self, title: str, steps: int, seconds: float, once: tuple[str, str]) -> None:
        step = seconds / steps
        per_step = sum(v for k, v in self.seconds.items() if k not in once) / steps
        print(f"  {title}: {steps} steps, {step * 1000:.1f} ms/step (whole run, with the callback)")
        print(
            f"    hooks each step: {per_step * 1e6:.1f} us/step = {per_step / step * 100:.4f}% "
            f"(calls: {sum(c for k, c in self.calls.items() if k not in once)}); the forecasts' "
            f"threads' CPU: {self.helpers / steps * 1e6:.1f} us/step = "
            f"{self.helpers / steps / step * 100:.4f}%; together "
            f"{(per_step + self.helpers / steps) / step * 100:.4f}%"
        )
        print(
            f"    once: {once[0]} {self.seconds.get(once[0], 0.0) * 1000:.0f} ms (starts the "
            f"child), {once[1]} {self.seconds.get(once[1], 0.0) * 1000:.0f} ms (stops it)"
        )


def huggingface_part(steps: int) -> None:
    import torch
    import transformers

    from lrlab.integrations import TrainerForecastCallback, add_forecast_callback

    text = corpus()
    blocks = text[: 4096 * SEQ].view(-1, SEQ)
    data = [{"input_ids": b, "labels": b} for b in blocks]
    transformers.logging.set_verbosity_error()
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=256, n_positions=SEQ, n_embd=WIDTH, n_layer=LAYERS, n_head=4
    )
    args = transformers.TrainingArguments(
        output_dir="/tmp/lrlab-live-overhead-hf",
        max_steps=steps,
        per_device_train_batch_size=BATCH,
        learning_rate=3e-3,
        lr_scheduler_type="cosine",
        warmup_steps=20,
        logging_steps=LOG_EVERY,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        log_level="error",
    )
    trainer = transformers.Trainer(
        model=transformers.GPT2LMHeadModel(config), args=args, train_dataset=data
    )
    callback = TrainerForecastCallback(every=REFIT_EVERY)
    clock = HookClock(callback, "on_train_end")
    add_forecast_callback(trainer, callback)
    began = time.perf_counter()
    trainer.train()
    clock.report(
        f"Hugging Face Trainer, GPT-2 d{WIDTH} x {LAYERS} layers, logging every {LOG_EVERY}",
        steps,
        time.perf_counter() - began,
        ("on_train_begin", "on_train_end"),
    )


def lightning_part(steps: int) -> None:
    import lightning
    import torch

    from lrlab.integrations import LightningForecastCallback
    from lrlab.tunnel.config import ModelConfig
    from lrlab.tunnel.model import Transformer

    text = corpus()
    windows = text[: 4096 * (SEQ + 1)].view(-1, SEQ + 1)

    class Tunnel(lightning.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = Transformer(
                ModelConfig(d_model=WIDTH, n_layers=LAYERS, n_heads=4), 256, SEQ
            )

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            (window,) = batch
            return self.model(window[:, :-1], window[:, 1:])[1]

        def configure_optimizers(self) -> Any:
            optimizer = torch.optim.AdamW(self.parameters(), lr=3e-3, betas=(0.9, 0.95))
            ramp = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / 20))
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": ramp, "interval": "step"}}

    torch.manual_seed(0)
    callback = LightningForecastCallback(every=REFIT_EVERY, log_every_n_steps=LOG_EVERY)
    clock = HookClock(callback, "on_train_end")
    trainer = lightning.Trainer(
        max_steps=steps,
        logger=False,
        callbacks=[callback],
        default_root_dir="/tmp/lrlab-live-overhead-lightning",
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        accelerator="cpu",
    )
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(windows), batch_size=BATCH, shuffle=True
    )
    began = time.perf_counter()
    trainer.fit(Tunnel(), loader)
    clock.report(
        f"Lightning, the tunnel's model d{WIDTH} x {LAYERS} layers, logging every {LOG_EVERY}",
        steps,
        time.perf_counter() - began,
        ("on_train_start", "on_train_end"),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="loop,trainers")
    parser.add_argument("--rounds", type=int, default=30, help="loop: blocks per mode")
    parser.add_argument(
        "--old-session",
        action="store_true",
        help="loop: also the child in the training process's session, as before",
    )
    parser.add_argument("--block", type=int, default=LOG_EVERY * REFIT_EVERY, help="steps")
    parser.add_argument("--threads", default="1,2", help="loop: torch thread counts")
    parser.add_argument("--trainer-steps", type=int, default=300)
    args = parser.parse_args()
    # On `kill`, unwind (and run the `finally` that lets stopped children go) instead of dying.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.block % (LOG_EVERY * REFIT_EVERY):
        parser.error(f"--block must be a multiple of {LOG_EVERY * REFIT_EVERY} (one refit each)")
    parts = args.parts.split(",")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, python "
        f"{platform.python_version()}, niceness {os.nice(0)}; load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    began = time.perf_counter()
    if "loop" in parts:
        for threads in (int(t) for t in args.threads.split(",")):
            loop_part(threads, args.rounds, args.block, args.old_session)
            print(f"  load average now {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if "trainers" in parts:
        import torch

        torch.set_num_threads(1)
        print("\ntrainers (one torch thread):")
        huggingface_part(args.trainer_steps)
        lightning_part(args.trainer_steps)
    print(f"\ntotal {time.perf_counter() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
