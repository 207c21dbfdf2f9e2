"""Settings of the publisher (environment prefix `SIRENE_PUBLISHER_`)."""

from __future__ import annotations

import re

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from sirene.runtime import ServiceSettings
from sirene.runtime.settings import DEV_MARKERS

_TENANT = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


class PublisherSettings(ServiceSettings):
    """Where the publisher listens, who may call it, how alerts are relayed."""

    model_config = SettingsConfigDict(env_prefix="SIRENE_PUBLISHER_", extra="ignore")

    service_name: str = Field(default="publisher", description="Name in logs and metrics.")
    http_port: int = Field(default=8001, ge=0, le=65535, description="HTTP port (0 = any).")
    api_tokens: dict[str, SecretStr] = Field(
        default_factory=lambda: {"musterstadt": SecretStr("dev-token-musterstadt")},
        description="Tenant id → staff bearer token (JSON in the environment).",
    )
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

    @model_validator(mode="after")
    def _tokens_usable(self) -> PublisherSettings:
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
