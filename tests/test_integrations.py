"""Trainer integrations: the plain-loop `Forecaster` (fits in a thread or a child process), a
real Hugging Face `Trainer` and a real Lightning loop on tiny models, each logging forecasts to
the trainer's own loggers and to a JSON file beside the run."""

from __future__ import annotations

import codecs
import csv
import itertools
import json
import os
import queue
import signal
import this  # the Zen of Python, rot13-encoded: real text without a download
import time
from pathlib import Path

import numpy as np
import pytest

from live_helpers import curve, run_until, truth_final, truth_law
from lrlab.errors import LrlabError
from lrlab.integrations import METRIC_NAMES, Forecaster, forecast_metrics
from lrlab.laws.prior import DecayPrior, default_prior
from lrlab.live import background as background_module
from lrlab.runs.tensorboard import read_scalars

COSINE = "cosine(peak=3e-4, total=8000, warmup=400, end_ratio=0.1)"
WSD = "wsd(peak=3e-4, total=8000, warmup=400, cooldown_fraction=0.2)"
ZEN = codecs.decode(this.s, "rot13").encode("utf-8")


def _small_prior() -> DecayPrior:
    """Two of the default prior's members, from two data sets: a refit fits the run once per
    member (seconds each), and the trainer tests are about the prior reaching the loggers."""
    members = default_prior().members
    return DecayPrior((members[0], next(m for m in members if m.dataset != members[0].dataset)))


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


def slow_fits(background: str, duty: float) -> Forecaster:
    """A forecaster whose fits take their time (`mpl`, seconds for 100 points), a hand-over every
    5 points, at the training loop's priority (the tests are about the pacing, not the load)."""
    return Forecaster(
        schedule=COSINE, every=5, background=background, law="mpl", niceness=0, duty=duty
    )


def feed(live: Forecaster, steps: np.ndarray, loss: np.ndarray, start: int, stop: int) -> None:
    """Log the points `start` to `stop` (exclusive) of a curve, as fast as the loop can."""
    for step, value in zip(steps[start:stop], loss[start:stop], strict=True):
        live.update(int(step), float(value))


@pytest.mark.parametrize("background", ["thread", "process"])
def test_hand_overs_behind_a_fast_loop_coalesce_into_few_fits(background) -> None:
    # The child once fitted every hand-over in turn: behind a loop faster than its fits they
    # queued up, the child never rested and the forecast lagged ever further (40 hand-overs in
    # 4 s gave 40 fits, the last answered 50 s after the last hand-over).
    steps, loss, _ = curve(COSINE, 8000, every=40)
    with slow_fits(background, duty=1.0) as live:
        feed(live, steps, loss, 0, 100)
        live.forecast(wait=True, timeout=600)  # enough points for a fit that takes its time
        fitted: list[int] = []
        publish = live._background._publish

        def counted(result, answered):
            if result is not None:
                fitted.append(result["points"])
            publish(result, answered)

        live._background._publish = counted
        for step, value in zip(steps[100:160], loss[100:160], strict=True):
            live.update(int(step), float(value))
            time.sleep(0.004)  # a hand-over every 20 ms, each to an idle feeder
        result = live.forecast(wait=True, timeout=600)
    assert (result["step"], result["points"]) == (int(steps[159]), 160)
    assert fitted[-1] == 160
    assert len(fitted) <= 4, f"{len(fitted)} fits for 12 hand-overs: they queued up"


def test_fits_rest_between_them_by_the_duty_asked(monkeypatch) -> None:
    spans: list[tuple[float, float]] = []
    fit = background_module.Session.forecast

    def timed(self):
        began = time.monotonic()
        try:
            return fit(self)
        finally:
            spans.append((began, time.monotonic()))

    monkeypatch.setattr(background_module.Session, "forecast", timed)
    steps, loss, _ = curve(COSINE, 8000, every=40)
    with Forecaster(schedule=COSINE, every=5, background="thread", law="mpl", duty=0.25) as live:
        for step, value in zip(steps[:150], loss[:150], strict=True):
            live.update(int(step), float(value))
            time.sleep(0.01)  # a hand-over every 0.05 s: always more points than fitted
        count = len(spans)
    assert count >= 3
    # A fit of d seconds begun at t: the next begins at t + d / duty or later.
    for (began, ended), (following, _) in itertools.pairwise(spans[:count]):
        assert following - began >= (ended - began) / 0.25 - 1e-6


