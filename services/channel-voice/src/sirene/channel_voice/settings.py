"""channel-voice settings (env prefix `SIRENE_CHANNEL_VOICE_`; infrastructure under
`SIRENE_KAFKA` etc.). Defaults point at the provider simulator's development account."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from sirene.runtime.twilio import TwilioServiceSettings


class ChannelVoiceSettings(TwilioServiceSettings):
    """How the voice worker reaches Twilio and where Twilio calls it back (`public_url`)."""

    model_config = SettingsConfigDict(env_prefix="SIRENE_CHANNEL_VOICE_", extra="ignore")

    service_name: str = "channel-voice"
    http_port: int = 8005
    provider_concurrency: int = Field(
        default=32, ge=1, le=1000, description="Call requests in flight per worker process."
    )
    retry_max_attempts: int = Field(
        default=3, ge=1, le=10, description="Calls per task (busy, no answer, failed)."
    )
    retry_tiers: str = Field(
        default="2m",
        pattern=r"^(10s|1m|2m|10m)(,(10s|1m|2m|10m))*$",
        description="Spacing between call attempts (retry tier after each failed call).",
    )
    rate_limit_per_s: float = Field(
        default=1.0,
        ge=0,
        description="Calls per second of the Twilio account (Twilio's default CPS is 1).",
    )
    rate_limit_burst: float | None = Field(default=1.0, gt=0, description="Calls at once.")
    machine_detection: str = Field(
        default="Enable",
        pattern=r"^(Enable|DetectMessageEnd)$",
        description="Twilio answering-machine detection mode.",
    )
    script_grace_s: int = Field(
        default=300,
        ge=0,
        description="How long after a task's expiry its spoken text stays in Redis (calls "
        "placed just before expiry still fetch it).",
    )
