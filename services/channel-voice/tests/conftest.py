"""Fixtures of channel-voice: the worker served over real HTTP on a free port (the simulator must
reach its webhooks) and voice tasks. Shared ones: `sirene.devstack.channel_testing`."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from typing import Any

import pytest

from sirene.channel_voice.app import create_app
from sirene.channel_voice.settings import ChannelVoiceSettings
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
) -> AsyncIterator[RunningWorker[ChannelVoiceSettings]]:
    async with serve_twilio_worker(
        ChannelVoiceSettings, create_app, sirene_infra, simulator
    ) as running:
        yield running


@pytest.fixture
def task_factory() -> Any:
    return functools.partial(make_task, channel=Channel.VOICE)


@pytest.fixture
def number() -> str:
    return new_number()