@pytest.mark.parametrize("background", ["thread", "process"])
def test_wait_starts_the_next_fit_without_its_rest(background) -> None:
    steps, loss, _ = curve(COSINE, 8000, every=40)
    with slow_fits(background, duty=0.01) as live:
        feed(live, steps, loss, 0, 120)
        began = time.perf_counter()
        first = live.forecast(wait=True, timeout=600)
        once = time.perf_counter() - began
        # Handed over while the first fit rests (99 times its length, at duty 0.01).
        feed(live, steps, loss, 120, 160)
        began = time.perf_counter()
        second = live.forecast(wait=True, timeout=600)
        again = time.perf_counter() - began
    assert (first["points"], second["points"]) == (120, 160)
    assert again < 20 * once, f"waited {again:.1f} s after a {once:.1f} s fit: it rested"


def test_a_child_that_dies_in_a_fit_stops_the_hand_overs() -> None:
    # Once the child is gone no fit will come: the pacer must not keep the run's points for one.
    steps, loss, _ = curve(COSINE, 8000, every=40)
    with slow_fits("process", duty=1.0) as live:
        feed(live, steps, loss, 0, 120)
        time.sleep(0.3)  # in its fit of 120 points (seconds)
        os.kill(live._background._child.pid, signal.SIGKILL)
        live._background._child.wait()
        feed(live, steps, loss, 120, 160)
        live._background._worker.join(timeout=10)
        assert not live._background._worker.is_alive()
        live.forecast(wait=True, timeout=10)  # returns: no answer will come


def test_duty_outside_its_range_is_an_error() -> None:
    for bad in (0, -0.5, 1.5, "half"):
        with pytest.raises(LrlabError, match="duty must be a number above 0 and at most 1"):
            Forecaster(schedule=COSINE, duty=bad)


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


def group_members(group: int) -> list[int]:
    """The processes still in process group `group` (a fitting child's forked workers)."""
    members = []
    for entry in os.listdir("/proc"):
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if entry.isdigit() and int(fields[2]) == group:
            members.append(int(entry))
    return members


def test_close_returns_promptly_while_the_child_is_in_a_fit(tmp_path) -> None:
    # close() once waited for a fit in progress (5 s and more) before it killed the child: a
    # trainer hung that long at its end. Now the child is stopped after a short grace, and the
    # forecast file keeps the last forecast written in full.
    steps, loss, _ = curve(COSINE, 8000, every=10)
    path = tmp_path / "forecast.json"
    live = Forecaster(
        schedule=COSINE, every=1000, json_path=path, law="mpl", niceness=0, background="process"
    )
    for step, value in zip(steps[:400], loss[:400], strict=True):
        live.update(int(step), float(value))
    first = live.forecast(wait=True, timeout=600)
    assert first["status"] == "forecast"
    child = live._background._child
    for step, value in zip(steps[400:], loss[400:], strict=True):
        live.update(int(step), float(value))
    live.flush()  # a fit of all 799 points: seconds of CPU
    time.sleep(0.3)  # the child has the points and is fitting
    began = time.perf_counter()
    live.close()
    assert time.perf_counter() - began < 2.0  # it was 5 s and more
    # Stopped in its fit (SIGTERM unwinds it: exit status 128 + 15; killed if that is slow on a
    # busy machine), reaped, with no forked worker left.
    assert child.returncode in (128 + signal.SIGTERM, -signal.SIGKILL)
    assert group_members(child.pid) == []
    assert live.forecast() == first == json.loads(path.read_text())
    assert os.listdir(tmp_path) == ["forecast.json"]  # no temporary file left behind
    began = time.perf_counter()
    live.close()  # a second close does nothing
    assert time.perf_counter() - began < 0.1


def test_close_of_an_idle_child_lets_it_exit_by_itself() -> None:
    with Forecaster(schedule=COSINE, every=10, law="power", niceness=0) as live:
        steps, loss, _ = curve(COSINE, 8000, every=40)
        for step, value in zip(steps[:10], loss[:10], strict=True):
            live.update(int(step), float(value))
        live.forecast(wait=True, timeout=600)
    assert live._background._child.returncode == 0


def prior_file(tmp_path) -> Path:
    """A decay prior of the test curves' own response, learnt from a cosine run, saved."""
    member = DecayPrior.member(truth_law(), [run_until(COSINE, 8000, 7999)], "cosine", "other")
    return DecayPrior((member,)).save(tmp_path / "prior.json")


