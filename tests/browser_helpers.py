"""Render an HTML page in headless Chromium at a given window width: how wide its layout is, and a
screenshot of the whole page for a person to look at.

Headless Chromium will not make a window narrower than 500 px, so the page is shown inside an
``<iframe>`` of the width asked for (its own viewport: media queries and ``width=device-width``
see that width), in a page of its own; a probe added to a copy of the page reports its layout to
the outer page's title, which ``--dump-dom`` prints.
"""

from __future__ import annotations

import dataclasses
import html
import re
import shutil
import subprocess
from pathlib import Path

# Below this, headless Chromium widens the window anyway.
MIN_WINDOW = 500
# On load, the page's scroll width and height, the viewport's width, and how many numbers (the
# report marks them: `td.num` cells and `.n` spans) were broken over more than one line.
PROBE = """<script>addEventListener('load', () => {
  let wrapped = 0;
  for (const element of document.querySelectorAll('td.num, .n')) {
    const range = document.createRange();
    range.selectNodeContents(element);
    const boxes = [...range.getClientRects()].filter(box => box.width > 0 && box.height > 0);
    if (boxes.length === 0) continue;
    const tops = boxes.map(box => box.top);
    const line = Math.min(...boxes.map(box => box.height));
    if (Math.max(...tops) - Math.min(...tops) > line / 2) wrapped += 1;
  }
  const root = document.documentElement;
  parent.document.title = ['layout', root.scrollWidth, root.scrollHeight, window.innerWidth,
                           wrapped].join(' ');
});</script></body>"""


def chromium() -> str | None:
    """The Chromium executable, or None when it is not installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclasses.dataclass(frozen=True)
class Layout:
    """How the page laid out: its scroll width and height and the viewport's width (px), and how
    many numbers were broken over two lines."""

    width: int
    height: int
    viewport: int
    wrapped_numbers: int


def _framed(page: str, width: int, height: int) -> str:
    """`page` in an iframe `width` x `height` px at the top left of an otherwise empty page."""
    return (
        "<!DOCTYPE html><html><head><style>body { margin: 0; background: #888; } "
        "iframe { border: 0; display: block; background: #fff; }</style></head><body>"
        f'<iframe width="{width}" height="{height}" srcdoc="{html.escape(page, quote=True)}">'
        "</iframe></body></html>"
    )


def _chromium(folder: Path, window: tuple[int, int], *arguments: str) -> str:
    flags = [
        str(chromium()),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={folder / 'profile'}",
        f"--window-size={max(window[0], MIN_WINDOW)},{window[1]}",
    ]
    done = subprocess.run(
        [*flags, *arguments], capture_output=True, text=True, timeout=120, check=False
    )
    return done.stdout


def render(page: str, width: int, folder: Path, screenshot: Path | None = None) -> Layout:
    """Lay `page` out in a viewport `width` px wide (using `folder` for scratch files); with
    `screenshot`, also write a PNG of the whole page there."""
    folder.mkdir(parents=True, exist_ok=True)
    probed = folder / f"probe-{width}.html"
    probed.write_text(_framed(page.replace("</body>", PROBE), width, 900), encoding="utf-8")
    dom = _chromium(folder, (width, 900), "--dump-dom", probed.as_uri())
    found = re.search(r"<title>layout (\d+) (\d+) (\d+) (\d+)</title>", dom)
    assert found, f"Chromium reported no layout; its output began: {dom[:300]!r}"
    layout = Layout(*map(int, found.groups()))
    if screenshot is not None:
        framed = folder / f"framed-{width}.html"
        framed.write_text(_framed(page, width, layout.height), encoding="utf-8")
        _chromium(folder, (width, layout.height), f"--screenshot={screenshot}", framed.as_uri())
    return layout
