"""channel-sms under provider trouble, against real Kafka and Redis and the provider simulator
with injected faults: a 30 s outage, a 50 SMS/s rate limit, poison tasks."""

from __future__ import annotations

import itertools
import json
import time
from collections import defaultdict
from datetime import timedelta
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from sirene.channel_sms.app import create_app
from sirene.channel_sms.settings import ChannelSmsSettings
from sirene.devstack.channel_testing import (
    ledger_counts,
    new_number,
    produce,
    receipt_from,
    send_tasks,
    send_tasks_in_bulk,
    serve_twilio_worker,
    sim_faults,
)
from sirene.devstack.testing import InfraUrls, TopicReader
from sirene.provider_sim.app import ProviderSimulator
from sirene.runtime.ratelimit import RATE_LIMIT_PREFIX
from sirene.schemas import (
    DEAD_LETTER,
    DELIVERY_RECEIPT,
    Channel,
    DeliveryReceipt,
    ErrorClass,
    Lane,
    ReceiptStatus,
    delivery_topic,
    utcnow,
)

pytestmark = pytest.mark.integration

URGENT = delivery_topic(Channel.SMS, Lane.URGENT)


async def _faults_view(sim: ProviderSimulator) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=sim.http_url) as http:
        response = await http.get("/sim/faults")
        result: dict[str, Any] = response.json()
        return result


async def test_outage_of_30_s_every_task_completes_after_recovery_within_its_attempts(
    sirene_infra: InfraUrls, simulator: ProviderSimulator, tenant: str, task_factory: Any
) -> None:
    max_attempts = 6
    tasks = [task_factory(tenant, new_number(), body=f"Warnung {i}") for i in range(120)]
    # these expire during the outage: they must never be delivered
    soon = utcnow() + timedelta(seconds=15)
    doomed = [task_factory(tenant, new_number(), expires=soon) for _ in range(10)]
    ids = {t.task_id for t in tasks}
    doomed_ids = {t.task_id for t in doomed}
    async with (
        serve_twilio_worker(
            ChannelSmsSettings,
            create_app,
            sirene_infra,
            simulator,
            retry_tiers="10s",
            retry_max_attempts=max_attempts,
            circuit_failure_threshold=5,
            circuit_open_s=5.0,
        ),
        sim_faults(simulator, outage_s=30, outage_services=["sms"], callbacks={"drop": True}),
        TopicReader(sirene_infra.kafka, [DELIVERY_RECEIPT, DEAD_LETTER]) as reader,
    ):
        started = time.monotonic()
        await send_tasks(sirene_infra.kafka, URGENT, *tasks, *doomed)

        def finished(record: Any) -> bool:
            if record.topic != DELIVERY_RECEIPT:
                return False
            value = json.loads(record.value)
            return (value["task_id"] in ids and value["status"] == "sent") or (
                value["task_id"] in doomed_ids and value["status"] == "expired"
            )

        await reader.collect(finished, count=len(tasks) + len(doomed), timeout_s=150)
        elapsed = time.monotonic() - started
        view = await _faults_view(simulator)
    receipts: dict[str, list[DeliveryReceipt]] = defaultdict(list)
    for record in reader.seen:
        if record.topic == DELIVERY_RECEIPT:
            receipt = receipt_from(record)
            if receipt.task_id in ids | doomed_ids:
                receipts[receipt.task_id].append(receipt)
    assert elapsed >= 29, "nothing can be delivered before the outage ends"
    assert view["rejections"]["sms.outage"] >= 5
    for task in tasks:
        attempts = receipts[task.task_id]
        sent = [r for r in attempts if r.status is ReceiptStatus.SENT]
        assert len(sent) == 1
        failed = [r for r in attempts if r.status is ReceiptStatus.FAILED]
        assert all(r.error_class is ErrorClass.TRANSIENT for r in failed)
        # the configured attempts are never exceeded; every attempt number at most once
        numbers = sorted(r.attempt for r in failed + sent)
        assert numbers == sorted(set(numbers))
        assert max(numbers) <= max_attempts
        # backoff: consecutive attempts of a task are at least one tier (10 s) apart
        times = sorted(r.created_at for r in failed + sent)
        assert all(b - a >= timedelta(seconds=9) for a, b in itertools.pairwise(times))
    counts = await ledger_counts(simulator, sorted(ids | doomed_ids))
    assert all(counts[t.task_id] == 1 for t in tasks), "each delivered exactly once"
    assert all(counts[t.task_id] == 0 for t in doomed), "nothing delivered after expiry"
    for task in doomed:
        assert ReceiptStatus.SENT not in {r.status for r in receipts[task.task_id]}


