"""Settings of the subscriptions service (environment prefix `SIRENE_SUBSCRIPTIONS_`)."""

from __future__ import annotations

import re

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from sirene.runtime import ServiceSettings
from sirene.runtime.settings import DEV_MARKERS

_TENANT = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


class SubscriptionsSettings(ServiceSettings):
    """Where subscriptions listens, who may call it, which phone numbers it accepts."""

    model_config = SettingsConfigDict(env_prefix="SIRENE_SUBSCRIPTIONS_", extra="ignore")

    service_name: str = Field(default="subscriptions", description="Name in logs and metrics.")
    http_port: int = Field(default=8002, ge=0, le=65535, description="HTTP port (0 = any).")
    api_tokens: dict[str, SecretStr] = Field(
        default_factory=lambda: {"musterstadt": SecretStr("dev-token-musterstadt")},
        description="Tenant id → staff bearer token (JSON in the environment).",
    )
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

    @model_validator(mode="after")
    def _tokens_usable(self) -> SubscriptionsSettings:
        check_api_tokens(self.api_tokens, production=self.environment == "production")
        return self


def check_api_tokens(tokens: dict[str, SecretStr], *, production: bool) -> None:
    """Tenant ids must be slugs; tokens long enough; no placeholders in production."""
    for tenant, token in tokens.items():
        secret = token.get_secret_value()
        if not _TENANT.match(tenant):
            raise ValueError(f"api_tokens: {tenant!r} is not a tenant slug")
        if len(secret) < 16:
            raise ValueError(f"api_tokens: the token of {tenant} is shorter than 16 characters")
        if production and any(marker in secret.lower() for marker in DEV_MARKERS):
            raise ValueError(f"api_tokens: the token of {tenant} is a development placeholder")
