"""The child process of `lrlab.live.background.BackgroundForecaster` (``python -m
lrlab.live.worker [NICENESS]``): fits at a lower scheduling priority (NICENESS more than its
parent's, default `NICENESS`), answers on the pipe that was stdout."""

import os
import signal
import sys

from lrlab.live.background import NICENESS, lower_priority, serve

if __name__ == "__main__":
    # `BackgroundForecaster.close` terminates a child still in a fit: unwind, so that a forecast
    # file being written is removed rather than left half-written, and forked fit workers are
    # killed (`lrlab.laws.parallel`), instead of dying where the signal finds it.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    lower_priority(int(sys.argv[1]) if len(sys.argv) > 1 else NICENESS)
    # The answers go to the pipe that was stdout; anything a library prints goes to stderr
    # instead of corrupting them.
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    serve(sys.stdin.buffer, answers)
