"""Learning-rate schedules: pure functions from the step to the LR, composable, with specs.

>>> from lrlab.schedules import parse
>>> schedule = parse("wsd(peak=3e-4, total=24000, warmup=2160, cooldown_fraction=0.2)")
>>> round(schedule(24000), 12)
0.0

Every schedule is a class exported here (``WSD(peak=3e-4, total=24000, warmup=2160)``) and is
registered by name (`REGISTRY`); build one from a spec dict or string with `from_spec` /
`parse`, and get the spec back with `Schedule.to_spec` / `str(schedule)`.
"""

from lrlab.errors import SpecError
from lrlab.schedules.base import (
    MAX_STEPS,
    MAX_STEPS_TEXT,
    REGISTRY,
    DecaySchedule,
    Schedule,
    WarmupSchedule,
    to_string,
)
from lrlab.schedules.classic import (
    Constant,
    Cosine,
    CosineRestarts,
    Exponential,
    InverseSqrt,
    Linear,
    MultiStep,
    OneCycle,
    Polynomial,
    Step,
    TwoStage,
)
from lrlab.schedules.compose import ContinueFrom, Join, Scale, continue_from, join, scale
from lrlab.schedules.continual import Infinite, RepeatedCosine, RewarmRedecay
from lrlab.schedules.modern import UBA, DampedCosine, Power, Rex
from lrlab.schedules.shapes import DECAY_SHAPES, anneal
from lrlab.schedules.spec import from_spec, load_spec, parse, save_spec
from lrlab.schedules.tabular import PiecewiseLinear, Table
from lrlab.schedules.wsd import WSD, WSDC, WSDS

__all__ = [
    "DECAY_SHAPES",
    "MAX_STEPS",
    "MAX_STEPS_TEXT",
    "REGISTRY",
    "UBA",
    "WSD",
    "WSDC",
    "WSDS",
    "Constant",
    "ContinueFrom",
    "Cosine",
    "CosineRestarts",
    "DampedCosine",
    "DecaySchedule",
    "Exponential",
    "Infinite",
    "InverseSqrt",
    "Join",
    "Linear",
    "MultiStep",
    "OneCycle",
    "PiecewiseLinear",
    "Polynomial",
    "Power",
    "RepeatedCosine",
    "RewarmRedecay",
    "Rex",
    "Scale",
    "Schedule",
    "SpecError",
    "Step",
    "Table",
    "TwoStage",
    "WarmupSchedule",
    "anneal",
    "continue_from",
    "from_spec",
    "join",
    "load_spec",
    "parse",
    "save_spec",
    "scale",
    "to_string",
]
