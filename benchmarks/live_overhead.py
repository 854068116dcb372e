"""What live forecasts cost the training loop (issue 15: "the step-time overhead is under 1%").

    nice -n 5 python benchmarks/live_overhead.py [--parts loop,lag,trainers|huggingface|lightning]
        [--quads 18] [--discard 1] [--block 50] [--threads 1] [--no-placebo] [--duty 0.1]
        [--device cpu|cuda] [--width 64] [--layers 2] [--batch 16] [--seq 64]

The default `lrlab.integrations.Forecaster` (fits in a child process at niceness +10) beside the
wind tunnel's model (by default at width 64: 2 layers, batch 16x64, AdamW, bytes of the Python
standard library's source), with the loss logged every 5 steps and a refit every 10 logs. With
``--device cuda`` the model trains on the GPU (TF32 matrix products) and each timed block begins
and ends with `torch.cuda.synchronize`, so that a block's time is its steps' whole time; the
forecasts' child still fits on the CPU:

- ``loop``, for each torch thread count in ``--threads``: (a) the training process's added work,
  timed by itself - the time inside ``Forecaster.update`` (recording the point, handing every
  10th over, polling for a forecast) and the CPU time of the process's threads that feed the
  child and read its answers - as a fraction of the step time. It times only the added work, so
  the machine's other load hardly moves it. (b) The whole loop's wall-clock time with and
  without forecasts, in quads of short blocks, without-with-with-without and then
  with-without-without-with (a drift linear in time cancels within each quad), in three
  configurations taking turns quad by quad: ``free`` (the scheduler places every process),
  ``pinned`` (`os.sched_setaffinity`: the training process on one core, the child on another,
  what a user with a spare core gets) and ``placebo`` (free, and its "with" blocks run without
  forecasts: its ratio is the design's own bias, and its interval must contain 1). The first
  ``--discard`` quads of each configuration are warm-up. During a block without forecasts the
  child is stopped (SIGSTOP; SIGCONT before a block with them), so that no fit runs beside it
  and all of the fitting lands in the blocks with forecasts, each of which hands a refit over at
  its first logged step. Per quad the ratio of the with-blocks' time to the without-blocks';
  the median and mean over the quads, each with a bootstrap 95% interval, and the verdict:
  "overhead < 1%: established" when the median's interval lies below 1.01 and the placebo's
  contains 1, each from `MIN_QUADS` quads or more. Also the step time by place in the quad (an
  order effect shows there), the training thread's migrations and involuntary context switches
  per arm, the child's CPU in its blocks, and how long ``close()`` took at the end.
- ``lag``: 40 hand-overs of 10 points each, 0.1 s apart, to the default child: how many fits ran
  and how long after the last hand-over the forecast of every point came.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lrlab.live.background import DUTY, THREAD_NAMES

LOG_EVERY = 5  # steps per logged loss
REFIT_EVERY = 10  # logged points per refit
RESAMPLES = 10_000
MIN_QUADS = 8  # kept quads a configuration needs for a verdict


@dataclass(frozen=True)
class Shape:
    """The trained model and where it trains: the tunnel's transformer, ``width`` x ``layers``
    (a head per 64 of width, at least 4), ``batch`` sequences of ``seq`` bytes, on ``device``."""

    width: int = 64
    layers: int = 2
    batch: int = 16
    seq: int = 64
    device: str = "cpu"

    @property
    def heads(self) -> int:
        return max(4, self.width // 64)

    def label(self) -> str:
        return f"d{self.width} x {self.layers} layers, batch {self.batch}x{self.seq}, {self.device}"

    def synchronize(self) -> None:
        """Wait for the GPU's queued work (a no-op on the CPU)."""
        if self.device != "cpu":
            import torch

            torch.cuda.synchronize()


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


