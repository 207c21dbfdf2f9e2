"""subscriptions against real Kafka and MongoDB (FerretDB locally): profiles published through
the outbox on the citizen document, tenant isolation, dead contact points."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from pydantic import SecretStr

from sirene.devstack.testing import InfraUrls, TopicReader
from sirene.runtime import Infra
from sirene.schemas import (
    CITIZEN_PROFILE,
    DELIVERY_RECEIPT,
    Channel,
    CitizenProfile,
    DeliveryReceipt,
    ErrorClass,
    ReceiptStatus,
    contact_key_for,
    profile_key,
    task_id_for,
)
from sirene.subscriptions.app import create_app
from sirene.subscriptions.settings import SubscriptionsSettings

pytestmark = pytest.mark.integration


def _tenant() -> tuple[str, str]:
    tenant = f"t-{uuid.uuid4().hex[:10]}"
    return tenant, f"token-{uuid.uuid4().hex}"


@contextlib.asynccontextmanager
async def running(
    sirene_infra: InfraUrls, tokens: dict[str, str]
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    settings = SubscriptionsSettings(
        **sirene_infra.settings_kwargs(),  # type: ignore[arg-type]
        api_tokens={t: SecretStr(v) for t, v in tokens.items()},
        relay_poll_interval_s=60.0,  # the wake-up must do it, not the poll
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        yield app, client


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _profiles(reader: TopicReader, tenant: str, citizen: str) -> list[CitizenProfile]:
    key = profile_key(tenant, citizen).encode()
    return [
        CitizenProfile.model_validate_json(r.value)
        for r in reader.seen
        if r.key == key and r.value is not None
    ]


async def _create_topics(client: httpx.AsyncClient, token: str) -> None:
    for topic in (
        {"id": "gefahrenhinweise", "name": "Gefahrenhinweise", "kind": "warning", "warnings": True},
        {"id": "verkehr", "name": {"de": "Verkehr", "en": "Traffic"}},
    ):
        response = await client.post("/api/v1/topics", json=topic, headers=_auth(token))
        assert response.status_code == 201, response.text


async def test_new_citizen_and_changes_are_published_as_profiles(sirene_infra: InfraUrls) -> None:
    tenant, token = _tenant()
    async with (
        TopicReader(sirene_infra.kafka, [CITIZEN_PROFILE]) as reader,
        running(sirene_infra, {tenant: token}) as (_, client),
    ):
        await _create_topics(client, token)
        topics = await client.get("/api/v1/topics", headers=_auth(token))
        assert [t["id"] for t in topics.json()] == ["gefahrenhinweise", "verkehr"]
        assert topics.json()[1]["name"] == {"de": "Verkehr", "en": "Traffic"}

        created = await client.post(
            "/api/v1/citizens",
            json={
                "contacts": {"sms": "0151 1234 5678", "voice": "030 123456"},
                "language": "de",
                "district": "Altstadt",
                "subscriptions": {"gefahrenhinweise": ["sms", "voice", "sms"]},
            },
            headers=_auth(token),
        )
        assert created.status_code == 201, created.text
        citizen = created.json()
        assert citizen["contacts"]["sms"] == {
            "address": "+4915112345678",
            "active": True,
            "deactivated_reason": None,
        }
        assert citizen["subscriptions"] == {"gefahrenhinweise": ["sms", "voice"]}
        cid = citizen["id"]

        key = profile_key(tenant, cid).encode()
        await reader.collect(lambda r: r.key == key, count=1, timeout_s=20)
        first = _profiles(reader, tenant, cid)[0]
        assert first.version == 1
        assert first.contacts.sms == "+4915112345678"
        assert first.contacts.voice == "+4930123456"
        assert first.district == "Altstadt"
        assert first.active

        changed = await client.put(
            f"/api/v1/citizens/{cid}/subscriptions",
            json={"subscriptions": {"verkehr": ["sms"], "gefahrenhinweise": ["voice"]}},
            headers=_auth(token),
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["version"] == 2
        await reader.collect(lambda r: r.key == key, count=2, timeout_s=20)
        second = _profiles(reader, tenant, cid)[1]
        assert second.version == 2
        assert second.subscriptions == {
            "gefahrenhinweise": [Channel.VOICE],
            "verkehr": [Channel.SMS],
        }

        in_use = await client.patch(
            f"/api/v1/citizens/{cid}",
            json={"contacts": {"sms": "0151 1234 5678"}},
            headers=_auth(token),
        )
        assert in_use.status_code == 422  # voice is still chosen for gefahrenhinweise
        assert in_use.json()["detail"][0]["type"] == "channel_without_contact"
        patched = await client.patch(
            f"/api/v1/citizens/{cid}",
            json={"contacts": {"sms": "+43 664 1234567", "voice": "030 123456"}, "language": "en"},
            headers=_auth(token),
        )
        assert patched.status_code == 200, patched.text
        await reader.collect(lambda r: r.key == key, count=3, timeout_s=20)
        third = _profiles(reader, tenant, cid)[2]
        assert third.version == 3
        assert third.contacts.sms == "+436641234567"
        assert third.language == "en"
        assert third.district == "Altstadt"

        for _ in range(50):  # the relay marks the outbox sent right after Kafka acknowledged
            shown = (await client.get(f"/api/v1/citizens/{cid}", headers=_auth(token))).json()
            if shown["profile_state"] == "sent":
                break
            await asyncio.sleep(0.1)
        assert shown["profile_state"] == "sent"
        page = (await client.get("/api/v1/citizens?limit=10", headers=_auth(token))).json()
        assert [c["id"] for c in page["items"]] == [cid]
        assert page["next_after"] is None


async def test_rules_and_tenant_isolation(sirene_infra: InfraUrls) -> None:
    tenant_a, token_a = _tenant()
    tenant_b, token_b = _tenant()
    async with running(sirene_infra, {tenant_a: token_a, tenant_b: token_b}) as (_, client):
        await _create_topics(client, token_a)
        duplicate = await client.post(
            "/api/v1/topics", json={"id": "verkehr", "name": "Verkehr"}, headers=_auth(token_a)
        )
        assert duplicate.status_code == 409
        # The same topic id is free in another tenant.
        other = await client.post(
            "/api/v1/topics", json={"id": "verkehr", "name": "Verkehr"}, headers=_auth(token_b)
        )
        assert other.status_code == 201

        no_contact = await client.post(
            "/api/v1/citizens",
            json={"contacts": {"sms": "0151 12345678"}, "subscriptions": {"verkehr": ["push"]}},
            headers=_auth(token_a),
        )
        assert no_contact.status_code == 422
        assert no_contact.json()["detail"][0]["type"] == "channel_without_contact"
        unknown = await client.post(
            "/api/v1/citizens",
            json={"contacts": {"sms": "0151 12345678"}, "subscriptions": {"freibad": ["sms"]}},
            headers=_auth(token_a),
        )
        assert unknown.status_code == 422
        assert unknown.json()["detail"][0]["type"] == "topic_unknown"

        created = await client.post(
            "/api/v1/citizens",
            json={"contacts": {"sms": "0151 12345678"}, "subscriptions": {"verkehr": ["sms"]}},
            headers=_auth(token_a),
        )
        cid = created.json()["id"]
        chosen = {
            "id": "demo-0001",
            "name": "Demo-Bürger 0001",
            "contacts": {"voice": "+4930 5550001"},
            "subscriptions": {"verkehr": ["voice"]},
        }
        first = await client.post("/api/v1/citizens", json=chosen, headers=_auth(token_a))
        assert first.status_code == 201, first.text
        assert first.json()["id"] == "demo-0001"
        assert first.json()["name"] == "Demo-Bürger 0001"
        again = await client.post("/api/v1/citizens", json=chosen, headers=_auth(token_a))
        assert again.status_code == 409
        # The same id is free in tenant B (which has its own 'verkehr' topic).
        in_b = await client.post("/api/v1/citizens", json=chosen, headers=_auth(token_b))
        assert in_b.status_code == 201
        assert (
            await client.get(f"/api/v1/citizens/{cid}", headers=_auth(token_b))
        ).status_code == 404
        put_b = await client.put(
            f"/api/v1/citizens/{cid}/subscriptions",
            json={"subscriptions": {"verkehr": ["sms"]}},
            headers=_auth(token_b),
        )
        assert put_b.status_code == 404
        listed_b = (await client.get("/api/v1/citizens", headers=_auth(token_b))).json()["items"]
        assert [c["id"] for c in listed_b] == ["demo-0001"]
        assert (await client.get("/api/v1/citizens")).status_code == 401


async def _produce(bootstrap: str, topic: str, records: list[tuple[str, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value=value, key=key.encode())
    finally:
        await producer.stop()


async def test_contact_dead_receipt_deactivates_the_contact(sirene_infra: InfraUrls) -> None:
    tenant, token = _tenant()
    async with (
        TopicReader(sirene_infra.kafka, [CITIZEN_PROFILE]) as reader,
        running(sirene_infra, {tenant: token}) as (app, client),
    ):
        infra: Infra = app.state.infra
        await infra.wait_until_assigned()
        await _create_topics(client, token)
        created = await client.post(
            "/api/v1/citizens",
            json={
                "contacts": {"sms": "0151 12345678", "voice": "030 123456"},
                "subscriptions": {"gefahrenhinweise": ["sms", "voice"]},
            },
            headers=_auth(token),
        )
        cid = created.json()["id"]
        number = created.json()["contacts"]["sms"]["address"]
        key = profile_key(tenant, cid).encode()
        await reader.collect(lambda r: r.key == key, count=1, timeout_s=20)

        def receipt(status: ReceiptStatus, error: ErrorClass | None) -> tuple[str, bytes]:
            event = DeliveryReceipt(
                tenant_id=tenant,
                task_id=task_id_for(
                    "alert-1",
                    cid,
                    Channel.SMS,
                    contact_key_for(number),
                ),
                alert_id="alert-1",
                citizen_id=cid,
                channel=Channel.SMS,
                status=status,
                provider="twilio",
                error_code="21614",
                error_class=error,
            )
            return "alert-1", event.model_dump_json().encode()

        await _produce(
            sirene_infra.kafka,
            DELIVERY_RECEIPT,
            [
                receipt(ReceiptStatus.FAILED, ErrorClass.TRANSIENT),
                ("alert-1", b"{not json"),
                receipt(ReceiptStatus.FAILED, ErrorClass.CONTACT_DEAD),
            ],
        )
        await reader.collect(lambda r: r.key == key, count=2, timeout_s=30)
        latest = _profiles(reader, tenant, cid)[-1]
        assert latest.version == 2
        assert latest.contacts.sms is None
        assert latest.contacts.voice == "+4930123456"
        shown = (await client.get(f"/api/v1/citizens/{cid}", headers=_auth(token))).json()
        assert shown["contacts"]["sms"]["active"] is False
        assert shown["contacts"]["sms"]["deactivated_reason"] == "contact_dead"
        await asyncio.sleep(1.0)  # the transient failure changed nothing
        assert len(_profiles(reader, tenant, cid)) == 2
