"""Fixtures of channel-push: the worker pointed at the simulator's APNs (HTTP/2 TLS, its own CA)
and FCM, and push tasks. Shared ones: `sirene.devstack.channel_testing`."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from typing import Any

import pytest

from sirene.channel_push.app import create_app
from sirene.channel_push.settings import ChannelPushSettings
from sirene.devstack.channel_testing import (
    RunningWorker,
    make_task,
    new_token,
    serve_worker,
    simulator,
    tenant,
)
from sirene.devstack.testing import InfraUrls
from sirene.provider_sim.app import ProviderSimulator
from sirene.schemas import Channel, PushPlatform

__all__ = ["simulator", "tenant"]


@pytest.fixture
async def worker(
    sirene_infra: InfraUrls, simulator: ProviderSimulator
) -> AsyncIterator[RunningWorker[ChannelPushSettings]]:
    def settings(port: int) -> ChannelPushSettings:
        return ChannelPushSettings(
            **sirene_infra.settings_kwargs(),  # type: ignore[arg-type]
            http_port=port,
            apns_host="127.0.0.1",
            apns_port=simulator.apns_port,
            apns_cert_dir=simulator.settings.cert_dir,
            fcm_api_url=simulator.http_url,
        )

    async with serve_worker(settings, create_app) as running:
        yield running


@pytest.fixture
def task_factory() -> Any:
    return functools.partial(
        make_task, channel=Channel.PUSH, push_platform=PushPlatform.APNS, title="Hochwasser"
    )


@pytest.fixture
def token() -> str:
    return new_token()
