"""Live forecasts while a run trains: where it will end, and when to cool down.

- `LiveForecaster`: fit a law to the part of a run logged so far (warm-started refits) and
  forecast its final loss under the planned schedule, with the band and the what-ifs;
- `lrlab.live.whatif`: the forecast final loss if the cooldown starts at each candidate step, and
  if the run is extended to 1.5x and 2x its budget;
- `LogFollower` and `watch`: follow a log that a running job writes (``lrlab watch``);
- `BackgroundForecaster`: the fits off the training thread, for `lrlab.integrations`.
"""

from lrlab.live.background import BackgroundForecaster
from lrlab.live.follow import LogFollower
from lrlab.live.forecaster import LiveForecast, LiveForecaster, reference_law
from lrlab.live.watch import watch
from lrlab.live.whatif import Cooldown, parse_cooldown, score_whatifs

__all__ = [
    "BackgroundForecaster",
    "Cooldown",
    "LiveForecast",
    "LiveForecaster",
    "LogFollower",
    "parse_cooldown",
    "reference_law",
    "score_whatifs",
    "watch",
]