def scheduling() -> tuple[int, int]:
    """This thread's migrations between cores and involuntary context switches so far (Linux's
    /proc/thread-self/sched; zeros where it is absent)."""
    try:
        text = Path("/proc/thread-self/sched").read_text()
    except OSError:
        return 0, 0
    values: dict[str, str] = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        values[name.strip()] = value.strip()
    names = ("se.nr_migrations", "nr_involuntary_switches")
    migrations, preempted = (int(float(values.get(name) or 0)) for name in names)
    return migrations, preempted


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

ARMS = ("without", "with")
# Each configuration's quads alternate these orders: a drift linear in time cancels within a
# quad, and each arm is first (after a block of the other configuration) equally often.
ORDERS = (("without", "with", "with", "without"), ("with", "without", "without", "with"))
# free: the scheduler places the training process and the child; pinned: the training process on
# one core, the child on another (a user with a spare core); placebo: "with" blocks that are
# "without" blocks (free), whose ratio shows the design's own bias.
CONFIGURATIONS = ("free", "pinned", "placebo")


def set_affinity(pid: int, cores: set[int]) -> None:
    """Pin every thread of process `pid` (this one: 0) to `cores` (threads it starts later
    inherit its affinity)."""
    folder = Path(f"/proc/{pid or os.getpid()}/task")
    for tid in folder.iterdir():
        try:
            os.sched_setaffinity(int(tid.name), cores)
        except ProcessLookupError:  # a thread that has just ended
            continue


def loop_part(
    shape: Shape, threads: int, quads: int, discard: int, block: int, placebo: bool, duty: float
) -> None:
    import torch

    from lrlab.integrations import Forecaster
    from lrlab.schedules import parse
    from lrlab.tunnel.config import ModelConfig
    from lrlab.tunnel.model import Transformer

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    config = ModelConfig(d_model=shape.width, n_layers=shape.layers, n_heads=shape.heads)
    model = Transformer(config, 256, shape.seq).to(shape.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.0, betas=(0.9, 0.95))
    text = corpus()
    cores = sorted(os.sched_getaffinity(0))
    configurations = [c for c in CONFIGURATIONS if c != "pinned" or len(cores) > 1]
    configurations = [c for c in configurations if c != "placebo" or placebo]
    # Room for the warm-up's blocks too (a handful), so that no step lies beyond the plan.
    total = (len(configurations) * (quads + discard) * 4 + 20) * block
    schedule = parse(f"cosine(peak=3e-3, total={total}, warmup=50, end_ratio=0.1)")
    state = {"step": 0}
    calls: list[tuple[float, float]] = []  # update()'s wall clock and thread CPU seconds

    def run_block(live: Any, steps: int = block) -> tuple[float, float]:
        """Wall-clock and process CPU seconds per step over `steps` steps; with a forecaster,
        the loss goes to it every LOG_EVERY steps."""
        shape.synchronize()
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(steps):
            step = state["step"]
            starts = torch.randint(0, text.numel() - shape.seq - 1, (shape.batch,))
            batch = torch.stack([text[s : s + shape.seq + 1] for s in starts.tolist()])
            batch = batch.to(shape.device, non_blocking=True)
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
                calls.append((time.perf_counter() - began, time.thread_time() - began_cpu))
            state["step"] = step + 1
        shape.synchronize()
        return (time.perf_counter() - wall) / steps, (time.process_time() - cpu) / steps

    live = Forecaster(schedule=schedule, every=REFIT_EVERY, duty=duty)
    child = live._background._child.pid

    def place(configuration: str) -> None:
        pinned = configuration == "pinned"
        set_affinity(0, {cores[0]} if pinned else set(cores))
        set_affinity(child, {cores[-1]} if pinned else set(cores))

    # Warm-up, untimed: a block without forecasts; blocks with them until the law has points
    # enough to fit (before, a "fit" is a count), then points up to one short of a refit, so
    # that each timed block with forecasts hands one over at its first logged step.
    run_block(None)
    run_block(live)
    while (live._background.wait(600) or {}).get("status", "waiting") == "waiting":
        run_block(live)
    run_block(live, (REFIT_EVERY - 1) * LOG_EVERY)
    live._background.wait(600)
    calls.clear()
    helpers = helper_cpu(live)
    rows: list[dict[str, Any]] = []
    try:
        for index in range((quads + discard) * len(configurations)):
            configuration = configurations[index % len(configurations)]
            quad = index // len(configurations)
            order = ORDERS[quad % 2]
            place(configuration)
            row: dict[str, Any] = {"configuration": configuration, "kept": quad >= discard}
            for position, arm in enumerate(order):
                forecasts = arm == "with" and configuration != "placebo"
                # The child fits only in the blocks with forecasts: stopped in the others, mid-fit
                # or idle, so that no fit runs beside them.
                os.kill(child, signal.SIGCONT if forecasts else signal.SIGSTOP)
                fitted, moved = child_cpu(child), scheduling()
                wall, cpu = run_block(live if forecasts else None)
                after = scheduling()
                row.setdefault(arm, []).append(
                    (wall, cpu, child_cpu(child) - fitted, position, after[0] - moved[0])
                    + (after[1] - moved[1],)
                )
            rows.append(row)
            print(
                f"quad {index + 1} ({configuration}, {'-'.join(order)}"
                f"{'' if row['kept'] else ', discarded'}): "
                + ", ".join(
                    f"{a} {statistics.mean(b[0] for b in row[a]) * 1000:.1f} ms" for a in ARMS
                ),
                file=sys.stderr,
                flush=True,
            )
    finally:
        os.kill(child, signal.SIGCONT)  # a stopped child would never read its stop request
        place("free")
    helpers = helper_cpu(live) - helpers
    last = live.forecast()
    began = time.perf_counter()
    live.close()
    closing = time.perf_counter() - began
    # (a) counts every timed update, the discarded quads' too: their steps are the denominator.
    steps_with = sum(len(r["with"]) for r in rows if r["configuration"] != "placebo") * block
    kept = [r for r in rows if r["kept"]]
    report_loop(shape, threads, block, duty, kept, calls, steps_with, helpers, last, closing)


