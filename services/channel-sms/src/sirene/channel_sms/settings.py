"""channel-sms settings (env prefix `SIRENE_CHANNEL_SMS_`; infrastructure under `SIRENE_KAFKA`
etc.). Defaults point at the provider simulator's development account."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from sirene.runtime.twilio import TwilioServiceSettings


class ChannelSmsSettings(TwilioServiceSettings):
    """How the SMS worker reaches Twilio and where Twilio calls it back (`public_url`)."""

    model_config = SettingsConfigDict(env_prefix="SIRENE_CHANNEL_SMS_", extra="ignore")

    service_name: str = "channel-sms"
    http_port: int = 8004
