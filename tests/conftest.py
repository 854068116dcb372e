"""Test-session setup: the shared-data benchmark fixture (``benchmarks/shared_data.py``, not part
of the installed library) is importable as ``shared_data``, as it is from the benchmark scripts."""

import sys
from pathlib import Path

# Appended, not prepended: nothing in benchmarks/ may shadow an installed or test module.
sys.path.append(str(Path(__file__).resolve().parents[1] / "benchmarks"))
