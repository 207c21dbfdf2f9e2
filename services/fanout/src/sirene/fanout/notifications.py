"""Notifications to one person (`notification.requested`, e.g. an issue reporter told about a
status change): each becomes exactly one delivery task on its channel's bulk lane.

Kept apart from alert expansion: no audience is resolved, the contact point travels with the
event. Task ids derive from the notification id, so a redelivered event (at-least-once) yields
the same task, which the channel worker's claim sends only once."""

from __future__ import annotations

from faststream import AckPolicy
from faststream.kafka import KafkaMessage
from prometheus_client import Counter

from sirene.runtime import Infra, dead_letter, decode_records
from sirene.schemas import (
    NOTIFICATION_REQUESTED,
    Channel,
    DeliveryTask,
    Lane,
    NotificationRequested,
    Severity,
    contact_key_for,
    delivery_topic,
    task_id_for,
    utcnow,
)

from .settings import FanoutSettings

NOTIFICATION_CHANNELS = (Channel.SMS, Channel.EMAIL)
"""Channels a notification may use (a voice call or a push for a status change would be out of
proportion, and push needs an app installation the reporter does not have)."""

NOTIFICATIONS = Counter(
    "sirene_fanout_notifications_total",
    "Notifications to one person handled, by channel and outcome.",
    ["channel", "outcome"],
)

TOPICS = [NOTIFICATION_REQUESTED, *(delivery_topic(c, Lane.BULK) for c in NOTIFICATION_CHANNELS)]
"""Topics this module reads and writes (created at start-up with the fanout's own)."""


def task_for(notification: NotificationRequested) -> DeliveryTask:
    """The delivery task of a notification (bulk lane; the same notification, the same id)."""
    return DeliveryTask(
        tenant_id=notification.tenant_id,
        task_id=task_id_for(
            notification.notification_id,
            notification.recipient_id,
            notification.channel,
            contact_key_for(notification.address),
        ),
        alert_id=notification.notification_id,
        citizen_id=notification.recipient_id,
        channel=notification.channel,
        lane=Lane.BULK,
        address=notification.address,
        language=notification.language,
        title=notification.subject,
        body=notification.body,
        severity=Severity.MINOR,
        exercise=False,
        published_at=notification.requested_at,
        expires=notification.expires,
    )


def register_notification_handlers(infra: Infra, settings: FanoutSettings) -> None:
    """Consumes `notification.requested` and emits one task per notification, batched through
    the batch producer. Invalid events and channels other than SMS/e-mail are dead-lettered;
    expired ones are dropped (counted). A Kafka failure raises, so the batch is redelivered."""

    @infra.broker.subscriber(
        NOTIFICATION_REQUESTED,
        group_id=settings.group_id("notifications"),
        auto_offset_reset=settings.kafka_offset_reset,
        batch=True,
        max_records=500,
        ack_policy=AckPolicy.NACK_ON_ERROR,
    )
    async def on_notifications(msg: KafkaMessage) -> None:
        decoded = await decode_records(
            msg, NotificationRequested, producer=infra.producer, service=settings.service_name
        )
        now = utcnow()
        records: list[tuple[str, bytes | None, bytes]] = []
        counted: list[tuple[str, str]] = []
        for record, notification in decoded:
            channel = notification.channel
            if channel not in NOTIFICATION_CHANNELS:
                await dead_letter(
                    infra.producer,
                    service=settings.service_name,
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    key=record.key,
                    value=record.value,
                    reason=f"channel {channel.value} is not offered for notifications",
                )
                counted.append((channel.value, "dead_lettered"))
                continue
            if notification.expires <= now:
                counted.append((channel.value, "expired"))
                continue
            task = task_for(notification)
            records.append(
                (
                    delivery_topic(channel, Lane.BULK),
                    notification.recipient_id.encode(),
                    task.model_dump_json().encode(),
                )
            )
            counted.append((channel.value, "task"))
        if records:
            await infra.producer.send_grouped(records)
        for channel_name, outcome in counted:
            NOTIFICATIONS.labels(channel=channel_name, outcome=outcome).inc()
