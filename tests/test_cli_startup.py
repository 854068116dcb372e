"""The command line starts fast: building the parser imports none of the heavy libraries (each
command imports what it needs when it runs; benchmarks/startup.py measures the time)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "matplotlib", "scipy.optimize", "scipy.stats", "transformers", "jax")

_PROBE = """
import json, sys
from lrlab.cli import build_parser
build_parser()
{extra}
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def _heavy_modules_after(extra: str = "") -> list[str]:
    code = _PROBE.format(extra=extra, heavy=HEAVY)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_building_the_parser_loads_no_heavy_library() -> None:
    assert _heavy_modules_after() == []


@pytest.mark.parametrize("argv", [["laws"], ["schedules"], ["--help"]])
def test_listing_commands_load_no_heavy_library(argv: list[str]) -> None:
    run = f"""
from lrlab.cli import main
try:
    main({argv!r})
except SystemExit:
    pass
"""
    assert _heavy_modules_after(run) == []


def test_public_api_import_is_light() -> None:
    assert _heavy_modules_after("import lrlab, lrlab.schedules, lrlab.laws, lrlab.design") == []
