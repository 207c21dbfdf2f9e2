"""HTTP API of the publisher (staff, bearer token per tenant). Thin: validate, call the service
function, shape the answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Query, Request, status
from pydantic import AwareDatetime

from sirene.runtime.auth import staff_tenant_dependency
from sirene.runtime.errors import install_error_handlers as install_domain_error_handlers
from sirene.runtime.http import IdPath
from sirene.runtime.outbox import OutboxRelay

from . import service
from .errors import MESSAGES
from .metrics import REJECTED_INPUT
from .models import AlertIn, AlertOut, AlertPage, ProgressOut
from .repository import Repository
from .settings import PublisherSettings


@dataclass(frozen=True, slots=True)
class Context:
    """What the routes need, built once by `create_app`."""

    settings: PublisherSettings
    repo: Repository
    relay: OutboxRelay


def get_context(request: Request) -> Context:
    """The app's `Context`."""
    ctx: Context = request.app.state.ctx
    return ctx


ContextDep = Annotated[Context, Depends(get_context)]
staff_tenant = staff_tenant_dependency(get_context)
TenantDep = Annotated[str, Depends(staff_tenant)]

router = APIRouter(prefix="/api/v1", tags=["alerts"])


@router.post("/alerts", status_code=status.HTTP_201_CREATED)
async def create_alert(body: AlertIn, tenant: TenantDep, ctx: ContextDep) -> AlertOut:
    """Creates an alert as a draft, or publishes it right away with `publish: true`."""
    doc = await service.create_alert(
        repo=ctx.repo,
        wake=ctx.relay.wake,
        tenant=tenant,
        body=body,
        default_duration_s=ctx.settings.default_duration_s,
    )
    return AlertOut.model_validate(service.alert_view(doc))


@router.post("/alerts/{alert_id}/publish")
async def publish_alert(alert_id: IdPath, tenant: TenantDep, ctx: ContextDep) -> AlertOut:
    """Publishes a draft (idempotent for an already published alert)."""
    doc = await service.publish_alert(
        repo=ctx.repo,
        wake=ctx.relay.wake,
        tenant=tenant,
        alert_id=alert_id,
        default_duration_s=ctx.settings.default_duration_s,
    )
    return AlertOut.model_validate(service.alert_view(doc))


@router.get("/alerts")
async def list_alerts(
    tenant: TenantDep,
    ctx: ContextDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[
        AwareDatetime | None, Query(description="Only alerts created before this time.")
    ] = None,
) -> AlertPage:
    """The caller's tenant's alerts, newest first."""
    docs = await ctx.repo.list_alerts(tenant, limit=limit, before=before)
    return AlertPage(items=[AlertOut.model_validate(service.alert_view(d)) for d in docs])


@router.get("/alerts/{alert_id}")
async def get_alert(alert_id: IdPath, tenant: TenantDep, ctx: ContextDep) -> AlertOut:
    """One alert of the caller's tenant (404 for any other tenant's)."""
    doc = await service.get_alert(repo=ctx.repo, tenant=tenant, alert_id=alert_id)
    return AlertOut.model_validate(service.alert_view(doc))


@router.get("/alerts/{alert_id}/progress")
async def get_progress(alert_id: IdPath, tenant: TenantDep, ctx: ContextDep) -> ProgressOut:
    """Live delivery progress: tasks per channel and status, expected counts, completeness."""
    return await service.progress(repo=ctx.repo, tenant=tenant, alert_id=alert_id)


def install_error_handlers(app: FastAPI) -> None:
    """Turns domain errors into 4xx answers in the caller's language."""
    install_domain_error_handlers(app, catalogue=MESSAGES, rejected=REJECTED_INPUT)
