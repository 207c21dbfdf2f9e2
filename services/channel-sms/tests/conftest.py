"""Fixtures of channel-sms: the provider simulator in-process, the worker served over real
HTTP on a free port (the simulator must reach its webhooks), helpers to build tasks."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator, Generator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from sirene.channel_sms.app import create_app
from sirene.channel_sms.settings import ChannelSmsSettings
from sirene.devstack.testing import InfraUrls
from sirene.provider_sim.app import ProviderSimulator
from sirene.provider_sim.settings import SimSettings
from sirene.runtime import Infra
from sirene.schemas import (
    Channel,
    DeliveryTask,
    Lane,
    Language,
    Severity,
    task_id_for,
    utcnow,
)


class _Server(uvicorn.Server):
    """uvicorn without signal handling (it runs inside the test's event loop)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextlib.asynccontextmanager
async def serve_app(app: FastAPI, sock: socket.socket) -> AsyncIterator[None]:
    """Serves `app` (lifespan included) on `sock` until the block ends."""
    server = _Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await task
            raise RuntimeError("server stopped during startup")
        await asyncio.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        await task


async def wait_assigned(infra: Infra, timeout_s: float = 30.0) -> None:
    """Until every subscriber's consumer has partitions and start offsets (tests start groups
    at 'latest', so anything produced before that would be skipped)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        consumers = [getattr(s, "consumer", None) for s in infra.broker.subscribers]
        if consumers and all(c is not None and c.assignment() for c in consumers):
            # A 'latest' group resolves its start offset lazily; pin it before producing.
            for consumer in filter(None, consumers):
                for tp in consumer.assignment():
                    await consumer.position(tp)
            return
        if loop.time() > deadline:
            raise TimeoutError("consumers got no partitions")
        await asyncio.sleep(0.1)


@pytest.fixture(scope="session")
async def simulator(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ProviderSimulator]:
    cert_dir: Path = tmp_path_factory.mktemp("sim-certs")
    settings = SimSettings(http_port=0, apns_port=0, cert_dir=cert_dir, status_callback_delay=0.01)
    async with ProviderSimulator(settings) as sim:
        yield sim


class RunningWorker:
    def __init__(self, app: FastAPI, settings: ChannelSmsSettings) -> None:
        self.app = app
        self.settings = settings
        self.infra: Infra = app.state.infra


@pytest.fixture
async def worker(
    sirene_infra: InfraUrls, simulator: ProviderSimulator
) -> AsyncIterator[RunningWorker]:
    sock = free_socket()
    port = sock.getsockname()[1]
    settings = ChannelSmsSettings(
        **sirene_infra.settings_kwargs(),  # type: ignore[arg-type]
        http_port=port,
        public_url=f"http://127.0.0.1:{port}",
        twilio_api_url=simulator.http_url,
    )
    app = create_app(settings)
    async with serve_app(app, sock):
        await wait_assigned(app.state.infra)
        yield RunningWorker(app, settings)


@pytest.fixture
def tenant() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def make_task(tenant: str, address: str, **fields: Any) -> DeliveryTask:
    alert_id = fields.pop("alert_id", f"a-{uuid.uuid4().hex[:12]}")
    citizen_id = fields.pop("citizen_id", f"c-{uuid.uuid4().hex[:12]}")
    channel = fields.pop("channel", Channel.SMS)
    now = utcnow()
    values: dict[str, Any] = {
        "tenant_id": tenant,
        "task_id": task_id_for(alert_id, citizen_id, channel, address),
        "alert_id": alert_id,
        "citizen_id": citizen_id,
        "channel": channel,
        "lane": Lane.URGENT,
        "address": address,
        "language": Language.DE,
        "body": "Hochwasserwarnung: Bitte meiden Sie das Flussufer.",
        "severity": Severity.SEVERE,
        "exercise": False,
        "published_at": now,
        "expires": now + timedelta(hours=1),
    }
    values.update(fields)
    return DeliveryTask.model_validate(values)


def new_number() -> str:
    return f"+49151{uuid.uuid4().int % 10**8:08d}"


async def produce(bootstrap: str, topic: str, records: list[tuple[str, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value=value, key=key.encode())
    finally:
        await producer.stop()


@pytest.fixture
def task_factory() -> Any:
    return make_task


@pytest.fixture
def number() -> str:
    return new_number()