@pytest.mark.parametrize(
    ("background", "kind"),
    [("process", "object"), ("process", "file"), ("thread", "default"), ("thread", "none")],
)
def test_the_decay_prior_reaches_the_forecast(tmp_path, background, kind) -> None:
    """A WSD run in its stable phase: with a decay prior (a `DecayPrior`, a file, or lrlab's
    "default", as `lrlab watch --prior`) a forecast, from the prior; without, none yet."""
    path = prior_file(tmp_path)
    prior = {
        "object": DecayPrior.load(path),
        "file": path,
        "default": "default",
        "none": None,
    }[kind]
    seen = run_until(WSD, 8000, 4000, every=40)
    json_path = tmp_path / "forecast.json"
    with Forecaster(
        schedule=WSD,
        every=1000,
        json_path=json_path,
        background=background,
        niceness=0,
        prior=prior,
        max_band=10.0,
    ) as live:
        for step, value in zip(seen.steps, seen.loss, strict=True):
            live.update(int(step), float(value))
        result = live.forecast(wait=True, timeout=600)
    assert json.loads(json_path.read_text()) == result
    if prior is None:
        assert result["status"] == "unstable" and result["decay_prior"] is False
        return
    assert result["status"] == "forecast" and result["decay_prior"] is True
    if kind != "default":  # the prior is the generator's own response: close to the truth
        assert abs(result["final_loss"] / truth_final(WSD, 8000) - 1) < 0.004


def test_a_bad_decay_prior_is_an_error_in_the_caller(tmp_path) -> None:
    # Not in the background, where it would only show as forecasts that never come.
    missing = tmp_path / "missing.json"
    with pytest.raises(LrlabError, match="missing.json: cannot read a decay prior"):
        Forecaster(schedule=WSD, prior=missing)


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


def _zen_trainer(tmp_path, torch, transformers, spy, **schedule):
    """A Trainer of a one-layer GPT-2 of width 16 for 120 steps on the Zen of Python in 32-byte
    blocks (seeded), logging every 2 steps to TensorBoard, with the callback `spy` and the LR
    schedule's `TrainingArguments` in `schedule`."""
    block = 32
    ids = torch.tensor(list(ZEN))
    blocks = ids[: len(ids) // block * block].view(-1, block)
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=256, n_positions=block, n_embd=16, n_layer=1, n_head=2
    )
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=120,
        per_device_train_batch_size=4,
        learning_rate=3e-3,
        warmup_steps=10,
        logging_steps=2,
        save_strategy="no",
        report_to=["tensorboard"],
        use_cpu=True,
        disable_tqdm=True,
        **schedule,
    )
    data = [{"input_ids": b, "labels": b} for b in blocks]
    model = transformers.GPT2LMHeadModel(config)
    return transformers.Trainer(model=model, args=args, train_dataset=data, callbacks=[spy])


def test_huggingface_trainer_logs_forecasts_to_its_loggers(tmp_path) -> None:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    pytest.importorskip("tensorboard")
    from lrlab.integrations import TrainerForecastCallback, add_forecast_callback
    from lrlab.integrations.huggingface import scheduler_schedule

    class Slow(transformers.TrainerCallback):
        """A step of a real model takes longer than this one: let the fits keep up."""

        def on_step_end(self, args, state, control, **kwargs):
            time.sleep(0.01)

    trainer = _zen_trainer(tmp_path, torch, transformers, Slow, lr_scheduler_type="cosine")
    # duty=1: no rest between fits, so that forecasts arrive within this short run.
    callback = TrainerForecastCallback(
        every=3, law="power", background="thread", max_band=10.0, duty=1.0
    )
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


