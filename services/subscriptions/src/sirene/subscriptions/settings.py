"""Settings of the subscriptions service (environment prefix `SIRENE_SUBSCRIPTIONS_`)."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from sirene.runtime.auth import StaffTokensSettings


class SubscriptionsSettings(StaffTokensSettings):
    """Where subscriptions listens, who may call it, which phone numbers it accepts."""

    model_config = SettingsConfigDict(env_prefix="SIRENE_SUBSCRIPTIONS_", extra="ignore")

    service_name: str = Field(default="subscriptions", description="Name in logs and metrics.")
    http_port: int = Field(default=8002, ge=0, le=65535, description="HTTP port (0 = any).")
    default_region: str = Field(
        default="DE", description="Region assumed for phone numbers without a country code."
    )
    allowed_countries: list[str] = Field(
        default_factory=lambda: ["DE", "AT", "CH", "CZ", "PL"],
        description="ISO country codes whose phone numbers are accepted.",
    )
    relay_poll_interval_s: float = Field(
        default=5.0, gt=0, description="Safety-net poll of the profile outbox (it is also woken)."
    )
    relay_batch_size: int = Field(default=500, ge=1, le=10_000, description="Profiles per relay.")

    @field_validator("default_region")
    @classmethod
    def _upper_region(cls, value: str) -> str:
        return value.upper()

    @field_validator("allowed_countries")
    @classmethod
    def _upper_countries(cls, value: list[str]) -> list[str]:
        return [v.upper() for v in value]
