"""Fixtures of channel-email: the worker on a free port, speaking SMTP to the simulator's sink."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from typing import Any

import pytest

from sirene.channel_email.app import create_app
from sirene.channel_email.settings import ChannelEmailSettings
from sirene.devstack.channel_testing import (
    RunningWorker,
    make_task,
    serve_worker,
    simulator,
    tenant,
)
from sirene.devstack.testing import InfraUrls
from sirene.provider_sim.app import ProviderSimulator
from sirene.schemas import Channel

__all__ = ["simulator", "tenant"]


@pytest.fixture
async def worker(
    sirene_infra: InfraUrls, simulator: ProviderSimulator
) -> AsyncIterator[RunningWorker[ChannelEmailSettings]]:
    def settings(port: int) -> ChannelEmailSettings:
        return ChannelEmailSettings(
            **sirene_infra.settings_kwargs(),  # type: ignore[arg-type]
            http_port=port,
            public_url=f"http://127.0.0.1:{port}",
            smtp_port=simulator.smtp_port,
            retry_tiers="10s",
            tenant_senders={"musterstadt": "Stadt Musterstadt <warnung@musterstadt.example>"},
        )

    async with serve_worker(settings, create_app) as running:
        yield running


@pytest.fixture
def task_factory() -> Any:
    return functools.partial(make_task, channel=Channel.EMAIL, title="Hochwasserwarnung")
