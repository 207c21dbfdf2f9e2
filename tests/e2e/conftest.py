"""The whole platform for end-to-end tests: real infrastructure plus every service as its own
process (reused when `make up` already runs them)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import httpx
import pytest

from sirene.devstack import demo
from sirene.devstack.stack import SERVICES, Service, service_proc, start_all, stop_all
from sirene.devstack.testing import InfraUrls

log = logging.getLogger(__name__)


def service(name: str) -> Service:
    return next(s for s in SERVICES if s.name == name)


@pytest.fixture(scope="session")
def platform(sirene_infra: InfraUrls) -> Iterator[dict[str, str]]:
    """Every service running against the test infrastructure, with the demo town seeded.
    Yields service name → base URL."""
    procs = [service_proc(s, extra_env=sirene_infra.settings_env()) for s in SERVICES]
    started = start_all(procs, echo=log.info)
    try:
        demo.seed(service("subscriptions").url)
        _wait_for_index(service("fanout").url)
        yield {s.name: s.url for s in SERVICES}
    finally:
        stop_all(started, echo=None)


def _wait_for_index(fanout_url: str, timeout_s: float = 60) -> None:
    """The fanout must have applied every seeded profile before an alert can reach them."""
    deadline = time.monotonic() + timeout_s
    lag = -1
    while time.monotonic() < deadline:
        lag = httpx.get(f"{fanout_url}/api/v1/index/status", timeout=5).json()["lag"]
        if lag == 0:
            return
        time.sleep(0.2)
    raise AssertionError(f"fanout audience index still {lag} profiles behind")
