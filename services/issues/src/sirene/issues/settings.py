"""Settings of the issues service (environment prefix `SIRENE_ISSUES_`)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from sirene.runtime.auth import StaffTokensSettings, api_tokens_field


class IssuesSettings(StaffTokensSettings):
    """Where issues listens and which tenants (with their staff tokens) it serves."""

    model_config = SettingsConfigDict(env_prefix="SIRENE_ISSUES_", extra="ignore")

    service_name: str = Field(default="issues", description="Name in logs and metrics.")
    http_port: int = Field(default=8007, ge=0, le=65535, description="HTTP port (0 = any).")
    api_tokens: dict[str, SecretStr] = api_tokens_field(
        "Tenant id → staff bearer token (JSON in the environment). The keys are also the "
        "tenants whose public report form is open."
    )
