"""The training loop: one plain loop, no framework.

Step ``t`` (0-based) uses the LR ``schedule(t)``: it draws its batch, takes one AdamW update and
logs a row of ``train.csv`` with the training loss of that batch (measured before the update).
After step ``t`` the model has taken ``t + 1`` updates; an evaluation after step ``t`` is logged
at step ``t`` in ``eval.csv``, which matches the laws' convention that the loss at step ``t``
follows the LRs of steps ``0..t`` (`lrlab.runs.Run`). A checkpoint named ``N`` holds the state
after ``N`` steps, and a run resumed or branched from it continues with step ``N``.

A run folder holds ``config.json`` (the resolved config, itself a valid config file),
``train.csv``, ``eval.csv``, their ``.schedule.json`` sidecars (the exact per-step LR, so
``lrlab fit RUN/eval.csv`` works directly), ``record.json`` and ``checkpoints/``. `train` holds
the folder's lock (`lrlab.locks`) while it writes there, so it is one run's alone.

A run may train on several processes (`train_processes`, ``lrlab train --nproc N`` or torchrun):
each takes its share of every batch and DistributedDataParallel averages the gradients, so it
computes what one process computes; rank 0 alone writes the folder (`lrlab.tunnel.distributed`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import math
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lrlab import __version__
from lrlab.atomic import temporary_target
from lrlab.errors import LrlabError, brief
from lrlab.locks import FolderLock
from lrlab.mapping_file import read_mapping
from lrlab.schedules import from_spec, save_spec
from lrlab.tunnel import checkpoint, distributed
from lrlab.tunnel.config import Config, config_from_dict
from lrlab.tunnel.data import Batches, build_tokenizer, eval_batches, load_split, shard
from lrlab.tunnel.distributed import Processes
from lrlab.tunnel.model import Transformer, check_memory
from lrlab.tunnel.optim import build_optimizer
from lrlab.tunnel.record import (
    TRAIN_COLUMNS,
    ColumnsDiffer,
    CsvLog,
    Progress,
    TensorBoard,
    eval_columns,
    progress_style,
    write_json,
)
from lrlab.tunnel.threads import LoadMeter, ThreadControl

# Fields that may change when a run is resumed: they do not change what is computed.
RESUMABLE_CHANGES = {
    ("out",),
    ("train", "progress"),
    ("train", "progress_seconds"),
    ("train", "threads"),
    ("train", "tensorboard"),
    ("train", "device"),
    ("train", "compile"),
}
# Changes a resume may also make: more steps, on a schedule whose LR is unchanged for the steps
# the run had (`plan_resume`): the run is extended.
EXTENDING_CHANGES = ("train.schedule", "train.steps")
ENDED = ("finished", "diverged")
# A run folder's files besides checkpoints/: a kill may leave a temporary of any of them.
RUN_FILES = {
    "config.json",
    "record.json",
    "train.csv",
    "eval.csv",
    "train.csv.schedule.json",
    "eval.csv.schedule.json",
}
# How many steps' statistics a GPU run gathers before one host sync writes them.
GPU_FLUSH_STEPS = 16


def train(
    config: Config, out: str | Path, *, resume: bool = False, in_flight: int = 1
) -> dict[str, Any]:
    """Train one run into folder `out` and return its record (see ``record.json``), holding the
    folder's lock throughout: another process writing there is refused (`lrlab.locks`).

    With `resume`, a run that already ended with this config returns its record unchanged; a
    config with more steps of the same schedule extends the run; any other change is refused
    (`plan_resume`). `in_flight` runs (this one included) train at once on this machine, which
    sets this one's share of the cores.

    In a process that torchrun or `train_processes` started, every rank of the run calls it;
    rank 0 holds the lock and writes, and every rank returns the record."""
    out = Path(out)
    processes = distributed.from_environment()
    device = resolve_device(config.train.device, processes)
    with distributed.joined(processes, device), contextlib.ExitStack() as held:
        with processes.agreement():
            if processes.main:
                held.enter_context(FolderLock(out, "lrlab train"))
                remove_orphans(out)
            if processes.several and processes.local_rank == 0:
                # Tokenise into the cache once, before this machine's other ranks read it.
                tokenizer = build_tokenizer(config.data)
                for spec in _corpora(config):
                    load_split(spec, config.data, tokenizer, config.train.seq_len)
        with processes.agreement():
            ended = plan_resume(config, out).ended if resume else None
        if ended is not None:
            if processes.main:
                diverged = ended.get("diverged") or {}
                _progress(config, out, 0).note(
                    f"already diverged at step {diverged.get('step')}; nothing to train"
                    if ended.get("status") == "diverged"
                    else f"already finished ({ended.get('steps_done')} steps); nothing to train"
                )
            return ended
        trainer = Trainer(config, out, resume=resume, in_flight=in_flight, processes=processes)
        return trainer.run()


def train_processes(
    config: Config, out: str | Path, *, nproc: int, resume: bool = False, in_flight: int = 1
) -> dict[str, Any]:
    """`train` one run on `nproc` processes of this machine (DistributedDataParallel, one GPU
    each on a GPU machine) and return its record; the processes are started as ``torchrun
    --standalone --nproc_per_node=nproc`` starts them (`lrlab.tunnel.distributed.launch`).
    `in_flight` runs of `nproc` processes each train at once on this machine. An error in any
    process is an `LrlabError` here; a batch that does not split into `nproc` equal shares is
    refused before any process starts."""
    if nproc < 1:
        raise LrlabError(f"nproc={nproc} must be at least 1 (processes training the run)")
    if nproc == 1:
        return train(config, out, resume=resume, in_flight=in_flight)
    shard(config.train.batch_size, 0, nproc)
    args = (config.to_dict(), str(out), resume, in_flight)
    # AdamW's first step imports torch._dynamo (seconds): once in the launcher's server.
    outcome = distributed.launch(_train_rank, args, nproc, preload=["torch._dynamo"])[0]
    if "error" in outcome:
        raise LrlabError(outcome["error"])
    return outcome["record"]


def _train_rank(config: dict[str, Any], out: str, resume: bool, in_flight: int) -> dict[str, Any]:
    """One rank of `train_processes`: its record, or its `LrlabError` as ``{"error": message}``
    (every rank has the same, `Processes.agreement`), which the launcher passes back as a
    value where an exception would end the process with a traceback."""
    try:
        record = train(config_from_dict(config), out, resume=resume, in_flight=in_flight)
    except LrlabError as error:
        return {"error": str(error)}
    return {"record": record}


def _corpora(config: Config) -> list[str]:
    """The run's corpora, each once: the main one, those validated on, the replay one."""
    specs = [config.data.corpus, *config.data.eval_corpora]
    if config.data.replay_corpus is not None:
        specs.append(config.data.replay_corpus)
    return list(dict.fromkeys(specs))


