"""Trainer integrations: the plain-loop `Forecaster` (fits in a thread or a child process), a
real Hugging Face `Trainer` and a real Lightning loop on tiny models, each logging forecasts to
the trainer's own loggers and to a JSON file beside the run."""

from __future__ import annotations

import codecs
import csv
import json
import os
import queue
import this  # the Zen of Python, rot13-encoded: real text without a download
import time

import numpy as np
import pytest

from live_helpers import curve, truth_final
from lrlab.errors import LrlabError
from lrlab.integrations import METRIC_NAMES, Forecaster, forecast_metrics
from lrlab.live import background as background_module
from lrlab.runs.tensorboard import read_scalars

COSINE = "cosine(peak=3e-4, total=8000, warmup=400, end_ratio=0.1)"
ZEN = codecs.decode(this.s, "rot13").encode("utf-8")


@pytest.mark.parametrize("background", ["thread", "process"])
def test_forecaster_fits_off_the_loop_and_writes_json(tmp_path, background) -> None:
    steps, loss, lr = curve(COSINE, 8000, every=40)
    path = tmp_path / "forecast.json"
    # niceness=0: at the default +10 the child's scheduling group yields to every other, so on a
    # busy machine its ~3 CPU s of fitting can take minutes (4% of a core measured at a load of
    # 13 on two cores); this test is about the answer, not the machine's load.
    with Forecaster(
        schedule=COSINE,
        every=20,
        json_path=path,
        background=background,
        law="mpl",
        niceness=0,
    ) as live:
        began = time.perf_counter()
        for step, value in zip(steps[:120], loss[:120], strict=True):
            live.update(int(step), float(value), float(lr[step]))
        assert time.perf_counter() - began < 0.5  # 120 updates never wait for a fit
        result = live.forecast(wait=True, timeout=600)
    assert result["status"] == "forecast" and result["step"] == int(steps[119])
    assert abs(result["final_loss"] / truth_final(COSINE, 8000) - 1) < 0.01
    assert json.loads(path.read_text()) == result
    metrics = forecast_metrics(result)
    assert list(metrics)[:3] == list(METRIC_NAMES[:3])
    assert metrics["forecast/final_loss"] == result["final_loss"]


class SlowQueue(queue.Queue):
    """A queue whose hand-over is slow: a request is counted well before its points are queued,
    and the fitter looks at the queue a little after it wakes."""

    def put(self, item, block=True, timeout=None):
        if item[0] == "points":
            time.sleep(0.4)
        super().put(item, block, timeout)

    def get(self, block=True, timeout=None):
        item = super().get(block, timeout)
        time.sleep(0.2)
        return item


@pytest.mark.parametrize("background", ["thread", "process"])
def test_wait_returns_the_forecast_of_every_point_handed_over(monkeypatch, background) -> None:
    # The fitter once counted the requests when it took points, not when they were queued: a
    # second request counted while its points were still on the way was then answered by the
    # fit of the first batch, and `forecast(wait=True)` returned a forecast of half the points.
    monkeypatch.setattr(background_module.queue, "Queue", SlowQueue)
    steps, loss, _ = curve(COSINE, 8000, every=40)
    with Forecaster(
        schedule=COSINE, every=60, background=background, law="power", niceness=0
    ) as live:
        for step, value in zip(steps[:120], loss[:120], strict=True):
            live.update(int(step), float(value))
        result = live.forecast(wait=True, timeout=600)
    assert (result["step"], result["points"]) == (int(steps[119]), 120)


def test_the_fitting_process_runs_at_the_niceness_asked() -> None:
    steps, loss, _ = curve(COSINE, 8000, every=40)
    group = background_module.autogroup_nice(os.getpid())
    for niceness in (0, 7):
        with Forecaster(schedule=COSINE, every=10, law="power", niceness=niceness) as live:
            for step, value in zip(steps[:10], loss[:10], strict=True):
                live.update(int(step), float(value))
            live.forecast(wait=True, timeout=600)  # the child has set its priority by now
            pid = live._background._child.pid
            child = os.getpriority(os.PRIO_PROCESS, pid)
            child_group = background_module.autogroup_nice(pid)
            session = os.getsid(pid)
        parent = os.getpriority(os.PRIO_PROCESS, 0)
        assert child == min(parent + niceness, 19)  # 19: the lowest priority there is
        # Where Linux shares the CPU by session first, the child has a session, and so a group,
        # of its own at the lower priority; the training process's group is left as it was.
        assert session == pid != os.getsid(0)
        if group is not None:
            assert (child_group, background_module.autogroup_nice(os.getpid())) == (
                min(group + niceness, 19),
                group,
            )
    for bad in (-1, 20, 2.5):
        with pytest.raises(LrlabError, match="niceness must be an integer from 0 to 19"):
            Forecaster(schedule=COSINE, niceness=bad)


def test_forecaster_needs_an_lr_or_a_schedule() -> None:
    with (
        Forecaster(total_steps=100, background="thread") as live,
        pytest.raises(LrlabError, match="give lr, or a schedule"),
    ):
        live.update(1, 3.0)
    with pytest.raises(LrlabError, match="background mode"):
        Forecaster(total_steps=100, background="fork")


