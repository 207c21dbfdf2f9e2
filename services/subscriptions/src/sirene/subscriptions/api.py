"""HTTP API of subscriptions (staff, bearer token per tenant). Thin: validate, call the service
function, shape the answer."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request, status
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from sirene.runtime.outbox import OutboxRelay

from . import service
from .errors import DomainError, InvalidInputError, message
from .metrics import REJECTED_INPUT
from .models import (
    CitizenIn,
    CitizenOut,
    CitizenPage,
    CitizenPatch,
    SubscriptionsIn,
    TopicIn,
    TopicOut,
)
from .repository import Repository
from .settings import SubscriptionsSettings


@dataclass(frozen=True, slots=True)
class Context:
    """What the routes need, built once by `create_app`."""

    settings: SubscriptionsSettings
    repo: Repository
    relay: OutboxRelay


def get_context(request: Request) -> Context:
    """The app's `Context`."""
    ctx: Context = request.app.state.ctx
    return ctx


ContextDep = Annotated[Context, Depends(get_context)]
_bearer = HTTPBearer(auto_error=False, description="Staff token of one tenant.")


def language_of(request: Request) -> str:
    """'en' when the caller prefers English (Accept-Language), else German."""
    accept = request.headers.get("accept-language", "")
    return "en" if accept.strip().lower().startswith("en") else "de"


async def staff_tenant(
    request: Request,
    ctx: ContextDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
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
            detail=message("unauthorized", language_of(request)),
            headers={"WWW-Authenticate": "Bearer"},
        )
    return tenant


TenantDep = Annotated[str, Depends(staff_tenant)]
CitizenIdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]

router = APIRouter(prefix="/api/v1", tags=["subscriptions"])


@router.post("/topics", status_code=status.HTTP_201_CREATED)
async def create_topic(body: TopicIn, tenant: TenantDep, ctx: ContextDep) -> TopicOut:
    """Creates a topic of the caller's tenant (id unique per tenant)."""
    doc = await service.create_topic(repo=ctx.repo, tenant=tenant, topic=body)
    return TopicOut.model_validate(doc)


@router.get("/topics")
async def list_topics(tenant: TenantDep, ctx: ContextDep) -> list[TopicOut]:
    """Every topic of the caller's tenant."""
    return [TopicOut.model_validate(doc) for doc in await ctx.repo.list_topics(tenant)]


@router.post("/citizens", status_code=status.HTTP_201_CREATED)
async def create_citizen(body: CitizenIn, tenant: TenantDep, ctx: ContextDep) -> CitizenOut:
    """Registers a citizen with contact points and channel choices; publishes the profile."""
    doc = await service.create_citizen(
        repo=ctx.repo,
        wake=ctx.relay.wake,
        tenant=tenant,
        body=body,
        default_region=ctx.settings.default_region,
        allowed_countries=ctx.settings.allowed_countries,
    )
    return CitizenOut.model_validate(service.citizen_view(doc))


@router.get("/citizens")
async def list_citizens(
    tenant: TenantDep,
    ctx: ContextDep,
    after: Annotated[
        str | None, Query(max_length=64, description="Last id of the page before.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> CitizenPage:
    """Citizens of the caller's tenant, ordered by id, `limit` at a time."""
    docs = await ctx.repo.list_citizens(tenant, after=after, limit=limit)
    return CitizenPage(
        items=[CitizenOut.model_validate(service.citizen_view(d)) for d in docs],
        next_after=docs[-1]["id"] if len(docs) == limit else None,
    )


@router.get("/citizens/{citizen_id}")
async def get_citizen(citizen_id: CitizenIdPath, tenant: TenantDep, ctx: ContextDep) -> CitizenOut:
    """One citizen of the caller's tenant (404 for any other tenant's)."""
    doc = await service.get_citizen(repo=ctx.repo, tenant=tenant, citizen_id=citizen_id)
    return CitizenOut.model_validate(service.citizen_view(doc))


@router.patch("/citizens/{citizen_id}")
async def patch_citizen(
    citizen_id: CitizenIdPath, body: CitizenPatch, tenant: TenantDep, ctx: ContextDep
) -> CitizenOut:
    """Changes contact points, language or district; publishes the new profile."""
    doc = await service.change_citizen(
        repo=ctx.repo,
        wake=ctx.relay.wake,
        tenant=tenant,
        citizen_id=citizen_id,
        patch=body,
        default_region=ctx.settings.default_region,
        allowed_countries=ctx.settings.allowed_countries,
    )
    return CitizenOut.model_validate(service.citizen_view(doc))


@router.put("/citizens/{citizen_id}/subscriptions")
async def put_subscriptions(
    citizen_id: CitizenIdPath, body: SubscriptionsIn, tenant: TenantDep, ctx: ContextDep
) -> CitizenOut:
    """Replaces the citizen's channel choice per topic; publishes the new profile."""
    doc = await service.set_subscriptions(
        repo=ctx.repo,
        wake=ctx.relay.wake,
        tenant=tenant,
        citizen_id=citizen_id,
        subscriptions=body.subscriptions,
    )
    return CitizenOut.model_validate(service.citizen_view(doc))


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)  # noqa: S101 - registered for DomainError only
    REJECTED_INPUT.labels(reason=exc.code).inc()
    text = message(exc.code, language_of(request), **exc.params)
    if isinstance(exc, InvalidInputError):
        body: object = {"detail": [{"loc": list(exc.loc), "msg": text, "type": exc.code}]}
    else:
        body = {"detail": text, "code": exc.code}
    return JSONResponse(body, status_code=exc.status_code)


def install_error_handlers(app: FastAPI) -> None:
    """Turns domain errors into 4xx answers in the caller's language."""
    app.add_exception_handler(DomainError, _domain_error)
