"""A prior for how a decay of the LR lowers the loss, learnt from other runs than the one forecast.

A run that has only seen its warmup and a constant LR says nothing about how much a decay will
lower its loss (docs/laws.md, "Seventh round, live"). Other data sets do: fits of the multi-power
law (`lrlab.laws.multipower_law`) to runs with decays. Their response to the LR - the drop term
``B * sum (lr_{k-1} - lr_k) * G(C * lr_k^(-gamma) * area since the drop)`` - is carried to a new
run in dimensionless form:

- ``b = B * peak / scale``: the largest drop (a decay from the peak LR to 0, fully relaxed) as a
  fraction of ``scale``, the fitted loss of the stable continuation (the run without its decay) at
  the run's last step: a decay removes a share of the loss, not a fixed amount;
- ``c = C * peak^(1 - gamma) * length``: how fast the loss follows a drop, with LRs in units of
  the peak LR and steps in units of `length` (`TIME_UNITS`: the run's total steps, or one step);
- ``beta``, ``gamma``: dimensionless already.

`DecayPrior` holds one `PriorMember` per source (a data set at one model size or peak LR) and
turns each back into a multi-power law for a new run (`DecayPrior.law`), whose response to the
LR is held and whose own power law (``L0``, ``A``, ``alpha``) is fitted to the run. The members'
spread is the prior's uncertainty: a forecast fits the run once per member, and the spread of
those forecasts between data sets enters the band (`lrlab.live.forecaster`).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lrlab.atomic import atomic_write_text
from lrlab.errors import LrlabError
from lrlab.laws.base import Law
from lrlab.laws.registry import get_law
from lrlab.runs.model import Run

PRIOR_FORMAT = "lrlab-decay-prior-1"
PRIOR_LAW = "mpl"
RESPONSE = ("B", "C", "beta", "gamma")  # the multi-power law's response to the LR
TIME_UNITS = ("run", "step")


@dataclasses.dataclass(frozen=True)
class PriorMember:
    """One source's response to the LR in dimensionless form (module docstring): `source` names
    it, `dataset` groups members of one data set (each data set weighs the same)."""

    source: str
    dataset: str
    b: float
    c: float
    beta: float
    gamma: float

    def __post_init__(self) -> None:
        for name in ("source", "dataset"):
            if not isinstance(getattr(self, name), str):
                raise LrlabError(f"decay prior member: {name} must be a string")
        for name in ("b", "c", "beta", "gamma"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise LrlabError(
                    f"decay prior member {self.source!r}: {name} = {value!r} must be a finite "
                    "number >= 0"
                )


def stable_scale(law: Law, lr: np.ndarray, last_step: int) -> float:
    """A fitted multi-power law's loss at `last_step` under `lr` with no decay: ``L0 + A *
    area^(-alpha)``, the run's stable continuation (its `lr` up to the peak, then the peak)."""
    values = law.params_dict
    peak_at = int(np.argmax(lr))
    stable = np.concatenate([lr[: peak_at + 1], np.full(max(0, last_step - peak_at), lr[peak_at])])
    area = float(np.sum(stable[: last_step + 1]))
    return float(values["L0"] + values["A"] * area ** -values["alpha"])


