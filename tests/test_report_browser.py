"""The study report in a real browser (headless Chromium) at a phone's width and a laptop's: the
page is no wider than the window, no number is broken over two lines, and a screenshot of each is
kept (in the test's folder, printed on failure) for a person to look at."""

from __future__ import annotations

import pytest

from browser_helpers import chromium, render
from report_helpers import full_report

# A run name with markup and no place to break (user strings are escaped, and must not widen the
# page), and one of an ordinary length.
NAMES = ("<b>constant_run_with_a_very_long_name_and_no_spaces</b>", "cosine")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    pytest.importorskip("matplotlib")
    out = tmp_path_factory.mktemp("report")
    full_report(out, NAMES)
    return out


@pytest.mark.skipif(chromium() is None, reason="Chromium is not installed")
@pytest.mark.parametrize("width", [420, 1280])
def test_report_fits_the_window_and_keeps_numbers_whole(report, width):
    page = (report / "report.html").read_text(encoding="utf-8")
    shot = report / f"report-{width}px.png"
    layout = render(page, width, report / f"browser-{width}", screenshot=shot)
    assert layout.viewport == width
    assert layout.width <= width, f"the page is {layout.width} px wide in {width} px; see {shot}"
    assert layout.wrapped_numbers == 0, f"numbers broken over two lines; see {shot}"
    assert shot.read_bytes()[:4] == b"\x89PNG"
