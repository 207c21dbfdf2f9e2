"""HTTP request and response bodies of the publisher API (validated at the edge)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from sirene.schemas import (
    AlertStatus,
    Audience,
    Certainty,
    Channel,
    ChannelTexts,
    Lane,
    Language,
    MsgType,
    ReceiptStatus,
    Severity,
    Urgency,
)

CapCategory = Literal[
    "Geo",
    "Met",
    "Safety",
    "Security",
    "Rescue",
    "Fire",
    "Health",
    "Env",
    "Transport",
    "Infra",
    "CBRNE",
    "Other",
]


class AlertIn(BaseModel):
    """A new alert (CAP 1.2 fields) with what each channel says per language."""

    model_config = ConfigDict(extra="forbid")

    status: AlertStatus = Field(
        default=AlertStatus.ACTUAL, description="Actual, or Exercise/Test (texts get marked)."
    )
    msg_type: MsgType = Field(default=MsgType.ALERT, description="Only 'Alert' for now.")
    severity: Severity = Field(description="CAP severity.")
    urgency: Urgency = Field(default=Urgency.UNKNOWN, description="CAP urgency.")
    certainty: Certainty = Field(default=Certainty.UNKNOWN, description="CAP certainty.")
    category: CapCategory = Field(default="Safety", description="CAP category.")
    headline: str | None = Field(
        default=None,
        min_length=1,
        max_length=160,
        description="Headline for staff lists; defaults to the German text's headline.",
    )
    texts: dict[Language, ChannelTexts] = Field(
        description="Channel texts per language; German ('de') is required."
    )
    audience: Audience = Field(description="Topics or everyone, optionally narrowed to districts.")
    effective: AwareDatetime | None = Field(
        default=None,
        description="When it takes effect; default: when it is published. Must not lie in the "
        "future while scheduled publication does not exist (422).",
    )
    expires: AwareDatetime | None = Field(default=None, description="When deliveries stop.")
    duration_minutes: int | None = Field(
        default=None,
        ge=1,
        le=7 * 24 * 60,
        description="Instead of expires: minutes after effective. Neither: the default duration.",
    )
    publish: bool = Field(default=False, description="Publish right away (else a draft).")


class FanoutOut(BaseModel):
    """What the fanout reported for an alert."""

    expected: dict[Channel, int]
    recipients: int
    completed_at: datetime


class AlertOut(BaseModel):
    """A stored alert as staff see it."""

    id: str
    state: Literal["draft", "published"]
    status: AlertStatus
    msg_type: MsgType
    exercise: bool
    severity: Severity
    urgency: Urgency
    certainty: Certainty
    category: str
    headline: str
    lane: Lane
    texts: dict[Language, ChannelTexts] = Field(description="As sent (exercise marks included).")
    audience: Audience
    effective: datetime | None
    expires: datetime | None
    duration_minutes: int | None
    created_at: datetime
    published_at: datetime | None
    relay_state: str | None = Field(
        description="'pending' until alert.published is acknowledged by Kafka, then 'sent'."
    )
    fanout: FanoutOut | None


class AlertPage(BaseModel):
    """Alerts of a tenant, newest first."""

    items: list[AlertOut]


class ChannelProgress(BaseModel):
    """Delivery state of one channel's tasks (each task counted once, at its highest state)."""

    expected: int | None = Field(description="Tasks the fanout produced; null until it reports.")
    total: int = Field(description="Tasks with at least one receipt.")
    final: int = Field(description="Tasks in a final state (delivered, confirmed or failed).")
    statuses: dict[ReceiptStatus, int] = Field(description="Tasks per current status.")


class ProgressOut(BaseModel):
    """Live delivery progress of an alert, from delivery receipts."""

    alert_id: str
    state: Literal["draft", "published"]
    recipients: int | None = Field(description="Distinct citizens the fanout reached.")
    channels: dict[Channel, ChannelProgress]
    totals: ChannelProgress
    first_delivery_at: datetime | None
    last_delivery_at: datetime | None
    complete: bool = Field(description="Every expected task has a final status.")
