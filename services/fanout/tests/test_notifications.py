"""Notifications to one person: each `notification.requested` becomes one delivery task on
its channel's bulk lane (real Kafka); bad ones are dead-lettered, expired ones dropped."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from aiokafka import AIOKafkaProducer

from sirene.devstack.testing import InfraUrls, TopicReader
from sirene.fanout.app import create_app
from sirene.fanout.notifications import task_for
from sirene.fanout.settings import FanoutSettings
from sirene.runtime import Infra
from sirene.schemas import (
    DEAD_LETTER,
    NOTIFICATION_REQUESTED,
    Channel,
    Lane,
    NotificationRequested,
    delivery_topic,
    utcnow,
)
from sirene.schemas.examples import EXAMPLES


def _notification(tenant: str, **changes: object) -> NotificationRequested:
    now = utcnow()
    data = {
        **EXAMPLES[NOTIFICATION_REQUESTED][0],
        "tenant_id": tenant,
        "notification_id": uuid.uuid4().hex,
        "requested_at": now,
        "expires": now + timedelta(days=7),
        **changes,
    }
    return NotificationRequested.model_validate(data)


def test_a_notification_becomes_one_bulk_task_with_a_stable_id() -> None:
    note = _notification("musterstadt")
    task = task_for(note)
    assert task.channel is Channel.SMS
    assert task.lane is Lane.BULK
    assert task.address == note.address
    assert task.body == note.body
    assert task.citizen_id == note.recipient_id
    assert task_for(note).task_id == task.task_id
    other = note.model_copy(update={"address": "+4915199999999"})
    assert task_for(other).task_id != task.task_id
    mail = _notification("musterstadt", channel="email", address="a@b.example", subject="Hallo")
    assert task_for(mail).title == "Hallo"


@pytest.mark.integration
async def test_notifications_are_turned_into_tasks_and_bad_ones_dead_lettered(
    sirene_infra: InfraUrls,
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:12]}"
    settings = FanoutSettings(
        **sirene_infra.settings_kwargs(),  # type: ignore[arg-type]
        index_prefix=f"test:{uuid.uuid4().hex[:8]}",
    )
    app = create_app(settings)
    infra: Infra = app.state.infra
    sms = _notification(tenant)
    mail = _notification(tenant, channel="email", address="bauhof@example.org", subject="Neu")
    voice = _notification(tenant, channel="voice", address="+4930123456")
    expired = _notification(tenant, expires=utcnow() - timedelta(seconds=1))
    topics = [delivery_topic(Channel.SMS, Lane.BULK), delivery_topic(Channel.EMAIL, Lane.BULK)]
    async with (
        app.router.lifespan_context(app),
        TopicReader(sirene_infra.kafka, [*topics, DEAD_LETTER]) as reader,
    ):
        await infra.wait_until_assigned()
        producer = AIOKafkaProducer(bootstrap_servers=sirene_infra.kafka, acks="all")
        await producer.start()
        try:
            for note in (sms, mail, voice, expired, sms):  # sms twice: redelivered event
                await producer.send_and_wait(
                    NOTIFICATION_REQUESTED, note.model_dump_json().encode(), b"r"
                )
            await producer.send_and_wait(
                NOTIFICATION_REQUESTED, json.dumps({"tenant_id": tenant}).encode(), b"r"
            )
        finally:
            await producer.stop()

        def ours(record: object) -> bool:
            value = json.loads(record.value)  # type: ignore[attr-defined]
            return bool(value.get("tenant_id") == tenant)

        dead = await reader.collect(
            lambda r: r.topic == DEAD_LETTER and ours(r), count=2, timeout_s=60
        )
        tasks = await reader.collect(lambda r: r.topic in topics and ours(r), count=3)
        by_topic = {r.topic: json.loads(r.value) for r in tasks}
        assert by_topic[topics[0]]["address"] == sms.address
        assert by_topic[topics[1]]["title"] == "Neu"
        sms_ids = {json.loads(r.value)["task_id"] for r in tasks if r.topic == topics[0]}
        assert sms_ids == {task_for(sms).task_id}, "a redelivered event keeps its task id"
        reasons = " ".join(json.loads(r.value)["reason"] for r in dead)
        assert "voice is not offered" in reasons
        assert "schema violation" in reasons
        assert all(json.loads(r.value)["alert_id"] != expired.notification_id for r in tasks)
