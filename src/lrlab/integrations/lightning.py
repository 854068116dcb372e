"""Live forecasts in a PyTorch Lightning `Trainer`: `LightningForecastCallback`.

    from lrlab.integrations import LightningForecastCallback

    trainer = lightning.Trainer(max_steps=10_000, callbacks=[LightningForecastCallback()])

Every `log_every_n_steps` steps (the Trainer's, by default) the callback reads the training loss
the ``training_step`` returned and the LR of the first parameter group; every `every` such points
the background fitter (`lrlab.live.BackgroundForecaster`) refits, and each new forecast goes to
every logger of the Trainer (``log_metrics``: TensorBoard, CSV, W&B, ...) as
``forecast/final_loss``, ``forecast/low``, ``forecast/high``, ``forecast/best_cooldown_start`` and
``forecast/best_cooldown_gain``, and to ``lrlab_forecast.json`` in the Trainer's log directory.
Reading the loss only every few steps keeps the accelerator from waiting on it at every step.

The planned schedule is the one given, else that of the first LR scheduler when it is an
`lrlab.adapters.LRLabScheduler` or a `LambdaLR`; else the logged LR is held at its last value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import Callback

from lrlab.integrations.huggingface import JSON_NAME, scheduler_schedule
from lrlab.integrations.loop import Forecaster, forecast_metrics
from lrlab.laws.prior import DecayPrior
from lrlab.schedules import Schedule


class LightningForecastCallback(Callback):
    """Forecast the run's final loss while Lightning trains (module docstring).

    `schedule` and `total_steps` default to the Trainer's (``max_steps``, else its estimate of
    the stepping batches); `prior` the decay prior (None, ``"default"`` or a file, as ``lrlab
    watch --prior``: a forecast before the run's decay begins); the other options go to
    `lrlab.integrations.Forecaster`.
    """

    def __init__(
        self,
        *,
        schedule: Schedule | dict[str, Any] | str | None = None,
        total_steps: int | None = None,
        every: int = 5,
        log_every_n_steps: int | None = None,
        json_name: str = JSON_NAME,
        prior: DecayPrior | str | Path | None = None,
        **options: Any,
    ) -> None:
        self.schedule, self.total_steps, self.every = schedule, total_steps, every
        self.log_every_n_steps, self.json_name, self.options = log_every_n_steps, json_name, options
        self.prior = prior
        self.forecaster: Forecaster | None = None
        self._lr = 0.0

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        total = self.total_steps or (
            trainer.max_steps if trainer.max_steps > 0 else trainer.estimated_stepping_batches
        )
        schedule = self.schedule
        if schedule is None and trainer.lr_scheduler_configs:
            schedule = scheduler_schedule(trainer.lr_scheduler_configs[0].scheduler, int(total))
        folder = Path(trainer.log_dir or trainer.default_root_dir)
        self.every_n = self.log_every_n_steps or trainer.log_every_n_steps or 1
        self.forecaster = Forecaster(
            total_steps=int(total),
            schedule=schedule,
            every=self.every,
            json_path=folder / self.json_name,
            prior=self.prior,
            **self.options,
        )

    def on_train_batch_start(
        self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int
    ) -> None:
        if self.forecaster is not None and trainer.global_step % self.every_n == 0:
            self._lr = float(trainer.optimizers[0].param_groups[0]["lr"])  # this step's LR

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step - 1  # the optimizer step just taken
        if self.forecaster is None or step < 0 or step % self.every_n:
            return
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is None:
            return
        fresh = self.forecaster.update(step, float(loss.detach()), self._lr)
        metrics = forecast_metrics(fresh)
        if metrics:
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=step)

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        if self.forecaster is not None:
            self.forecaster.close()
            self.forecaster = None

    def forecast(self) -> dict[str, Any] | None:
        """The newest forecast (None before the first, or after training)."""
        return None if self.forecaster is None else self.forecaster.forecast()
