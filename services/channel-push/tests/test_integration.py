"""channel-push against real Kafka and Redis and the provider simulator: aioapns over HTTP/2
TLS with an ES256 provider token, and FCM HTTP v1 through httpx."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest

from sirene.devstack.channel_testing import (
    produce,
    receipt_from,
    receipts_of,
    send_tasks,
    sim_state,
)
from sirene.devstack.testing import InfraUrls, TopicReader
from sirene.provider_sim.app import ProviderSimulator
from sirene.schemas import (
    DEAD_LETTER,
    DELIVERY_RECEIPT,
    Channel,
    ErrorClass,
    Lane,
    PushPlatform,
    ReceiptStatus,
    Severity,
    delivery_topic,
)

pytestmark = pytest.mark.integration

URGENT = delivery_topic(Channel.PUSH, Lane.URGENT)
BULK = delivery_topic(Channel.PUSH, Lane.BULK)


async def _device(sim: ProviderSimulator, token: str) -> dict[str, Any]:
    return await sim_state(sim, f"/sim/devices/{token}")


async def test_apns_pushes_carry_interruption_level_collapse_id_and_expiry(
    sirene_infra: InfraUrls,
    simulator: ProviderSimulator,
    worker: Any,
    tenant: str,
    task_factory: Any,
    token: str,
) -> None:
    other = token[::-1]
    extreme = task_factory(tenant, token, severity=Severity.EXTREME)
    severe = task_factory(tenant, other, severity=Severity.SEVERE, lane=Lane.BULK)
    async with TopicReader(sirene_infra.kafka, [DELIVERY_RECEIPT]) as reader:
        await send_tasks(sirene_infra.kafka, URGENT, extreme)
        await send_tasks(sirene_infra.kafka, BULK, severe)
        first = await reader.collect(receipts_of(extreme.task_id), count=1, timeout_s=30)
        second = await reader.collect(receipts_of(severe.task_id), count=1, timeout_s=30)
    receipt = receipt_from(first[0])
    assert receipt.status is ReceiptStatus.DELIVERED
    assert receipt.provider == "apns"
    assert receipt_from(second[0]).status is ReceiptStatus.DELIVERED
    push = (await _device(simulator, token))["notifications"][0]
    assert push["id"] == receipt.provider_ref
    assert push["title"] == extreme.title
    assert push["body"] == extreme.body
    assert push["interruption_level"] == "critical"
    assert push["collapse_id"] == extreme.alert_id
    assert push["priority"] == "10"
    assert push["push_type"] == "alert"
    assert push["topic"] == worker.settings.apns_topic
    assert abs(int(push["expiration"]) - extreme.expires.timestamp()) < 5
    assert push["payload"]["aps"]["sound"]["critical"] == 1
    pushed = (await _device(simulator, other))["notifications"][0]
    assert pushed["interruption_level"] == "time-sensitive"


async def test_unregistered_and_bad_tokens_are_contact_dead(
    sirene_infra: InfraUrls,
    simulator: ProviderSimulator,
    worker: Any,
    tenant: str,
    task_factory: Any,
    token: str,
) -> None:
    async with httpx.AsyncClient(base_url=simulator.http_url) as http:
        (await http.post(f"/sim/devices/{token}/unregister")).raise_for_status()
    gone = task_factory(tenant, token)
    bad = task_factory(tenant, "not-a-device-token")
    async with TopicReader(sirene_infra.kafka, [DELIVERY_RECEIPT]) as reader:
        await send_tasks(sirene_infra.kafka, URGENT, gone, bad)
        gone_records = await reader.collect(receipts_of(gone.task_id), count=1, timeout_s=30)
        bad_records = await reader.collect(receipts_of(bad.task_id), count=1, timeout_s=30)
    for record, code in ((gone_records[0], "Unregistered"), (bad_records[0], "BadDeviceToken")):
        receipt = receipt_from(record)
        assert receipt.status is ReceiptStatus.FAILED
        assert (receipt.error_code, receipt.error_class) == (code, ErrorClass.CONTACT_DEAD)
    assert (await _device(simulator, token))["total_pushes"] == 0


async def test_fcm_tokens_go_through_fcm_v1(
    sirene_infra: InfraUrls,
    simulator: ProviderSimulator,
    worker: Any,
    tenant: str,
    task_factory: Any,
) -> None:
    fcm_token = f"fcm{time.time_ns()}:APA91b{'x' * 40}"
    dead_token = f"fcm{time.time_ns()}:APA91b{'y' * 40}"
    async with httpx.AsyncClient(base_url=simulator.http_url) as http:
        (await http.post(f"/sim/devices/{dead_token}/unregister")).raise_for_status()
    task = task_factory(tenant, fcm_token, push_platform=PushPlatform.FCM)
    dead = task_factory(tenant, dead_token, push_platform=PushPlatform.FCM)
    async with TopicReader(sirene_infra.kafka, [DELIVERY_RECEIPT]) as reader:
        await send_tasks(sirene_infra.kafka, URGENT, task, dead)
        ok = receipt_from(
            (await reader.collect(receipts_of(task.task_id), count=1, timeout_s=30))[0]
        )
        failed = receipt_from(
            (await reader.collect(receipts_of(dead.task_id), count=1, timeout_s=30))[0]
        )
    assert (ok.status, ok.provider) == (ReceiptStatus.DELIVERED, "fcm")
    assert ok.provider_ref is not None
    assert ok.provider_ref.startswith(f"projects/{worker.settings.fcm_project}/messages/")
    assert (failed.status, failed.error_code, failed.error_class) == (
        ReceiptStatus.FAILED,
        "UNREGISTERED",
        ErrorClass.CONTACT_DEAD,
    )
    push = (await _device(simulator, fcm_token))["notifications"][0]
    assert (push["platform"], push["title"], push["body"]) == ("fcm", task.title, task.body)


async def test_redelivered_task_is_pushed_once_and_poison_is_dead_lettered(
    sirene_infra: InfraUrls,
    simulator: ProviderSimulator,
    worker: Any,
    tenant: str,
    task_factory: Any,
    token: str,
) -> None:
    task = task_factory(tenant, token)
    marker = f"poison-{task.task_id}"
    async with TopicReader(sirene_infra.kafka, [DELIVERY_RECEIPT, DEAD_LETTER]) as reader:
        await send_tasks(sirene_infra.kafka, URGENT, task, task)
        await produce(sirene_infra.kafka, URGENT, [("k", marker.encode())])
        await reader.collect(receipts_of(task.task_id), count=1, timeout_s=30)
        await send_tasks(sirene_infra.kafka, URGENT, task)
        await reader.collect(
            lambda r: r.topic == DEAD_LETTER and marker in json.loads(r.value)["payload"],
            count=1,
            timeout_s=30,
        )
        # the redelivery re-emits the recorded receipt; it never pushes a second time
        await reader.collect(receipts_of(task.task_id), count=2, timeout_s=30)
        await asyncio.sleep(1.0)
    assert (await _device(simulator, token))["total_pushes"] == 1
    receipts = [receipt_from(r) for r in reader.seen if receipts_of(task.task_id)(r)]
    assert len(receipts) in (2, 3)  # 3 when the first two copies came in separate batches
    assert len({(r.status, r.provider_ref) for r in receipts}) == 1