def remove_orphans(out: Path) -> list[Path]:
    """Delete, and return, the temporary files that writes killed before their rename left in
    run folder `out` (a checkpoint's is as large as the checkpoint). Only for the folder's one
    writer, holding its lock: another writer's temporary would be a write in flight."""
    found = checkpoint.remove_orphans(out / "checkpoints")
    if out.is_dir():
        for path in out.iterdir():
            if temporary_target(path) in RUN_FILES:
                path.unlink(missing_ok=True)
                found.append(path)
    return found


def _progress(config: Config, out: Path, start: int) -> Progress:
    """The run's progress on stderr, as `train.progress` and `train.progress_seconds` say."""
    style = progress_style(config.train.progress, sys.stderr)
    every = config.train.progress_seconds
    return Progress(str(out), config.train.steps, start, style, every=every)


@dataclasses.dataclass(frozen=True)
class Resume:
    """What resuming a run folder with a config does (`plan_resume`)."""

    ended: dict[str, Any] | None = None  # the record of a run that ended: nothing to train
    extends: int | None = None  # the steps of the run that the config extends to more


def plan_resume(config: Config, out: Path) -> Resume:
    """Check that `config` may resume the run in `out`, and say how. The same config (but for
    `RESUMABLE_CHANGES`) continues the run, or returns its record when it ended. More
    ``train.steps``, with a ``train.schedule`` whose LR is unchanged on every step the run had,
    extends it (a finished run trains on from its last checkpoint). Any other change (fewer
    steps, another schedule before the old end, another model, data, seed...) is an
    `LrlabError` naming the fields, as is extending a run that diverged."""
    saved = out / "config.json"
    if not saved.is_file():
        return Resume()
    stored = config_from_dict(read_mapping(saved, "run config"), str(saved))
    path = out / "record.json"
    record = read_mapping(path, "run record") if path.is_file() else {}
    status = record.get("status")
    changed = config_differences(stored.to_dict(), config.to_dict())
    if not changed:
        return Resume(ended=record if status in ENDED else None)

    def refuse(reason: str) -> LrlabError:
        return LrlabError(
            f"{saved}: cannot resume with a different config ({', '.join(changed)} changed{reason})"
            "; start a new run or branch"
        )

    if any(name not in EXTENDING_CHANGES for name in changed):
        raise refuse("; a resume may only add train.steps to the same schedule")
    old, new = stored.train.steps, config.train.steps
    if new < old:
        raise refuse(f": train.steps={new} is below the run's {old}")
    ours = np.asarray(config.schedule()(np.arange(old)), dtype=float)
    theirs = np.asarray(stored.schedule()(np.arange(old)), dtype=float)
    differ = np.flatnonzero(~np.isclose(ours, theirs, rtol=1e-9, atol=0.0))
    if differ.size:
        t = int(differ[0])
        raise refuse(
            f": its LR at step {t} is {float(ours[t])!r}, the run's was {float(theirs[t])!r}"
        )
    if status == "diverged":
        raise refuse(f": the run diverged at step {(record.get('diverged') or {}).get('step')}")
    if new == old:  # a schedule written otherwise, with the same LR at every step
        return Resume(ended=record if status in ENDED else None)
    return Resume(extends=old)


