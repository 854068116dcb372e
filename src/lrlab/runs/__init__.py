"""Training runs: the `Run` model and readers for real, messy training logs."""

from lrlab.runs.model import Run, RunWarning
from lrlab.runs.names import unique_run_names
from lrlab.runs.read import read_run

__all__ = ["Run", "RunWarning", "read_run", "unique_run_names"]
