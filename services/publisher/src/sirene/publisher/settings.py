"""Settings of the publisher (environment prefix `SIRENE_PUBLISHER_`)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from sirene.runtime.auth import StaffTokensSettings


class PublisherSettings(StaffTokensSettings):
    """Where the publisher listens, who may call it, how alerts are relayed."""

    model_config = SettingsConfigDict(env_prefix="SIRENE_PUBLISHER_", extra="ignore")

    service_name: str = Field(default="publisher", description="Name in logs and metrics.")
    http_port: int = Field(default=8001, ge=0, le=65535, description="HTTP port (0 = any).")
    default_duration_s: int = Field(
        default=24 * 3600,
        ge=60,
        description="How long an alert stays deliverable when neither expires nor duration "
        "is given.",
    )
    relay_poll_interval_s: float = Field(
        default=5.0, gt=0, description="Safety-net poll of the alert outbox (it is also woken)."
    )
    relay_batch_size: int = Field(default=100, ge=1, le=10_000, description="Alerts per relay.")