def resolve_device(name: str, processes: Processes | None = None) -> torch.device:
    """``auto`` is the GPU when there is one, else the CPU. A run on several `processes` gives
    each process of this machine its own GPU, ``cuda:LOCAL_RANK``."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise LrlabError(f"train.device={name}: no CUDA GPU is available")
    if processes is None or not processes.several or not name.startswith("cuda"):
        return torch.device(name)
    if name != "cuda":
        raise LrlabError(
            f"train.device={name}: each of the {processes.size} processes of the run takes its "
            "own GPU (cuda:LOCAL_RANK); set train.device to cuda or auto"
        )
    # Every rank checks the same numbers, so all refuse together (none waits for another).
    if processes.local_size > torch.cuda.device_count():
        raise LrlabError(
            f"{processes.local_size} processes on this machine, one GPU each, but "
            f"{torch.cuda.device_count()} GPUs are visible"
        )
    return torch.device("cuda", processes.local_rank)


def config_differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """``section.field`` names whose values differ, except those in `RESUMABLE_CHANGES`."""
    names = []
    for section in sorted(set(saved) | set(current)):
        old, new = saved.get(section), current.get(section)
        if isinstance(old, dict) and isinstance(new, dict):
            for key in sorted(set(old) | set(new)):
                if old.get(key) != new.get(key) and (section, key) not in RESUMABLE_CHANGES:
                    names.append(f"{section}.{key}")
        elif old != new and (section,) not in RESUMABLE_CHANGES:
            names.append(section)
    return names


@dataclasses.dataclass
class RunState:
    """Where a run stands, besides its weights, optimizer moments and RNG: what a checkpoint
    restores so that a resumed run continues exactly (divergence check and record included).

    A fresh run starts from ``RunState()``; `_save` writes it into every checkpoint and a resume or
    branch reads it back, always as one piece. Its fields are top-level keys of the checkpoint,
    the layout checkpoints had before this class, so older checkpoints still resume.
    """

    step: int = 0  # steps done: the next step to train
    ema: float | None = None  # running average of the training loss (divergence check)
    min_ema: float = math.inf  # its lowest value so far
    elapsed_s: float = 0.0  # training seconds, all processes of the run together
    initial_val_loss: float | None = None
    best_val_loss: float = math.inf
    last_val: dict[str, float] = dataclasses.field(default_factory=dict)
    last_train_loss: float | None = None
    # branch_from / init_from and their steps, extended_from (the steps before an extension)
    origin: dict[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_checkpoint(cls, payload: dict[str, Any], path: Path | str = "checkpoint") -> RunState:
        """The run state stored in a loaded checkpoint (read from `path`); a part missing or of
        the wrong kind is an `LrlabError`."""
        number = (int, float)

        def ok(name: str, value: Any) -> bool:
            if name == "step":
                return type(value) is int and value >= 0
            if name in ("ema", "initial_val_loss", "last_train_loss"):
                return value is None or (isinstance(value, number) and type(value) is not bool)
            if name == "last_val":
                return isinstance(value, dict) and all(
                    isinstance(k, str) and isinstance(v, number) for k, v in value.items()
                )
            if name == "origin":
                return isinstance(value, dict)
            return isinstance(value, number) and type(value) is not bool

        values = {}
        for field in dataclasses.fields(cls):
            if field.name not in payload:
                raise LrlabError(f"{path}: not a complete checkpoint (no {field.name!r})")
            if not ok(field.name, payload[field.name]):
                raise LrlabError(
                    f"{path}: {field.name} must be {field.type}, got {brief(payload[field.name])}"
                )
            values[field.name] = payload[field.name]
        return cls(**values)

    def to_checkpoint(self) -> dict[str, Any]:
        """The checkpoint keys of this state (plain data only, see `lrlab.tunnel.checkpoint`)."""
        return dataclasses.asdict(self)


class Unwritten:
    """The logs of a rank other than 0 of a run on several processes: rank 0 writes the run's
    rows, so the others' are dropped."""

    def write(self, row: list[Any]) -> None:
        """Drop `row`."""

    def close(self) -> None:
        """Nothing to close."""