def quad_ratio(row: dict[str, Any], index: int) -> float:
    """A quad's ratio with/without of its blocks' `index` (0: wall clock, 1: process CPU)."""
    return sum(b[index] for b in row["with"]) / sum(b[index] for b in row["without"])


def report_loop(
    shape: Shape,
    threads: int,
    block: int,
    duty: float,
    rows: list[dict[str, Any]],
    calls: list[tuple[float, float]],
    steps_with: int,
    helpers: float,
    last: dict[str, Any] | None,
    closing: float,
) -> None:
    without = [b[0] for r in rows for b in r["without"]]
    base = statistics.median(without)
    print(
        f"\nloop: tunnel model {shape.label()}, {threads} torch "
        f"thread(s), {block}-step blocks in quads (without-with-with-without, then "
        f"with-without-without-with), configurations taking turns quad by quad; loss logged every "
        f"{LOG_EVERY} steps, a refit asked for every {REFIT_EVERY} logs (once per block with "
        f"forecasts), the fits' duty {duty:g}; the child stopped (SIGSTOP) in the blocks without"
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
    print("  (b) the whole loop, with/without per quad; median and mean, bootstrap 95% intervals:")
    verdicts = []
    for configuration in CONFIGURATIONS:
        group = [r for r in rows if r["configuration"] == configuration]
        if not group:
            continue
        for label, index in (("wall clock", 0), ("process CPU", 1)):
            ratios = [quad_ratio(r, index) for r in group]
            median, low, high = bootstrap(ratios, np.median)
            mean, mean_low, mean_high = bootstrap(ratios, np.mean)
            print(
                f"      {configuration:8s} {label:11s}: median {median:.4f} [{low:.4f}, "
                f"{high:.4f}], mean {mean:.4f} [{mean_low:.4f}, {mean_high:.4f}], {len(group)} "
                f"quads, range {min(ratios):.3f}-{max(ratios):.3f}"
            )
            if index == 0:
                verdicts.append((configuration, median, low, high, len(group)))
        fitting = sum(b[2] for r in group for b in r["with"])
        seconds = sum(b[0] for r in group for b in r["with"]) * block
        by_position = [
            statistics.median(b[0] / base for r in group for a in ARMS for b in r[a] if b[3] == p)
            for p in range(4)
        ]
        # Per 100 steps, by arm: how often the training thread moved to another core, and how
        # often it was preempted (a cause of a difference that is not the forecasts' work).
        moves = {
            arm: [
                sum(b[k] for r in group for b in r[arm]) * 100 / (len(group) * 2 * block)
                for k in (4, 5)
            ]
            for arm in ARMS
        }
        print(
            f"      {configuration:8s} child's CPU in the blocks with: {fitting:.1f} s in "
            f"{seconds:.0f} s ({fitting / seconds * 100:.0f}% of a core); step time by place in "
            f"the quad / base: {', '.join(f'{v:.3f}' for v in by_position)}; per 100 steps, "
            "training thread's migrations / involuntary switches: "
            + ", ".join(f"{arm} {m[0]:.1f} / {m[1]:.1f}" for arm, m in moves.items())
        )
    placebo = next((v for v in verdicts if v[0] == "placebo"), None)
    for configuration, median, low, high, count in verdicts:
        if configuration == "placebo":
            continue
        # No verdict without a check of the design, or from too few quads to resample.
        if placebo is None:
            caveat = " (no placebo: the design's own bias unchecked)"
        elif min(count, placebo[4]) < MIN_QUADS:
            caveat = f" (fewer than {MIN_QUADS} quads)"
        elif not placebo[2] <= 1 <= placebo[3]:
            caveat = " (the placebo's interval excludes 1: the design is biased)"
        else:
            caveat = ""
        met = high < 1.01 and not caveat
        if high < 1:  # the forecasts' work cannot speed the loop up: the machine differs
            caveat += (
                " (faster with forecasts: something else differs between the arms; see the "
                "migrations and the step time by place)"
            )
        print(
            f"  overhead < 1% ({configuration}): {'established' if met else 'not established'}, "
            f"wall-clock ratio median {median:.4f}, interval [{low:.4f}, {high:.4f}]{caveat}"
        )
    print(
        f"  close() at the end: {closing:.2f} s; last forecast at step "
        f"{last['step'] if last else None} ({last['status'] if last else 'none'})"
    )


# --- lag ----------------------------------------------------------------------------------------


def lag_part(duty: float, hand_overs: int = 40, spacing: float = 0.1) -> None:
    """Hand `hand_overs` batches of 10 points to the default child, `spacing` seconds apart (a
    loop faster than the fits), then wait: how many fits ran, and how long after the last
    hand-over its forecast came."""
    from lrlab.integrations import Forecaster

    schedule = "cosine(peak=3e-3, total=4000, warmup=50, end_ratio=0.1)"
    rng = np.random.default_rng(0)
    fitted: list[int] = []
    with Forecaster(schedule=schedule, every=10, duty=duty) as live:
        publish = live._background._publish

        def counted(result: dict[str, Any] | None, answered: int) -> None:
            if result is not None:
                fitted.append(answered)
            publish(result, answered)

        live._background._publish = counted
        for step in range(0, hand_overs * 50, 5):
            live.update(step, 3 * (step + 100) ** -0.1 + 0.01 * rng.standard_normal())
            if step % 50 == 45:
                time.sleep(spacing)
        began = time.perf_counter()
        live.forecast(wait=True, timeout=600)
        late = time.perf_counter() - began
    print(
        f"\nlag: {hand_overs} hand-overs {spacing:g} s apart, duty {duty:g}: {len(fitted)} fits; "
        f"the forecast of every point {late:.1f} s after the last hand-over"
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


def huggingface_part(shape: Shape, steps: int) -> None:
    import torch
    import transformers

    from lrlab.integrations import TrainerForecastCallback, add_forecast_callback

    text = corpus()
    blocks = text[: 4096 * shape.seq].view(-1, shape.seq)
    data = [{"input_ids": b, "labels": b} for b in blocks]
    transformers.logging.set_verbosity_error()
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=256,
        n_positions=shape.seq,
        n_embd=shape.width,
        n_layer=shape.layers,
        n_head=shape.heads,
    )
    args = transformers.TrainingArguments(
        output_dir="/tmp/lrlab-live-overhead-hf",
        max_steps=steps,
        per_device_train_batch_size=shape.batch,
        learning_rate=3e-3,
        lr_scheduler_type="cosine",
        warmup_steps=20,
        logging_steps=LOG_EVERY,
        save_strategy="no",
        report_to=[],
        use_cpu=shape.device == "cpu",
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
        f"Hugging Face Trainer, GPT-2 {shape.label()}, logging every {LOG_EVERY}",
        steps,
        time.perf_counter() - began,
        ("on_train_begin", "on_train_end"),
    )


def lightning_part(shape: Shape, steps: int) -> None:
    import lightning
    import torch

    from lrlab.integrations import LightningForecastCallback
    from lrlab.tunnel.config import ModelConfig
    from lrlab.tunnel.model import Transformer

    text = corpus()
    windows = text[: 4096 * (shape.seq + 1)].view(-1, shape.seq + 1)

    class Tunnel(lightning.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            config = ModelConfig(d_model=shape.width, n_layers=shape.layers, n_heads=shape.heads)
            self.model = Transformer(config, 256, shape.seq)

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
        accelerator="cpu" if shape.device == "cpu" else "gpu",
    )
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(windows), batch_size=shape.batch, shuffle=True
    )
    began = time.perf_counter()
    trainer.fit(Tunnel(), loader)
    clock.report(
        f"Lightning, the tunnel's model {shape.label()}, logging every {LOG_EVERY}",
        steps,
        time.perf_counter() - began,
        ("on_train_start", "on_train_end"),
    )


