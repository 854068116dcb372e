"""``lrlab study``: which schedule, and what loss will it reach? One command, with the evidence.

On the user's logs (`study_runs`): read the runs, choose the law that best forecasts runs it was
not fitted on (`lrlab.laws.selection`), optimise a schedule for the budget under it, and compare
it with cosine-to-10%, WSD-20%-linear and linear-to-zero at the same budget.

On the built-in default (`study_default`, needs PyTorch): first train a constant, a cosine and a
two-stage run in the wind tunnel, study them as above, then train the recommended schedule and
WSD-20%-linear to check the forecasts against measured losses. Runs that finished are reused,
so an interrupted study resumes where it stopped. `StudyConfig` holds its settings.

This module only runs studies; both kinds hand their results to `lrlab.report.study_report`,
which writes ``summary.json``, the figures and a self-contained ``report.html``.

A study holds its output folder's lock while it runs (`lrlab.locks`): a second study there is
refused. Names from the user never leave it: run folders are ``runs/ROLE-HASH`` with the role a
safe slug of the run's name, checked to lie inside the folder, and two logs with one file name
are told apart by their parent folders (`unique_run_names`), not scored as one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lrlab import settings
from lrlab.design.optimize import baselines, optimize_schedule
from lrlab.design.simple_family import is_simple, nearest_simple
from lrlab.errors import LrlabError
from lrlab.laws import get_law
from lrlab.laws.selection import choose_law
from lrlab.locks import FolderLock
from lrlab.report.study_report import Analysis, Verification, describe_shape, write_report
from lrlab.runs import Run, read_run, unique_run_names
from lrlab.schedules import Schedule, from_spec

if TYPE_CHECKING:  # the wind tunnel is imported where runs train, not for a study of logs
    from lrlab.tunnel.pool import Backend

Progress = Callable[[str], None]


def _silent(_: str) -> None:
    pass


# --- the study ----------------------------------------------------------------------------------


def analyse(
    runs: Sequence[Run],
    *,
    budget: int | None = None,
    peak: float | None = None,
    warmup: int | None = None,
    progress: Progress = _silent,
) -> Analysis:
    """Choose a law by cross-validation, fit it, and optimise a schedule for the budget (by
    default the runs' length, peak LR and warmup)."""
    if not runs:
        raise LrlabError("a study needs at least one run")
    chosen, law_table = choose_law(runs, progress=progress)
    progress(f"fitting law {chosen!r} (with its band) on all runs")
    law = get_law(chosen).fit(list(runs), progress=progress)
    budget = int(budget or max(int(run.steps[-1]) + 1 for run in runs))
    peak = float(peak if peak is not None else law.fit_info_["peak"])
    warmup = int(warmup if warmup is not None else law.fit_info_["warmup"])
    warmup = min(warmup, budget // 2)
    progress(f"optimising a schedule for {budget} steps under law {chosen!r}")
    design = optimize_schedule(
        law, budget, peak=peak, warmup=warmup, family="free", progress=progress
    )
    return Analysis(law, law_table, budget, peak, warmup, design.best, design.baselines)


def recommend(analysis: Analysis, progress: Progress = _silent) -> dict[str, Any]:
    """Say in a short line what the analysis recommends (a free-form schedule's spec runs to
    1,500 characters: its shape in words instead, the spec stays in ``summary.json``) and, for a
    free-form recommendation, offer the nearest WSD or two-stage schedule with its forecast
    (`lrlab.design.simple_family`). Returns the summary's ``simple_equivalent`` entry: that
    schedule's forecast, or None where the recommendation is simple already."""
    best, budget = analysis.recommended, analysis.budget
    progress(
        f"recommended for {budget} steps: {short_description(best.schedule, budget)}; "
        f"forecast final loss {best.final_loss:.4f} [{best.low:.4f}, {best.high:.4f}]"
    )
    if is_simple(best.schedule):
        return {"simple_equivalent": None}
    simple = nearest_simple(
        analysis.law, best.schedule, budget, peak=analysis.peak, warmup=analysis.warmup
    )
    near = simple.forecast
    progress(
        f"nearest simple schedule ({simple.to_dict()['fitted_by']}): {near.schedule}; forecast "
        f"{near.final_loss:.4f} [{near.low:.4f}, {near.high:.4f}], "
        f"{near.final_loss - best.final_loss:+.4f} on the recommendation"
    )
    return {"simple_equivalent": simple.to_dict()}


def short_description(schedule: Schedule, steps: int, width: int = 120) -> str:
    """`schedule` for a log line: its spec when that is short, else its name and shape in words
    over `steps` steps."""
    text = str(schedule)
    if len(text) <= width:
        return text
    return f"{schedule.name}, {describe_shape(schedule(np.arange(steps)))}"


def study_runs(
    runs: Sequence[Run],
    out: str | Path,
    *,
    budget: int | None = None,
    peak: float | None = None,
    warmup: int | None = None,
    progress: Progress = _silent,
) -> dict[str, Any]:
    """The study of the user's logs: analyse and report (no training); returns the summary.
    Runs sharing a name are told apart by their folders (`unique_run_names`)."""
    with FolderLock(out, "lrlab study"):
        runs = unique_run_names(runs)
        analysis = analyse(runs, budget=budget, peak=peak, warmup=warmup, progress=progress)
        simple = recommend(analysis, progress)
        names = ", ".join(run.name for run in runs)
        summary = write_report(analysis, runs, out, title=f"lrlab study of {names}", extra=simple)
    progress(f"wrote {Path(out) / 'report.html'} and {Path(out) / 'summary.json'}")
    return summary


# --- the built-in default: evidence from the wind tunnel ----------------------------------------

# The three-run protocol of Luo et al. (2025): a constant run, a cosine run, and a two-stage run
# whose sudden drop shows the law how fast a lower LR pays off, which smooth schedules alone
# leave undetermined (and an optimiser then exploits).
_FIT_SCHEDULES = {
    "constant": "constant(peak={peak}, warmup={warmup})",
    "cosine": "cosine(peak={peak}, total={budget}, warmup={warmup}, end_ratio=0.1)",
    "two-stage": "two_stage(peak={peak}, warmup={warmup}, drop_step={drop_step}, low={low})",
}
# A 0.1M-parameter byte-level model on the Python standard library's source, small enough that
# fitting, forecasting and checking take a few minutes on two CPU cores.
_TUNNEL = {
    "model": {"d_model": 64, "n_layers": 2, "n_heads": 4},
    # 8 MB of the library's source: far more tokens than the runs see, quick to tokenise.
    "data": {"corpus": "stdlib", "max_bytes": 8_000_000},
    "train": {
        "batch_size": 16,
        "seq_len": 64,
        "eval_interval": 10,
        "eval_batches": 4,
        "checkpoint_interval": 100,
        "seed": 0,
    },
}


def _fill_placeholders(spec: str, values: Mapping[str, Any], where: str) -> str:
    """`spec` with each ``{name}`` of `values` replaced by its value. Only a brace around a bare
    word is a placeholder, so a JSON spec's braces stay as they are (``str.format`` would read
    them as placeholders); an unknown word is an error naming it and the known ones."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            known = ", ".join(f"{{{key}}}" for key in values)
            raise LrlabError(f"{where}: unknown placeholder {{{name}}} (known: {known})")
        return str(values[name])

    return re.sub(r"\{(\w*)\}", fill, spec)


@dataclasses.dataclass(frozen=True, kw_only=True)
class StudyConfig:
    """The wind-tunnel study's settings; the defaults are the built-in study, a ``--config FILE``
    overrides some of them (`from_mapping`)."""

    budget: int = settings.integer(
        800, low=20, help="steps of every run, and the budget the schedule is designed for"
    )
    peak: float = settings.real(
        3e-3, low=0.0, low_inclusive=False, help="peak LR of the fit runs and the design"
    )
    warmup: int = settings.integer(40, help="linear warmup steps, under half the budget")
    fit_schedules: dict[str, str] = settings.mapping(
        _FIT_SCHEDULES,
        help="run name -> schedule spec of the runs the laws are fitted to (replaces the default "
        "three); a spec may use {budget}, {peak}, {warmup}, {drop_step} (60% of the budget) and "
        "{low} (peak / 10)",
    )
    verify: tuple[str, ...] = settings.texts(
        ("recommended", "wsd-20%-linear"),
        help="schedules trained after the forecast to check it: recommended or a comparison",
    )
    tunnel: dict[str, dict[str, Any]] = settings.mapping(
        _TUNNEL,
        help="wind-tunnel setup by section (model, optim, data, train); each section given "
        "overrides the default section's fields one by one",
    )
    # Where the settings come from, for error messages (not a setting: a file cannot set it).
    source: dataclasses.InitVar[str] = "study config"

    def __post_init__(self, source: str) -> None:
        settings.check_fields(self, source)
        tunnel = {**{section: {} for section in _TUNNEL}, **self.tunnel}
        for section, values in tunnel.items():
            if not isinstance(values, Mapping):
                raise LrlabError(f"{source}: tunnel.{section}={values!r} must be a mapping")
        # Merged, the default setup under the user's fields: defaults not overridden still apply.
        merged = {section: {**_TUNNEL.get(section, {}), **tunnel[section]} for section in tunnel}
        object.__setattr__(self, "tunnel", merged)
        if self.warmup >= self.budget // 2:
            raise LrlabError(f"{source}: warmup={self.warmup} must be under half the budget")
        if not self.fit_schedules:
            raise LrlabError(f"{source}: fit_schedules must map run names to schedule specs")
        self._fit_runs(source)  # a bad spec fails here, before any training
        allowed = {"recommended", *baselines(1.0, 100, 0)}
        bad = [name for name in self.verify if name not in allowed]
        if bad:
            raise LrlabError(
                f"{source}: verify: {bad[0]!r} is not one of {', '.join(sorted(allowed))}"
            )

    @classmethod
    def from_mapping(cls, data: Any, source: str = "study config") -> StudyConfig:
        """The default study with the user's settings `data` (read from `source`), checked."""
        return settings.from_mapping(cls, {} if data is None else data, source, source=source)

    def fit_runs(self) -> dict[str, Schedule]:
        """The schedules of the runs to fit, by run name, their placeholders filled in."""
        return self._fit_runs("study config")  # checked when the config was made: cannot fail

    def _fit_runs(self, source: str) -> dict[str, Schedule]:
        values = {
            "budget": self.budget,
            "peak": self.peak,
            "warmup": self.warmup,
            "drop_step": max(self.warmup, round(0.6 * self.budget)),
            "low": float(f"{self.peak / 10:.6g}"),
        }
        schedules = {}
        for key, spec in self.fit_schedules.items():
            name = str(key)  # YAML may give 1 and "1": one run name, one folder
            if name in schedules:
                raise LrlabError(f"{source}: fit_schedules: two runs are named {name!r}")
            if not isinstance(spec, str):
                raise LrlabError(f"{source}: fit_schedules.{name}={spec!r} must be a spec string")
            text = _fill_placeholders(spec, values, f"{source}: fit_schedules.{name}")
            try:
                schedules[name] = from_spec(text)
            except LrlabError as error:
                raise LrlabError(f"{source}: fit_schedules.{name}: {error}") from None
        return schedules

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain JSON data (the summary's ``study_config``)."""
        return {
            "budget": self.budget,
            "peak": self.peak,
            "warmup": self.warmup,
            "fit_schedules": dict(self.fit_schedules),
            "verify": list(self.verify),
            "tunnel": {section: dict(values) for section, values in self.tunnel.items()},
        }


def study_default(
    out: str | Path,
    config: StudyConfig | Mapping[str, Any] | None = None,
    *,
    progress: Progress = _silent,
    backend: Backend | None = None,
) -> dict[str, Any]:
    """Train the fit runs in the wind tunnel, analyse them, train the schedules to verify, and
    report; returns the summary. `config` is a `StudyConfig` or the mapping to read one from
    (default: the built-in study). Finished runs in `out` are reused and unfinished ones
    resumed. The runs train on `backend` (`lrlab.tunnel.pool.Backend`; default: this machine's
    pool)."""
    if not isinstance(config, StudyConfig):
        config = StudyConfig.from_mapping(config)
    out = Path(out)
    with FolderLock(out, "lrlab study"):
        return _study_default(out, config, progress, backend)


def _study_default(
    out: Path, config: StudyConfig, progress: Progress, backend: Backend | None = None
) -> dict[str, Any]:
    setup = config.to_dict()
    jobs = config.fit_runs()
    total = len(jobs) + len(config.verify)
    # The fit runs are independent of each other, and so are the checks: each group trains at
    # once where the cores allow (`train_tunnel_runs`).
    runs = train_tunnel_runs(
        setup,
        [
            TunnelRun(
                name,
                schedule,
                _run_folder(out, f"fit-{name}", schedule, config.tunnel),
                f"[{index}/{total}]",
            )
            for index, (name, schedule) in enumerate(jobs.items(), start=1)
        ],
        progress,
        backend,
    )
    analysis = analyse(
        runs, budget=config.budget, peak=config.peak, warmup=config.warmup, progress=progress
    )
    simple = recommend(analysis, progress)
    forecasts = {"recommended": analysis.recommended, **analysis.comparisons}
    checks = [
        TunnelRun(
            name,
            forecasts[name].schedule,
            _run_folder(out, f"verify-{name}", forecasts[name].schedule, config.tunnel),
            f"[{index}/{total}]",
        )
        for index, name in enumerate(config.verify, start=len(jobs) + 1)
    ]
    measured = train_tunnel_runs(setup, checks, progress, backend)
    verifications = [
        Verification(check.name, forecasts[check.name], run)
        for check, run in zip(checks, measured, strict=True)
    ]
    summary = write_report(
        analysis,
        runs,
        out,
        title="lrlab study: wind-tunnel runs on the Python standard library",
        verifications=verifications,
        extra={"study_config": setup, **simple},
    )
    progress(f"wrote {out / 'report.html'} and {out / 'summary.json'}")
    return summary


def _run_folder(out: Path, role: str, schedule: Schedule, tunnel: Mapping[str, Any]) -> Path:
    """``out/runs/ROLE-HASH``, the hash that of the run's schedule and tunnel setup, so a changed
    schedule (say, a different recommendation) or setup trains a new run instead of resuming a
    different one. The role (from the user's run name) becomes a safe slug: any character but
    ASCII letters, digits and ``_.%+-`` is replaced, so ``/``, ``..`` or markup cannot make a
    path elsewhere; a role changed so also goes into the hash, keeping names that slug alike
    apart (and the folders of safe names as earlier versions named them)."""
    slug = re.sub(r"[^A-Za-z0-9_.%+-]+", "_", role)[:64]
    parts: list[Any] = [str(schedule), tunnel] if slug == role else [role, str(schedule), tunnel]
    text = json.dumps(parts, sort_keys=True, default=str)
    runs = out / "runs"
    folder = runs / f"{slug}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"
    # The slug leaves no separator, and "ROLE-HASH" is never "." or "..": a last check all the same.
    if os.path.dirname(os.path.normpath(folder)) != os.path.normpath(runs):
        raise LrlabError(f"study run {role!r}: its folder {folder} would lie outside {runs}")
    return folder


@dataclasses.dataclass(frozen=True)
class TunnelRun:
    """A wind-tunnel run of a study: its name, schedule, folder and counter (``[2/5]``) for the
    progress messages."""

    name: str
    schedule: Schedule
    folder: Path
    counter: str


def train_tunnel_runs(
    config: Mapping[str, Any],
    runs: Sequence[TunnelRun],
    progress: Progress,
    backend: Backend | None = None,
) -> list[Run]:
    """Train each run's schedule for ``config["budget"]`` steps with the setup
    ``config["tunnel"]`` (as in `StudyConfig.to_dict`) in its folder (a finished run is reused, an
    interrupted one resumed) and read their eval curves, in the order given. The runs train at
    once, as many as the usable cores hold at one thread each, in the pool sweeps use
    (`lrlab.tunnel.pool`), or as tasks of a Ray cluster with `backend` ray."""
    # Imported here: the wind tunnel needs PyTorch, which a study of logs does not.
    from lrlab.tunnel.pool import Job, train_jobs
    from lrlab.tunnel.threads import plan_workers

    jobs = []
    for run in runs:
        tunnel = {section: dict(values) for section, values in config["tunnel"].items()}
        tunnel.setdefault("train", {}).update(schedule=str(run.schedule), steps=config["budget"])
        jobs.append(Job(f"study run {run.name}", tunnel, run.folder))
        progress(_announce(run, config["budget"]))
    by_name = {job.name: run for job, run in zip(jobs, runs, strict=True)}
    for outcome in train_jobs(jobs, plan_workers(len(jobs)), backend=backend, log=progress):
        run, record = by_name[outcome["name"]], outcome["record"]
        if record.get("status") != "finished":
            raise LrlabError(
                f"{run.folder}: the {run.name} run did not finish ({record.get('status')}); "
                "lower the peak LR in the study config"
            )
        progress(f"{run.counter} {run.name}: finished in {record['elapsed_s']:.0f} s")
    return [dataclasses.replace(read_run(run.folder / "eval.csv"), name=run.name) for run in runs]


def _announce(run: TunnelRun, steps: int) -> str:
    """The progress line of a study run about to train for `steps` steps: a run finished at
    that length is reused, one with a checkpoint resumed, any other trained from step 0."""
    from lrlab.tunnel.checkpoint import list_steps

    schedule = short_description(run.schedule, steps)
    try:
        record = json.loads((run.folder / "record.json").read_text())
    except (OSError, ValueError):  # none yet, or torn: training finds out which
        record = None
    finished = isinstance(record, dict) and record.get("status") == "finished"
    if finished and record.get("steps") == steps:
        return f"{run.counter} {run.name}: already finished, reused: {schedule}"
    saved = list_steps(run.folder / "checkpoints")
    if saved:
        return f"{run.counter} resuming {run.name} from step {saved[-1]}: {schedule}"
    return f"{run.counter} training {run.name}: {schedule}"


def train_tunnel_run(
    config: Mapping[str, Any],
    folder: Path,
    name: str,
    schedule: Schedule,
    progress: Progress,
    counter: str,
) -> Run:
    """`train_tunnel_runs` of one run."""
    return train_tunnel_runs(config, [TunnelRun(name, schedule, folder, counter)], progress)[0]
