"""The child process of `lrlab.live.background.BackgroundForecaster` (``python -m
lrlab.live.worker``): fits at a lower scheduling priority, answers on the pipe that was stdout."""

import os
import sys

from lrlab.live.background import NICENESS, serve

if __name__ == "__main__":
    if hasattr(os, "nice"):
        os.nice(NICENESS)
    # The answers go to the pipe that was stdout; anything a library prints goes to stderr
    # instead of corrupting them.
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    serve(sys.stdin.buffer, answers)
