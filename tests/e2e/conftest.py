"""The whole platform for end-to-end tests: real infrastructure plus every service as its own
process, on the test instance's ports (a running `make up` is left alone)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest

from sirene.devstack import demo
from sirene.devstack.stack import SERVICES, TEST, service, service_proc, start_together, stop_all
from sirene.devstack.testing import InfraUrls

log = logging.getLogger(__name__)


@pytest.fixture(scope="module")
def platform(sirene_infra: InfraUrls) -> Iterator[dict[str, str]]:
    """Every service running against the test infrastructure, with the demo town seeded.
    Yields service name → base URL. Module scope: the services are stopped before other test
    modules run, so their consumer groups never take those tests' tasks."""
    # `SIRENE_E2E_WITHOUT=channel-voice,...` leaves services out, to show that the tests fail
    # without them (README, Tests)
    left_out = {name.strip() for name in os.environ.get("SIRENE_E2E_WITHOUT", "").split(",")}
    procs = [
        service_proc(s, TEST, extra_env=sirene_infra.settings_env())
        for s in SERVICES
        if s.name not in left_out
    ]
    started = start_together(procs, echo=log.info)
    try:
        subscriptions, fanout = service("subscriptions").url(TEST), service("fanout").url(TEST)
        demo.seed(subscriptions)
        demo.wait_until_routable(subscriptions, fanout)
        demo.seed_staff(service("publisher").url(TEST))
        yield {s.name: s.url(TEST) for s in SERVICES}
    finally:
        stop_all(started, echo=None)
