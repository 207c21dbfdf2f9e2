"""Test support shared by the channel workers' tests (channel-sms, channel-voice, channel-push):
the provider simulator in-process, a worker served over real HTTP on a free port (the simulator
must reach its webhooks), delivery tasks, and producing/reading them on Kafka.

A worker's `tests/conftest.py` imports the shared fixtures (`simulator`, `tenant`) and keeps only
what is channel-specific: its `worker` fixture (`serve_twilio_worker`, or `serve_worker` with
its own settings), its `task_factory` (`make_task` with the channel's defaults) and addresses."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Generator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, Generic, TypeVar

import httpx
import pytest
import uvicorn
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from sirene.provider_sim.app import ProviderSimulator
from sirene.provider_sim.settings import SimSettings
from sirene.runtime import Infra, ServiceSettings
from sirene.runtime.twilio import TwilioServiceSettings
from sirene.schemas import (
    Channel,
    DeliveryReceipt,
    DeliveryTask,
    Lane,
    Language,
    Severity,
    task_id_for,
    utcnow,
)

from .testing import InfraUrls

S = TypeVar("S", bound=ServiceSettings)
T = TypeVar("T", bound=TwilioServiceSettings)


class _Server(uvicorn.Server):
    """uvicorn without signal handling (it runs inside the test's event loop)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def free_socket() -> socket.socket:
    """A socket bound to a free port on 127.0.0.1 (hand it to `serve_app`)."""
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


class RunningWorker(Generic[S]):
    """A channel worker served by `serve_worker`: its app, settings and `Infra`."""

    def __init__(self, app: FastAPI, settings: S) -> None:
        self.app = app
        self.settings = settings
        self.infra: Infra = app.state.infra


@contextlib.asynccontextmanager
async def serve_worker(
    settings_for_port: Callable[[int], S], create_app: Callable[[S], FastAPI]
) -> AsyncIterator[RunningWorker[S]]:
    """Serves a worker on a free port (its settings built for that port) and returns once its
    consumers have partitions and start offsets (tests start groups at 'latest', so anything
    produced before that would be skipped)."""
    sock = free_socket()
    settings = settings_for_port(sock.getsockname()[1])
    app = create_app(settings)
    async with serve_app(app, sock):
        await app.state.infra.wait_until_assigned()
        yield RunningWorker(app, settings)


def serve_twilio_worker(
    settings_class: type[T],
    create_app: Callable[[T], FastAPI],
    infra: InfraUrls,
    sim: ProviderSimulator,
    **overrides: Any,
) -> contextlib.AbstractAsyncContextManager[RunningWorker[T]]:
    """`serve_worker` for a Twilio worker (channel-sms, channel-voice): isolated settings on
    `infra`, Twilio API = the simulator, webhooks called back on the worker's own port;
    `overrides` set further settings (e.g. `retry_tiers`, `rate_limit_per_s`)."""

    def settings(port: int) -> T:
        return settings_class(
            **{
                **infra.settings_kwargs(),
                "http_port": port,
                "public_url": f"http://127.0.0.1:{port}",
                "twilio_api_url": sim.http_url,
                **overrides,
            }
        )

    return serve_worker(settings, create_app)


@contextlib.asynccontextmanager
async def sim_faults(sim: ProviderSimulator, **config: Any) -> AsyncIterator[dict[str, Any]]:
    """Injects faults into the in-process simulator for the block (`PUT /sim/faults`, see
    `sirene.provider_sim.faults`); afterwards waits for the simulations still running and
    clears the faults."""
    async with httpx.AsyncClient(base_url=sim.http_url) as http:
        response = await http.put("/sim/faults", json=config)
        response.raise_for_status()
        try:
            yield response.json()
        finally:
            # let the simulations started under these faults finish under them (e.g. dropped
            # callbacks stay dropped instead of hitting a stopped worker later)
            await asyncio.wait_for(sim.service.drain(), timeout=120)
            await http.delete("/sim/faults")


async def ledger_counts(sim: ProviderSimulator, task_ids: Sequence[str]) -> dict[str, int]:
    """How often the simulator accepted each task (by task id)."""
    counts: dict[str, int] = {}
    async with httpx.AsyncClient(base_url=sim.http_url, timeout=60) as http:
        for start in range(0, len(task_ids), 5000):
            response = await http.post(
                "/sim/ledger/query", json={"task_ids": list(task_ids[start : start + 5000])}
            )
            response.raise_for_status()
            counts.update(response.json()["counts"])
    return counts


@pytest.fixture(scope="session")
async def simulator(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ProviderSimulator]:
    """The provider simulator (Twilio API, APNs, FCM) in-process, on free ports."""
    cert_dir: Path = tmp_path_factory.mktemp("sim-certs")
    settings = SimSettings(
        http_port=0, apns_port=0, smtp_port=0, cert_dir=cert_dir, status_callback_delay=0.01
    )
    async with ProviderSimulator(settings) as sim:
        yield sim


@pytest.fixture
def tenant() -> str:
    """A fresh tenant id per test."""
    return f"t-{uuid.uuid4().hex[:12]}"


def make_task(tenant: str, address: str, **fields: Any) -> DeliveryTask:
    """A valid urgent delivery task for `address` (fresh alert and citizen ids, expiring in an
    hour); `fields` override any value, `channel` defaults to SMS."""
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
    """A fresh German mobile number (E.164), unknown to the simulator."""
    return f"+49151{uuid.uuid4().int % 10**8:08d}"


def new_token() -> str:
    """A fresh 64-hex-digit device token, unknown to the simulator."""
    return uuid.uuid4().hex + uuid.uuid4().hex


async def produce(bootstrap: str, topic: str, records: list[tuple[str, bytes]]) -> None:
    """Produces `(key, value)` records in order, each acknowledged by all replicas."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value=value, key=key.encode())
    finally:
        await producer.stop()


async def send_tasks_in_bulk(bootstrap: str, topic: str, tasks: Sequence[DeliveryTask]) -> None:
    """Produces many tasks at once (batched, not one acknowledgement per record), as a fanout
    expanding a big alert does (key: citizen id)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    await producer.start()
    try:
        futures = [
            await producer.send(
                topic, value=t.model_dump_json().encode(), key=t.citizen_id.encode()
            )
            for t in tasks
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def send_tasks(bootstrap: str, topic: str, *tasks: DeliveryTask) -> None:
    """Produces tasks as the fanout does (key: citizen id)."""
    await produce(bootstrap, topic, [(t.citizen_id, t.model_dump_json().encode()) for t in tasks])


def receipts_of(task_id: str, status: str | None = None) -> Callable[[Any], bool]:
    """A `TopicReader.collect` predicate: receipts of one task (optionally of one status)."""

    def predicate(record: Any) -> bool:
        value = json.loads(record.value)
        return bool(
            value.get("task_id") == task_id and (status is None or value.get("status") == status)
        )

    return predicate


def receipt_from(record: Any) -> DeliveryReceipt:
    """The receipt in a consumed `delivery.receipt` record."""
    return DeliveryReceipt.model_validate_json(record.value)


async def sim_state(sim: ProviderSimulator, path: str) -> dict[str, Any]:
    """What the simulator recorded, e.g. `/sim/phones/<number>` or `/sim/devices/<token>`."""
    async with httpx.AsyncClient(base_url=sim.http_url) as http:
        response = await http.get(path)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result
