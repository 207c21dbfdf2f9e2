"""Kafka subscribers of subscriptions: `delivery.receipt` → deactivate dead contact points;
`sms.inbound` → STOP and consent replies."""

from __future__ import annotations

from faststream import AckPolicy
from faststream.kafka import KafkaMessage

from sirene.runtime import Infra, decode_records
from sirene.runtime.outbox import OutboxRelay
from sirene.schemas import DELIVERY_RECEIPT, SMS_INBOUND, DeliveryReceipt, ErrorClass, InboundSms

from .repository import Repository
from .selfservice import SelfService
from .service import deactivate_dead_contacts


def register_handlers(
    infra: Infra, *, repo: Repository, relay: OutboxRelay, selfservice: SelfService
) -> None:
    """Declares the service's consumers on `infra.broker` (before `infra.start()`)."""
    settings = infra.settings

    @infra.broker.subscriber(
        DELIVERY_RECEIPT,
        batch=True,
        group_id=settings.group_id("dead-contacts"),
        auto_offset_reset=settings.kafka_offset_reset,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        max_records=500,
    )
    async def on_receipts(msg: KafkaMessage) -> None:
        decoded = await decode_records(
            msg, DeliveryReceipt, producer=infra.producer, service=settings.service_name
        )
        dead = [r for _, r in decoded if r.error_class is ErrorClass.CONTACT_DEAD]
        if dead:
            await deactivate_dead_contacts(repo=repo, wake=relay.wake, receipts=dead)

    @infra.broker.subscriber(
        SMS_INBOUND,
        batch=True,
        group_id=settings.group_id("inbound-sms"),
        auto_offset_reset=settings.kafka_offset_reset,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        max_records=200,
    )
    async def on_inbound_sms(msg: KafkaMessage) -> None:
        decoded = await decode_records(
            msg, InboundSms, producer=infra.producer, service=settings.service_name
        )
        if decoded:
            await selfservice.handle_inbound([event for _, event in decoded])