def test_forecaster_leaves_nan_losses_out_and_says_so() -> None:
    steps, loss, _ = curve(COSINE, 8000, every=40)
    loss[100:] = np.nan
    with Forecaster(schedule=COSINE, every=1000, background="thread", law="mpl") as live:
        for step, value in zip(steps[:120], loss[:120], strict=True):
            live.update(int(step), float(value))
        result = live.forecast(wait=True, timeout=120)
    assert result["step"] == int(steps[99]) and result["status"] == "forecast"
    assert "20 NaN/inf loss value(s) since step 4040 left out" in result["notes"][0]


def test_no_metrics_before_a_forecast() -> None:
    assert forecast_metrics(None) == {}
    assert forecast_metrics({"status": "waiting", "final_loss": None}) == {}


# --- Hugging Face ---------------------------------------------------------------------------


def test_huggingface_trainer_logs_forecasts_to_its_loggers(tmp_path) -> None:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    pytest.importorskip("tensorboard")
    from lrlab.integrations import TrainerForecastCallback, add_forecast_callback
    from lrlab.integrations.huggingface import scheduler_schedule

    block = 32
    ids = torch.tensor(list(ZEN))
    blocks = ids[: len(ids) // block * block].view(-1, block)
    data = [{"input_ids": b, "labels": b} for b in blocks]
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=256, n_positions=block, n_embd=16, n_layer=1, n_head=2
    )

    class Slow(transformers.TrainerCallback):
        """A step of a real model takes longer than this one: let the fits keep up."""

        def on_step_end(self, args, state, control, **kwargs):
            time.sleep(0.01)

    args = transformers.TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=120,
        per_device_train_batch_size=4,
        learning_rate=3e-3,
        lr_scheduler_type="cosine",
        warmup_steps=10,
        logging_steps=2,
        save_strategy="no",
        report_to=["tensorboard"],
        use_cpu=True,
        disable_tqdm=True,
    )
    trainer = transformers.Trainer(
        model=transformers.GPT2LMHeadModel(config), args=args, train_dataset=data, callbacks=[Slow]
    )
    callback = TrainerForecastCallback(every=3, law="power", background="thread", max_band=10.0)
    add_forecast_callback(trainer, callback)
    trainer.train()

    # The report_to logger (TensorBoard) recorded the forecasts.
    scalars = [row for file in sorted(tmp_path.rglob("*tfevents*")) for row in read_scalars(file)]
    final = {step: value for _, step, tag, value in scalars if tag == "train/forecast/final_loss"}
    low = {step: value for _, step, tag, value in scalars if tag == "train/forecast/low"}
    assert final, "no forecast reached the Trainer's loggers"
    assert all(low[step] <= value for step, value in final.items())
    saved = json.loads((tmp_path / "lrlab_forecast.json").read_text())
    assert saved["total_steps"] == 120 and saved["law"] == "power"
    # The planned schedule was the Trainer's own cosine, sampled at every step.
    schedule = scheduler_schedule(trainer.lr_scheduler, 120)
    expected = [3e-3 * trainer.lr_scheduler.lr_lambdas[0](step) for step in (0, 5, 100, 119)]
    assert schedule(np.array([0, 5, 100, 119])) == pytest.approx(expected)


# --- Lightning ------------------------------------------------------------------------------


def test_lightning_loop_logs_forecasts_to_its_loggers(tmp_path) -> None:
    torch = pytest.importorskip("torch")
    lightning = pytest.importorskip("lightning", reason="the lightning extra is not installed")
    from lightning.pytorch.loggers import CSVLogger

    from lrlab.integrations import LightningForecastCallback

    text = torch.tensor(list(ZEN))
    pairs = torch.utils.data.TensorDataset(text[:-1], text[1:])

    class Bigram(lightning.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.table = torch.nn.Embedding(256, 256)

        def training_step(self, batch, batch_idx):
            time.sleep(0.005)  # a real step takes longer: let the fits keep up
            inputs, targets = batch
            return torch.nn.functional.cross_entropy(self.table(inputs), targets)

        def configure_optimizers(self):
            optimizer = torch.optim.SGD(self.parameters(), lr=1.0)
            ramp = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, step / 20))
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": ramp, "interval": "step"}}

    torch.manual_seed(0)
    logger = CSVLogger(str(tmp_path), name="run")
    callback = LightningForecastCallback(
        every=3, law="power", background="thread", max_band=10.0, log_every_n_steps=2
    )
    trainer = lightning.Trainer(
        max_steps=300,
        logger=logger,
        callbacks=[callback],
        log_every_n_steps=2,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        accelerator="cpu",
    )
    trainer.fit(Bigram(), torch.utils.data.DataLoader(pairs, batch_size=64, shuffle=True))

    with open(tmp_path / "run" / "version_0" / "metrics.csv") as file:
        rows = [row for row in csv.DictReader(file) if row.get("forecast/final_loss")]
    assert rows, "no forecast reached the Lightning logger"
    assert all(float(r["forecast/low"]) <= float(r["forecast/final_loss"]) for r in rows)
    saved = json.loads((tmp_path / "run" / "version_0" / "lrlab_forecast.json").read_text())
    assert saved["total_steps"] == 300 and saved["law"] == "power"
