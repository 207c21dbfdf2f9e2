"""Delivery tasks (`delivery.<channel>.<lane>`), receipts (`delivery.receipt`) and the fanout
summary (`alert.fanout`)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from .common import Channel, EntityId, Event, Lane, Language, Severity, new_id, utcnow
from .profile import PushPlatform


class DeliveryTask(Event):
    """One delivery of one alert to one contact point of one citizen.

    Produced by fanout, consumed by the channel worker of `channel`. Key: `citizen_id`, so one
    citizen's tasks stay in order."""

    task_id: str = Field(
        min_length=32,
        max_length=32,
        description="Deterministic id (alert, citizen, channel, contact); the dedup key.",
    )
    alert_id: EntityId = Field(description="Alert being delivered.")
    citizen_id: EntityId = Field(description="Recipient citizen.")
    channel: Channel = Field(description="Delivery channel.")
    lane: Lane = Field(description="Priority lane.")
    address: str = Field(
        min_length=3, max_length=4096, description="Phone number (E.164), device token or e-mail."
    )
    push_platform: PushPlatform | None = Field(default=None, description="For push tasks.")
    language: Language = Field(description="Language of the texts below.")
    title: str | None = Field(default=None, description="Push title or e-mail subject.")
    body: str = Field(min_length=1, description="The text for this channel, ready to send.")
    severity: Severity = Field(description="CAP severity (drives push interruption level).")
    exercise: bool = Field(description="Exercise/Test message (texts carry the marker).")
    published_at: datetime = Field(description="When the alert was published (for latency).")
    expires: datetime = Field(description="Never deliver after this.")
    attempt: int = Field(default=1, ge=1, description="Delivery attempt, starting at 1.")
    fallback_address: str | None = Field(
        default=None,
        pattern=r"^\+[1-9]\d{1,14}$",
        description="The citizen's mobile (E.164) for a fallback SMS when this task cannot be "
        "delivered on its channel (push token gone); used where the tenant enables fallback.",
    )


class ReceiptStatus(StrEnum):
    """Delivery states, in the order they progress."""

    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    CONFIRMED = "confirmed"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    EXPIRED = "expired"


RECEIPT_RANK: dict[ReceiptStatus, int] = {
    ReceiptStatus.QUEUED: 0,
    ReceiptStatus.SENT: 1,
    ReceiptStatus.UNDELIVERED: 2,
    ReceiptStatus.FAILED: 2,
    ReceiptStatus.EXPIRED: 2,
    ReceiptStatus.DELIVERED: 3,
    ReceiptStatus.CONFIRMED: 4,
}
"""A task's shown status only moves up this rank: a late 'sent' never hides 'delivered'."""


class ErrorClass(StrEnum):
    """How a failure is handled."""

    TRANSIENT = "transient"
    PERMANENT = "permanent"
    CONTACT_DEAD = "contact_dead"


class DeliveryReceipt(Event):
    """What happened to a task. Produced by channel workers (including from provider status
    callbacks), consumed by publisher (progress) and subscriptions (dead contacts).
    Key: `task_id` (consumers fold receipts order-independently, so they may spread)."""

    receipt_id: str = Field(default_factory=new_id, description="Unique receipt id.")
    task_id: str = Field(min_length=32, max_length=32, description="The task it is about.")
    alert_id: EntityId = Field(description="Alert of the task.")
    citizen_id: EntityId = Field(description="Recipient citizen.")
    channel: Channel = Field(description="Delivery channel.")
    status: ReceiptStatus = Field(description="New delivery state.")
    exercise: bool = Field(default=False, description="Exercise/Test delivery.")
    provider: str = Field(max_length=40, description="Provider name, e.g. 'twilio', 'apns'.")
    provider_ref: str | None = Field(
        default=None, max_length=128, description="Provider's id (message or call sid, apns-id)."
    )
    error_code: str | None = Field(default=None, max_length=40, description="Provider error.")
    error_class: ErrorClass | None = Field(default=None, description="Failure class, if any.")
    detail: str | None = Field(default=None, max_length=500, description="Masked detail text.")
    attempt: int = Field(default=1, ge=1, description="Attempt the receipt belongs to.")
    published_at: datetime | None = Field(
        default=None, description="When the alert was published (for latency)."
    )
    occurred_at: datetime = Field(default_factory=utcnow, description="When it happened (UTC).")


class FanoutSummary(Event):
    """How many tasks the fanout produced for an alert, per channel. Produced by fanout once an
    alert is fully expanded, consumed by publisher to show 'x of N'. Key: `alert_id`."""

    alert_id: EntityId = Field(description="The expanded alert.")
    lane: Lane = Field(description="Lane the tasks went to.")
    expected: dict[Channel, int] = Field(description="Tasks produced per channel.")
    recipients: int = Field(ge=0, description="Distinct citizens reached.")
    held: int = Field(
        default=0,
        ge=0,
        description="Of the recipients, citizens held back for their quiet hours: their tasks "
        "(counted in `expected`) follow when the hours end.",
    )
    started_at: datetime = Field(description="When expansion began (UTC).")
    completed_at: datetime = Field(description="When the last task was acknowledged (UTC).")


class DeadLetter(Event):
    """A message a consumer could not process, with the reason. Topic: `dead-letter`."""

    service: str = Field(max_length=40, description="Service that gave up on the message.")
    source_topic: str = Field(description="Topic the message came from.")
    partition: int = Field(ge=0, description="Its partition.")
    offset: int = Field(ge=0, description="Its offset.")
    key: str | None = Field(default=None, description="Its key, if any (UTF-8, replaced).")
    payload: str = Field(description="Its value as UTF-8 text (invalid bytes replaced), ≤ 64 KiB.")
    reason: str = Field(max_length=2000, description="Why it could not be processed.")


TENANT_UNKNOWN = "unknown"
"""Tenant recorded on dead letters whose payload was unreadable."""

__all__ = [
    "RECEIPT_RANK",
    "TENANT_UNKNOWN",
    "DeadLetter",
    "DeliveryReceipt",
    "DeliveryTask",
    "ErrorClass",
    "FanoutSummary",
    "ReceiptStatus",
]
