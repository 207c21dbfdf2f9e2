"""Read-only recipient estimate for the publisher's compose form: how many citizens an audience
would reach, per channel, from the audience index (streamed in chunks, nothing is sent).

Internal endpoint for the publisher (service to service, not exposed to the public): it only
answers counts, never ids or contact points, and only to a caller with the service token
(`SIRENE_ESTIMATE_TOKEN`, `Authorization: Bearer <token>`, compared in constant time); without
it, 401."""

from __future__ import annotations

import hmac
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from sirene.runtime.errors import LanguageDep, message
from sirene.schemas import Audience, Channel

from .repository import AudienceIndex, Recipient
from .routing import routes_for
from .service import Where

TENANT_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"


def reachable(recipient: Recipient, *, everyone: bool, topics: list[str]) -> set[Channel]:
    """The channels on which an alert to this audience would reach the citizen (a chosen
    channel with an active contact point)."""
    subs = recipient.subscriptions
    chosen = subs.keys() if everyone else (t for t in topics)
    channels = {Channel(ch) for topic in chosen for ch in subs.get(topic, ())}
    routes = recipient.routes
    if routes is None:
        routes = routes_for(recipient.citizen_id, recipient.contacts)
    return {ch for ch in channels if routes.get(ch.value)}


service_bearer = HTTPBearer(auto_error=False, description="The estimate's service token.")


def service_token_check(token: SecretStr) -> Callable[..., Awaitable[None]]:
    """A dependency that lets through only requests carrying `token` as bearer token (constant
    time comparison); 401 with `WWW-Authenticate: Bearer` otherwise."""
    expected = token.get_secret_value().encode()

    async def check(
        language: LanguageDep,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(service_bearer)],
    ) -> None:
        presented = credentials.credentials.encode() if credentials else b""
        if not (hmac.compare_digest(presented, expected) and presented):
            raise HTTPException(
                status_code=status.HTTP_401_UNAUTHORIZED,
                detail=message("unauthorized", language),
                headers={"WWW-Authenticate": "Bearer"},
            )

    return check


class EstimateIn(BaseModel):
    """What the publisher asks: the tenant and the audience of the alert being composed."""

    model_config = ConfigDict(extra="forbid")

    tenant: str = Field(pattern=TENANT_PATTERN, description="Tenant id.")
    audience: Audience = Field(description="Topics or everyone, districts, areas.")


def estimate_router(index: AudienceIndex, *, chunk_size: int, token: SecretStr) -> APIRouter:
    """`POST /api/v1/estimate` with `{"tenant": …, "audience": {…}}` (the alert's `Audience`:
    topics or everyone, districts, target areas), for callers with the service token."""
    router = APIRouter(
        prefix="/api/v1", tags=["estimate"], dependencies=[Depends(service_token_check(token))]
    )

    @router.post("/estimate")
    async def estimate(body: EstimateIn) -> dict[str, object]:
        audience = body.audience
        topics = list(audience.topics)
        where = Where.of(audience)
        per_channel: Counter[str] = Counter()
        recipients = 0
        async for chunk in index.audience(
            body.tenant, everyone=audience.everyone, topics=topics, chunk_size=chunk_size
        ):
            for recipient in chunk:
                if where is not None and not where.admits(recipient.district, recipient.location):
                    continue
                channels = reachable(recipient, everyone=audience.everyone, topics=topics)
                recipients += bool(channels)
                per_channel.update(ch.value for ch in channels)
        return {
            "recipients": recipients,
            "channels": {ch.value: per_channel.get(ch.value, 0) for ch in Channel},
        }

    return router
