"""``lrlab study``: which schedule, and what loss will it reach? One command, with the evidence.

On the user's logs (`study_runs`): read the runs, fit the default law (`DEFAULT_LAW`, ``auto``:
the average of the laws with an annealing term), optimise a schedule for the budget under it, and
compare it with cosine-to-10%, WSD-20%-linear and linear-to-zero at the same budget. Each single
law's leave-one-run-out error on the runs (`lrlab.laws.selection`) is reported beside it as
evidence, not used to pick: on the scoreboard's training-only folds the average forecast held-out
curves better than the single law that won such cross-validation (docs/laws.md, "Eighth round").

On the built-in default (`study_default`, needs PyTorch): first train a constant, a cosine and a
two-stage run in the wind tunnel, study them as above, then train the recommended schedule and
WSD-20%-linear to check the forecasts against measured losses. Runs that finished are reused,
so an interrupted study resumes where it stopped. `StudyConfig` holds its settings.

Across model sizes (`study_size_runs` on logs of several sizes; `StudyConfig.sizes`, tunnel
widths, in the wind tunnel): choose a single law (a size-aware fit cannot average) by its
leave-one-run-out error on each size's runs, fit it across the sizes
(`lrlab.laws.sizes.SizeLaw`), and design the schedule for a parameter count (`params`, or the
largest size), reported beside the forecasts at every size; where a tunnel width has that count
and is cheap to train, the check trains there (docs/study.md, "Across sizes").

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
from lrlab.laws import DEFAULT_LAW, get_law
from lrlab.laws.selection import choose_law, law_row, lowest_law
from lrlab.laws.sizes import SizeLaw, describe_count, parse_count
from lrlab.locks import FolderLock
from lrlab.report.study_report import (
    Analysis,
    SizeAnalysis,
    SizeDesign,
    Verification,
    describe_shape,
    write_report,
)
from lrlab.runs import Run, read_run, unique_run_names
from lrlab.schedules import Schedule, from_spec

if TYPE_CHECKING:  # the wind tunnel is imported where runs train, not for a study of logs
    from lrlab.tunnel.pool import Backend

Progress = Callable[[str], None]


def _silent(_: str) -> None:
    pass


# --- the study ----------------------------------------------------------------------------------


# How each kind of study chooses its law, in the words its report and summary give.
DEFAULT_CHOICE = (
    "the default law, which on the scoreboard's training-only folds forecast better than the "
    "single law with the lowest leave-one-run-out error (docs/study.md)"
)
SIZE_CHOICE = (
    "the single law with the lowest leave-one-run-out error (a size-aware fit cannot average)"
)


def analyse(
    runs: Sequence[Run],
    *,
    budget: int | None = None,
    peak: float | None = None,
    warmup: int | None = None,
    progress: Progress = _silent,
) -> Analysis:
    """Fit the default law (`DEFAULT_LAW`) and optimise a schedule for the budget (by default
    the runs' length, peak LR and warmup). Every single law is cross-validated on the runs too,
    for the report's evidence: the law with the lowest leave-one-run-out error is not used, as on
    the scoreboard's training-only folds that choice forecast worse than the average (module
    docstring)."""
    if not runs:
        raise LrlabError("a study needs at least one run")
    law_table = choose_law(runs, progress=progress)[1]
    chosen = DEFAULT_LAW
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
    progress(f"design: {design.trust_region}")
    return Analysis(
        law,
        law_table,
        budget,
        peak,
        warmup,
        design.best,
        design.baselines,
        DEFAULT_CHOICE,
        design.trust_region,
    )


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


# --- across model sizes -------------------------------------------------------------------------


def choose_size_law(
    groups: Mapping[str, Sequence[Run]], progress: Progress = _silent
) -> tuple[str, dict[str, dict[str, Any]]]:
    """The law for a study across sizes: the lowest mean leave-one-run-out PredE over every
    size's runs, each size cross-validated on its own runs (as a one-size study scores them), and
    every law's scores (run names unique across the sizes). Only the runs are looked at: no size
    is held out to choose, so nothing is chosen on the target."""
    tables = {}
    for name, runs in groups.items():
        progress(f"size {name}: cross-validating the laws on its {len(runs)} run(s)")
        tables[name] = choose_law(runs, progress=progress)[1]
    table: dict[str, dict[str, Any]] = {}
    for law in next(iter(tables.values())):
        failed = [tables[size][law]["error"] for size in groups if "error" in tables[size][law]]
        if failed:
            table[law] = {"error": failed[0]}
            continue
        scores = {run: value for size in groups for run, value in tables[size][law]["runs"].items()}
        table[law] = law_row(scores)
    return lowest_law(table, "no law could be fitted to the runs of every size"), table


def analyse_sizes(
    groups: Mapping[str, Sequence[Run]],
    sizes: Mapping[str, float],
    *,
    target: float | None = None,
    target_name: str | None = None,
    note: str = "",
    tokens: Mapping[str, float] | None = None,
    budget: int | None = None,
    peak: float | None = None,
    warmup: int | None = None,
    progress: Progress = _silent,
) -> tuple[Analysis, SizeAnalysis]:
    """A study across sizes: choose a law (`choose_size_law`), fit it across the sizes
    (`SizeLaw`: the runs of ``groups[name]`` are of a model of ``sizes[name]`` parameters),
    optimise a schedule for the budget at the `target` parameter count (default: the largest
    fitted size) and at each fitted size. Returns the target's `Analysis` and the `SizeAnalysis`
    (`tokens`: the tokens each size's runs trained on, where known)."""
    runs = [run for members in groups.values() for run in members]
    names = [run.name for run in runs]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise LrlabError(
            f"study across sizes: two runs are named {twice[0]!r}; name the runs of each size "
            "apart (lrlab.runs.unique_run_names names them by their folders)"
        )
    chosen, law_table = choose_size_law(groups, progress)
    progress(f"fitting law {chosen!r} across {len(groups)} sizes (with its band)")
    size_law = SizeLaw(chosen).fit(groups, sizes, progress=progress)
    if target is None:
        target_name = max(sizes, key=sizes.get)
        target = sizes[target_name]
        note = note or f"The target is the largest fitted size, {target_name}."
    budget = int(budget or max(int(run.steps[-1]) + 1 for run in runs))
    peak = float(peak if peak is not None else size_law.fit_info_["peak"])
    warmup = int(warmup if warmup is not None else size_law.fit_info_["warmup"])
    warmup = min(warmup, budget // 2)

    def design(name: str, count: float, members: Sequence[Run] = ()) -> SizeDesign:
        # The WSD family's optimum at each size: a cooldown share and a decay shape, which say
        # in two numbers whether the optimum moves with size (a free-form optimum has 50 knots).
        law = size_law.at(count)
        progress(f"optimising a WSD schedule for {budget} steps at {describe_count(count)}")
        found = optimize_schedule(law, budget, peak=peak, warmup=warmup, family="wsd")
        spent = None if tokens is None else tokens.get(name)
        return SizeDesign(name, count, law, found.best, found.baselines, tuple(members), spent)

    fitted = tuple(design(name, sizes[name], groups[name]) for name in groups)
    same = [size for size in fitted if size.params == target]
    at_target = same[0] if same else design(target_name or describe_count(target), target)
    progress(f"optimising a schedule for {budget} steps at the target {at_target.name}")
    best = optimize_schedule(
        at_target.law, budget, peak=peak, warmup=warmup, family="free", progress=progress
    )
    progress(f"design: {best.trust_region}")
    analysis = Analysis(
        at_target.law,
        law_table,
        budget,
        peak,
        warmup,
        best.best,
        at_target.comparisons,
        SIZE_CHOICE,
        best.trust_region,
    )
    return analysis, SizeAnalysis(size_law, fitted, at_target, note)


def study_size_runs(
    groups: Mapping[str, Sequence[Run]],
    sizes: Mapping[str, float],
    out: str | Path,
    *,
    target: float | None = None,
    budget: int | None = None,
    peak: float | None = None,
    warmup: int | None = None,
    progress: Progress = _silent,
) -> dict[str, Any]:
    """The study of the user's logs of several model sizes (``groups[name]``, of
    ``sizes[name]`` parameters; run names unique across the groups): analyse across sizes and
    report for the `target` parameter count (default: the largest size); no training."""
    with FolderLock(out, "lrlab study"):
        note = ""
        if target is not None:
            note = f"The target, {describe_count(target)} parameters, was not trained here." + (
                _beyond(target, sizes)
            )
        analysis, across = analyse_sizes(
            groups,
            sizes,
            target=target,
            note=note,
            budget=budget,
            peak=peak,
            warmup=warmup,
            progress=progress,
        )
        simple = recommend(analysis, progress)
        runs = [run for members in groups.values() for run in members]
        listed = ", ".join(f"{name} ({describe_count(sizes[name])})" for name in groups)
        summary = write_report(
            analysis,
            runs,
            out,
            title=f"lrlab study across sizes {listed}: forecast at {across.target.name}",
            extra=simple,
            sizes=across,
        )
    progress(f"wrote {Path(out) / 'report.html'} and {Path(out) / 'summary.json'}")
    return summary


def _beyond(target: float, sizes: Mapping[str, float]) -> str:
    """How far the target lies from the fitted sizes, in words (empty between them)."""
    low, high = min(sizes.values()), max(sizes.values())
    if target > high:
        return f" It is {target / high:.3g}x the largest fitted size: the band widens with that."
    if target < low:
        return f" It is {low / target:.3g}x below the smallest fitted size."
    return " It lies between the fitted sizes."


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


def _count_setting(where: str, value: Any) -> float:
    """The `params` setting: a number above 0, or text such as ``25M`` or ``1.3B``."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise LrlabError(f"{where}={value!r} is not a parameter count (such as 250K or 1.3B)")
    return parse_count(str(value), where)


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
    sizes: tuple[int, ...] = settings.integers(
        (),
        low=1,
        help="model widths (the tunnel's d_model), two or more: the fit runs train at each, one "
        "law is fitted across the sizes (lrlab.laws.sizes) and the schedule designed for "
        "`params`",
    )
    params: float | None = settings.custom(
        None,
        noun="a parameter count such as 250K, 1.3B or 246240",
        convert=_count_setting,
        help="with sizes: the parameter count of the model to design the schedule for and "
        "forecast (default: the largest width's); the command line's --params COUNT overrides it",
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
        self._check_sizes(source)
        allowed = {"recommended", *baselines(1.0, 100, 0)}
        bad = [name for name in self.verify if name not in allowed]
        if bad:
            raise LrlabError(
                f"{source}: verify: {bad[0]!r} is not one of {', '.join(sorted(allowed))}"
            )

    def _check_sizes(self, source: str) -> None:
        """Two or more distinct widths the tunnel's heads divide; `params` only with them."""
        if not self.sizes:
            if self.params is not None:
                raise LrlabError(
                    f"{source}: params={describe_count(self.params)} names a model size to "
                    "forecast, which needs sizes: [WIDTH, ...] (two or more tunnel widths to fit "
                    "across)"
                )
            return
        if len(self.sizes) < 2:
            raise LrlabError(
                f"{source}: sizes={list(self.sizes)} has one width; fitting across sizes needs "
                "two or more (or leave sizes out for a study of one size)"
            )
        seen = set()
        for width in self.sizes:
            if width in seen:
                raise LrlabError(f"{source}: sizes: width {width} is given twice")
            seen.add(width)
        heads = int(self.tunnel.get("model", {}).get("n_heads", 1))
        bad = [width for width in self.sizes if width % heads]
        if bad:
            raise LrlabError(
                f"{source}: sizes: width {bad[0]} is not a multiple of the tunnel's n_heads={heads}"
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
        """The settings as plain JSON data (the summary's ``study_config``); `sizes` and `params`
        only where given, so a study of one size records what earlier versions did."""
        data: dict[str, Any] = {
            "budget": self.budget,
            "peak": self.peak,
            "warmup": self.warmup,
            "fit_schedules": dict(self.fit_schedules),
            "verify": list(self.verify),
            "tunnel": {section: dict(values) for section, values in self.tunnel.items()},
        }
        if self.sizes:
            data["sizes"] = list(self.sizes)
        if self.params is not None:
            data["params"] = self.params
        return data

    def width_tunnel(self, width: int) -> dict[str, dict[str, Any]]:
        """The tunnel setup with the model's width `width` (one of `sizes`)."""
        tunnel = {section: dict(values) for section, values in self.tunnel.items()}
        tunnel.setdefault("model", {})["d_model"] = int(width)
        return tunnel


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
    if config.sizes:
        return _study_sizes(out, config, progress, backend)
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


# A target the tunnel trains to check the forecast: a width whose model has the target's count
# to within 1% (the count given as 246.2K names the 246,240 of width 96), at most twice the
# largest fitted width (about 4x the parameters, and about 4x the cost of a fitted run).
_COUNT_TOLERANCE = 0.01
_CHEAP_WIDTH_FACTOR = 2


def _study_sizes(
    out: Path, config: StudyConfig, progress: Progress, backend: Backend | None
) -> dict[str, Any]:
    """The wind-tunnel study across sizes: the fit runs at every width, the size-aware law
    across them, the design for the target count, and where the tunnel can train the target
    cheaply, the check there (module docstring)."""
    setup = config.to_dict()
    # Counted before any training: whether the target is trained too sets the run counter.
    counts = {f"d{w}": float(tunnel_parameters(config.width_tunnel(w), w)) for w in config.sizes}
    train = {**_TUNNEL["train"], **config.tunnel.get("train", {})}
    tokens = config.budget * int(train["batch_size"]) * int(train["seq_len"])
    for name, count in counts.items():
        progress(f"size {name}: {count:,.0f} parameters, {tokens / count:.1f} tokens per parameter")
    target, width, note = _target_width(config, counts)
    progress(note)
    total = len(config.fit_runs()) * len(config.sizes)
    total += 0 if width is None else len(config.verify)
    fit_runs = size_fit_runs(out, config, total)
    trained = train_tunnel_runs(setup, fit_runs, progress, backend)
    groups: dict[str, list[Run]] = {f"d{w}": [] for w in config.sizes}
    for job, run in zip(fit_runs, trained, strict=True):
        groups[job.name.split(" ", 1)[0]].append(run)
    analysis, across = analyse_sizes(
        groups,
        counts,
        target=target,
        target_name=None if width is None else f"d{width}",
        note=note,
        tokens=dict.fromkeys(counts, float(tokens)),
        budget=config.budget,
        peak=config.peak,
        warmup=config.warmup,
        progress=progress,
    )
    # A run of the target size would see the same tokens as the fitted sizes' runs.
    across = dataclasses.replace(
        across, target=dataclasses.replace(across.target, tokens=float(tokens))
    )
    simple = recommend(analysis, progress)
    verifications = []
    if width is not None:
        tunnel = config.width_tunnel(width)
        forecasts = {"recommended": analysis.recommended, **analysis.comparisons}
        first = len(fit_runs) + 1
        checks = [
            TunnelRun(
                name,
                forecasts[name].schedule,
                _run_folder(out, f"verify-d{width}-{name}", forecasts[name].schedule, tunnel),
                f"[{index}/{total}]",
                tunnel,
            )
            for index, name in enumerate(config.verify, start=first)
        ]
        measured = train_tunnel_runs(setup, checks, progress, backend)
        verifications = [
            Verification(check.name, forecasts[check.name], run)
            for check, run in zip(checks, measured, strict=True)
        ]
    runs = [run for members in groups.values() for run in members]
    widths = ", ".join(map(str, config.sizes))
    summary = write_report(
        analysis,
        runs,
        out,
        title=f"lrlab study across widths {widths}: forecast at {across.target.name} "
        f"({describe_count(across.target.params)} parameters)",
        verifications=verifications,
        extra={"study_config": setup, **simple},
        sizes=across,
    )
    progress(f"wrote {out / 'report.html'} and {out / 'summary.json'}")
    return summary


def _target_width(
    config: StudyConfig, counts: Mapping[str, float]
) -> tuple[float | None, int | None, str]:
    """The target count, the tunnel width that trains it (None where none does cheaply) and
    the report's note on it. Without ``params``, the largest fitted width (already trained)."""
    largest = max(config.sizes)
    if config.params is None:
        return None, largest, f"The target is the largest fitted size, d{largest}."
    target = float(config.params)
    heads = int(config.tunnel["model"].get("n_heads", 1))
    limit = _CHEAP_WIDTH_FACTOR * largest
    best: tuple[float, int, int] | None = None  # (relative miss, width, its count)
    for width in range(heads, limit + 1, heads):
        count = tunnel_parameters(config.width_tunnel(width), width)
        miss = abs(count - target) / target
        if best is None or miss < best[0]:
            best = (miss, width, count)
    assert best is not None  # the range holds the fitted widths at least
    miss, width, count = best
    beyond = _beyond(target, counts)
    if miss <= _COUNT_TOLERANCE:
        return (
            float(count),
            width,
            f"The target {describe_count(target)} is the tunnel's width {width} ({count:,} "
            f"parameters), cheap enough to train: the study's checks are trained there." + beyond,
        )
    return (
        target,
        None,
        f"The target, {describe_count(target)} parameters, was not trained: no tunnel width up "
        f"to {limit} ({_CHEAP_WIDTH_FACTOR}x the largest fitted, the most this study trains) "
        f"has that count (nearest: width {width}, {count:,})." + beyond,
    )


def tunnel_parameters(tunnel: Mapping[str, Mapping[str, Any]], width: int) -> int:
    """The exact parameter count of the tunnel's model (setup `tunnel`) at width `width`, as a
    run of it records: built on the meta device (allocates nothing), with the tokeniser's
    vocabulary (a BPE one read from the cache its runs left)."""
    import torch

    from lrlab.tunnel.config import DataConfig, ModelConfig, TrainConfig
    from lrlab.tunnel.data import build_tokenizer
    from lrlab.tunnel.model import Transformer

    model = ModelConfig(**{**tunnel.get("model", {}), "d_model": int(width)})
    vocab = build_tokenizer(DataConfig(**tunnel.get("data", {}))).vocab_size
    seq = int(tunnel.get("train", {}).get("seq_len", TrainConfig().seq_len))
    with torch.device("meta"):
        return int(Transformer(model, vocab, seq).num_parameters())


def size_fit_runs(out: Path, config: StudyConfig, total: int) -> list[TunnelRun]:
    """The fit runs of a study across sizes: every fit schedule at every width of
    ``config.sizes``, named ``dWIDTH NAME``, in ``out/runs/fit-dWIDTH-NAME-HASH``."""
    runs: list[TunnelRun] = []
    for width in config.sizes:
        tunnel = config.width_tunnel(width)
        for name, schedule in config.fit_runs().items():
            folder = _run_folder(out, f"fit-d{width}-{name}", schedule, tunnel)
            counter = f"[{len(runs) + 1}/{total}]"
            runs.append(TunnelRun(f"d{width} {name}", schedule, folder, counter, tunnel))
    return runs


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
    progress messages, and its own tunnel setup where it differs from the study's (a study
    across sizes trains each width's runs with that width)."""

    name: str
    schedule: Schedule
    folder: Path
    counter: str
    tunnel: Mapping[str, Mapping[str, Any]] | None = None


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
        setup = config["tunnel"] if run.tunnel is None else run.tunnel
        tunnel = {section: dict(values) for section, values in setup.items()}
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