def test_huggingface_trainer_forecasts_before_the_decay_with_a_prior(tmp_path) -> None:
    """`prior=` reaches the forecasts: in the stable phase of the Trainer's own WSD schedule,
    forecasts from the decay prior reach its loggers and the JSON file says so."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    pytest.importorskip("tensorboard")
    from lrlab.integrations import TrainerForecastCallback, add_forecast_callback

    seen: list[tuple[int, bool]] = []  # (step, decay_prior) of the JSON file at each log

    class Spy(transformers.TrainerCallback):
        """Reads the forecast file as a user would, and lets the fits catch up once in the
        stable phase (a tiny model's step is faster than a fit: timing alone would race)."""

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 50:
                callback.forecaster.forecast(wait=True, timeout=300)

        def on_log(self, args, state, control, logs=None, **kwargs):
            path = tmp_path / "lrlab_forecast.json"
            if path.exists():
                saved = json.loads(path.read_text())
                seen.append((saved["step"], saved["decay_prior"]))

    decay = 90  # the WSD schedule's decay begins here
    trainer = _zen_trainer(
        tmp_path,
        torch,
        transformers,
        Spy,
        lr_scheduler_type="warmup_stable_decay",
        lr_scheduler_kwargs={"num_decay_steps": 120 - decay},
    )
    # In a child process (niceness 0: the test is about the answer, not the machine's load), so
    # that the prior's fits, a few per refit, leave the training thread's interpreter lock alone.
    callback = TrainerForecastCallback(
        every=3, law="power", niceness=0, max_band=10.0, prior=_small_prior()
    )
    add_forecast_callback(trainer, callback)
    trainer.train()

    assert any(step < decay and from_prior for step, from_prior in seen), seen
    scalars = [row for file in sorted(tmp_path.rglob("*tfevents*")) for row in read_scalars(file)]
    early = [step for _, step, tag, _ in scalars if tag == "train/forecast/final_loss"]
    assert min(early) < decay  # without the prior, no forecast before the decay has begun
    # Before the decay there are cooldown starts to choose from: the best one is logged too.
    tags = {tag for _, step, tag, _ in scalars if step < decay}
    assert {"train/forecast/high", "train/forecast/best_cooldown_start"} <= tags, tags


# --- Lightning ------------------------------------------------------------------------------


def _fit_on_zen(tmp_path, torch, lightning, module, callback, steps: int) -> None:
    """Train `module` (a LightningModule class, built seeded) on the Zen of Python's byte pairs
    for `steps` steps with `callback`, logging every 2 steps to a CSV logger in tmp_path/run."""
    from lightning.pytorch.loggers import CSVLogger

    text = torch.tensor(list(ZEN))
    pairs = torch.utils.data.TensorDataset(text[:-1], text[1:])
    torch.manual_seed(0)
    trainer = lightning.Trainer(
        max_steps=steps,
        logger=CSVLogger(str(tmp_path), name="run"),
        callbacks=[callback],
        log_every_n_steps=2,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        accelerator="cpu",
    )
    trainer.fit(module(), torch.utils.data.DataLoader(pairs, batch_size=64, shuffle=True))


def test_lightning_loop_logs_forecasts_to_its_loggers(tmp_path) -> None:
    torch = pytest.importorskip("torch")
    lightning = pytest.importorskip("lightning", reason="the lightning extra is not installed")
    from lrlab.integrations import LightningForecastCallback

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

    # duty=1: no rest between fits, so that forecasts arrive within this short run.
    callback = LightningForecastCallback(
        every=3, law="power", background="thread", max_band=10.0, log_every_n_steps=2, duty=1.0
    )
    _fit_on_zen(tmp_path, torch, lightning, Bigram, callback, 300)

    with open(tmp_path / "run" / "version_0" / "metrics.csv") as file:
        rows = [row for row in csv.DictReader(file) if row.get("forecast/final_loss")]
    assert rows, "no forecast reached the Lightning logger"
    assert all(float(r["forecast/low"]) <= float(r["forecast/final_loss"]) for r in rows)
    saved = json.loads((tmp_path / "run" / "version_0" / "lrlab_forecast.json").read_text())
    assert saved["total_steps"] == 300 and saved["law"] == "power"


def test_lightning_loop_forecasts_before_the_decay_with_a_prior(tmp_path) -> None:
    """`prior=` reaches the forecasts in a Lightning loop on a warmup-stable-decay schedule."""
    torch = pytest.importorskip("torch")
    lightning = pytest.importorskip("lightning", reason="the lightning extra is not installed")
    from lrlab.integrations import LightningForecastCallback

    decay, total = 240, 300
    folder = tmp_path / "run" / "version_0"
    seen: list[tuple[int, bool]] = []  # (step, decay_prior) of the JSON file after each batch

    def wsd(step: int) -> float:
        return min(1.0, step / 20, (total - step) / (total - decay))

    class Bigram(lightning.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.table = torch.nn.Embedding(256, 256)

        def training_step(self, batch, batch_idx):
            if self.global_step == 60:  # the fits catch up in the stable phase
                callback.forecaster.forecast(wait=True, timeout=300)
            inputs, targets = batch
            return torch.nn.functional.cross_entropy(self.table(inputs), targets)

        def on_train_batch_end(self, outputs, batch, batch_idx):
            if (folder / "lrlab_forecast.json").exists():
                saved = json.loads((folder / "lrlab_forecast.json").read_text())
                seen.append((saved["step"], saved["decay_prior"]))

        def configure_optimizers(self):
            optimizer = torch.optim.SGD(self.parameters(), lr=1.0)
            plan = torch.optim.lr_scheduler.LambdaLR(optimizer, wsd)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": plan, "interval": "step"}}

    callback = LightningForecastCallback(
        every=3,
        law="power",
        niceness=0,  # a child process, as above
        max_band=10.0,
        log_every_n_steps=2,
        prior=_small_prior(),
    )
    _fit_on_zen(tmp_path, torch, lightning, Bigram, callback, total)

    assert any(step < decay and from_prior for step, from_prior in seen), seen[-5:]
    with open(folder / "metrics.csv") as file:
        rows = [r for r in csv.DictReader(file) if r.get("forecast/final_loss")]
    assert min(int(r["step"]) for r in rows) < decay  # without the prior, none before the decay
    # Before the decay there are cooldown starts to choose from: the best one is logged too.
    early = [r for r in rows if int(r["step"]) < decay]
    assert all(r["forecast/high"] and r["forecast/best_cooldown_start"] for r in early), early
