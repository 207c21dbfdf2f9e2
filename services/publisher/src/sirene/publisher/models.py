"""HTTP request and response bodies of the publisher API (validated at the edge)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, SecretStr

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

from .roles import Role

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
    msg_type: MsgType = Field(
        default=MsgType.ALERT,
        description="'Alert' for a new alert; Update and Cancel are made from the original "
        "(POST /alerts/{id}/update, /cancel).",
    )
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
    audience: Audience = Field(
        description="Topics or everyone, optionally narrowed to districts and target areas."
    )
    effective: AwareDatetime | None = Field(
        default=None,
        description="When it takes effect; default: when it is sent. A time ahead schedules "
        "the publication (at most 90 days ahead).",
    )
    expires: AwareDatetime | None = Field(default=None, description="When deliveries stop.")
    duration_minutes: int | None = Field(
        default=None,
        ge=1,
        le=7 * 24 * 60,
        description="Instead of expires: minutes after effective. Neither: the default duration.",
    )
    publish: bool = Field(
        default=False,
        description="Send right away ('Senden'): published, scheduled, or waiting for approval "
        "under the four-eyes rule. Else a draft.",
    )


class AlertUpdateIn(BaseModel):
    """A correction of a published alert (CAP Update): new texts, optionally a new severity.
    Status and audience are the original's."""

    model_config = ConfigDict(extra="forbid")

    severity: Severity | None = Field(default=None, description="Default: the original's.")
    urgency: Urgency | None = Field(default=None, description="Default: the original's.")
    certainty: Certainty | None = Field(default=None, description="Default: the original's.")
    headline: str | None = Field(default=None, min_length=1, max_length=160)
    texts: dict[Language, ChannelTexts] = Field(description="The corrected texts.")
    expires: AwareDatetime | None = Field(default=None)
    duration_minutes: int | None = Field(default=None, ge=1, le=7 * 24 * 60)
    publish: bool = Field(default=True, description="Send right away (default).")


class AlertPatchIn(BaseModel):
    """A partial edit of a draft: the fields given replace the draft's (texts per language);
    the result is checked like a new alert. Status and message type never change."""

    model_config = ConfigDict(extra="forbid")

    severity: Severity | None = None
    urgency: Urgency | None = None
    certainty: Certainty | None = None
    category: CapCategory | None = None
    headline: str | None = Field(default=None, min_length=1, max_length=160)
    texts: dict[Language, ChannelTexts] | None = Field(
        default=None, description="Replaces the texts of the languages given."
    )
    audience: Audience | None = None
    effective: AwareDatetime | None = None
    expires: AwareDatetime | None = None
    duration_minutes: int | None = Field(default=None, ge=1, le=7 * 24 * 60)
    publish: bool = Field(default=False, description="Send the edited draft right away.")


class RejectIn(BaseModel):
    """Why an approver sends an alert back to draft."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=3, max_length=500)


class CancelIn(BaseModel):
    """Optional own texts of a Cancel (default: the prefilled all-clear texts)."""

    model_config = ConfigDict(extra="forbid")

    texts: dict[Language, ChannelTexts] | None = None


AlertState = Literal["draft", "awaiting_approval", "scheduled", "published", "withdrawn", "expired"]


class FanoutOut(BaseModel):
    """What the fanout reported for an alert."""

    expected: dict[Channel, int]
    recipients: int
    completed_at: datetime


class AttachmentOut(BaseModel):
    """An attachment: public link (works while the alert is published), type, size."""

    id: str
    filename: str
    content_type: str
    size: int
    url: str


class AlertOut(BaseModel):
    """A stored alert as staff see it."""

    id: str
    state: AlertState
    status: AlertStatus
    msg_type: MsgType
    references: list[str] = Field(default_factory=list, description="Alert ids referred to.")
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
    created_by: str | None = None
    created_by_name: str | None = None
    submitted_by: str | None = None
    approved_by: str | None = None
    approved_by_name: str | None = None
    approved_at: datetime | None = None
    rejected_by: str | None = None
    rejection_reason: str | None = None
    edited_by: str | None = Field(default=None, description="Who last edited the draft.")
    edited_by_name: str | None = None
    cancelled_by: str | None = Field(default=None, description="Id of the Cancel, if any.")
    superseded_by: str | None = Field(default=None, description="Id of the latest Update.")
    attachments: list[AttachmentOut] = Field(
        default_factory=list, description="Images and files, linked in push and e-mail."
    )
    sms_segments: dict[Language, int] = Field(
        default_factory=dict, description="SMS segments per language (warn above 3)."
    )
    relay_state: str | None = Field(
        description="'pending' until alert.published is acknowledged by Kafka, then 'sent'."
    )
    version: int = Field(
        default=1,
        description="Grows with every change; send it as `If-Match` when editing a draft, so "
        "an edit based on an outdated copy is refused (409).",
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
    state: AlertState
    recipients: int | None = Field(description="Distinct citizens the fanout reached.")
    held: int = Field(
        default=0,
        description="Of the recipients, citizens held back for their quiet hours (a post reaches "
        "them when the hours end; their tasks are in the expected counts).",
    )
    channels: dict[Channel, ChannelProgress]
    totals: ChannelProgress
    first_delivery_at: datetime | None
    last_delivery_at: datetime | None
    complete: bool = Field(description="Every expected task has a final status.")


class StaffIn(BaseModel):
    """A new staff account."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=2, max_length=64, pattern=r"^[a-z0-9][a-z0-9._-]+$")
    display_name: str = Field(min_length=1, max_length=120)
    password: SecretStr = Field(min_length=12, max_length=256)
    roles: list[Role] = Field(min_length=1)


class StaffOut(BaseModel):
    """A staff account (no secrets)."""

    id: str
    username: str
    display_name: str
    roles: list[Role]
    active: bool
    totp_enabled: bool
    created_at: datetime


class TokenOut(BaseModel):
    """A personal API token, shown exactly once."""

    token: str


class TotpStartOut(BaseModel):
    """A TOTP secret to enter into an authenticator app, and its otpauth:// URI."""

    secret: str
    uri: str


class TotpConfirmIn(BaseModel):
    """The current code of the authenticator app, to finish enrolment."""

    code: str = Field(min_length=6, max_length=8)


class TenantSettingsIn(BaseModel):
    """A tenant's policy: which severities need four eyes, whether TOTP is required."""

    model_config = ConfigDict(extra="forbid")

    four_eyes: list[Severity] = Field(
        default=[Severity.EXTREME, Severity.SEVERE],
        description="Severities that need a second person's approval (empty: none).",
    )
    require_totp: bool = Field(
        default=False, description="Alerters and approvers need TOTP in the console."
    )
    display_name: str | None = Field(
        default=None, max_length=80, description="The municipality's name in texts and CAP."
    )


class AuditOut(BaseModel):
    """One audit log entry."""

    at: datetime
    actor: str
    actor_name: str
    action: str
    alert_id: str | None
    detail: dict[str, object]


class TemplateOut(BaseModel):
    """A warning template (an AlertIn-shaped body, prefilled)."""

    id: str
    name: str
    body: dict[str, object]
