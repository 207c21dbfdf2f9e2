"""Notifications to one person (`notification.requested`): a reporter told about a status
change of their issue report, a department told about a new report. Unlike an alert, the
recipient's contact point travels with the event; fanout turns it into one delivery task."""

from __future__ import annotations

import hashlib
from datetime import datetime

from pydantic import Field

from .common import Channel, EntityId, Event, Language


def notification_id_for(source: str, reference: str, step: str, recipient: str) -> str:
    """Deterministic notification id: the same step of the same record for the same recipient
    always gives the same id, so a re-sent event never becomes a second message."""
    raw = f"{source}\x1f{reference}\x1f{step}\x1f{recipient}".encode()
    return hashlib.sha256(raw).hexdigest()[:32]


class NotificationRequested(Event):
    """One message to one contact point, written by a service that informs a person (issues:
    status changes to the reporter, new reports to the department). Consumed by fanout, which
    emits the delivery task on the channel's bulk lane. Key: `recipient_id`."""

    notification_id: str = Field(
        min_length=32,
        max_length=32,
        description="Deterministic id (source, record, step, recipient); the dedup key.",
    )
    source: str = Field(max_length=40, description="Service that asks, e.g. 'issues'.")
    reference: EntityId = Field(description="The record it is about, e.g. the report id.")
    recipient_id: EntityId = Field(
        description="Who receives it, e.g. 'report-<id>' or 'department-<id>' (never a contact)."
    )
    channel: Channel = Field(description="sms or email (voice and push are not offered).")
    address: str = Field(
        min_length=3, max_length=254, description="Phone number (E.164) or e-mail address."
    )
    language: Language = Field(default=Language.DE, description="Language of the texts.")
    subject: str | None = Field(default=None, max_length=200, description="E-mail subject.")
    body: str = Field(min_length=1, max_length=4000, description="The text, ready to send.")
    requested_at: datetime = Field(description="When the change happened (UTC).")
    expires: datetime = Field(description="Never deliver after this.")
