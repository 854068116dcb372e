"""Hypothesis strategies producing valid spec dicts for every registered schedule.

`ALL_STRATEGIES` maps each schedule name to a strategy; the property tests check that it covers
the whole registry, so a new schedule cannot go untested.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from lrlab.schedules import DECAY_SHAPES
from schedule_strategies_recent import RECENT_STRATEGIES

peaks = st.floats(1e-6, 1.0, allow_nan=False)
fractions = st.floats(0.0, 1.0, allow_nan=False)
shapes = st.sampled_from(DECAY_SHAPES)


@st.composite
def warmup_fields(draw: st.DrawFn, longest: int) -> dict[str, Any]:
    """`peak`, `warmup` (shorter than `longest`) and a warmup shape."""
    warmup = draw(st.integers(0, max(0, longest - 1)))
    shape = (
        "none"
        if warmup == 0 and draw(st.booleans())
        else draw(st.sampled_from(["linear", "cosine", "exponential"]))
    )
    fields = {"peak": draw(peaks), "warmup": warmup, "warmup_shape": shape}
    if shape == "exponential":
        fields["warmup_start_ratio"] = draw(st.floats(1e-4, 1.0))
    return fields


@st.composite
def decay_fields(draw: st.DrawFn, need_positive_floor: bool = False) -> dict[str, Any]:
    """Fields of a `DecaySchedule`: warmup, total and a floor given absolutely or as a ratio."""
    total = draw(st.integers(2, 100_000))
    fields = draw(warmup_fields(total))
    fields["total"] = total
    low = 1e-3 if need_positive_floor else 0.0
    if draw(st.booleans()):
        fields["end_ratio"] = draw(st.floats(low, 1.0))
    else:
        fields["end"] = fields["peak"] * draw(st.floats(low, 1.0))
    return fields


@st.composite
def wsd(draw: st.DrawFn) -> dict[str, Any]:
    decay = draw(shapes)
    fields = draw(decay_fields(need_positive_floor=decay == "exponential"))
    room = fields["total"] - fields["warmup"]
    if draw(st.booleans()):
        fields["cooldown_steps"] = draw(st.integers(1, room))
    else:  # a fraction (at most 1) that rounds to between 1 and `room` steps
        total = fields["total"]
        fields["cooldown_fraction"] = draw(st.floats(0.5 / total, min((room + 0.49) / total, 1.0)))
    return {"name": "wsd", "decay": decay, **fields}


@st.composite
def wsdc(draw: st.DrawFn) -> dict[str, Any]:
    decay = draw(shapes)
    fields = draw(warmup_fields(50_000))
    low = 1e-3 if decay == "exponential" else 0.0
    return {
        "name": "wsdc",
        **fields,
        "decay_start": draw(st.integers(fields["warmup"], 60_000)),
        "decay_length": draw(st.integers(1, 40_000)),
        "end": fields["peak"] * draw(st.floats(low, 1.0)),
        "decay": decay,
    }


@st.composite
def wsd_s(draw: st.DrawFn) -> dict[str, Any]:
    decay = draw(shapes)
    gaps = draw(st.lists(st.integers(1, 20_000), min_size=1, max_size=5))
    fraction = draw(st.floats(1.0 / min(gaps), 1.0))  # at least one decay step per segment
    first = gaps[0]
    warmup = draw(st.integers(0, first - int(fraction * first + 0.5)))
    checkpoints = [sum(gaps[: i + 1]) for i in range(len(gaps))]
    low = 1e-3 if decay == "exponential" else 0.0
    peak = draw(peaks)
    return {
        "name": "wsd_s",
        "peak": peak,
        "warmup": warmup,
        "checkpoints": checkpoints,
        "cooldown_fraction": fraction,
        "end": peak * draw(st.floats(low, 1.0)),
        "decay": decay,
    }


@st.composite
def simple_decay(draw: st.DrawFn, name: str) -> dict[str, Any]:
    return {"name": name, **draw(decay_fields())}


@st.composite
def polynomial(draw: st.DrawFn) -> dict[str, Any]:
    return {"name": "polynomial", **draw(decay_fields()), "power": draw(st.floats(0.5, 5.0))}


@st.composite
def with_warmup(draw: st.DrawFn, name: str, **extra: st.SearchStrategy[Any]) -> dict[str, Any]:
    spec = {"name": name, **draw(warmup_fields(10_000))}
    spec.update({key: draw(strategy) for key, strategy in extra.items()})
    return spec


@st.composite
def cosine_restarts(draw: st.DrawFn) -> dict[str, Any]:
    spec = draw(
        with_warmup(
            "cosine_restarts",
            cycle=st.integers(1, 5000),
            cycle_mult=st.floats(1.0, 3.0),
            peak_decay=st.floats(0.01, 1.0),
        )
    )
    spec["end"] = spec["peak"] * draw(fractions)
    return spec


@st.composite
def multistep(draw: st.DrawFn) -> dict[str, Any]:
    milestones = sorted(draw(st.sets(st.integers(0, 50_000), min_size=1, max_size=6)))
    return draw(with_warmup("multistep", milestones=st.just(milestones), gamma=fractions))


@st.composite
def inverse_sqrt(draw: st.DrawFn) -> dict[str, Any]:
    spec = draw(with_warmup("inverse_sqrt"))
    if spec["warmup"] == 0 or draw(st.booleans()):
        spec["timescale"] = draw(st.integers(1, 10_000))
    return spec


@st.composite
def one_cycle(draw: st.DrawFn) -> dict[str, Any]:
    total = draw(st.integers(4, 100_000))
    pct_start = draw(st.floats(1.5 / total, 1.0 - 0.5 / total)) if total > 4 else 0.5
    return {
        "name": "one_cycle",
        "peak": draw(peaks),
        "total": total,
        "pct_start": pct_start,
        "div_factor": draw(st.floats(1.0, 1e3)),
        "final_div_factor": draw(st.floats(1.0, 1e5)),
        "anneal_shape": draw(st.sampled_from(["cosine", "linear"])),
    }


@st.composite
def two_stage(draw: st.DrawFn) -> dict[str, Any]:
    spec = draw(with_warmup("two_stage"))
    spec["drop_step"] = draw(st.integers(max(1, spec["warmup"]), 60_000))
    spec["low"] = spec["peak"] * draw(fractions)
    return spec


@st.composite
def piecewise_linear(draw: st.DrawFn) -> dict[str, Any]:
    steps = sorted(draw(st.sets(st.integers(0, 50_000), min_size=1, max_size=8)))
    return {"name": "piecewise_linear", "points": [[s, draw(peaks)] for s in steps]}


@st.composite
def table(draw: st.DrawFn) -> dict[str, Any]:
    return {"name": "table", "values": draw(st.lists(peaks, min_size=1, max_size=300))}


LEAVES: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "constant": with_warmup("constant"),
    "linear": simple_decay("linear"),
    "cosine": simple_decay("cosine"),
    "cosine_restarts": cosine_restarts(),
    "step": with_warmup("step", step_size=st.integers(1, 10_000), gamma=fractions),
    "multistep": multistep(),
    "exponential": with_warmup(
        "exponential",
        decay_rate=st.floats(0.01, 1.0),
        decay_steps=st.integers(1, 10_000),
        end=st.floats(0.0, 1e-6),
    ),
    "inverse_sqrt": inverse_sqrt(),
    "polynomial": polynomial(),
    "one_cycle": one_cycle(),
    "two_stage": two_stage(),
    "wsd": wsd(),
    "wsdc": wsdc(),
    "wsd_s": wsd_s(),
    "piecewise_linear": piecewise_linear(),
    "table": table(),
}
LEAVES.update(RECENT_STRATEGIES)

leaf_specs = st.one_of(*LEAVES.values())


@st.composite
def join(draw: st.DrawFn) -> dict[str, Any]:
    phases = draw(st.lists(leaf_specs, min_size=1, max_size=3))
    gaps = draw(
        st.lists(st.integers(1, 20_000), min_size=len(phases) - 1, max_size=len(phases) - 1)
    )
    boundaries = [sum(gaps[: i + 1]) for i in range(len(gaps))]
    return {"name": "join", "schedules": phases, "boundaries": boundaries}


ALL_STRATEGIES: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    **LEAVES,
    "join": join(),
    "scale": st.builds(
        lambda spec, factor: {"name": "scale", "schedule": spec, "factor": factor},
        leaf_specs,
        st.floats(0.0, 10.0),
    ),
    "continue_from": st.builds(
        lambda spec, start: {"name": "continue_from", "schedule": spec, "start": start},
        leaf_specs,
        st.integers(0, 50_000),
    ),
}
