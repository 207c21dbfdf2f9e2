"""Staff login shared by the services with a staff API: one bearer token per tenant.

A service's settings derive from `StaffTokensSettings` (field `api_tokens`, checked at start-up);
its API builds the `staff_tenant` dependency once with `staff_tenant_dependency(get_context)`,
which answers the tenant whose token the request carries, or 401 with `WWW-Authenticate: Bearer`."""

# No `from __future__ import annotations`: FastAPI reads the signature of the dependency that
# `staff_tenant_dependency` builds, and its annotations name a local of that function.

import hmac
import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Protocol, Self

from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator, AliasChoices, Field, SecretStr, model_validator

from .errors import LanguageDep, message
from .settings import DEV_MARKERS, ServiceSettings

TENANT_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"
"""What a tenant id looks like (a slug)."""

MIN_TOKEN_LENGTH = 16

_TENANT = re.compile(TENANT_PATTERN)

bearer = HTTPBearer(auto_error=False, description="Staff token of one tenant.")
"""The bearer scheme (shown in OpenAPI); missing credentials are answered by the dependency."""


def check_api_tokens(tokens: dict[str, SecretStr], *, production: bool) -> None:
    """Tenant ids must be slugs; tokens long enough and distinct (one token, one tenant); no
    placeholders in production."""
    secrets = [token.get_secret_value() for token in tokens.values()]
    if len(set(secrets)) != len(secrets):
        raise ValueError("api_tokens: two tenants share a token (it would act for both)")
    for tenant, token in tokens.items():
        secret = token.get_secret_value()
        if not _TENANT.match(tenant):
            raise ValueError(f"api_tokens: {tenant!r} is not a tenant slug")
        if len(secret) < MIN_TOKEN_LENGTH:
            raise ValueError(
                f"api_tokens: the token of {tenant} is shorter than {MIN_TOKEN_LENGTH} characters"
            )
        if production and any(marker in secret.lower() for marker in DEV_MARKERS):
            raise ValueError(f"api_tokens: the token of {tenant} is a development placeholder")


def api_tokens_field(
    description: str = "Tenant id → staff bearer token (JSON in the environment).",
) -> dict[str, SecretStr]:
    """The `api_tokens` field (development default: one tenant with a placeholder token);
    a service whose tokens mean more than the staff login redeclares it with its own
    `description`."""
    default: dict[str, SecretStr] = Field(
        default_factory=lambda: {"musterstadt": SecretStr("dev-token-musterstadt")},
        description=description,
    )
    return default


DEV_ESTIMATE_TOKEN = "dev-estimate-token-0000"  # noqa: S105 -- development placeholder
MIN_SERVICE_TOKEN_LENGTH = 16


def _long_enough(value: SecretStr) -> SecretStr:
    if len(value.get_secret_value()) < MIN_SERVICE_TOKEN_LENGTH:
        raise ValueError(f"estimate_token is shorter than {MIN_SERVICE_TOKEN_LENGTH} characters")
    return value


EstimateToken = Annotated[SecretStr, AfterValidator(_long_enough)]
"""The service token of the fanout's recipient estimate, at least 16 characters."""


def estimate_token_field() -> SecretStr:
    """The `estimate_token` field, the same in the publisher (which sends it) and the fanout
    (which requires it); a development placeholder by default, refused in production."""
    default: SecretStr = Field(
        default=SecretStr(DEV_ESTIMATE_TOKEN),
        validation_alias=AliasChoices("SIRENE_ESTIMATE_TOKEN", "estimate_token"),
        description="Service token of the fanout's recipient estimate (`POST /api/v1/estimate`): "
        "the publisher sends it as a bearer token, the fanout refuses requests without it "
        f"(401). The same value in both; at least {MIN_SERVICE_TOKEN_LENGTH} characters.",
    )
    return default


class StaffTokensSettings(ServiceSettings):
    """Settings of a service with a staff API: which tenants it serves and their tokens."""

    api_tokens: dict[str, SecretStr] = api_tokens_field()

    @model_validator(mode="after")
    def _tokens_usable(self) -> Self:
        check_api_tokens(self.api_tokens, production=self.environment == "production")
        return self


class StaffContext(Protocol):
    """What the staff login needs of a service's route context: its settings."""

    @property
    def settings(self) -> StaffTokensSettings: ...


def staff_tenant_dependency(
    context: Callable[..., StaffContext],
) -> Callable[..., Awaitable[str]]:
    """A FastAPI dependency answering the tenant whose staff token the request carries, or
    401 (text in the caller's language). `context` is the dependency giving the app's route
    context (anything with `settings`)."""

    async def staff_tenant(
        ctx: Annotated[StaffContext, Depends(context)],
        language: LanguageDep,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> str:
        """The tenant whose staff token the request carries; 401 otherwise."""
        presented = credentials.credentials.encode() if credentials else b""
        tenant: str | None = None
        # Compare against every token (constant time each) so timing reveals nothing.
        for candidate, token in ctx.settings.api_tokens.items():
            if hmac.compare_digest(presented, token.get_secret_value().encode()) and presented:
                tenant = candidate
        if tenant is None:
            raise HTTPException(
                status_code=status.HTTP_401_UNAUTHORIZED,
                detail=message("unauthorized", language),
                headers={"WWW-Authenticate": "Bearer"},
            )
        return tenant

    return staff_tenant