class Trainer:
    """Everything one run needs: data, model, optimizer, logs; `run` trains it to the end.
    It does not lock its folder: `train` does, around it.

    As one of several `processes` (a process group `train` joined), it trains its share of
    each batch, and only rank 0 writes."""

    def __init__(
        self,
        config: Config,
        out: Path,
        *,
        resume: bool = False,
        in_flight: int = 1,
        processes: Processes | None = None,
    ) -> None:
        self.processes = Processes() if processes is None else processes
        # Every rank reads what it starts from before rank 0 writes anything (_open_logs).
        with self.processes.agreement():
            prefix = self._prepare(config, out, resume, in_flight)
        with self.processes.agreement():
            self._open_logs(prefix)
        if resume:  # else a kill before the first checkpoint would retrain from 0 unsaid
            extending = "" if self.extends is None else f", extending it from {self.extends}"
            self.progress.note(
                f"resumed from step {self.start} of {config.train.steps}{extending}"
                if prefix[0] == self.out
                else f"no checkpoint yet: starting from step {self.start}"
            )

    def _prepare(
        self, config: Config, out: Path, resume: bool, in_flight: int
    ) -> tuple[Path | None, int | None]:
        """Data, model, optimizer and the state to start from; return the run folder and step
        whose log rows to keep (`_restore`). Reads, and writes nothing."""
        self.config, self.out = config, out
        train = config.train
        self.device = resolve_device(train.device, self.processes)
        # Its first load reading now: the setup below is the window the first count is chosen
        # over. A GPU run's speed hardly depends on its CPU threads; it does not follow the load.
        self.threads = ThreadControl(
            train.threads,
            in_flight=in_flight * self.processes.local_size,
            meter=LoadMeter() if self.device.type == "cpu" else None,
        )
        precision = train.precision
        self.bf16 = precision == "bf16" or (precision == "auto" and self.device.type == "cuda")
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        self.extends = self._check_folder(resume)

        # Data: the main corpus, then every other corpus validated on (the replay one too).
        self.tokenizer = build_tokenizer(config.data)
        seq = train.seq_len
        by_spec = {
            spec: load_split(spec, config.data, self.tokenizer, seq) for spec in _corpora(config)
        }
        splits = {}
        for spec, split in by_spec.items():
            if split.label in splits:
                raise LrlabError(
                    f"data: corpora {spec!r} and another are both named "
                    f"{split.label!r} in the logs; rename one"
                )
            splits[split.label] = split
        main = by_spec[config.data.corpus]
        replay = by_spec.get(config.data.replay_corpus) if config.data.replay_corpus else None
        self.main_label = main.label
        self.eval_sets = {
            label: eval_batches(split.val, train.batch_size, seq, train.eval_batches)
            for label, split in splits.items()
        }
        self.batches = Batches(
            main.train,
            None if replay is None else replay.train,
            config.data.replay_fraction,
            train.batch_size,
            seq,
            train.grad_accum,
            train.seed,
            rank=self.processes.rank,
            processes=self.processes.size,
        )
        self.ddp: torch.nn.Module | None = None  # the model under DDP while `run` trains
        self.tokens_per_step = train.batch_size * train.grad_accum * seq

        # Model and optimizer, seeded: the same config always starts from the same weights.
        check_memory(config.model, self.tokenizer.vocab_size, seq, self.device)
        torch.manual_seed(train.seed)
        self.model = Transformer(config.model, self.tokenizer.vocab_size, seq).to(self.device)
        # Chosen once the model's size is known (its initialisation gives the same weights at any
        # thread count), before any training work.
        self.first_threads = self.threads.start(
            self.model.num_parameters() * train.batch_size * seq
        )
        torch.set_num_threads(self.first_threads.threads)
        self.step_model = torch.compile(self.model) if train.compile else self.model
        self.optimizer = build_optimizer(self.model, config.optim, self.device)
        self.params = [p for group in self.optimizer.param_groups for p in group["params"]]
        # Detached views share the parameters' storage, so they follow the in-place updates.
        self.values = [p.detach() for p in self.params]
        self.previous = [v.clone() for v in self.values]  # for the update norm
        self.schedule = config.schedule()
        self.lrs: list[float] = self.schedule(np.arange(train.steps)).tolist()
        self.keep_steps = sorted(
            {
                *train.keep_steps,
                *(s for s in getattr(self.schedule, "checkpoints", ()) if s <= train.steps),
            }
        )

        # `_restore` replaces the fresh state with a checkpoint's. The rest is this process's:
        # a diverged run is never resumed, and the clock restarts with each process.
        self.state = RunState()
        self.began = time.perf_counter()
        self.diverged: dict[str, Any] | None = None
        prefix = self._restore(resume)
        if self.extends is not None:
            self.state.origin = {**self.state.origin, "extended_from": self.extends}
        self.start = self.state.step  # the first step this process trains
        self.last_step = self.start - 1
        return prefix

    # --- setup ----------------------------------------------------------------------------------

    def _check_folder(self, resume: bool) -> int | None:
        """Refuse a folder holding a run unless resuming it, and a resume that changes the
        config (`plan_resume`); return the run's steps when the config extends it."""
        record = self.out / "record.json"
        if record.exists() and not resume:
            raise LrlabError(
                f"{self.out}: already holds a run; resume it with --resume or choose another --out"
            )
        return plan_resume(self.config, self.out).extends if resume else None

    def _restore(self, resume: bool) -> tuple[Path | None, int | None]:
        """Load the state to start from; return the run folder and step whose log rows to keep
        (this run's own when resuming, the parent's when branching)."""
        train = self.config.train
        own = self.out / "checkpoints"
        if resume and checkpoint.list_steps(own):
            path = checkpoint.resolve(own)
            state = checkpoint.load(path, self.device)
            if state["step"] > train.steps:
                raise LrlabError(
                    f"{path}: step {state['step']} is beyond this run's train.steps={train.steps}"
                )
            self._load_full(state, path)
            return self.out, self.state.step
        if train.branch_from:
            path = checkpoint.resolve(train.branch_from)
            state = checkpoint.load(path, self.device)
            self._check_branch(state, path)
            self._load_full(state, path)
            self.state.origin = {"branch_from": str(path), "branch_step": self.state.step}
            parent = path.parent.parent if path.parent.name == "checkpoints" else path.parent
            return parent, self.state.step
        if train.init_from:
            path = checkpoint.resolve(train.init_from)
            state = checkpoint.load(path, self.device)
            self._check_same(state, path, ("model",))
            checkpoint.restore_model(self.model, state["model"], path)
            if train.init_optimizer:
                # The moments only: weight decay, betas and epsilon stay this stage's own.
                checkpoint.restore_optimizer(self.optimizer, state["optimizer"], path)
            self.state.origin = {"init_from": str(path), "init_step": state["step"]}
        return None, None

    def _check_same(self, state: dict[str, Any], path: Path, sections: tuple[str, ...]) -> None:
        saved, current = state["config"], self.config.to_dict()
        for section in sections:
            for key, value in current[section].items():
                if saved[section].get(key) != value:
                    raise LrlabError(
                        f"{path}: {section}.{key} is {saved[section].get(key)!r} "
                        f"there, {value!r} here; they must match"
                    )
        if state["vocab_size"] != self.tokenizer.vocab_size:
            raise LrlabError(
                f"{path}: vocabulary of {state['vocab_size']} tokens, this run's "
                f"tokeniser has {self.tokenizer.vocab_size}"
            )

    def _check_branch(self, state: dict[str, Any], path: Path) -> None:
        """A branch continues its parent exactly: same model, data and seed, and a schedule that
        agrees with the parent's on every step before the branch point."""
        self._check_same(state, path, ("model", "data"))
        if state["config"]["train"].get("seed") != self.config.train.seed:
            raise LrlabError(f"{path}: train.seed differs from the parent run's")
        step = state["step"]
        if step >= self.config.train.steps:
            raise LrlabError(
                f"{path}: branch point {step} is not before train.steps={self.config.train.steps}"
            )
        parent = np.asarray(from_spec(state["schedule"])(np.arange(step)))
        ours = np.asarray(self.lrs[:step])
        differ = np.flatnonzero(~np.isclose(parent, ours, rtol=1e-9, atol=0.0))
        if differ.size:
            t = int(differ[0])
            raise LrlabError(
                f"train.schedule: LR {float(ours[t])!r} at step {t} differs from the parent's "
                f"{float(parent[t])!r}; a branch must follow its parent up to the branch point "
                f"{step}"
            )

    def _load_full(self, state: dict[str, Any], path: Path) -> None:
        """Weights, optimizer moments, RNG and run state of a checkpoint (read from `path`)."""
        checkpoint.restore_model(self.model, state["model"], path)
        checkpoint.restore_optimizer(self.optimizer, state["optimizer"], path)
        checkpoint.restore_rng(state["rng"], path)
        self.state = RunState.from_checkpoint(state, path)

    def _open_logs(self, prefix: tuple[Path | None, int | None]) -> None:
        labels = list(self.eval_sets)
        self.eval_columns = eval_columns(labels, self.config.model.n_layers)
        if not self.processes.main:  # rank 0 writes the run's files
            self.train_log = self.eval_log = Unwritten()
            self.tensorboard = None
            self.progress = Progress(str(self.out), self.config.train.steps, self.start, "off")
            return
        self.out.mkdir(parents=True, exist_ok=True)
        write_json(self.out / "config.json", {**self.config.to_dict(), "out": str(self.out)})
        folder, before = prefix
        logs = {}
        for name, columns in (("train", TRAIN_COLUMNS), ("eval", self.eval_columns)):
            path = self.out / f"{name}.csv"
            save_spec(self.schedule, self.out / f"{name}.csv.schedule.json")
            rows: list[list[str]] = []
            if folder is not None:
                own = folder == self.out
                try:
                    rows = CsvLog.read_rows(
                        folder / f"{name}.csv", columns, before=before, required=own
                    )
                except ColumnsDiffer:
                    if own or name == "train":
                        raise
                    # A branch validating on other corpora starts its eval log empty.
            logs[name] = CsvLog(path, columns, rows)
        self.train_log: CsvLog | Unwritten = logs["train"]
        self.eval_log: CsvLog | Unwritten = logs["eval"]
        self.tensorboard = (
            TensorBoard(self.out / "tensorboard", self.start)
            if self.config.train.tensorboard
            else None
        )
        self.progress = _progress(self.config, self.out, self.start)

    # --- the step -------------------------------------------------------------------------------

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """bf16 autocast when enabled, else nothing (float32)."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def train_step(self, step: int) -> torch.Tensor:
        """One optimizer step at LR ``schedule(step)``; returns ``[loss, grad_norm, update_norm,
        param_norm]`` as a device tensor (read it later, so the GPU need not wait)."""
        lr = self.lrs[step]
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group["lr_scale"]
        accum = self.config.train.grad_accum
        loss = torch.zeros((), device=self.device)
        for micro in range(accum):
            x, y = self.batches.get(step, micro)
            x = x.to(self.device, non_blocking=True)
            y = y.to(self.device, non_blocking=True)
            with self._gradient_sync(micro == accum - 1):
                with self.autocast():
                    cross_entropy, objective = self.step_model(x, y)
                (objective / accum).backward()
            loss += cross_entropy.detach() / accum
        clip = self.config.optim.grad_clip
        if clip > 0:
            grad_norm = torch.nn.utils.clip_grad_norm_(self.params, clip, foreach=True)
        else:
            grad_norm = torch.nn.utils.get_total_norm([p.grad for p in self.params], foreach=True)
        torch._foreach_copy_(self.previous, self.values)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        torch._foreach_sub_(self.previous, self.values)
        update_norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(self.previous)))
        param_norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(self.values)))
        return torch.stack([loss, grad_norm.float(), update_norm, param_norm])

    def _gradient_sync(self, last: bool) -> contextlib.AbstractContextManager[Any]:
        """On several processes, DDP averages the gradients in the last micro-batch's backward
        pass only: the others add to this rank's own (``no_sync``)."""
        if self.ddp is None or last:
            return contextlib.nullcontext()
        return self.ddp.no_sync()

    # --- the loop -------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        """Train from `start` to the last step (or divergence); write and return the record.

        On several processes the model trains wrapped in DistributedDataParallel, made here and
        dropped before returning, while the process group is up: a DDP reducer that outlives
        the group deadlocks PyTorch (it then frees the gloo group, joining a thread that waits
        for the interpreter lock the reducer's destructor holds)."""
        if not self.processes.several:
            return self._run()
        plain = self.step_model
        self.ddp = self.processes.replicate(self.model, self.device)
        self.step_model = torch.compile(self.ddp) if self.config.train.compile else self.ddp
        try:
            return self._run()
        finally:
            self.ddp, self.step_model = None, plain
            gc.collect()  # a reference cycle through the wrapper would keep the reducer alive

    def _run(self) -> dict[str, Any]:
        train = self.config.train
        if self.start == 0 and self.state.initial_val_loss is None:
            self.state.initial_val_loss = self.validation_losses()[self.main_label]
        self.began = time.perf_counter()
        self._write_record("running")
        flush_every = 1 if self.device.type == "cpu" else GPU_FLUSH_STEPS
        pending: list[tuple[int, torch.Tensor]] = []
        try:
            for step in range(self.start, train.steps):
                pending.append((step, self.train_step(step)))
                done = step + 1
                evaluate = done % train.eval_interval == 0 or done == train.steps
                save = (
                    done % train.checkpoint_interval == 0
                    or done == train.steps
                    or done in self.keep_steps
                )
                if len(pending) >= flush_every or evaluate or save:
                    self.log_steps(pending)
                    pending = []
                    if self.diverged:
                        break
                    change = self.threads.update(done)
                    if change is not None:
                        torch.set_num_threads(change.threads)
                    if evaluate:
                        self._evaluate(step)
                        if self.diverged:
                            break
                    if save:
                        self._save(done)
        finally:
            self.progress.close()
            self.train_log.close()
            self.eval_log.close()
            if self.tensorboard is not None:
                self.tensorboard.close()
        self.state.elapsed_s += time.perf_counter() - self.began
        # Every rank returns rank 0's record, once it is written.
        return self.processes.share(self._write_record("diverged" if self.diverged else "finished"))

    def log_steps(self, pending: list[tuple[int, torch.Tensor]]) -> None:
        """Write the rows of the `pending` steps (one host sync for all of them) and check each for
        divergence; stops at a diverged step. Their ``tokens_per_s`` is what the user waits for:
        the tokens this process trained so far over the wall time since it began training,
        evaluations, logs and checkpoints included. On several processes the loss is the mean of
        the ranks' (each the mean over its equal share of the batch): the loss of the whole batch;
        the norms, taken after DDP averaged the gradients, are the same on every rank."""
        values = self.processes.mean(torch.stack([stats for _, stats in pending])).tolist()
        trained = self.tokens_per_step * (pending[-1][0] + 1 - self.start)
        tokens_per_s = trained / max(time.perf_counter() - self.began, 1e-9)
        for (step, _), (loss, grad_norm, update_norm, param_norm) in zip(
            pending, values, strict=True
        ):
            row = [step, self.lrs[step], loss, grad_norm, update_norm, param_norm, tokens_per_s]
            self.train_log.write(row)
            if self.tensorboard is not None:
                self.tensorboard.write("train", TRAIN_COLUMNS, row)
            self.state.last_train_loss, self.last_step = loss, step
            self.progress.update(step, loss, tokens_per_s)
            if self._check_divergence(step, loss):
                return

    def _check_divergence(self, step: int, loss: float) -> bool:
        """NaN/inf, or a spike above ``spike_factor`` times the lowest running average (an
        exponential moving average with weight 0.9) seen so far."""
        factor, state = self.config.train.spike_factor, self.state
        if not math.isfinite(loss):
            self.diverged = {"step": step, "reason": f"training loss is {loss} at step {step}"}
        elif factor > 0 and loss > factor * state.min_ema:
            self.diverged = {
                "step": step,
                "reason": (
                    f"training loss {loss:.4g} at step {step} exceeds {factor:g} x its lowest "
                    f"running average {state.min_ema:.4g}"
                ),
            }
        else:
            state.ema = loss if state.ema is None else 0.9 * state.ema + 0.1 * loss
            state.min_ema = min(state.min_ema, state.ema)
        return self.diverged is not None

    @torch.no_grad()
    def validation_losses(self) -> dict[str, float]:
        """Mean validation cross-entropy per corpus, on the fixed held-out batches. On several
        processes each rank evaluates every ``size``-th batch and their sums are added."""
        self.model.eval()
        totals = []
        for batches in self.eval_sets.values():
            total = 0.0
            for x, y in batches[self.processes.rank :: self.processes.size]:
                with self.autocast():
                    total += float(self.model(x.to(self.device), y.to(self.device))[0])
            totals.append(total)
        self.model.train()
        return {
            label: total / len(batches)
            for (label, batches), total in zip(
                self.eval_sets.items(), self.processes.sum(totals), strict=True
            )
        }

    def _evaluate(self, step: int) -> None:
        losses = self.validation_losses()
        main = losses[self.main_label]
        if self.processes.main:  # the row's diagnostics are for the log, which rank 0 writes
            x = self.eval_sets[self.main_label][0][0].to(self.device)
            with self.autocast():
                stats = self.model.diagnostics(x)
            row = [
                step,
                self.lrs[step],
                main,
                *losses.values(),
                *stats.max_attn_logit,
                stats.logit_mean,
                stats.logit_max,
                stats.log_z,
            ]
            self.eval_log.write(row)
            if self.tensorboard is not None:
                self.tensorboard.write("eval", self.eval_columns, row)
        self.state.last_val = losses
        if math.isfinite(main):
            self.state.best_val_loss = min(self.state.best_val_loss, main)
        else:
            self.diverged = {"step": step, "reason": f"validation loss is {main} at step {step}"}

    def _save(self, done: int) -> None:
        if not self.processes.main:  # every rank holds the same state: rank 0 saves it
            return
        now = dataclasses.replace(
            self.state, step=done, elapsed_s=self.state.elapsed_s + time.perf_counter() - self.began
        )
        payload = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": torch.get_rng_state(),
            **now.to_checkpoint(),
            "config": self.config.to_dict(),
            "schedule": self.schedule.to_spec(),
            "vocab_size": self.tokenizer.vocab_size,
            "tokenizer": self.tokenizer.identity,
        }
        checkpoint.save(
            self.out / "checkpoints",
            done,
            payload,
            keep_last=self.config.train.keep_checkpoints,
            keep_steps=self.keep_steps,
        )

    def _write_record(self, status: str) -> dict[str, Any]:
        saved = checkpoint.list_steps(self.out / "checkpoints")
        state = self.state
        steps_done = self.last_step + 1
        record = {
            "status": status,
            "updated": datetime.now(UTC).isoformat(timespec="seconds"),
            "steps": self.config.train.steps,
            "steps_done": steps_done,
            "tokens": steps_done * self.tokens_per_step,
            "elapsed_s": round(state.elapsed_s, 3),
            # Wall clock, evaluations and checkpoints included (not a pure step rate).
            "tokens_per_s": round(steps_done * self.tokens_per_step / max(state.elapsed_s, 1e-9)),
            "schedule": str(self.schedule),
            "peak": max(self.lrs),
            "seed": self.config.train.seed,
            "d_model": self.config.model.d_model,
            "parameters": self.model.num_parameters(),
            "vocab_size": self.tokenizer.vocab_size,
            "device": str(self.device),
            "processes": self.processes.size,  # training the run together (DDP), each this device
            "threads": self.first_threads.threads,
            "threads_reason": self.first_threads.reason,
            "threads_changes": self.threads.changes,  # [{step, threads, reason}] from then on
            "precision": "bf16" if self.bf16 else "fp32",
            "initial_val_loss": state.initial_val_loss,
            "final_train_loss": state.last_train_loss,
            "final_val_loss": state.last_val.get(self.main_label),
            "best_val_loss": state.best_val_loss if math.isfinite(state.best_val_loss) else None,
            "final_val_losses": state.last_val,
            "diverged": self.diverged,
            "last_checkpoint": (
                str(checkpoint.checkpoint_path(self.out / "checkpoints", saved[-1]))
                if saved
                else None
            ),
            "lrlab": __version__,
            "torch": torch.__version__,
            **state.origin,
        }
        if self.processes.main:
            write_json(self.out / "record.json", record)
        return record
