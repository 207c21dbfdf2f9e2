"""channel-voice against real Kafka and Redis and the provider simulator: the real twilio
client places the call, the simulator fetches our TwiML, presses 1 and reports the status."""

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
    Language,
    ReceiptStatus,
    delivery_topic,
)

pytestmark = pytest.mark.integration

URGENT = delivery_topic(Channel.VOICE, Lane.URGENT)
BULK = delivery_topic(Channel.VOICE, Lane.BULK)


async def _phone(sim: ProviderSimulator, number: str) -> dict[str, Any]:
    return await sim_state(sim, f"/sim/phones/{number}")


async def test_call_speaks_the_warning_and_pressing_1_confirms(
    sirene_infra: InfraUrls,
    simulator: ProviderSimulator,
    worker: Any,
    tenant: str,
    task_factory: Any,
    number: str,
) -> None:
    task = task_factory(tenant, number, body="Achtung. Hochwasser in der Altstadt.")
    async with TopicReader(sirene_infra.kafka, [DELIVERY_RECEIPT]) as reader:
        await send_tasks(sirene_infra.kafka, URGENT, task)
        await reader.collect(receipts_of(task.task_id, "delivered"), count=1, timeout_s=30)
        records = [r for r in reader.seen if receipts_of(task.task_id)(r)]
    receipts = {r.status: r for r in map(receipt_from, records)}
    assert set(receipts) == {
        ReceiptStatus.SENT,
        ReceiptStatus.CONFIRMED,
        ReceiptStatus.DELIVERED,
    }
    sid = receipts[ReceiptStatus.SENT].provider_ref
    assert sid is not None
    assert sid.startswith("CA")
    assert {r.provider_ref for r in receipts.values()} == {sid}
    assert receipts[ReceiptStatus.DELIVERED].detail == "answered_by=human"
    call = (await _phone(simulator, number))["calls"][0]
    assert call["digits"] == ["1"]
    assert call["spoken"][0] == {
        "text": task.body,
        "language": "de-DE",
        "voice": None,
        "loop": 2,
    }
    assert call["spoken"][1]["text"] == "Drücken Sie 1, um den Empfang zu bestätigen."
    assert call["spoken"][-1]["text"].startswith("Vielen Dank")
    assert call["answered_by"] == "human"


async def test_english_call_and_busy_line(
    sirene_infra: InfraUrls,
    simulator: ProviderSimulator,
    worker: Any,
    tenant: str,
    task_factory: Any,
    number: str,
) -> None:
    busy_number = number[:-1] + ("0" if number[-1] != "0" else "1")
    async with httpx.AsyncClient(base_url=simulator.http_url) as http:
        response = await http.put(
            f"/sim/phones/{busy_number}/behaviour", json={"call_outcome": "busy"}
        )
        response.raise_for_status()
    english = task_factory(tenant, number, language=Language.EN, body="Flood warning.")
    busy = task_factory(tenant, busy_number, lane=Lane.BULK)
    async with TopicReader(sirene_infra.kafka, [DELIVERY_RECEIPT]) as reader:
        await send_tasks(sirene_infra.kafka, URGENT, english)
        await send_tasks(sirene_infra.kafka, BULK, busy)
        await reader.collect(receipts_of(english.task_id, "delivered"), count=1, timeout_s=30)
        failed = await reader.collect(receipts_of(busy.task_id, "failed"), count=1, timeout_s=30)
    receipt = receipt_from(failed[0])
    assert (receipt.error_code, receipt.error_class) == ("busy", ErrorClass.TRANSIENT)
    call = (await _phone(simulator, number))["calls"][0]
    assert call["spoken"][0]["language"] == "en-GB"
    assert call["spoken"][1]["text"].startswith("Press 1")


async def test_webhooks_with_wrong_signature_are_refused(
    sirene_infra: InfraUrls, worker: Any, tenant: str, task_factory: Any, number: str
) -> None:
    task = task_factory(tenant, number)
    params = TaskRef.of(task).query()
    form = {"CallSid": "CA" + "0" * 32, "CallStatus": "completed", "Digits": "1"}
    forged = RequestValidator("wrong-token")
    async with (
        TopicReader(sirene_infra.kafka, [DELIVERY_RECEIPT]) as reader,
        httpx.AsyncClient(base_url=worker.settings.base_url) as http,
    ):
        answers = []
        for path in ("/twilio/voice/twiml", "/twilio/voice/gather", "/twilio/voice/status"):
            url = str(httpx.URL(f"{worker.settings.base_url}{path}", params=params))
            signature = forged.compute_signature(url, form)
            answers.append(
                (
                    await http.post(
                        path, params=params, data=form, headers={"X-Twilio-Signature": signature}
                    )
                ).status_code
            )
            answers.append((await http.post(path, params=params, data=form)).status_code)
        await asyncio.sleep(1.5)
    assert answers == [403] * 6
    assert not [r for r in reader.seen if receipts_of(task.task_id)(r)]


async def test_redelivered_task_calls_once_and_poison_is_dead_lettered(
    sirene_infra: InfraUrls,
    simulator: ProviderSimulator,
    worker: Any,
    tenant: str,
    task_factory: Any,
    number: str,
) -> None:
    task = task_factory(tenant, number)
    marker = f"poison-{task.task_id}"
    async with TopicReader(sirene_infra.kafka, [DELIVERY_RECEIPT, DEAD_LETTER]) as reader:
        await send_tasks(sirene_infra.kafka, URGENT, task, task)
        await produce(sirene_infra.kafka, URGENT, [("k", marker.encode())])
        await reader.collect(receipts_of(task.task_id, "delivered"), count=1, timeout_s=30)
        await send_tasks(sirene_infra.kafka, URGENT, task)
        await reader.collect(
            lambda r: r.topic == DEAD_LETTER and marker in json.loads(r.value)["payload"],
            count=1,
            timeout_s=30,
        )
        # the redelivery re-emits the recorded hand-off receipt; it never places a second call
        await reader.collect(receipts_of(task.task_id, "sent"), count=2, timeout_s=30)
        await asyncio.sleep(1.0)
    assert (await _phone(simulator, number))["total_calls"] == 1
    sent = [receipt_from(r) for r in reader.seen if receipts_of(task.task_id, "sent")(r)]
    assert len(sent) in (2, 3)  # 3 when the first two copies came in separate batches
    assert len({r.provider_ref for r in sent}) == 1
