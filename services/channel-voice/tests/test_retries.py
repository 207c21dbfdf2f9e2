"""Voice retries against real Kafka and Redis and the provider simulator: a busy call is tried
again and then confirmed; a call nobody answers is given up after the configured attempts,
with the reason."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from sirene.channel_voice.app import create_app
from sirene.channel_voice.settings import ChannelVoiceSettings
from sirene.devstack.channel_testing import (
    RunningWorker,
    ledger_counts,
    receipt_from,
    receipts_of,
    send_tasks,
    serve_twilio_worker,
    sim_faults,
)
from sirene.devstack.testing import InfraUrls, TopicReader
from sirene.provider_sim.app import ProviderSimulator
from sirene.schemas import (
    DEAD_LETTER,
    DELIVERY_RECEIPT,
    Channel,
    ErrorClass,
    Lane,
    ReceiptStatus,
    delivery_topic,
)

pytestmark = pytest.mark.integration

URGENT = delivery_topic(Channel.VOICE, Lane.URGENT)


@pytest.fixture
async def retrying_worker(
    sirene_infra: InfraUrls, simulator: ProviderSimulator
) -> AsyncIterator[RunningWorker[ChannelVoiceSettings]]:
    # 3 attempts like production, but 10 s apart instead of 2 minutes
    async with serve_twilio_worker(
        ChannelVoiceSettings,
        create_app,
        sirene_infra,
        simulator,
        retry_tiers="10s",
        retry_max_attempts=3,
        rate_limit_per_s=5.0,
        rate_limit_burst=5.0,
    ) as running:
        yield running


async def test_busy_then_answered_gives_one_confirmation(
    sirene_infra: InfraUrls,
    simulator: ProviderSimulator,
    retrying_worker: Any,
    tenant: str,
    task_factory: Any,
    number: str,
) -> None:
    task = task_factory(tenant, number)
    async with (
        sim_faults(simulator, call_sequences={number: ["busy", "completed"]}),
        TopicReader(sirene_infra.kafka, [DELIVERY_RECEIPT]) as reader,
    ):
        await send_tasks(sirene_infra.kafka, URGENT, task)
        await reader.collect(receipts_of(task.task_id, "confirmed"), count=1, timeout_s=90)
        await reader.collect(receipts_of(task.task_id, "delivered"), count=1, timeout_s=30)
    receipts = [receipt_from(r) for r in reader.seen if receipts_of(task.task_id)(r)]
    busy = [r for r in receipts if r.status is ReceiptStatus.FAILED]
    assert [(r.attempt, r.error_code, r.error_class) for r in busy] == [
        (1, "busy", ErrorClass.TRANSIENT)
    ]
    confirmed = [r for r in receipts if r.status is ReceiptStatus.CONFIRMED]
    assert [r.attempt for r in confirmed] == [2]
    assert {r.attempt for r in receipts if r.status is ReceiptStatus.SENT} == {1, 2}
    calls = simulator.service.state.phone_view(number)["calls"]
    assert sorted(c["status"] for c in calls) == ["busy", "completed"]
    assert (await ledger_counts(simulator, [task.task_id]))[task.task_id] == 2


async def test_no_answer_three_times_fails_with_the_reason(
    sirene_infra: InfraUrls,
    simulator: ProviderSimulator,
    retrying_worker: Any,
    tenant: str,
    task_factory: Any,
    number: str,
) -> None:
    task = task_factory(tenant, number)
    async with (
        sim_faults(simulator, call_sequences={number: ["no-answer"] * 4}),
        TopicReader(sirene_infra.kafka, [DELIVERY_RECEIPT, DEAD_LETTER]) as reader,
    ):
        await send_tasks(sirene_infra.kafka, URGENT, task)

        def given_up(record: Any) -> bool:
            value = json.loads(record.value)
            return (
                record.topic == DELIVERY_RECEIPT
                and value["task_id"] == task.task_id
                and value["status"] == "failed"
                and value["error_class"] == "permanent"
            )

        records = await reader.collect(given_up, count=1, timeout_s=120)
        letters = await reader.collect(
            lambda r: r.topic == DEAD_LETTER and task.task_id in json.loads(r.value)["payload"],
            count=1,
            timeout_s=30,
        )
    final = receipt_from(records[0])
    assert final.attempt == 3
    assert final.error_code == "no-answer"
    assert final.detail is not None
    assert "no-answer" in final.detail
    assert "3 attempt" in final.detail
    assert "3 attempt" in json.loads(letters[0].value)["reason"]
    calls = simulator.service.state.phone_view(number)["calls"]
    assert [c["status"] for c in calls] == ["no-answer"] * 3  # never a fourth call
