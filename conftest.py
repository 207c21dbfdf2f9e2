"""Shared test fixtures: real infrastructure for integration and end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from sirene.devstack.testing import InfraUrls, real_infra

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page


@pytest.fixture(scope="session")
def sirene_infra() -> Iterator[InfraUrls]:
    """Real Kafka, MongoDB and Redis (environment → testcontainers → native local stack)."""
    with real_infra() as urls:
        yield urls


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium driven by Playwright (sync API; use it from sync tests).
    Module scope: Playwright's sync API keeps its own event loop running in the main thread
    while it is open, so it is closed before the next module's async tests run."""
    from sirene.devstack.browser import chromium

    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context and page per test, German locale (the citizens' default)."""
    context = browser.new_context(locale="de-DE")
    context.set_default_timeout(15_000)
    try:
        yield context.new_page()
    finally:
        context.close()
