"""Fixtures of subscriptions' self-service tests: the provider simulator in-process and the
service served over real HTTP on a free port (the simulator fetches the TwiML of verification
and consent calls and posts call status callbacks to it)."""

from __future__ import annotations

import contextlib
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from sirene.devstack.channel_testing import free_socket, serve_app, simulator
from sirene.devstack.testing import InfraUrls
from sirene.provider_sim.app import ProviderSimulator
from sirene.subscriptions.app import create_app
from sirene.subscriptions.settings import SubscriptionsSettings

__all__ = ["simulator"]

TOPICS = [
    {
        "id": "gefahrenhinweise",
        "name": {"de": "Gefahrenhinweise", "en": "Hazard warnings"},
        "kind": "warning",
        "warnings": True,
    },
    {"id": "verkehr", "name": {"de": "Verkehr", "en": "Traffic"}, "kind": "Verkehr"},
    {"id": "vereine", "name": "Vereine", "kind": "Vereine", "public": False},
]


class Subs:
    """A running subscriptions service of one fresh tenant."""

    def __init__(self, app: FastAPI, settings: SubscriptionsSettings, tenant: str, token: str):
        self.app = app
        self.settings = settings
        self.tenant = tenant
        self.token = token
        self.url = settings.base_url
        self.staff = {"Authorization": f"Bearer {token}"}
        self.others: dict[str, str] = {}

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=30)

    @property
    def db(self) -> Any:
        return self.app.state.infra.db

    @property
    def redis(self) -> Any:
        return self.app.state.infra.redis


ServeSubs = Callable[..., contextlib.AbstractAsyncContextManager[Subs]]


def new_mobile() -> str:
    """A fresh German mobile number (E.164)."""
    return f"+49151{uuid.uuid4().int % 10**8:08d}"


def new_landline() -> str:
    """A fresh Berlin landline number (E.164)."""
    return f"+4930{uuid.uuid4().int % 10**8:08d}"


@pytest.fixture
def serve_subs(sirene_infra: InfraUrls, simulator: ProviderSimulator) -> ServeSubs:
    """Serves subscriptions for a fresh tenant (topics created) with settings `overrides`."""

    @contextlib.asynccontextmanager
    async def serve(tenants: int = 1, **overrides: Any) -> AsyncIterator[Subs]:
        names = [f"t-{uuid.uuid4().hex[:10]}" for _ in range(tenants)]
        tokens = {name: f"token-{uuid.uuid4().hex}" for name in names}
        sock = free_socket()
        port = sock.getsockname()[1]
        settings = SubscriptionsSettings(
            **sirene_infra.settings_kwargs(),  # type: ignore[arg-type]
            http_port=port,
            public_url=f"http://127.0.0.1:{port}",
            twilio_api_url=simulator.http_url,
            smtp_port=simulator.smtp_port,
            api_tokens={t: SecretStr(v) for t, v in tokens.items()},
            relay_poll_interval_s=1.0,
            **overrides,
        )
        app = create_app(settings)
        async with serve_app(app, sock):
            await app.state.infra.wait_until_assigned()
            subs = Subs(app, settings, names[0], tokens[names[0]])
            async with subs.client() as client:
                for name in names:
                    for topic in TOPICS:
                        response = await client.post(
                            "/api/v1/topics",
                            json=topic,
                            headers={"Authorization": f"Bearer {tokens[name]}"},
                        )
                        assert response.status_code == 201, response.text
            subs.others = {n: tokens[n] for n in names[1:]}
            yield subs

    return serve


async def phone(sim: ProviderSimulator, number: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=sim.http_url, timeout=10) as http:
        response = await http.get(f"/sim/phones/{quote(number, safe='')}")
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


async def eventually(
    check: Callable[[], Any], *, timeout_s: float = 30.0, what: str = "condition"
) -> Any:
    """Polls the async `check` until it returns something truthy."""
    import asyncio

    deadline = time.monotonic() + timeout_s
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def sms_code(sim: ProviderSimulator, number: str) -> str:
    """The code of the latest SMS the simulated phone received."""

    async def latest() -> str | None:
        messages = (await phone(sim, number))["messages"]
        for message in messages:
            found = re.search(r"\b(\d{6})\b", message["body"])
            if found:
                return found.group(1)
        return None

    code: str = await eventually(latest, what=f"an SMS code at {number}")
    return code


async def voice_code(sim: ProviderSimulator, number: str) -> str:
    """The code the latest call to the simulated phone spoke (digits read one by one)."""

    async def latest() -> str | None:
        for call in (await phone(sim, number))["calls"]:
            spoken = " ".join(s["text"] for s in call["spoken"])
            found = re.search(r"((?:\d, ){5}\d)", spoken)
            if found:
                return found.group(1).replace(", ", "")
        return None

    code: str = await eventually(latest, what=f"a spoken code at {number}")
    return code
