"""The publisher against real Kafka and MongoDB (FerretDB locally): alert.published through
the outbox on the alert document (also after a crash), progress from receipts, tenants."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from pydantic import SecretStr

from sirene.devstack.testing import InfraUrls, TopicReader, serve_app
from sirene.publisher.accounts import API_PRINCIPAL, Principal
from sirene.publisher.app import create_app
from sirene.publisher.models import AlertIn
from sirene.publisher.repository import Repository
from sirene.publisher.roles import Role
from sirene.publisher.service import create_alert
from sirene.publisher.settings import PublisherSettings
from sirene.runtime import Infra, create_mongo_client
from sirene.schemas import (
    ALERT_FANOUT,
    ALERT_PUBLISHED,
    DELIVERY_RECEIPT,
    AlertPublished,
    Channel,
    DeliveryReceipt,
    ErrorClass,
    FanoutSummary,
    Lane,
    Language,
    ReceiptStatus,
    utcnow,
)

pytestmark = pytest.mark.integration

TEXTS = {
    "headline": "Hochwasser an der Mulde",
    "push_title": "Hochwasserwarnung",
    "push_body": "Der Pegel steigt. Meiden Sie das Ufer.",
    "sms": "Hochwasserwarnung Musterstadt: Pegel steigt, Ufer meiden.",
    "voice": "Achtung, Hochwasserwarnung. Meiden Sie das Ufer.",
}


def _tenant() -> tuple[str, str]:
    return f"t-{uuid.uuid4().hex[:10]}", f"token-{uuid.uuid4().hex}"


def _settings(sirene_infra: InfraUrls, tokens: dict[str, str], **extra: Any) -> PublisherSettings:
    return PublisherSettings(
        **sirene_infra.settings_kwargs(),  # type: ignore[arg-type]
        api_tokens={t: SecretStr(v) for t, v in tokens.items()},
        **extra,
    )


def running(
    settings: PublisherSettings,
) -> contextlib.AbstractAsyncContextManager[tuple[FastAPI, httpx.AsyncClient]]:
    return serve_app(create_app(settings))


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


RING = [[8.671, 50.108], [8.689, 50.108], [8.689, 50.113], [8.671, 50.108]]


def _alert(**overrides: Any) -> dict[str, Any]:
    return {
        "status": "Exercise",
        "severity": "Moderate",  # no four-eyes approval needed (see test_workflow_integration)
        "urgency": "Immediate",
        "certainty": "Likely",
        "category": "Met",
        "texts": {"de": TEXTS},
        "audience": {
            "topics": ["gefahrenhinweise"],
            "districts": ["Altstadt"],
            "areas": [{"description": "Mainufer", "polygon": [RING]}],
        },
        "duration_minutes": 120,
        "publish": True,
    } | overrides


def _published(reader: TopicReader, alert_id: str) -> list[AlertPublished]:
    return [
        AlertPublished.model_validate_json(r.value)
        for r in reader.seen
        if r.key == alert_id.encode()
    ]


async def test_publish_emits_exactly_one_alert_published(sirene_infra: InfraUrls) -> None:
    tenant, token = _tenant()
    settings = _settings(sirene_infra, {tenant: token}, relay_poll_interval_s=60.0)
    async with (
        TopicReader(sirene_infra.kafka, [ALERT_PUBLISHED]) as reader,
        running(settings) as (_, client),
    ):
        created = await client.post("/api/v1/alerts", json=_alert(), headers=_auth(token))
        assert created.status_code == 201, created.text
        alert = created.json()
        assert alert["state"] == "published"
        assert alert["lane"] == "urgent"
        assert alert["exercise"] is True
        assert alert["texts"]["de"]["sms"].startswith("ÜBUNG: ")
        alert_id = alert["id"]
        await reader.collect(lambda r: r.key == alert_id.encode(), count=1, timeout_s=20)
        again = await client.post(f"/api/v1/alerts/{alert_id}/publish", headers=_auth(token))
        assert again.status_code == 200  # idempotent, no second event

        draft = await client.post(
            "/api/v1/alerts", json=_alert(publish=False, status="Actual"), headers=_auth(token)
        )
        draft_id = draft.json()["id"]
        assert draft.json()["state"] == "draft"
        assert draft.json()["relay_state"] is None
        for _ in range(2):
            published = await client.post(
                f"/api/v1/alerts/{draft_id}/publish", headers=_auth(token)
            )
            assert published.status_code == 200
            assert published.json()["state"] == "published"
        await reader.collect(lambda r: r.key == draft_id.encode(), count=1, timeout_s=20)
        await asyncio.sleep(1.5)  # time for any duplicate to show up

        events = _published(reader, alert_id)
        assert len(events) == 1
        event = events[0]
        assert event.tenant_id == tenant
        assert event.exercise
        assert event.lane is Lane.URGENT
        assert event.texts[Language.DE].voice.startswith("ÜBUNG: ")
        assert event.audience.districts == ["Altstadt"]
        # the target area survives storage (polygons kept as JSON text on FerretDB)
        assert [[list(p) for p in r] for r in event.audience.areas[0].polygon] == [RING]
        assert alert["audience"]["areas"] == [{"description": "Mainufer", "polygon": [RING]}]
        assert event.expires - event.effective == timedelta(minutes=120)
        assert len(_published(reader, draft_id)) == 1
        assert not _published(reader, draft_id)[0].exercise

        shown = (await client.get(f"/api/v1/alerts/{alert_id}", headers=_auth(token))).json()
        assert shown["relay_state"] == "sent"
        listed = (await client.get("/api/v1/alerts", headers=_auth(token))).json()["items"]
        assert [a["id"] for a in listed] == [draft_id, alert_id]


async def test_pending_outbox_is_relayed_after_a_restart(sirene_infra: InfraUrls) -> None:
    tenant, token = _tenant()
    settings = _settings(sirene_infra, {tenant: token})
    # A publisher that stored the alert and crashed before its relay ran: the alert sits in
    # MongoDB with a pending outbox and nothing is on Kafka.
    client = create_mongo_client(settings)
    try:
        repo = Repository(client[settings.mongodb_db])
        await repo.ensure_indexes()
        doc = await create_alert(
            repo=repo,
            wake=lambda: None,
            principal=Principal(
                tenant=tenant, id=API_PRINCIPAL, name="API", roles=frozenset({Role.ALERTER})
            ),
            body=AlertIn.model_validate(_alert(status="Test")),
            default_duration_s=3600,
        )
    finally:
        await client.close()
    assert doc["outbox"]["state"] == "pending"
    async with TopicReader(sirene_infra.kafka, [ALERT_PUBLISHED]) as reader:
        await asyncio.sleep(0.5)
        assert _published(reader, doc["id"]) == []
        async with running(settings) as (_, http):
            await reader.collect(lambda r: r.key == doc["id"].encode(), count=1, timeout_s=20)
            shown = (await http.get(f"/api/v1/alerts/{doc['id']}", headers=_auth(token))).json()
            for _ in range(50):
                if shown["relay_state"] == "sent":
                    break
                await asyncio.sleep(0.1)
                shown = (await http.get(f"/api/v1/alerts/{doc['id']}", headers=_auth(token))).json()
            assert shown["relay_state"] == "sent"
        event = _published(reader, doc["id"])[0]
        assert event.event_id == doc["outbox"]["event_id"]
        assert event.texts[Language.DE].sms.startswith("TEST: ")
        # Restarting again relays nothing more: the outbox is sent.
        async with running(settings):
            await asyncio.sleep(1.0)
        assert len(_published(reader, doc["id"])) == 1


async def _produce(bootstrap: str, topic: str, records: list[tuple[str, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value=value, key=key.encode())
    finally:
        await producer.stop()


async def _wait_progress(
    client: httpx.AsyncClient, alert_id: str, token: str, ready: Any
) -> dict[str, Any]:
    progress: dict[str, Any] = {}
    for _ in range(150):
        progress = (
            await client.get(f"/api/v1/alerts/{alert_id}/progress", headers=_auth(token))
        ).json()
        if ready(progress):
            return progress
        await asyncio.sleep(0.1)
    raise AssertionError(f"progress never got there: {progress}")


async def test_progress_from_receipts(sirene_infra: InfraUrls) -> None:
    tenant, token = _tenant()
    other, other_token = _tenant()
    settings = _settings(sirene_infra, {tenant: token, other: other_token})
    async with running(settings) as (app, client):
        infra: Infra = app.state.infra
        await infra.wait_until_assigned()
        created = await client.post(
            "/api/v1/alerts", json=_alert(status="Actual"), headers=_auth(token)
        )
        alert_id = created.json()["id"]
        empty = (
            await client.get(f"/api/v1/alerts/{alert_id}/progress", headers=_auth(token))
        ).json()
        assert empty["channels"] == {}
        assert empty["complete"] is False

        def receipt(task: int, channel: Channel, status: ReceiptStatus) -> tuple[str, bytes]:
            event = DeliveryReceipt(
                tenant_id=tenant,
                task_id=f"{task:032x}",
                alert_id=alert_id,
                citizen_id=f"c-{task}",
                channel=channel,
                status=status,
                provider="sim",
            )
            return alert_id, event.model_dump_json().encode()

        now = utcnow()
        summary = FanoutSummary(
            tenant_id=tenant,
            alert_id=alert_id,
            lane=Lane.URGENT,
            expected={Channel.SMS: 2, Channel.PUSH: 1},
            recipients=2,
            held=1,  # one of them in their quiet hours
            started_at=now,
            completed_at=now,
        )
        await _produce(
            sirene_infra.kafka, ALERT_FANOUT, [(alert_id, summary.model_dump_json().encode())]
        )
        await _produce(
            sirene_infra.kafka,
            DELIVERY_RECEIPT,
            [
                receipt(1, Channel.SMS, ReceiptStatus.DELIVERED),  # out of order: before 'sent'
                receipt(1, Channel.SMS, ReceiptStatus.SENT),
                receipt(2, Channel.SMS, ReceiptStatus.SENT),
                receipt(2, Channel.SMS, ReceiptStatus.FAILED),
                receipt(3, Channel.PUSH, ReceiptStatus.SENT),
                receipt(3, Channel.PUSH, ReceiptStatus.QUEUED),
            ],
        )
        # A receipt of another tenant for the same alert id never shows up in this view.
        foreign = DeliveryReceipt(
            tenant_id=other,
            task_id=f"{9:032x}",
            alert_id=alert_id,
            citizen_id="c-9",
            channel=Channel.SMS,
            status=ReceiptStatus.DELIVERED,
            provider="sim",
        )
        await _produce(
            sirene_infra.kafka, DELIVERY_RECEIPT, [(alert_id, foreign.model_dump_json().encode())]
        )
        progress = await _wait_progress(
            client,
            alert_id,
            token,
            lambda p: (
                p["totals"]["total"] == 3
                and p["totals"]["statuses"]["failed"] == 1
                and p["recipients"] is not None
            ),
        )
        sms = progress["channels"]["sms"]
        assert sms["expected"] == 2
        assert sms["statuses"]["delivered"] == 1  # the late 'sent' did not demote it
        assert sms["statuses"]["sent"] == 0
        assert sms["final"] == 2
        push = progress["channels"]["push"]
        assert push["expected"] == 1
        assert push["statuses"]["sent"] == 1
        assert push["statuses"]["queued"] == 0
        assert push["final"] == 0
        assert progress["totals"]["expected"] == 3
        assert progress["recipients"] == 2
        assert progress["held"] == 1
        assert progress["first_delivery_at"] is not None
        assert progress["complete"] is False

        await _produce(
            sirene_infra.kafka,
            DELIVERY_RECEIPT,
            [receipt(3, Channel.PUSH, ReceiptStatus.DELIVERED)],
        )
        done = await _wait_progress(client, alert_id, token, lambda p: p["complete"])
        assert done["channels"]["push"]["statuses"]["delivered"] == 1
        assert done["totals"]["final"] == 3
        assert done["last_delivery_at"] >= done["first_delivery_at"]

        # Tenant isolation and authentication.
        for path in (
            f"/api/v1/alerts/{alert_id}",
            f"/api/v1/alerts/{alert_id}/progress",
            f"/api/v1/alerts/{alert_id}/report.csv",
        ):
            assert (await client.get(path, headers=_auth(other_token))).status_code == 404
            assert (await client.get(path)).status_code == 401
        publish_other = await client.post(
            f"/api/v1/alerts/{alert_id}/publish", headers=_auth(other_token)
        )
        assert publish_other.status_code == 404
        other_list = (await client.get("/api/v1/alerts", headers=_auth(other_token))).json()
        assert other_list["items"] == []


async def test_delivery_report_from_receipts(sirene_infra: InfraUrls) -> None:
    """Receipts (out of order, one repeated, a retried failure) end in a report whose reach
    over time, expected vs reached and failure reasons match what was sent and the progress
    view."""
    tenant, token = _tenant()
    settings = _settings(sirene_infra, {tenant: token})
    async with running(settings) as (app, client):
        infra: Infra = app.state.infra
        await infra.wait_until_assigned()
        created = (
            await client.post("/api/v1/alerts", json=_alert(status="Actual"), headers=_auth(token))
        ).json()
        alert_id = created["id"]
        published = datetime.fromisoformat(created["published_at"])

        def receipt(
            task: int, channel: Channel, status: ReceiptStatus, seconds: float, **extra: Any
        ) -> tuple[str, bytes]:
            event = DeliveryReceipt(
                tenant_id=tenant,
                task_id=f"{task:032x}",
                alert_id=alert_id,
                citizen_id=f"c-{task}",
                channel=channel,
                status=status,
                provider="sim",
                published_at=published,
                occurred_at=published + timedelta(seconds=seconds),
                **extra,
            )
            return alert_id, event.model_dump_json().encode()

        summary = FanoutSummary(
            tenant_id=tenant,
            alert_id=alert_id,
            lane=Lane.URGENT,
            expected={Channel.SMS: 3, Channel.PUSH: 2},
            recipients=4,
            started_at=published,
            completed_at=published,
        )
        await _produce(
            sirene_infra.kafka, ALERT_FANOUT, [(alert_id, summary.model_dump_json().encode())]
        )
        failed = {"error_class": ErrorClass.PERMANENT, "error_code": "30005"}
        retried = {"error_class": ErrorClass.TRANSIENT, "error_code": "30003", "attempt": 2}
        await _produce(
            sirene_infra.kafka,
            DELIVERY_RECEIPT,
            [
                receipt(1, Channel.SMS, ReceiptStatus.CONFIRMED, 3.2),  # before its 'delivered'
                receipt(1, Channel.SMS, ReceiptStatus.DELIVERED, 0.5),
                receipt(1, Channel.SMS, ReceiptStatus.DELIVERED, 0.5),  # a repeat changes nothing
                receipt(2, Channel.SMS, ReceiptStatus.DELIVERED, 1.5),
                receipt(3, Channel.SMS, ReceiptStatus.UNDELIVERED, 2.0, **retried),
                receipt(3, Channel.SMS, ReceiptStatus.FAILED, 0.8, **failed),
                receipt(4, Channel.PUSH, ReceiptStatus.DELIVERED, 2.2),
                receipt(5, Channel.PUSH, ReceiptStatus.EXPIRED, 2.4),
            ],
        )
        progress = await _wait_progress(client, alert_id, token, lambda p: p["complete"])
        response = await client.get(f"/api/v1/alerts/{alert_id}/report.csv", headers=_auth(token))
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/csv")
        assert f"zustellbericht-{alert_id}.csv" in response.headers["content-disposition"]
        rows = list(csv.DictReader(io.StringIO(response.text)))

        channels = {r["channel"]: r for r in rows if r["section"] == "channel"}
        for channel in ("sms", "push"):
            shown = progress["channels"][channel]
            reached = shown["statuses"]["delivered"] + shown["statuses"]["confirmed"]
            assert int(channels[channel]["reached"]) == reached
            assert int(channels[channel]["expected"]) == shown["expected"]
            assert int(channels[channel]["tasks"]) == shown["total"]
        assert (channels["sms"]["reached"], channels["sms"]["failed"]) == ("2", "1")
        assert (channels["push"]["reached"], channels["push"]["failed"]) == ("1", "1")

        def reach(channel: str) -> list[tuple[int, int]]:
            return [
                (int(r["seconds_since_publication"]), int(r["reached_cumulative"]))
                for r in rows
                if r["section"] == "reach" and r["channel"] == channel
            ]

        # 1 s buckets: sms reached at 0.5 s (first receipt of task 1) and 1.5 s; push at 2.2 s
        assert reach("sms") == [(1, 1), (2, 2), (3, 2)]
        assert reach("push") == [(1, 0), (2, 0), (3, 1)]
        failures = {
            (r["channel"], r["status"], r["error_class"], r["error_code"], r["failed"])
            for r in rows
            if r["section"] == "failure"
        }
        assert failures == {
            ("sms", "undelivered", "transient", "30003", "1"),  # the later attempt's reason
            ("push", "expired", "", "", "1"),
        }
