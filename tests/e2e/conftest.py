"""The whole platform for end-to-end tests: real infrastructure plus every service as its own
process (reused when `make up` already runs them)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

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
        demo.wait_until_routable(service("subscriptions").url, service("fanout").url)
        yield {s.name: s.url for s in SERVICES}
    finally:
        stop_all(started, echo=None)