TRAINER_PARTS = {"huggingface": huggingface_part, "lightning": lightning_part}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--parts",
        default="loop,trainers",
        help="loop, lag, trainers (= huggingface,lightning)",
    )
    parser.add_argument("--quads", type=int, default=18, help="loop: quads per configuration")
    parser.add_argument(
        "--discard", type=int, default=1, help="loop: first quads of each configuration not kept"
    )
    parser.add_argument(
        "--no-placebo", action="store_true", help="loop: leave out the placebo configuration"
    )
    parser.add_argument("--block", type=int, default=LOG_EVERY * REFIT_EVERY, help="steps")
    parser.add_argument("--threads", default="1", help="loop: torch thread counts")
    parser.add_argument("--trainer-steps", type=int, default=300)
    parser.add_argument(
        "--duty", type=float, default=DUTY, help="loop: the fits' duty (Forecaster's duty)"
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda: where the model trains")
    parser.add_argument("--width", type=int, default=Shape.width)
    parser.add_argument("--layers", type=int, default=Shape.layers)
    parser.add_argument("--batch", type=int, default=Shape.batch)
    parser.add_argument("--seq", type=int, default=Shape.seq)
    args = parser.parse_args()
    shape = Shape(args.width, args.layers, args.batch, args.seq, args.device)
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
    if shape.device != "cpu":
        import torch

        torch.set_float32_matmul_precision("high")  # TF32, as GPU training runs use
        print(f"GPU: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    began = time.perf_counter()
    if "lag" in parts:
        lag_part(args.duty)
    if "loop" in parts:
        for threads in (int(t) for t in args.threads.split(",")):
            loop_part(
                shape, threads, args.quads, args.discard, args.block, not args.no_placebo, args.duty
            )
            print(f"  load average now {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    trainers = [t for t in ("huggingface", "lightning") if t in parts or "trainers" in parts]
    if trainers:
        import torch

        torch.set_num_threads(1)
        print("\ntrainers (one torch thread):")
        for trainer in trainers:
            TRAINER_PARTS[trainer](shape, args.trainer_steps)
    print(f"\ntotal {time.perf_counter() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