@dataclasses.dataclass(frozen=True)
class DecayPrior:
    """Dimensionless responses to the LR from other data sets (module docstring); `time_unit`
    says how `c` measures steps (``run``: in units of the run's total steps)."""

    members: tuple[PriorMember, ...]
    time_unit: str = "run"

    def __post_init__(self) -> None:
        if not self.members:
            raise LrlabError("a decay prior needs at least one member")
        if self.time_unit not in TIME_UNITS:
            raise LrlabError(
                f"decay prior: time unit {self.time_unit!r} is not one of {', '.join(TIME_UNITS)}"
            )

    @staticmethod
    def member(
        law: Law, runs: Sequence[Run], source: str, dataset: str, time_unit: str = "run"
    ) -> PriorMember:
        """The dimensionless response of `law`, a multi-power law fitted to `runs`: the peak is
        their largest LR, the length and the scale those of their longest run."""
        if law.name != PRIOR_LAW or not hasattr(law, "params_"):
            raise LrlabError(f"a decay prior is made from fitted {PRIOR_LAW!r} laws")
        longest = max(runs, key=lambda run: int(run.steps[-1]))
        peak = max(float(np.max(run.lr)) for run in runs)
        last = int(longest.steps[-1])
        values = law.params_dict
        scale = stable_scale(law, longest.lr, last)
        length = last + 1 if time_unit == "run" else 1
        return PriorMember(
            source,
            dataset,
            b=values["B"] * peak / scale,
            c=values["C"] * peak ** (1 - values["gamma"]) * length,
            beta=values["beta"],
            gamma=values["gamma"],
        )

    def without(self, dataset: str) -> DecayPrior:
        """The prior less one data set's members: leave-one-data-set-out."""
        kept = tuple(item for item in self.members if item.dataset != dataset)
        if not kept:
            raise LrlabError(f"the decay prior has no member outside data set {dataset!r}")
        return dataclasses.replace(self, members=kept)

    def weights(self) -> np.ndarray:
        """Each member's weight: data sets weigh the same, and their members share it."""
        counts: dict[str, int] = {}
        for item in self.members:
            counts[item.dataset] = counts.get(item.dataset, 0) + 1
        weights = np.array([1.0 / counts[item.dataset] for item in self.members])
        return weights / weights.sum()

    def centre(self) -> PriorMember:
        """The members' weighted centre: geometric means of `b` and `c` (scales), arithmetic
        means of the exponents."""
        weights = self.weights()

        def mean(name: str, log: bool) -> float:
            values = np.array([getattr(item, name) for item in self.members], dtype=np.float64)
            if log:
                return float(np.exp(weights @ np.log(np.maximum(values, 1e-300))))
            return float(weights @ values)

        return PriorMember(
            "centre",
            "+".join(dict.fromkeys(item.dataset for item in self.members)),
            b=mean("b", True),
            c=mean("c", True),
            beta=mean("beta", False),
            gamma=mean("gamma", False),
        )

    def response(self, member: PriorMember, peak: float, total: int, scale: float) -> dict:
        """`member`'s multi-power-law response (B, C, beta, gamma) for a run of peak LR `peak`,
        `total` steps and stable loss `scale` at its last step."""
        if not (peak > 0 and total > 0 and scale > 0):
            raise LrlabError(
                f"decay prior: peak LR {peak:g}, total steps {total} and loss scale {scale:g} "
                "must be positive"
            )
        length = total if self.time_unit == "run" else 1
        return {
            "B": member.b * scale / peak,
            "C": member.c / (peak ** (1 - member.gamma) * length),
            "beta": member.beta,
            "gamma": member.gamma,
        }

    def law(
        self, member: PriorMember, peak: float, total: int, scale: float, bands: bool = True
    ) -> Law:
        """An unfitted multi-power law holding `member`'s response for this run: only ``L0``,
        ``A`` and ``alpha`` are fitted. A value outside the law's range (a source fitted near a
        bound, carried to another run's units) is held at the bound."""
        plain = get_law(PRIOR_LAW)
        lower, upper = plain.bounds(scale, scale)  # the response's ranges do not depend on these
        index = plain.param_names.index
        fixed = {
            name: float(np.clip(value, lower[index(name)], upper[index(name)]))
            for name, value in self.response(member, peak, total, scale).items()
        }
        return get_law(PRIOR_LAW, fixed=fixed, bands=bands)

    def to_dict(self) -> dict[str, Any]:
        """JSON form, read back by `from_dict`."""
        return {
            "format": PRIOR_FORMAT,
            "law": PRIOR_LAW,
            "time_unit": self.time_unit,
            "members": [dataclasses.asdict(item) for item in self.members],
        }

    @classmethod
    def from_dict(cls, data: Any, source: str = "decay prior") -> DecayPrior:
        """A prior from `to_dict`'s form; anything else is an `LrlabError` naming the field."""
        if not isinstance(data, dict) or data.get("format") != PRIOR_FORMAT:
            raise LrlabError(f"{source}: not an lrlab decay prior (format {PRIOR_FORMAT!r})")
        members = data.get("members")
        if not isinstance(members, list):
            raise LrlabError(f"{source}: field 'members' must be a list")
        items = []
        for index, item in enumerate(members):
            fields = ("source", "dataset", "b", "c", "beta", "gamma")
            if not isinstance(item, dict) or set(item) != set(fields):
                raise LrlabError(
                    f"{source}: members[{index}] must have exactly the fields {', '.join(fields)}"
                )
            try:
                items.append(PriorMember(**item))
            except LrlabError as error:
                raise LrlabError(f"{source}: members[{index}]: {error}") from None
        return cls(tuple(items), data.get("time_unit", "run"))

    def save(self, path: str | Path) -> Path:
        """Write the prior as JSON, atomically."""
        return atomic_write_text(path, json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> DecayPrior:
        """Read a prior written by `save`."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise LrlabError(f"{path}: cannot read a decay prior ({error})") from None
        return cls.from_dict(data, str(path))


DEFAULT_PRIOR_FILE = Path(__file__).with_name("decay_prior.json")


def default_prior() -> DecayPrior | None:
    """The prior shipped with lrlab (`DEFAULT_PRIOR_FILE`, from all three development data sets:
    ``python benchmarks/live_prior.py --write``), or None where it is absent."""
    return DecayPrior.load(DEFAULT_PRIOR_FILE) if DEFAULT_PRIOR_FILE.is_file() else None
