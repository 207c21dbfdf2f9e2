"""Fixtures: an in-process simulator on free ports and a tiny webhook receiver."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aioapns import APNs
from aioapns.connection import APNsDevelopmentClientProtocol
from aiohttp import web
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from sirene.provider_sim.app import ProviderSimulator
from sirene.provider_sim.settings import DEV_ACCOUNT_SID, DEV_AUTH_TOKEN, SimSettings

# --- the two client recipes documented in the README --------------------------------------


class SimulatorTwilioHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    """AsyncTwilioHttpClient that sends every *.twilio.com request to the simulator instead."""

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._base_url = base_url.rstrip("/")

    async def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        parts = urlsplit(url)
        if parts.hostname and parts.hostname.endswith("twilio.com"):
            url = self._base_url + parts.path + (f"?{parts.query}" if parts.query else "")
        return await super().request(method, url, *args, **kwargs)


def point_apns_at(apns: APNs, host: str, port: int) -> None:
    """Make an aioapns client connect to ``host:port`` instead of Apple."""

    class SimulatorProtocol(APNsDevelopmentClientProtocol):  # type: ignore[misc]
        APNS_SERVER = host
        APNS_PORT = port

    apns.pool.protocol_class = SimulatorProtocol


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def cert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sim-certs")


@pytest.fixture
def sim_settings(cert_dir: Path) -> SimSettings:
    return SimSettings(
        http_port=0, apns_port=0, smtp_port=0, cert_dir=cert_dir, status_callback_delay=0.01
    )


@pytest.fixture
async def sim(sim_settings: SimSettings) -> AsyncIterator[ProviderSimulator]:
    async with ProviderSimulator(sim_settings) as simulator:
        yield simulator


@pytest.fixture
async def make_twilio_client(
    sim: ProviderSimulator,
) -> AsyncIterator[Callable[[str, str], Awaitable[Client]]]:
    """Real twilio ``Client`` objects with the async HTTP client, aimed at the simulator."""
    http_clients: list[SimulatorTwilioHttpClient] = []

    async def make(account_sid: str, auth_token: str) -> Client:
        http_client = SimulatorTwilioHttpClient(sim.http_url)
        http_clients.append(http_client)
        return Client(account_sid, auth_token, http_client=http_client)

    yield make
    for http_client in http_clients:
        await http_client.close()


@pytest.fixture
async def twilio_client(make_twilio_client: Callable[[str, str], Awaitable[Client]]) -> Client:
    return await make_twilio_client(DEV_ACCOUNT_SID, DEV_AUTH_TOKEN)


@pytest.fixture
def make_apns(sim: ProviderSimulator) -> Iterator[Callable[..., APNs]]:
    """Real aioapns clients with token auth, trusting the simulator CA, aimed at it."""
    clients: list[APNs] = []

    def make(*, key: str | None = None, topic: str = "de.sirene.app") -> APNs:
        apns = APNs(
            key=key if key is not None else sim.cert_paths.apns_key.read_text(),
            key_id="SIMKEY0001",
            team_id="SIMTEAM001",
            topic=topic,
            use_sandbox=True,
            ssl_context=ssl.create_default_context(cafile=str(sim.cert_paths.ca)),
        )
        point_apns_at(apns, "127.0.0.1", sim.apns_port)
        clients.append(apns)
        return apns

    yield make
    for apns in clients:
        apns.pool.close()


@dataclass
class Received:
    path: str
    url: str
    form: dict[str, str]
    signature: str | None


@dataclass
class Receiver:
    """Records every request; answers with the TwiML registered for its path, else 204."""

    base_url: str = ""
    requests: list[Received] = field(default_factory=list)
    twiml: dict[str, str] = field(default_factory=dict)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str) -> str:
        return self.base_url + path

    def at(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]

    async def wait_for(self, predicate: Callable[[Receiver], bool], within: float = 5.0) -> None:
        async with asyncio.timeout(within):
            while not predicate(self):
                self._changed.clear()
                await self._changed.wait()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.requests.append(
            Received(
                path=request.path,
                url=str(request.url),
                form=form,
                signature=request.headers.get("X-Twilio-Signature"),
            )
        )
        self._changed.set()
        document = self.twiml.get(request.path)
        if document is None:
            return web.Response(status=204)
        return web.Response(text=document, content_type="text/xml")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    recv = Receiver()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", recv.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    recv.base_url = f"http://127.0.0.1:{port}"
    yield recv
    await runner.cleanup()
