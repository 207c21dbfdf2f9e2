"""channel-sms settings (env prefix `SIRENE_CHANNEL_SMS_`; infrastructure under `SIRENE_KAFKA`
etc.). Defaults point at the provider simulator's development account."""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from sirene.runtime.twilio import TwilioServiceSettings

from .service import is_valid_sender


class ChannelSmsSettings(TwilioServiceSettings):
    """How the SMS worker reaches Twilio and where Twilio calls it back (`public_url`)."""

    model_config = SettingsConfigDict(env_prefix="SIRENE_CHANNEL_SMS_", extra="ignore")

    service_name: str = "channel-sms"
    http_port: int = 8004
    tenant_senders: dict[str, str] = Field(
        default_factory=dict,
        description="Sender per tenant (JSON object): an alphanumeric sender id such as "
        "'Musterstadt', an E.164 number or a Messaging Service sid (MG…); tenants not listed "
        "send from twilio_from.",
    )

    @field_validator("tenant_senders", mode="before")
    @classmethod
    def _parse_senders(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    @field_validator("tenant_senders")
    @classmethod
    def _valid_senders(cls, value: dict[str, str]) -> dict[str, str]:
        for tenant, sender in value.items():
            if not is_valid_sender(sender):
                raise ValueError(
                    f"sender {sender!r} of tenant {tenant!r} is neither an E.164 number, a "
                    "Messaging Service sid nor an alphanumeric id (1-11 characters)"
                )
        return value

    def sender_for(self, tenant_id: str) -> str:
        return self.tenant_senders.get(tenant_id, self.twilio_from)
