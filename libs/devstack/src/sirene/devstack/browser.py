"""Headless Chromium for browser tests: Debian's Chromium driven by Playwright's Python package.

Playwright's own browser download is not reachable from the machines this project targets, so
the Debian package (`/usr/bin/chromium`, installed by `deploy/local/install.sh`) is launched
through `executable_path`. Background networking is switched off: the machine's network is
closed, and Chromium would otherwise keep dialling Google's hosts.

Usage in a test (sync API; pytest fixtures `browser` and `page` in the root `conftest.py`):

    def test_register(page, platform):
        page.goto(platform["subscriptions"] + "/")
        page.get_by_label("Mobilnummer").fill("+49 151 23456789")
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Browser

CHROMIUM_FLAGS = [
    "--no-sandbox",  # tests run as root on CI machines
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def chromium_path() -> str:
    """The Chromium binary: `SIRENE_CHROMIUM` or the Debian package's."""
    for candidate in (os.environ.get("SIRENE_CHROMIUM"), "/usr/bin/chromium", "chromium"):
        if candidate and (found := shutil.which(candidate)):
            return found
    raise RuntimeError("Chromium not found: run `make install` (installs Debian's chromium)")


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium (Playwright gives every launch a fresh, throw-away profile)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS
        )
        try:
            yield browser
        finally:
            browser.close()
