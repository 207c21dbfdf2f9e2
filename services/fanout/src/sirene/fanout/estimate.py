"""Read-only recipient estimate for the publisher's compose form: how many citizens an audience
would reach, per channel, from the audience index (streamed in chunks, nothing is sent).

Internal endpoint for the publisher (service to service, not exposed to the public): it only
answers counts, never ids or contact points, and only to a caller with the service token
(`SIRENE_ESTIMATE_TOKEN`, `Authorization: Bearer <token>`, compared in constant time); without
it, 401."""

from __future__ import annotations

import hmac
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

from sirene.runtime.errors import LanguageDep, message
from sirene.schemas import Channel
from sirene.schemas.common import ENTITY_ID_PATTERN

from .repository import AudienceIndex, Recipient
from .routing import routes_for

TENANT_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"
_ID = re.compile(ENTITY_ID_PATTERN)


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


def estimate_router(index: AudienceIndex, *, chunk_size: int, token: SecretStr) -> APIRouter:
    """`GET /api/v1/estimate?tenant=..&topic=..&district=..&everyone=true`, for callers with the
    service token."""
    router = APIRouter(
        prefix="/api/v1", tags=["estimate"], dependencies=[Depends(service_token_check(token))]
    )

    @router.get("/estimate")
    async def estimate(
        tenant: Annotated[str, Query(pattern=TENANT_PATTERN)],
        topic: Annotated[list[str], Query(max_length=50)] = [],  # noqa: B006 - FastAPI query list
        district: Annotated[list[str], Query(max_length=50)] = [],  # noqa: B006
        everyone: bool = False,
    ) -> dict[str, object]:
        topics = [t for t in topic if _valid_id(t)]
        districts = set(district)
        per_channel: Counter[str] = Counter()
        recipients = 0
        if everyone or topics:
            async for chunk in index.audience(
                tenant, everyone=everyone, topics=topics, chunk_size=chunk_size
            ):
                for recipient in chunk:
                    if districts and recipient.district not in districts:
                        continue
                    channels = reachable(recipient, everyone=everyone, topics=topics)
                    recipients += bool(channels)
                    per_channel.update(ch.value for ch in channels)
        return {
            "recipients": recipients,
            "channels": {ch.value: per_channel.get(ch.value, 0) for ch in Channel},
        }

    return router


def _valid_id(value: str) -> bool:
    return bool(_ID.fullmatch(value)) and len(value) <= 64
