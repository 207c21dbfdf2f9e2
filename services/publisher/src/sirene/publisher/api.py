"""HTTP API of the publisher (staff, bearer token per tenant). Thin: validate, call the service
function, shape the answer."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request, status
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AwareDatetime

from sirene.runtime.outbox import OutboxRelay

from . import service
from .errors import DomainError, InvalidInputError, message
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
AlertIdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]

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
async def publish_alert(alert_id: AlertIdPath, tenant: TenantDep, ctx: ContextDep) -> AlertOut:
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
async def get_alert(alert_id: AlertIdPath, tenant: TenantDep, ctx: ContextDep) -> AlertOut:
    """One alert of the caller's tenant (404 for any other tenant's)."""
    doc = await service.get_alert(repo=ctx.repo, tenant=tenant, alert_id=alert_id)
    return AlertOut.model_validate(service.alert_view(doc))


@router.get("/alerts/{alert_id}/progress")
async def get_progress(alert_id: AlertIdPath, tenant: TenantDep, ctx: ContextDep) -> ProgressOut:
    """Live delivery progress: tasks per channel and status, expected counts, completeness."""
    return await service.progress(repo=ctx.repo, tenant=tenant, alert_id=alert_id)


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
