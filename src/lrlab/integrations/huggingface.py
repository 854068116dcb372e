"""Live forecasts in a Hugging Face `transformers.Trainer`: `TrainerForecastCallback`.

    from lrlab.integrations import TrainerForecastCallback, add_forecast_callback

    trainer = Trainer(model, args, train_dataset=data)
    add_forecast_callback(trainer, TrainerForecastCallback(every=5))
    trainer.train()

At each logging step (``logging_steps``) the callback records the training loss and LR the
Trainer logs; every `every` of them, the background fitter (`lrlab.live.BackgroundForecaster`)
refits. A new forecast is added to the next logged values as ``forecast/final_loss``,
``forecast/low``, ``forecast/high``, ``forecast/best_cooldown_start`` and
``forecast/best_cooldown_gain``, so the loggers of ``report_to`` (TensorBoard, W&B, ...) record
them, and written to ``<output_dir>/lrlab_forecast.json``.

The Trainer calls its callbacks in order and its loggers come first; `add_forecast_callback` puts
this callback before them, so they see the forecast in the same call. (Passed in
``Trainer(callbacks=[...])`` it still writes the JSON file and adds the values to the logs, but
only callbacks after it see them.)

The planned schedule is the one given, else the Trainer's: an `lrlab.adapters.LRLabScheduler`'s
schedule, or the per-step LR of any `LambdaLR`-style scheduler (the Trainer's own ``linear``,
``cosine``, ``warmup_stable_decay``, ...), sampled over ``max_steps``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from lrlab.integrations.loop import Forecaster, forecast_metrics
from lrlab.laws.prior import DecayPrior
from lrlab.schedules import Schedule, Table, from_spec

JSON_NAME = "lrlab_forecast.json"


def scheduler_schedule(scheduler: Any, steps: int) -> Schedule | None:
    """The schedule a PyTorch LR scheduler follows (group 0): an `LRLabScheduler`'s own, or a
    `LambdaLR`'s sampled at every step as a table; None for any other."""
    schedules = getattr(scheduler, "schedules", None)
    if schedules:
        return from_spec(schedules[0])
    lambdas, base = getattr(scheduler, "lr_lambdas", None), getattr(scheduler, "base_lrs", None)
    if lambdas and base and steps > 0:
        return Table(values=[base[0] * float(lambdas[0](step)) for step in range(steps)])
    return None


class TrainerForecastCallback(TrainerCallback):
    """Forecast the run's final loss while the Trainer trains (module docstring).

    `schedule` and `total_steps` default to the Trainer's; `every` is logging steps per refit;
    `json_name` the file written in ``output_dir``; `prior` the decay prior (None, ``"default"``
    or a file, as ``lrlab watch --prior``: a forecast before the run's decay begins); the other
    options go to `lrlab.integrations.Forecaster` (`law`, `reference`, `cooldown`, `background`,
    ...).
    """

    def __init__(
        self,
        *,
        schedule: Schedule | dict[str, Any] | str | None = None,
        total_steps: int | None = None,
        every: int = 5,
        json_name: str = JSON_NAME,
        prior: DecayPrior | str | Path | None = None,
        **options: Any,
    ) -> None:
        self.schedule, self.total_steps, self.every = schedule, total_steps, every
        self.json_name, self.options = json_name, options
        self.prior = prior
        self.forecaster: Forecaster | None = None
        self._fresh: dict[str, Any] | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        total = self.total_steps or state.max_steps
        schedule = self.schedule
        if schedule is None:
            schedule = scheduler_schedule(kwargs.get("lr_scheduler"), total)
        self.forecaster = Forecaster(
            total_steps=total,
            schedule=schedule,
            every=self.every,
            json_path=Path(args.output_dir) / self.json_name,
            prior=self.prior,
            **self.options,
        )

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        if self.forecaster is None or logs is None:
            return
        if "loss" in logs and state.global_step > 0:
            # The Trainer logs at global_step k the loss and LR of the step just taken, k - 1.
            fresh = self.forecaster.update(
                state.global_step - 1, logs["loss"], logs.get("learning_rate")
            )
            self._fresh = fresh or self._fresh
        if self._fresh is not None and (metrics := forecast_metrics(self._fresh)):
            logs.update(metrics)
            self._fresh = None

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.forecaster is not None:
            self.forecaster.close()
            self.forecaster = None

    def forecast(self) -> dict[str, Any] | None:
        """The newest forecast (None before the first, or after training)."""
        return None if self.forecaster is None else self.forecaster.forecast()


def add_forecast_callback(trainer: Any, callback: TrainerForecastCallback) -> None:
    """Add `callback` to `trainer` before its loggers, so that they record the forecasts."""
    trainer.callback_handler.callbacks.insert(0, callback)
