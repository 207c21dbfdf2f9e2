"""A duplicated `alert.published` (an outbox relay retry, a rebalance) is expanded twice by the
fanout — into the same task ids — and the channel workers' claim keeps every citizen at one
SMS: the simulator receives each message once, while the second copies only re-emit receipts."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from sirene.devstack.testing import InfraUrls, TopicReader
from sirene.schemas import (
    ALERT_PUBLISHED,
    CITIZEN_PROFILE,
    DELIVERY_RECEIPT,
    AlertPublished,
    Channel,
    CitizenProfile,
    Lane,
    delivery_topic,
    profile_key,
    utcnow,
)
from sirene.schemas.examples import EXAMPLES

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


async def _produce(kafka: str, topic: str, records: list[tuple[str, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka, acks="all")
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value=value, key=key.encode())
    finally:
        await producer.stop()


async def test_a_duplicated_alert_reaches_each_phone_once(
    platform: dict[str, str], sirene_infra: InfraUrls
) -> None:
    tenant, marker = f"t-{uuid.uuid4().hex[:12]}", uuid.uuid4().hex[:8]
    numbers = {f"c-{i}": f"+49152{uuid.uuid4().int % 10**8:08d}" for i in range(12)}
    await _produce(
        sirene_infra.kafka,
        CITIZEN_PROFILE,
        [
            (
                profile_key(tenant, citizen),
                CitizenProfile(
                    tenant_id=tenant,
                    citizen_id=citizen,
                    active=True,
                    contacts={"sms": number},
                    subscriptions={"warn": ["sms"]},  # type: ignore[dict-item]
                    version=1,
                    updated_at=utcnow(),
                )
                .model_dump_json()
                .encode(),
            )
            for citizen, number in numbers.items()
        ],
    )
    async with httpx.AsyncClient(base_url=platform["fanout"], timeout=10) as fanout:
        deadline = time.monotonic() + 60
        while (await fanout.get("/api/v1/index/status")).json()["lag"] != 0:
            assert time.monotonic() < deadline, "the fanout's index did not catch up"
            await asyncio.sleep(0.2)
    now = utcnow()
    example = EXAMPLES["alert.published"][0]
    alert = AlertPublished.model_validate(
        {
            **example,
            "tenant_id": tenant,
            "alert_id": f"dup-{marker}",
            "texts": {"de": {**example["texts"]["de"], "sms": f"Warnung {marker}"}},
            "audience": {"topics": ["warn"]},
            "effective": now,
            "published_at": now,
            "expires": now + timedelta(hours=1),
        }
    )
    record = (alert.alert_id, alert.model_dump_json().encode())
    task_topic = delivery_topic(Channel.SMS, Lane.URGENT)
    async with TopicReader(sirene_infra.kafka, [task_topic, DELIVERY_RECEIPT]) as reader:
        await _produce(sirene_infra.kafka, ALERT_PUBLISHED, [record, record])

        def of_alert(r: Any, *, status: str | None = None) -> bool:
            value = json.loads(r.value)
            return bool(
                value["alert_id"] == alert.alert_id
                and (status is None or value.get("status") == status)
            )

        tasks = await reader.collect(
            lambda r: r.topic == task_topic and of_alert(r), count=2 * len(numbers), timeout_s=120
        )
        # each task is handed off once; its second copy only re-emits the stored receipt (a
        # batch redelivered while a copy held the lease may re-emit it once more)
        deadline = time.monotonic() + 120
        while True:
            sent = Counter(
                json.loads(r.value)["task_id"]
                for r in reader.seen
                if r.topic == DELIVERY_RECEIPT and of_alert(r, status="sent")
            )
            if len(sent) == len(numbers) and min(sent.values()) >= 2:
                break
            assert time.monotonic() < deadline, f"second copies not handled: {sent}"
            with contextlib.suppress(AssertionError):
                await reader.collect(
                    lambda r: r.topic == DELIVERY_RECEIPT and of_alert(r, status="sent"),
                    count=sum(sent.values()) + 1,
                    timeout_s=2,
                )
    task_ids = Counter(json.loads(r.value)["task_id"] for r in tasks)
    assert len(task_ids) == len(numbers), "one task per citizen"
    assert set(task_ids.values()) == {2}, "the second expansion gave the same task ids"
    assert set(sent) == set(task_ids)
    async with httpx.AsyncClient(base_url=platform["provider-sim"], timeout=10) as sim:
        for number in numbers.values():
            phone = (await sim.get(f"/sim/phones/{quote(number, safe='')}")).json()
            bodies = [m["body"] for m in phone["messages"] if marker in m["body"]]
            assert len(bodies) == 1, (number[-4:], bodies)
