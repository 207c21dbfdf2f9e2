"""`sms.inbound`: text messages citizens send to the platform's SMS number (Twilio inbound
webhook, signature verified by channel-sms), for subscriptions to act on (STOP, consent)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from .common import new_id, utcnow

E164_PATTERN = r"^\+[1-9]\d{1,14}$"


class InboundSms(BaseModel):
    """One SMS received from a phone. Key: the sender's number, so every message of one phone
    is handled in order (a STOP is never overtaken by an earlier "JA").

    It carries no tenant: one platform number may serve several municipalities, so the edge
    cannot know it; subscriptions resolves the tenants through the sender's number."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str = Field(default_factory=new_id, description="Unique id of this event.")
    created_at: datetime = Field(default_factory=utcnow, description="When it was received.")
    provider: str = Field(default="twilio", max_length=40, description="Provider that took it.")
    provider_ref: str = Field(
        min_length=1, max_length=64, description="Provider id of the message (Twilio MessageSid)."
    )
    from_number: str = Field(pattern=E164_PATTERN, description="Sender (the citizen), E.164.")
    to_number: str = Field(pattern=E164_PATTERN, description="Platform number it was sent to.")
    body: str = Field(max_length=1600, description="Message text as received.")


__all__ = ["InboundSms"]
