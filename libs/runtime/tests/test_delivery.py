"""The shared delivery pipeline (no network): topics, receipts of hand-offs, and the shared
channel metrics labelled by channel."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

from prometheus_client import REGISTRY
from redis.asyncio import Redis

from sirene.devstack.channel_testing import make_task
from sirene.runtime import BatchProducer
from sirene.runtime.delivery import (
    ChannelSettings,
    DeliveryPipeline,
    Outcome,
    delivery_topics,
    done_mark,
    is_final,
    outcome_of,
    receipt_for,
)
from sirene.schemas import (
    Channel,
    DeliveryTask,
    ErrorClass,
    Lane,
    ReceiptStatus,
    utcnow,
)


def _task() -> DeliveryTask:
    published = utcnow() - timedelta(seconds=3)
    return make_task("musterstadt", "+4915112345678", channel=Channel.VOICE, published_at=published)


def _pipeline(deliver: Any) -> DeliveryPipeline:
    return DeliveryPipeline(
        channel=Channel.VOICE,
        provider="twilio",
        service="channel-voice",
        producer=cast(BatchProducer, None),
        redis=cast(Redis, None),  # _hand_off itself does not touch Redis
        deliver=deliver,
        concurrency=2,
        dedup_ttl_s=60,
    )


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_channel_worker_creates_its_lanes_receipts_and_dead_letters() -> None:
    assert delivery_topics(Channel.VOICE) == [
        "delivery.voice.urgent",
        "delivery.voice.bulk",
        "delivery.receipt",
        "dead-letter",
        "delivery.voice.retry.10s",
        "delivery.voice.retry.1m",
        "delivery.voice.retry.2m",
        "delivery.voice.retry.10m",
        "delivery.sms.urgent",  # fallback target
        "delivery.sms.bulk",
    ]


def test_channel_settings_defaults() -> None:
    settings = ChannelSettings()
    assert (settings.provider_concurrency, settings.batch_size) == (64, 500)
    assert settings.dedup_ttl_s == 7 * 24 * 3600


async def test_a_raising_provider_call_becomes_a_transient_failure_counted_per_channel() -> None:
    async def deliver(_task: DeliveryTask) -> Outcome:
        raise ConnectionResetError("boom")

    labels = {"channel": "voice", "lane": "bulk", "status": "failed", "error_class": "transient"}
    before = _sample("sirene_delivery_handoffs_total", **labels)
    errors = _sample("sirene_provider_request_seconds_count", channel="voice", outcome="error")
    task = _task().model_copy(update={"lane": Lane.BULK})
    outcome = await _pipeline(deliver)._hand_off(task)
    assert outcome is not None
    assert not is_final(outcome), "a transient failure releases the task for a retry"
    assert (outcome.status, outcome.error_code, outcome.error_class) == (
        ReceiptStatus.FAILED,
        "ConnectionResetError",
        ErrorClass.TRANSIENT,
    )
    assert _sample("sirene_delivery_handoffs_total", **labels) == before + 1
    assert (
        _sample("sirene_provider_request_seconds_count", channel="voice", outcome="error")
        == errors + 1
    )


async def test_an_accepted_hand_off_records_publish_to_hand_off_latency() -> None:
    async def deliver(_task: DeliveryTask) -> Outcome:
        return Outcome(ReceiptStatus.SENT, provider_ref="CA1")

    pipeline = _pipeline(deliver)
    before = _sample("sirene_publish_to_handoff_seconds_sum", channel="voice", lane="urgent")
    task = _task()
    outcome = await pipeline._hand_off(task)
    assert outcome is not None
    after = _sample("sirene_publish_to_handoff_seconds_sum", channel="voice", lane="urgent")
    assert after - before >= 3.0  # published three seconds before the hand-off
    receipt = receipt_for(task, outcome, provider=pipeline.provider)
    assert (receipt.status, receipt.provider, receipt.provider_ref) == (
        ReceiptStatus.SENT,
        "twilio",
        "CA1",
    )
    assert (receipt.task_id, receipt.channel, receipt.published_at) == (
        task.task_id,
        Channel.VOICE,
        task.published_at,
    )


def test_done_marks_round_trip_the_outcome() -> None:
    for outcome in (
        Outcome(ReceiptStatus.SENT, provider_ref="SM1"),
        Outcome(
            ReceiptStatus.FAILED,
            error_code="30006",
            error_class=ErrorClass.CONTACT_DEAD,
            provider="fcm",
        ),
    ):
        again = outcome_of(done_mark(outcome))
        assert (again.status, again.provider_ref, again.error_code, again.error_class) == (
            outcome.status,
            outcome.provider_ref,
            outcome.error_code,
            outcome.error_class,
        )
        assert again.provider == outcome.provider
        assert is_final(outcome)
