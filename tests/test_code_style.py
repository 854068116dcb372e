"""The tree stays as `ruff` (pinned in the `dev` extra, configured in pyproject.toml) wants it:
lint clean, long lines included, and formatted. CI runs this with the rest of the suite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("ruff", reason="ruff is in the dev extra: pip install -e '.[dev]'")


def _ruff(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,  # the tests read the exit status themselves
    )


def test_ruff_check_is_clean() -> None:
    done = _ruff("check", "--no-cache", "--output-format", "concise", ".")
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_format_leaves_the_tree_unchanged() -> None:
    done = _ruff("format", "--no-cache", "--check", ".")
    assert done.returncode == 0, done.stdout + done.stderr
