"""Fixtures of channel-sms: the worker served over real HTTP on a free port (the simulator must
reach its status callbacks) and SMS tasks. Shared ones: `sirene.devstack.channel_testing`."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from typing import Any

import pytest

from sirene.channel_sms.app import create_app
from sirene.channel_sms.settings import ChannelSmsSettings
from sirene.devstack.channel_testing import (
    RunningWorker,
    make_task,
    new_number,
    serve_twilio_worker,
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
) -> AsyncIterator[RunningWorker[ChannelSmsSettings]]:
    async with serve_twilio_worker(
        ChannelSmsSettings, create_app, sirene_infra, simulator
    ) as running:
        yield running


@pytest.fixture
def task_factory() -> Any:
    return functools.partial(make_task, channel=Channel.SMS)


@pytest.fixture
def number() -> str:
    return new_number()