async def test_rate_limit_of_50_sms_per_s_is_held_without_a_single_429(
    sirene_infra: InfraUrls, simulator: ProviderSimulator, tenant: str, task_factory: Any
) -> None:
    rate = 50.0
    count = 600
    settings = ChannelSmsSettings()
    redis = Redis.from_url(sirene_infra.redis_url)
    await redis.delete(f"{RATE_LIMIT_PREFIX}twilio-sms:{settings.twilio_account_sid}")
    await redis.aclose()
    tasks = [task_factory(tenant, new_number()) for _ in range(count)]
    ids = {t.task_id for t in tasks}
    async with (
        serve_twilio_worker(
            ChannelSmsSettings,
            create_app,
            sirene_infra,
            simulator,
            rate_limit_per_s=rate,
            rate_limit_burst=10.0,  # 200 ms of tokens: rides out a busy test process's pauses
        ),
        # the provider refuses anything above 50/s (absorbing 0.5 s of jitter on a loaded host)
        sim_faults(
            simulator, rate_limit={"sms": {"per_s": rate, "burst": 25}}, callbacks={"drop": True}
        ),
        TopicReader(sirene_infra.kafka, [DELIVERY_RECEIPT]) as reader,
    ):
        since = time.time()
        await send_tasks_in_bulk(sirene_infra.kafka, URGENT, tasks)
        await reader.collect(
            lambda r: json.loads(r.value)["task_id"] in ids, count=count, timeout_s=120
        )
        view = await _faults_view(simulator)
        async with httpx.AsyncClient(base_url=simulator.http_url) as http:
            times = [
                t
                for t in (await http.get("/sim/ledger?times=true")).json()["times"]["sms"]
                if t >= since
            ]
    assert view["rejections"].get("sms.rate_limit", 0) == 0, "no 429 from the provider"
    assert len(times) == count
    window = sorted(times)[10:]  # after the initial burst
    measured = (len(window) - 1) / (window[-1] - window[0])
    # the sustained rate is the configured one, ±5 %
    assert measured == pytest.approx(rate, rel=0.05), f"{measured:.1f} SMS/s"


async def test_poison_tasks_go_to_the_dead_letter_topic_and_the_worker_keeps_going(
    sirene_infra: InfraUrls,
    simulator: ProviderSimulator,
    worker: Any,
    tenant: str,
    task_factory: Any,
) -> None:
    good = task_factory(tenant, new_number())
    unknown_channel = {**json.loads(good.model_dump_json()), "channel": "fax", "note": good.task_id}
    no_contact = json.loads(good.model_dump_json())
    del no_contact["address"]
    no_contact["task_id"] = "f" * 32
    push_here = task_factory(tenant, "a" * 64, channel=Channel.PUSH)
    # a permanent provider error (invalid number) is dead-lettered with its reason, too
    invalid = task_factory(tenant, "+491700099999")
    async with (
        sim_faults(simulator, number_errors=[{"pattern": r"^\+491700099", "code": 21211}]),
        TopicReader(sirene_infra.kafka, [DEAD_LETTER, DELIVERY_RECEIPT]) as reader,
    ):
        await produce(
            sirene_infra.kafka,
            URGENT,
            [
                ("k1", b"\x00\xff not json at all"),
                ("k2", json.dumps(unknown_channel).encode()),
                ("k3", json.dumps(no_contact).encode()),
                (push_here.citizen_id, push_here.model_dump_json().encode()),
                (invalid.citizen_id, invalid.model_dump_json().encode()),
                (good.citizen_id, good.model_dump_json().encode()),
            ],
        )

        def ours(record: Any) -> bool:
            if record.topic != DEAD_LETTER:
                return False
            letter = json.loads(record.value)
            return letter["service"] == "channel-sms" and (
                letter["key"] in ("k1", "k2", "k3")
                or push_here.task_id in letter["payload"]
                or invalid.task_id in letter["payload"]
            )

        letters = await reader.collect(ours, count=5, timeout_s=60)
        await reader.collect(
            lambda r: (
                r.topic == DELIVERY_RECEIPT and json.loads(r.value)["task_id"] == good.task_id
            ),
            count=1,
            timeout_s=60,
        )
    reasons = {json.loads(r.value)["key"]: json.loads(r.value)["reason"] for r in letters}
    assert "invalid JSON" in reasons["k1"]
    assert "channel" in reasons["k2"]
    assert "address" in reasons["k3"]
    assert "push" in reasons[push_here.citizen_id]
    assert "21211" in reasons[invalid.task_id]
    counts = await ledger_counts(simulator, [good.task_id, invalid.task_id])
    assert counts == {good.task_id: 1, invalid.task_id: 0}
