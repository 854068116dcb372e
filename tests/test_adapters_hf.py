"""The Hugging Face adapter: a real `Trainer` loop on a tiny GPT-2 logs the schedule's LRs."""

from __future__ import annotations

import codecs
import this  # prints the Zen of Python on import (pytest captures it)
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")  # Trainer needs it

from lrlab.adapters.huggingface import LRLabTrainer
from lrlab.adapters.torch_scheduler import LRLabScheduler
from lrlab.schedules import parse

STEPS = 8
SCHEDULE = parse("cosine(peak=1e-3, total=8, warmup=3, end_ratio=0.1)")
# Real text: the Zen of Python, which the `this` module stores rot13-encoded.
ZEN = codecs.decode(this.s, "rot13")
BLOCK = 32  # tokens per example: bytes of the text, so no tokenizer has to be downloaded


def zen_examples() -> list[dict[str, torch.Tensor]]:
    ids = torch.tensor(list(ZEN.encode("utf-8")))
    blocks = ids[: len(ids) // BLOCK * BLOCK].view(-1, BLOCK)
    return [{"input_ids": block, "labels": block} for block in blocks]


def tiny_gpt2() -> transformers.GPT2LMHeadModel:
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=256, n_positions=BLOCK, n_embd=16, n_layer=1, n_head=2
    )
    return transformers.GPT2LMHeadModel(config)


def training_args(output_dir: Path, **overrides: object) -> transformers.TrainingArguments:
    settings = {
        "output_dir": str(output_dir),
        "max_steps": STEPS,
        "per_device_train_batch_size": 2,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": [],
        "use_cpu": True,
        "disable_tqdm": True,
    }
    return transformers.TrainingArguments(**{**settings, **overrides})


def logged_lrs(trainer: transformers.Trainer) -> dict[int, float]:
    """The LR the Trainer logged at each global step."""
    return {
        entry["step"]: entry["learning_rate"]
        for entry in trainer.state.log_history
        if "learning_rate" in entry
    }


def expected_lrs(steps: range) -> dict[int, float]:
    # The LR logged at global step k is that of the k-th optimizer step: the schedule at k - 1.
    return {step: float(SCHEDULE(np.arange(STEPS))[step - 1]) for step in steps}


def test_trainer_with_an_lrlab_scheduler_logs_the_schedule(tmp_path: Path) -> None:
    model = tiny_gpt2()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    trainer = transformers.Trainer(
        model=model,
        args=training_args(tmp_path),
        train_dataset=zen_examples(),
        optimizers=(optimizer, LRLabScheduler(optimizer, SCHEDULE)),
    )
    trainer.train()
    assert logged_lrs(trainer) == expected_lrs(range(1, STEPS + 1))


def test_lrlab_trainer_resumes_from_a_checkpoint_on_schedule(tmp_path: Path) -> None:
    args = training_args(tmp_path, save_strategy="steps", save_steps=4)
    first = LRLabTrainer(
        model=tiny_gpt2(),
        args=args,
        train_dataset=zen_examples(),
        # The usual use of a factory: the Trainer's step count becomes the schedule's budget.
        lr_schedule=lambda total: f"cosine(peak=1e-3, total={total}, warmup=3, end_ratio=0.1)",
    )
    first.train()
    assert logged_lrs(first) == expected_lrs(range(1, STEPS + 1))

    # The Trainer reloads the scheduler state with torch.load(weights_only=True).
    resumed = LRLabTrainer(
        model=tiny_gpt2(), args=args, train_dataset=zen_examples(), lr_schedule=str(SCHEDULE)
    )
    resumed.train(resume_from_checkpoint=str(tmp_path / "checkpoint-4"))
    # log_history comes back from the checkpoint (steps 1-4); steps 5-8 are logged anew.
    assert logged_lrs(resumed) == expected_lrs(range(1, STEPS + 1))


def test_a_schedule_budget_other_than_the_runs_is_warned(tmp_path: Path) -> None:
    trainer = LRLabTrainer(
        model=tiny_gpt2(),
        args=training_args(tmp_path),
        train_dataset=zen_examples(),
        lr_schedule=SCHEDULE,
    )
    trainer.create_optimizer()
    with pytest.warns(UserWarning, match="total=8 but the Trainer will run 20 steps"):
        trainer.create_scheduler(num_training_steps=20)
    assert isinstance(trainer.lr_scheduler, LRLabScheduler)
