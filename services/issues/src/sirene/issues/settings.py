"""Settings of the issues service (environment prefix `SIRENE_ISSUES_`)."""

from __future__ import annotations

import re

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from sirene.runtime import ServiceSettings
from sirene.runtime.settings import DEV_MARKERS

_TENANT = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


class IssuesSettings(ServiceSettings):
    """Where issues listens and which tenants (with their staff tokens) it serves."""

    model_config = SettingsConfigDict(env_prefix="SIRENE_ISSUES_", extra="ignore")

    service_name: str = Field(default="issues", description="Name in logs and metrics.")
    http_port: int = Field(default=8007, ge=0, le=65535, description="HTTP port (0 = any).")
    api_tokens: dict[str, SecretStr] = Field(
        default_factory=lambda: {"musterstadt": SecretStr("dev-token-musterstadt")},
        description="Tenant id → staff bearer token (JSON in the environment). The keys are "
        "also the tenants whose public report form is open.",
    )

    @model_validator(mode="after")
    def _tokens_usable(self) -> IssuesSettings:
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
