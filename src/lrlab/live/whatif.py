"""When to cool down: the forecast final loss of a run if its cooldown starts at a given step.

A run on a constant, WSD or infinite schedule can choose late when to decay its LR (that is what
these schedules are for). Given the run so far (its per-step LR up to the step it has reached)
and a budget of ``T`` steps, a what-if is the per-step LR of one choice:

- ``cooldown at s``: the LR the run has used up to its current step, then its *stable*
  continuation (the planned schedule without its decay: a WSD's peak, an infinite schedule's
  constant phase; for any other schedule, or an LR read from the log, the LR held at its current
  value) up to step ``s``, then a decay of the chosen shape from the LR at ``s`` to the floor,
  ending at ``T`` (so the decay lasts ``T - s`` steps);
- ``extend to f x T``: the same, for a budget of ``f * T`` steps, with a cooldown of the same
  fraction of the run as the planned one (or the given one, or the best start's).

`plan_whatifs` builds the candidates, `score_whatifs` asks a fitted law for each one's final loss
with its band. The choice of shape and length is the user's (`Cooldown`, e.g. from the decay of a
schedule found by ``lrlab optimize``); the default is the planned schedule's own decay, so that
the cooldown at the planned start is the planned run, else linear to 0 over the last 20%:
WSD-20%-linear, the reference schedule of `lrlab.design.baselines`.

The planned decay is read from a WSD, a WSDC or an infinite schedule, and from a `Join` (as the
wind tunnel's sidecars hold) that ends with one of them (a warmup joined before a WSD) or that
ends by dropping from a constant LR to a lower one for the rest of the run (the tunnel's
``wsdcon`` runs: a ``step`` cooldown). Any other plan that lowers its LR (a cosine, a join ending
with one) has no cooldown to read: the default is used and `cooldown_note` says so.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from lrlab.errors import LrlabError
from lrlab.laws.base import Law, _jackknife_variance  # the one jackknife of the bands
from lrlab.schedules import (
    WSD,
    WSDC,
    Constant,
    Infinite,
    Join,
    Schedule,
    anneal,
    parse,
)
from lrlab.schedules.shapes import DECAY_SHAPES

DEFAULT_FRACTION = 0.2  # WSD-20%, the reference of `lrlab.design.baselines`
EXTENSIONS = (1.5, 2.0)
CANDIDATES = 24  # evenly spaced cooldown starts, besides the planned one and WSD-20%'s
_EXPONENTIAL_FLOOR = 0.01  # a geometric decay needs a positive end: 1% of the LR it starts from
# A cooldown's shapes: the `anneal` ones, and a drop to the floor held to the end (a plan's last
# phase at a lower constant LR).
COOLDOWN_SHAPES = (*DECAY_SHAPES, "step")


@dataclasses.dataclass(frozen=True)
class Cooldown:
    """The decay a what-if ends with: its shape (an `anneal` shape, or ``step``: the LR drops to
    the floor at once and stays there), the LR it ends at as a fraction of the LR it starts from,
    and its length as a fraction of the run (None: chosen by the what-if, from the planned
    schedule or the best start)."""

    shape: str = "linear"
    floor_ratio: float = 0.0
    fraction: float | None = None

    def __post_init__(self) -> None:
        if self.shape not in COOLDOWN_SHAPES:
            raise LrlabError(
                f"cooldown: unknown decay shape {self.shape!r} (choose from "
                f"{', '.join(COOLDOWN_SHAPES)})"
            )
        if self.shape == "step" and self.floor_ratio == 0:
            raise LrlabError("cooldown: a step cooldown needs a floor ratio above 0")
        if not 0 <= self.floor_ratio < 1:
            raise LrlabError(f"cooldown: floor ratio {self.floor_ratio} must be in [0, 1)")
        if self.fraction is not None and not 0 < self.fraction < 1:
            raise LrlabError(f"cooldown: fraction {self.fraction} must be in (0, 1)")
        if self.shape == "exponential" and self.floor_ratio == 0:
            object.__setattr__(self, "floor_ratio", _EXPONENTIAL_FLOOR)

    def describe(self) -> str:
        """``linear to 0``, ``1-sqrt to 10% over 20%``: for tables and notes."""
        floor = f"{self.floor_ratio:.0%}" if self.floor_ratio else "0"
        length = f" over {self.fraction:.0%}" if self.fraction is not None else ""
        return f"{self.shape} to {floor}{length}"


def parse_cooldown(text: str | Cooldown | None) -> Cooldown | None:
    """``--cooldown SPEC``: a decay shape (``linear``, ``1-sqrt``, ``cosine``, ``exponential``)
    or a schedule with a cooldown - a ``wsd(...)`` or ``wsdc(...)`` spec, or a spec file such as
    the one ``lrlab optimize --family wsd -o best.json`` writes - whose decay shape, end and
    length are taken. None stays None (the default: see the module docstring)."""
    if text is None or isinstance(text, Cooldown):
        return text
    name = text.strip()
    if name in DECAY_SHAPES:
        return Cooldown(shape=name)
    try:
        schedule = parse(name)
    except LrlabError as error:
        raise LrlabError(
            f"--cooldown {text!r}: not a decay shape ({', '.join(DECAY_SHAPES)}) nor a "
            f"schedule spec ({error})"
        ) from None
    cooldown = schedule_cooldown(schedule)
    if cooldown is None:
        raise LrlabError(
            f"--cooldown {text!r}: a {schedule.name} schedule has no cooldown to take; give a "
            f"decay shape ({', '.join(DECAY_SHAPES)}) or a wsd(...) spec"
        )
    return cooldown


def schedule_cooldown(schedule: Schedule, total: int | None = None) -> Cooldown | None:
    """The cooldown of a schedule whose decay can be read (module docstring: a WSD, WSDC or
    infinite schedule, or a join ending with one or with a drop to a lower constant): its
    shape, end and length as a fraction of the run, which ends at the decay's end or, for a
    drop held to the end, at `total` (None: the length is left open). None for any other."""
    decay = _planned_decay(schedule)
    if decay is None:
        return None
    shape, ratio, start, length = decay
    end = start + length if length is not None else total
    fraction = (end - start) / end if end is not None and start < end else None
    return Cooldown(shape, ratio, fraction)


def default_cooldown(schedule: Schedule | None, total: int) -> Cooldown:
    """The what-ifs' cooldown when none is given: the planned schedule's own decay, else
    `Cooldown()` (linear to 0; `cooldown_note` says when that is not the plan's)."""
    found = None if schedule is None else schedule_cooldown(schedule, total)
    return found or Cooldown()


def cooldown_note(schedule: Schedule | None, total: int) -> str | None:
    """What to say where the plan lowers its LR within `total` steps in a way that cannot be
    read as a cooldown (a cosine plan, a join ending with one): the what-ifs then take the
    default. None where there is nothing to say."""
    if schedule is None or schedule_cooldown(schedule, total) is not None:
        return None
    if not _decays(schedule, total):
        return None
    kind = f"a {schedule.name} schedule"
    if isinstance(schedule, Join):
        kind = f"a join ending with a {_last_phase(schedule)[0].name} schedule"
    return (
        f"the plan's decay ({kind}) cannot be read as a cooldown (that of a "
        "wsd, wsdc or infinite schedule, or a join ending with one or with a drop to a lower "
        f"constant LR): the what-ifs cool down {Cooldown().describe()}, the default (--cooldown "
        "sets it)"
    )


def _decays(schedule: Schedule, total: int) -> bool:
    """Whether the schedule's LR falls below its peak within `total` steps."""
    lr = np.asarray(schedule(np.arange(total)), dtype=np.float64)
    peak = int(np.argmax(lr))
    return bool(lr[peak:].min() < (1 - 1e-6) * lr[peak])


def _planned_decay(schedule: Schedule) -> tuple[str, float, int, int | None] | None:
    """A schedule's decay: its shape, its end as a fraction of the LR it starts from, the step
    it starts at and its length in steps (None: to the end of the run); None where none can be
    read (module docstring)."""
    if isinstance(schedule, WSD):
        start = schedule.total - schedule.cooldown
        return schedule.decay, schedule.floor / schedule.peak, start, schedule.cooldown
    if isinstance(schedule, WSDC):
        ratio = schedule.end / schedule.peak
        return schedule.decay, ratio, schedule.decay_start, schedule.decay_length
    if isinstance(schedule, Infinite):
        if schedule.anneal_start is None or schedule.anneal_steps is None:
            return None
        # The final anneal starts from the constant LR, not from the peak.
        ratio = schedule.min_ratio / schedule.constant_ratio
        return schedule.anneal_shape, ratio, schedule.anneal_start, schedule.anneal_steps
    if isinstance(schedule, Join):
        drop = _step_drop(schedule)
        if drop is not None:
            return "step", drop[0], drop[1], None
        last, offset = _last_phase(schedule)
        inner = _planned_decay(last)
        if inner is None or not _warmup_before(schedule, len(schedule.schedules) - 1):
            return None
        shape, ratio, start, length = inner
        return shape, ratio, offset + start, length
    return None


def _last_phase(schedule: Join) -> tuple[Schedule, int]:
    """A join's last phase and the step it starts at."""
    return schedule.schedules[-1], (schedule.boundaries[-1] if schedule.boundaries else 0)


def _step_drop(schedule: Join) -> tuple[float, int] | None:
    """Where a join ends by dropping from a constant LR to a lower constant one (no warmup) for
    the rest of the run, as the tunnel's ``wsdcon`` runs do: the ratio of the two LRs and the
    step of the drop; else None."""
    if len(schedule.schedules) < 2:
        return None
    before, last = schedule.schedules[-2:]
    if not isinstance(before, Constant) or not isinstance(last, Constant):
        return None
    if last.warmup or last.peak >= before.peak:
        return None
    if not _warmup_before(schedule, len(schedule.schedules) - 2):
        return None
    return last.peak / before.peak, schedule.boundaries[-1]


def _warmup_before(schedule: Join, index: int) -> bool:
    """Whether the phases before phase `index` of a join are a warmup to it: their LR never
    exceeds its peak (else the plan decays before it, and its stable LR is not that phase's)."""
    peak = getattr(schedule.schedules[index], "peak", None)
    if peak is None:
        return False
    start = schedule.boundaries[index - 1] if index > 0 else 0
    if start == 0:
        return True
    return float(np.max(schedule(np.arange(start)))) <= (1 + 1e-9) * peak


def planned_cooldown_start(schedule: Schedule | None, total: int) -> int | None:
    """The step at which `schedule` starts its cooldown within `total` steps (None: it has no
    cooldown there, as a constant schedule)."""
    decay = None if schedule is None else _planned_decay(schedule)
    start = None if decay is None else decay[2]
    return start if start is not None and start < total else None


def stable_schedule(schedule: Schedule | None) -> Schedule | None:
    """The schedule without its decay, the LR a run keeps while it has not cooled down: a WSD's
    or WSDC's warmup and peak, an infinite schedule without its final anneal, a constant one as
    it is, a join with its last phase's (or, where it ends with a drop to a lower constant LR,
    without that phase); None for any other (the LR is then held at its current value)."""
    if isinstance(schedule, Join):
        if _step_drop(schedule) is not None:
            if len(schedule.schedules) == 2:
                return schedule.schedules[0]
            return dataclasses.replace(
                schedule,
                schedules=schedule.schedules[:-1],
                boundaries=schedule.boundaries[:-1],
            )
        last = stable_schedule(_last_phase(schedule)[0])
        if last is None or not _warmup_before(schedule, len(schedule.schedules) - 1):
            return None
        return dataclasses.replace(schedule, schedules=(*schedule.schedules[:-1], last))
    if isinstance(schedule, WSD | WSDC):
        return Constant(
            peak=schedule.peak,
            warmup=schedule.warmup,
            warmup_shape=schedule.warmup_shape,
            warmup_start_ratio=schedule.warmup_start_ratio,
        )
    if isinstance(schedule, Infinite):
        return dataclasses.replace(schedule, anneal_start=None, anneal_steps=None)
    if isinstance(schedule, Constant):
        return schedule
    return None


def schedule_total(schedule: Schedule | None) -> int | None:
    """A schedule's own budget: `total`, where an infinite schedule's anneal ends, or where the
    last phase of a `Join` ends (a warmup joined before a WSD, as wind-tunnel sidecars hold)."""
    if schedule is None:
        return None
    if isinstance(schedule, Join):
        last = schedule_total(schedule.schedules[-1])
        offset = schedule.boundaries[-1] if schedule.boundaries else 0
        return None if last is None else offset + last
    total = getattr(schedule, "total", None)
    if isinstance(total, int):
        return total
    if isinstance(schedule, Infinite) and schedule.anneal_start is not None:
        return schedule.anneal_start + (schedule.anneal_steps or 0)
    return None


@dataclasses.dataclass(frozen=True)
class WhatIf:
    """One choice: ``kind`` is ``planned``, ``cooldown`` or ``extend``; the run ends after `total`
    steps; its cooldown starts at `start` (None: no cooldown); `lr` is its per-step LR."""

    kind: str
    label: str
    total: int
    start: int | None
    lr: np.ndarray = dataclasses.field(repr=False)


@dataclasses.dataclass(frozen=True)
class ScoredWhatIf:
    """A what-if with the law's final loss and band, and its gain over the planned run
    (positive: lower) with the band of that difference from the same fit (`Law.compare_final`;
    None without replicates, and for the planned run itself)."""

    whatif: WhatIf
    final_loss: float
    low: float
    high: float
    gain: float
    gain_low: float | None = None
    gain_high: float | None = None

    @property
    def separated(self) -> bool:
        """Whether the fit tells this what-if from the planned run: its gain's band excludes 0."""
        if self.gain_low is None or self.gain_high is None:
            return False
        return self.gain_low > 0 or self.gain_high < 0

    def to_dict(self) -> dict[str, Any]:
        """JSON form: kind, label, total, start, final_loss, low, high, gain, gain_low,
        gain_high, separated."""
        item = self.whatif
        return {
            "kind": item.kind,
            "label": item.label,
            "total": item.total,
            "start": item.start,
            "final_loss": self.final_loss,
            "low": self.low,
            "high": self.high,
            "gain": self.gain,
            "gain_low": self.gain_low,
            "gain_high": self.gain_high,
            "separated": self.separated,
        }


def continuation(
    observed_lr: np.ndarray, schedule: Schedule | None, stable: bool, total: int
) -> np.ndarray:
    """Per-step LR for steps ``0..total-1``: the observed LR up to the run's current step, then
    the planned schedule (or, with `stable`, its stable continuation); the LR is held at its
    current value where no schedule says more."""
    now = observed_lr.size
    if total <= now:
        return observed_lr[:total].copy()
    future = np.arange(now, total)
    source = stable_schedule(schedule) if stable else schedule
    if source is None:
        tail = np.full(future.size, observed_lr[-1])
    else:
        tail = np.asarray(source(future), dtype=np.float64)
    return np.concatenate([observed_lr, tail])


def with_cooldown(base: np.ndarray, start: int, cooldown: Cooldown) -> np.ndarray:
    """`base` (a per-step LR) with a decay from its LR at `start` to the floor over the steps
    ``start..end``, ending with the last step."""
    lr = base.copy()
    length = base.size - start
    if length <= 0:
        return lr
    peak = float(base[start])
    if cooldown.shape == "step":
        lr[start:] = cooldown.floor_ratio * peak
        return lr
    progress = np.arange(length) / length
    lr[start:] = anneal(progress, peak, cooldown.floor_ratio * peak, cooldown.shape)
    return lr


def plan_whatifs(
    observed_lr: np.ndarray,
    schedule: Schedule | None,
    total: int,
    cooldown: Cooldown | None = None,
    candidates: int = CANDIDATES,
    extensions: Sequence[float] = EXTENSIONS,
) -> tuple[WhatIf, list[WhatIf], Cooldown]:
    """The planned run, the candidate cooldown starts at budget `total` (from the step after the
    current one; none once the planned cooldown has begun) and the extensions, and the cooldown
    they use. The extensions' cooldown length is the planned one's, else `cooldown`'s, else
    `DEFAULT_FRACTION` (`score_whatifs` re-plans them with the best start's once it is known)."""
    if total < 2:
        raise LrlabError(f"total steps {total} must be at least 2")
    now = observed_lr.size
    cooldown = cooldown or default_cooldown(schedule, total)
    planned_lr = continuation(observed_lr, schedule, False, total)
    planned_start = planned_cooldown_start(schedule, total)
    # The cooldown has begun when the LR is already below its stable level (the schedule's
    # stable part, or the highest LR so far where no schedule tells).
    stable_now = stable_schedule(schedule)
    level = float(observed_lr.max() if stable_now is None else stable_now(now - 1))
    decided = (planned_start is not None and planned_start < now) or observed_lr[-1] < 0.99 * level
    if planned_start is None and schedule is not None:  # a schedule that names no cooldown
        if decided:  # it began after the last step at the stable level
            planned_start = int(np.flatnonzero(observed_lr >= (1 - 1e-12) * level)[-1])
        else:
            planned_start = _first_decay(planned_lr, now)
    planned = WhatIf(
        "planned",
        "planned schedule" if schedule is not None else "logged LR held",
        total,
        planned_start,
        planned_lr,
    )
    stable = continuation(observed_lr, schedule, True, max(total, now))[:total]
    whatifs: list[WhatIf] = []
    first = max(now, _warmup_end(stable_now if stable_now is not None else schedule), 1)
    last = total - max(1, math.ceil(0.01 * total))  # a decay of at least 1% of the run
    if first <= last and not decided:
        starts = set(np.round(np.linspace(first, last, candidates)).astype(int).tolist())
        wsd_20 = total - round(DEFAULT_FRACTION * total)
        starts |= {s for s in (planned_start, wsd_20) if s is not None and first <= s <= last}
        for start in sorted(starts):
            whatifs.append(
                WhatIf(
                    "cooldown",
                    f"cooldown at {start}",
                    total,
                    start,
                    with_cooldown(stable, start, cooldown),
                )
            )
    fraction = cooldown.fraction
    if fraction is None and planned_start is not None:
        fraction = (total - planned_start) / total
    whatifs += extend_whatifs(
        observed_lr, schedule, total, cooldown, fraction or DEFAULT_FRACTION, extensions
    )
    return planned, whatifs, cooldown


def _warmup_end(schedule: Schedule | None) -> int:
    """The step a schedule (a plan's stable continuation, `stable_schedule`, where it has one)
    ends its warmup at, a join's in its last phase: no cooldown starts before it."""
    if isinstance(schedule, Join):
        last, offset = _last_phase(schedule)
        return offset + _warmup_end(last)
    return int(getattr(schedule, "warmup", 0) or 0)


def _first_decay(lr: np.ndarray, now: int) -> int | None:
    """The last step at the current LR before the per-step LR first falls below it (None: it
    does not): the planned cooldown start of a schedule that does not name one (a decay from
    step ``s`` has the LR it starts from at ``s``, as `with_cooldown` builds it)."""
    if now >= lr.size or now == 0:
        return None
    below = np.flatnonzero(lr[now:] < (1 - 1e-6) * lr[now - 1])
    return max(now, int(now + below[0]) - 1) if below.size else None


def extend_whatifs(
    observed_lr: np.ndarray,
    schedule: Schedule | None,
    total: int,
    cooldown: Cooldown,
    fraction: float,
    extensions: Sequence[float] = EXTENSIONS,
) -> list[WhatIf]:
    """The run extended to ``f * total`` steps for each factor ``f``, cooling down over the last
    `fraction` of it."""
    items = []
    for factor in extensions:
        longer = round(factor * total)
        if longer <= observed_lr.size:
            continue
        start = max(longer - max(1, round(fraction * longer)), observed_lr.size)
        stable = continuation(observed_lr, schedule, True, longer)
        items.append(
            WhatIf(
                "extend",
                f"extend to {factor:g}x ({longer}), cooldown at {start}",
                longer,
                start,
                with_cooldown(stable, start, cooldown),
            )
        )
    return items


def signed(value: float) -> str:
    """`value` with its sign to four decimals (``+0.0123``), and ``0.0000`` where it rounds to
    nothing: a tiny change shows no direction (not ``-0.0000`` for a gain of 1e-6)."""
    text = f"{value:+.4f}"
    return "0.0000" if float(text) == 0 else text


def score(law: Law, whatif: WhatIf, level: float | None = None) -> tuple[float, float, float]:
    """The law's final loss of a what-if and its band."""
    pred, low, high = law.predict_with_band(whatif.lr, np.array([whatif.total - 1]), level)
    return float(pred[0]), float(low[0]), float(high[0])


@dataclasses.dataclass(frozen=True)
class HeldSpread:
    """The uncertainty of a response to the LR that a forecast holds fixed (a reference fit's):
    `refits` are the live run refitted once per replicate of the reference fit, each holding that
    replicate's response, and `band_scale` is the reference fit's band calibration.

    A forecast made with the reference's own response has a band from the live run's jackknife
    alone, as if that response were exact. The refits' spread is the part it leaves out: the
    final loss's jackknife sd over them, scaled as `Law.predict_with_band` scales a band (the
    normal quantile times `band_scale`), is added in quadrature to the band's half-widths in log
    space; for a gain, the Student quantile as in `Law.compare_finals`.

    With `groups`, the refits are the members of a decay prior (`lrlab.laws.prior`), each fitted
    holding the response of a source in data set ``groups[i]``: estimates from other data sets,
    not jackknife replicates. The forecast is then the mean over the data sets of their members'
    mean, in log-loss (`centre`). What is added is how far a new data set can lie from that mean,
    judged by the ``k`` data sets seen: a prediction interval, the Student quantile with ``k - 1``
    degrees of freedom times their sd times ``sqrt(1 + 1/k)``; for gains likewise. From a single
    data set there is no spread between data sets to judge by, and its members' sd is used, at
    the normal quantile."""

    refits: tuple[Law, ...]
    band_scale: float = 1.0
    groups: tuple[str, ...] | None = None

    def _group_means(self, values: np.ndarray) -> np.ndarray:
        """The mean of `values` over each group's refits, one per group (in first-seen order)."""
        assert self.groups is not None
        names = list(dict.fromkeys(self.groups))
        labels = np.array([names.index(group) for group in self.groups])
        return np.array([values[labels == index].mean() for index in range(len(names))])

    def centre(self, values: np.ndarray) -> float:
        """The refits' central value of `values`: the mean of the groups' means."""
        return float(self._group_means(values).mean())

    def _extra(self, values: np.ndarray, level: float, gain: bool) -> float:
        """The half-width, in `values`' units, that the refits' spread adds (class docstring)."""
        from scipy import stats  # costs 0.3 s to import: only bands need it

        if self.groups is None:
            sd = math.sqrt(float(_jackknife_variance(values[:, None])[0]))
            if gain:
                return float(stats.t.ppf(0.5 + level / 2, values.size - 1)) * sd
            return float(stats.norm.ppf(0.5 + level / 2)) * self.band_scale * sd
        means = self._group_means(values)
        k = means.size
        if k == 1:
            return float(stats.norm.ppf(0.5 + level / 2)) * float(values.std())
        predictive = float(means.std(ddof=1)) * math.sqrt(1 + 1 / k)
        return float(stats.t.ppf(0.5 + level / 2, k - 1)) * predictive

    def finals(self, item: WhatIf) -> np.ndarray:
        """Each refit's final loss of `item`."""
        last = np.array([item.total - 1])
        return np.array([float(law.predict(item.lr, last)[0]) for law in self.refits])

    def widen(
        self, final: float, low: float, high: float, finals: np.ndarray, level: float
    ) -> tuple[float, float, float]:
        """The forecast and its band (`low`, `high` around `final`), widened by the refits'
        spread of `finals`. With `groups` the forecast is the refits' `centre` (in log-loss); the
        band keeps its own half-widths around it."""
        logs = np.log(finals)
        if self.groups is not None:
            centre = math.exp(self.centre(logs))
            low, high, final = low * centre / final, high * centre / final, centre
        extra = self._extra(logs, level, gain=False)
        below = math.hypot(math.log(final / low), extra)
        above = math.hypot(math.log(high / final), extra)
        return final, final * math.exp(-below), final * math.exp(above)

    def widen_gain(
        self,
        gain: float,
        low: float | None,
        high: float | None,
        differences: np.ndarray,
        level: float,
    ) -> tuple[float | None, float | None]:
        """A gain's band (`low`, `high`, symmetric about `gain`), widened by the refits' spread
        of the same difference."""
        if low is None or high is None:
            return low, high
        half = math.hypot((high - low) / 2, self._extra(differences, level, gain=True))
        return gain - half, gain + half


def score_whatifs(
    law: Law,
    observed_lr: np.ndarray,
    schedule: Schedule | None,
    total: int,
    cooldown: Cooldown | None = None,
    level: float | None = None,
    only_planned: bool = False,
    held: HeldSpread | None = None,
) -> tuple[ScoredWhatIf, list[ScoredWhatIf], ScoredWhatIf | None]:
    """The planned run, every what-if and the best cooldown start, each scored by the fitted
    law (with `only_planned`, the planned run alone). Without a given length, the extensions
    cool down over the best start's fraction. `held`: the spread of a held response to the LR
    (`HeldSpread`), added to every band."""
    planned, whatifs, chosen = plan_whatifs(observed_lr, schedule, total, cooldown)
    band_level = float(law.band_level if level is None else level)
    held_planned = held.finals(planned) if held else None
    planned_score = score(law, planned, level)
    if held:
        planned_score = held.widen(*planned_score, held_planned, band_level)
    base = planned_score[0]
    if only_planned:
        return ScoredWhatIf(planned, *planned_score, 0.0), [], None

    planned_finals = law.final_replicas(planned.lr)  # forecast once, compared with each

    def scored(item: WhatIf) -> ScoredWhatIf:
        final, low, high = score(law, item, level)
        # The gain's own band: most of each forecast's band is error the two share.
        difference = law.compare_finals(planned_finals, law.final_replicas(item.lr), level)
        gain_low, gain_high = difference.low, difference.high
        if held:
            finals = held.finals(item)
            final, low, high = held.widen(final, low, high, finals, band_level)
            gain_low, gain_high = held.widen_gain(
                base - final, gain_low, gain_high, held_planned - finals, band_level
            )
        return ScoredWhatIf(item, final, low, high, base - final, gain_low, gain_high)

    starts = [scored(item) for item in whatifs if item.kind == "cooldown"]
    best = min(starts, key=lambda item: item.final_loss) if starts else None
    extensions = [item for item in whatifs if item.kind == "extend"]
    if best is not None and chosen.fraction is None:
        fraction = (total - best.whatif.start) / total
        extensions = extend_whatifs(observed_lr, schedule, total, chosen, fraction)
    results = [*starts, *(scored(item) for item in extensions)]
    return ScoredWhatIf(planned, *planned_score, 0.0), results, best
