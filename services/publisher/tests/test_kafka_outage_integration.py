"""A publish while Kafka is down is never lost and never emitted twice: the alert stays pending
in MongoDB and goes out once Kafka is back. Runs against a Kafka broker of its own (stopped
and started again by the test), so no other test sees the outage."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from fastapi import FastAPI
from pydantic import SecretStr

from sirene.devstack import stack
from sirene.devstack.testing import InfraUrls, serve_app
from sirene.publisher.app import create_app
from sirene.publisher.settings import PublisherSettings
from sirene.schemas import ALERT_PUBLISHED, AlertPublished

pytestmark = pytest.mark.integration
log = logging.getLogger(__name__)

TEXTS = {
    "headline": "Stromausfall Nordviertel",
    "push_title": "Stromausfall",
    "push_body": "Im Nordviertel ist der Strom ausgefallen.",
    "sms": "Stromausfall Nordviertel: empfindliche Geräte ausschalten.",
    "voice": "Achtung, Stromausfall im Nordviertel.",
}


@pytest.fixture
def own_kafka() -> Iterator[stack.Proc]:
    """A single Kafka broker only this test uses (ports next to the test stack's)."""
    layout = stack.Layout(
        f"{stack.TEST.name}-kafka-outage", stack.TEST.home / "kafka-outage", stack.TEST.offset + 50
    )
    shutil.rmtree(layout.home, ignore_errors=True)
    kafka = stack.infra_procs(layout)[0]
    stack.start(kafka, echo=log.info)
    try:
        yield kafka
    finally:
        stack.stop(kafka)
        shutil.rmtree(layout.home, ignore_errors=True)


def running(
    settings: PublisherSettings,
) -> contextlib.AbstractAsyncContextManager[tuple[FastAPI, httpx.AsyncClient]]:
    return serve_app(create_app(settings))


async def _all_records(bootstrap: str, topic: str) -> list[Any]:
    """Every record of the topic, from the beginning to the current end."""
    # no group: every partition of the topic is assigned to this consumer
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        for _ in range(200):
            partitions = list(consumer.assignment())
            if partitions:
                break
            await asyncio.sleep(0.05)
        assert partitions, f"{topic} has no partitions"
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[Any] = []
        while True:
            behind = [tp for tp, end in ends.items() if await consumer.position(tp) < end]
            if not behind:
                return records
            batches = await consumer.getmany(timeout_ms=1000)
            for batch in batches.values():
                records.extend(batch)
    finally:
        await consumer.stop()


async def test_publish_while_kafka_is_down_stays_pending_then_goes_out_exactly_once(
    sirene_infra: InfraUrls, own_kafka: stack.Proc
) -> None:
    tenant, token = f"t-{uuid.uuid4().hex[:10]}", f"token-{uuid.uuid4().hex}"
    settings = PublisherSettings(
        **sirene_infra.settings_kwargs() | {"kafka": own_kafka.layout.kafka_url},  # type: ignore[arg-type]
        api_tokens={tenant: SecretStr(token)},
        relay_poll_interval_s=1.0,
    )
    auth = {"Authorization": f"Bearer {token}"}
    async with running(settings) as (_, client):
        await asyncio.to_thread(stack.stop, own_kafka)
        assert not stack.port_open(own_kafka.port)

        created = await client.post(
            "/api/v1/alerts",
            json={
                "status": "Test",
                "severity": "Moderate",
                "urgency": "Immediate",
                "texts": {"de": TEXTS},
                "audience": {"topics": ["gefahrenhinweise"]},
                "publish": True,
            },
            headers=auth,
        )
        assert created.status_code == 201, created.text  # staff are not held up by Kafka
        alert = created.json()
        assert (alert["state"], alert["relay_state"]) == ("published", "pending")
        await asyncio.sleep(4.0)  # several relay rounds fail meanwhile
        shown = (await client.get(f"/api/v1/alerts/{alert['id']}", headers=auth)).json()
        assert shown["relay_state"] == "pending"

        await asyncio.to_thread(stack.start, own_kafka, echo=log.info)
        for _ in range(240):
            shown = (await client.get(f"/api/v1/alerts/{alert['id']}", headers=auth)).json()
            if shown["relay_state"] == "sent":
                break
            await asyncio.sleep(0.5)
        assert shown["relay_state"] == "sent", shown
        await asyncio.sleep(2.0)  # any late duplicate would be on the topic by now

    records = await _all_records(own_kafka.layout.kafka_url, ALERT_PUBLISHED)
    ours = [r for r in records if r.key == alert["id"].encode()]
    assert len(ours) == 1, f"{len(ours)} alert.published records for one publish"
    event = AlertPublished.model_validate_json(ours[0].value)
    assert event.tenant_id == tenant
    assert event.texts["de"].sms.startswith("TEST: ")  # type: ignore[index]
