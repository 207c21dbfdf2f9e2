"""HTTP API of subscriptions (staff, bearer token per tenant). Thin: validate, call the service
function, shape the answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Query, Request, status

from sirene.runtime.auth import staff_tenant_dependency
from sirene.runtime.errors import install_error_handlers as install_domain_error_handlers
from sirene.runtime.http import IdPath
from sirene.runtime.outbox import OutboxRelay

from . import service
from .errors import MESSAGES
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
staff_tenant = staff_tenant_dependency(get_context)
TenantDep = Annotated[str, Depends(staff_tenant)]

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
async def get_citizen(citizen_id: IdPath, tenant: TenantDep, ctx: ContextDep) -> CitizenOut:
    """One citizen of the caller's tenant (404 for any other tenant's)."""
    doc = await service.get_citizen(repo=ctx.repo, tenant=tenant, citizen_id=citizen_id)
    return CitizenOut.model_validate(service.citizen_view(doc))


@router.patch("/citizens/{citizen_id}")
async def patch_citizen(
    citizen_id: IdPath, body: CitizenPatch, tenant: TenantDep, ctx: ContextDep
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
    citizen_id: IdPath, body: SubscriptionsIn, tenant: TenantDep, ctx: ContextDep
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


def install_error_handlers(app: FastAPI) -> None:
    """Turns domain errors into 4xx answers in the caller's language."""
    install_domain_error_handlers(app, catalogue=MESSAGES, rejected=REJECTED_INPUT)
