"""Kafka subscribers of the publisher: `delivery.receipt` and `alert.fanout` → progress."""

from __future__ import annotations

from faststream import AckPolicy
from faststream.kafka import KafkaMessage

from sirene.runtime import Infra, decode_records
from sirene.schemas import ALERT_FANOUT, DELIVERY_RECEIPT, DeliveryReceipt, FanoutSummary

from .repository import Repository
from .service import apply_receipts, store_fanout


def register_handlers(infra: Infra, *, repo: Repository) -> None:
    """Declares the service's consumers on `infra.broker` (before `infra.start()`)."""
    settings = infra.settings

    @infra.broker.subscriber(
        DELIVERY_RECEIPT,
        batch=True,
        group_id=settings.group_id("progress"),
        auto_offset_reset=settings.kafka_offset_reset,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        max_records=2000,
    )
    async def on_receipts(msg: KafkaMessage) -> None:
        decoded = await decode_records(
            msg, DeliveryReceipt, producer=infra.producer, service=settings.service_name
        )
        if decoded:
            await apply_receipts(repo=repo, receipts=[r for _, r in decoded])

    @infra.broker.subscriber(
        ALERT_FANOUT,
        batch=True,
        group_id=settings.group_id("fanout-summary"),
        auto_offset_reset=settings.kafka_offset_reset,
        ack_policy=AckPolicy.NACK_ON_ERROR,
    )
    async def on_fanout(msg: KafkaMessage) -> None:
        decoded = await decode_records(
            msg, FanoutSummary, producer=infra.producer, service=settings.service_name
        )
        if decoded:
            await store_fanout(repo=repo, summaries=[s for _, s in decoded])
