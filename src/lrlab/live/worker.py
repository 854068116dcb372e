"""The child process of `lrlab.live.background.BackgroundForecaster` (``python -m
lrlab.live.worker [NICENESS]``): fits at a lower scheduling priority (NICENESS more than its
parent's, default `NICENESS`), answers on the pipe that was stdout."""

import os
import sys

from lrlab.live.background import NICENESS, lower_priority, serve

if __name__ == "__main__":
    lower_priority(int(sys.argv[1]) if len(sys.argv) > 1 else NICENESS)
    # The answers go to the pipe that was stdout; anything a library prints goes to stderr
    # instead of corrupting them.
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    serve(sys.stdin.buffer, answers)
