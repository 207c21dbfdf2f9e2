"""Shared test fixtures: real infrastructure for integration and end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sirene.devstack.testing import InfraUrls, real_infra


@pytest.fixture(scope="session")
def sirene_infra() -> Iterator[InfraUrls]:
    """Real Kafka, MongoDB and Redis (environment → testcontainers → native local stack)."""
    with real_infra() as urls:
        yield urls
