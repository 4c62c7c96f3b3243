"""Headless Debian Chromium for the browser tests, and the widget as a third-party page embeds it: a plain static site
on its own loopback port (another origin), a message typed into the widget, its reply awaited."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def launch(pw: Any, extra: list[str] | None = None) -> Any:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is not installed (apt-get install chromium; .ci/run does it)")
    return pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS + (extra or []))


@contextmanager
def third_party_site(directory: Path, port: int) -> Iterator[str]:
    """`directory` served on 127.0.0.1:`port`; yields the URL of its index.html."""
    site = ThreadingHTTPServer(("127.0.0.1", port), partial(SimpleHTTPRequestHandler, directory=str(directory)))
    threading.Thread(target=site.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{port}/index.html"
    finally:
        site.shutdown()


def widget_turn(page: Any, url: str, text: str) -> None:
    """Open the page, wait for its <persona-chat> to connect, send `text`, wait for the reply to be done."""
    page.goto(url)
    page.wait_for_selector("persona-chat[ready]", timeout=30_000)
    page.fill("persona-chat input", text)
    page.press("persona-chat input", "Enter")
    page.wait_for_selector("persona-chat li.assistant[data-done]", timeout=120_000)
