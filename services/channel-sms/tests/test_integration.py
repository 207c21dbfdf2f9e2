"""channel-sms against real Kafka and Redis and the provider simulator, through the real
twilio client and real signed status callbacks."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from twilio.request_validator import RequestValidator

from sirene.devstack.channel_testing import (
    produce,
    receipt_from,
    receipts_of,
    send_tasks,
    sim_state,
)
from sirene.devstack.testing import InfraUrls, TopicReader
from sirene.provider_sim.app import ProviderSimulator
from sirene.runtime.twilio import TaskRef
from sirene.schemas import (
    DEAD_LETTER,
    DELIVERY_RECEIPT,
    Channel,
    ErrorClass,
    Lane,
    ReceiptStatus,
    delivery_topic,
    utcnow,
)

pytestmark = pytest.mark.integration

URGENT = delivery_topic(Channel.SMS, Lane.URGENT)
BULK = delivery_topic(Channel.SMS, Lane.BULK)


async def _phone(sim: ProviderSimulator, number: str) -> dict[str, Any]:
    return await sim_state(sim, f"/sim/phones/{number}")


async def test_task_is_sent_and_status_callbacks_become_receipts(
    sirene_infra: InfraUrls,
    simulator: ProviderSimulator,
    worker: Any,
    tenant: str,
    task_factory: Any,
    number: str,
) -> None:
    task = task_factory(tenant, number)
    async with TopicReader(sirene_infra.kafka, [DELIVERY_RECEIPT]) as reader:
        await send_tasks(sirene_infra.kafka, URGENT, task)
        records = await reader.collect(receipts_of(task.task_id), count=3, timeout_s=30)
    receipts = [receipt_from(r) for r in records]
    statuses = [r.status for r in receipts]
    assert statuses.count(ReceiptStatus.SENT) == 2  # the hand-off and Twilio's "sent" callback
    assert ReceiptStatus.DELIVERED in statuses
    sid = receipts[0].provider_ref
    assert sid is not None
    assert sid.startswith("SM")
    assert all(r.key == task.task_id.encode() for r in records)  # spread over partitions
    for receipt in receipts:
        assert receipt.tenant_id == tenant
        assert receipt.alert_id == task.alert_id
        assert receipt.citizen_id == task.citizen_id
        assert receipt.provider == "twilio"
        assert receipt.provider_ref == sid
        assert receipt.channel is Channel.SMS
        assert receipt.published_at == task.published_at
    phone = await _phone(simulator, number)
    assert phone["total_messages"] == 1
    assert phone["messages"][0]["body"] == task.body
    assert phone["messages"][0]["sid"] == sid


async def test_redelivered_task_is_not_sent_twice(
    sirene_infra: InfraUrls,
    simulator: ProviderSimulator,
    worker: Any,
    tenant: str,
    task_factory: Any,
    number: str,
) -> None:
    task = task_factory(tenant, number, lane=Lane.BULK)
    async with TopicReader(sirene_infra.kafka, [DELIVERY_RECEIPT]) as reader:
        await send_tasks(sirene_infra.kafka, BULK, task)
        await reader.collect(receipts_of(task.task_id), count=3, timeout_s=30)
        # Redelivery (e.g. after a crash before the offset commit), also in one batch twice.
        await send_tasks(sirene_infra.kafka, BULK, task, task)
        marker = task_factory(tenant, number, lane=Lane.BULK)
        await send_tasks(sirene_infra.kafka, BULK, marker)
        await reader.collect(receipts_of(marker.task_id), count=3, timeout_s=30)
        await reader.collect(receipts_of(task.task_id), count=4, timeout_s=30)
        await asyncio.sleep(0.5)
        handoffs = [receipt_from(r) for r in reader.seen if receipts_of(task.task_id)(r)]
    # hand-off, sent, delivered — and each redelivery only re-emits the recorded hand-off
    # (once per redelivered batch; a task twice in one batch counts once)
    first, *_ = handoffs
    repeats = handoffs[3:]
    assert 1 <= len(repeats) <= 2
    assert {(r.status, r.provider_ref) for r in repeats} == {
        (ReceiptStatus.SENT, first.provider_ref)
    }
    phone = await _phone(simulator, number)
    assert phone["total_messages"] == 2  # the task once, the marker once


async def test_task_leased_by_a_crashed_worker_is_sent_once_its_lease_expires(
    sirene_infra: InfraUrls,
    simulator: ProviderSimulator,
    worker: Any,
    tenant: str,
    task_factory: Any,
    number: str,
) -> None:
    """A worker that died mid hand-off leaves a lease; the task must not be lost."""
    from redis.asyncio import Redis

    from sirene.runtime.delivery import DEDUP_PREFIX

    task = task_factory(tenant, number)
    redis = Redis.from_url(sirene_infra.redis_url)
    try:
        await redis.set(f"{DEDUP_PREFIX}{task.task_id}", "lease|1", ex=3)
        async with TopicReader(sirene_infra.kafka, [DELIVERY_RECEIPT]) as reader:
            await send_tasks(sirene_infra.kafka, URGENT, task)
            await asyncio.sleep(1.5)
            assert (await _phone(simulator, number))["total_messages"] == 0, "lease respected"
            await reader.collect(receipts_of(task.task_id), count=3, timeout_s=30)
        phone = await _phone(simulator, number)
        assert phone["total_messages"] == 1
        assert (await redis.get(f"{DEDUP_PREFIX}{task.task_id}") or b"").startswith(b"done|sent|")
    finally:
        await redis.aclose()


async def test_status_callback_with_wrong_signature_is_refused_and_changes_nothing(
    sirene_infra: InfraUrls, worker: Any, tenant: str, task_factory: Any, number: str
) -> None:
    task = task_factory(tenant, number)
    url = f"{worker.settings.base_url}/twilio/sms/status"
    params = TaskRef.of(task).query()
    form = {
        "MessageSid": "SM" + "0" * 32,
        "MessageStatus": "delivered",
        "AccountSid": worker.settings.twilio_account_sid,
    }
    full_url = str(httpx.URL(url, params=params))
    forged = RequestValidator("not-the-auth-token").compute_signature(full_url, form)
    valid = RequestValidator(worker.settings.twilio_auth_token.get_secret_value())
    async with (
        TopicReader(sirene_infra.kafka, [DELIVERY_RECEIPT]) as reader,
        httpx.AsyncClient() as http,
    ):
        wrong = await http.post(
            url, params=params, data=form, headers={"X-Twilio-Signature": forged}
        )
        missing = await http.post(url, params=params, data=form)
        # A valid signature over other ids must not be replayable onto this task.
        other = dict(params, k="f" * 32)
        replayed = await http.post(
            url,
            params=params,
            data=form,
            headers={
                "X-Twilio-Signature": valid.compute_signature(
                    str(httpx.URL(url, params=other)), form
                )
            },
        )
        # Control: the same callback correctly signed is accepted and produces a receipt.
        signed = await http.post(
            url,
            params=params,
            data=form,
            headers={"X-Twilio-Signature": valid.compute_signature(full_url, form)},
        )
        records = await reader.collect(receipts_of(task.task_id), count=1, timeout_s=20)
        await asyncio.sleep(1.0)
    assert (wrong.status_code, missing.status_code, replayed.status_code) == (403, 403, 403)
    assert signed.status_code == 204
    matching = [r for r in reader.seen if receipts_of(task.task_id)(r)]
    assert len(matching) == len(records) == 1  # only the correctly signed callback
    assert receipt_from(matching[0]).status is ReceiptStatus.DELIVERED


async def test_dead_number_and_invalid_number_are_contact_dead(
    sirene_infra: InfraUrls,
    simulator: ProviderSimulator,
    worker: Any,
    tenant: str,
    task_factory: Any,
    number: str,
) -> None:
    async with httpx.AsyncClient(base_url=simulator.http_url) as http:
        response = await http.put(
            f"/sim/phones/{number}/behaviour",
            json={"sms_outcome": "undelivered", "sms_error_code": 30005},
        )
        response.raise_for_status()
    dead = task_factory(tenant, number)
    invalid = task_factory(tenant, "0301234567")  # not E.164: Twilio answers 21211
    async with TopicReader(sirene_infra.kafka, [DELIVERY_RECEIPT]) as reader:
        await send_tasks(sirene_infra.kafka, URGENT, dead, invalid)
        dead_records = await reader.collect(
            lambda r: (
                receipts_of(dead.task_id)(r) and json.loads(r.value)["status"] == "undelivered"
            ),
            count=1,
            timeout_s=30,
        )
        invalid_records = await reader.collect(receipts_of(invalid.task_id), count=1)
    undelivered = receipt_from(dead_records[0])
    assert (undelivered.error_code, undelivered.error_class) == ("30005", ErrorClass.CONTACT_DEAD)
    failed = receipt_from(invalid_records[0])
    assert failed.status is ReceiptStatus.FAILED
    assert (failed.error_code, failed.error_class) == ("21211", ErrorClass.CONTACT_DEAD)


async def test_expired_task_is_never_sent(
    sirene_infra: InfraUrls,
    simulator: ProviderSimulator,
    worker: Any,
    tenant: str,
    task_factory: Any,
    number: str,
) -> None:
    from datetime import timedelta

    now = utcnow()
    task = task_factory(
        tenant, number, published_at=now - timedelta(hours=2), expires=now - timedelta(hours=1)
    )
    async with TopicReader(sirene_infra.kafka, [DELIVERY_RECEIPT]) as reader:
        await send_tasks(sirene_infra.kafka, URGENT, task)
        records = await reader.collect(receipts_of(task.task_id), count=1, timeout_s=30)
    assert receipt_from(records[0]).status is ReceiptStatus.EXPIRED
    assert (await _phone(simulator, number))["total_messages"] == 0


async def test_malformed_task_goes_to_the_dead_letter_topic(
    sirene_infra: InfraUrls, worker: Any, tenant: str, task_factory: Any, number: str
) -> None:
    good = task_factory(tenant, number)
    marker = f"not-a-task-{good.task_id}"
    async with TopicReader(sirene_infra.kafka, [DEAD_LETTER, DELIVERY_RECEIPT]) as reader:
        await produce(
            sirene_infra.kafka,
            URGENT,
            [
                ("k", json.dumps({"tenant_id": tenant, "oops": marker}).encode()),
                ("k", b"{not json"),
                (good.citizen_id, good.model_dump_json().encode()),
            ],
        )
        letters = await reader.collect(
            lambda r: (
                r.topic == DEAD_LETTER
                and json.loads(r.value)["service"] == "channel-sms"
                and marker in json.loads(r.value)["payload"]
            ),
            count=1,
            timeout_s=30,
        )
        # The good task behind the poison ones is still delivered.
        await reader.collect(receipts_of(good.task_id), count=1, timeout_s=30)
    letter = json.loads(letters[0].value)
    assert letter["source_topic"] == URGENT
    assert "schema violation" in letter["reason"]


async def test_ops_endpoints(worker: Any) -> None:
    async with httpx.AsyncClient(base_url=worker.settings.base_url) as http:
        ready = await http.get("/readyz")
        metrics = await http.get("/metrics")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"kafka": "ok", "redis": "ok"}
    assert "sirene_delivery_handoffs_total" in metrics.text
    assert 'sirene_publish_to_handoff_seconds_bucket{channel="sms",lane="urgent"' in metrics.text
