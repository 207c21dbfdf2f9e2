"""HTTP API of issues: the public report form (tenant in the path) and the staff list
(bearer token per tenant). Thin: validate, call the service function, shape the answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from pydantic import AwareDatetime

from sirene.runtime.auth import TENANT_PATTERN, staff_tenant_dependency
from sirene.runtime.errors import Catalogue, LanguageDep
from sirene.runtime.http import IdPath

from . import service
from .models import (
    CategoryOut,
    IssueCategory,
    IssueStatus,
    ReportIn,
    ReportPage,
    ReportPublic,
    ReportReceipt,
    ReportStaff,
)
from .repository import Repository
from .settings import IssuesSettings

MESSAGES = Catalogue(
    {
        "tenant_unknown": ("Diese Gemeinde gibt es hier nicht.", "No such municipality here."),
        "report_not_found": ("Meldung nicht gefunden.", "Report not found."),
    }
)


@dataclass(frozen=True, slots=True)
class Context:
    """What the routes need, built once by `create_app`."""

    settings: IssuesSettings
    repo: Repository


def get_context(request: Request) -> Context:
    """The app's `Context`."""
    ctx: Context = request.app.state.ctx
    return ctx


ContextDep = Annotated[Context, Depends(get_context)]
staff_tenant = staff_tenant_dependency(get_context)


async def public_tenant(
    tenant: Annotated[str, Path(pattern=TENANT_PATTERN)],
    ctx: ContextDep,
    language: LanguageDep,
) -> str:
    """The tenant named in the path, if this installation serves it; 404 otherwise."""
    if tenant not in ctx.settings.api_tokens:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail=MESSAGES.message("tenant_unknown", language)
        )
    return tenant


TenantDep = Annotated[str, Depends(staff_tenant)]
PublicTenantDep = Annotated[str, Depends(public_tenant)]

router = APIRouter(prefix="/api/v1", tags=["issues"])


@router.get("/{tenant}/categories")
async def list_categories(_: PublicTenantDep, language: LanguageDep) -> list[CategoryOut]:
    """The report categories with their names (public)."""
    return [CategoryOut(id=c, label=service.category_label(c, language)) for c in IssueCategory]


@router.post("/{tenant}/reports", status_code=status.HTTP_201_CREATED)
async def create_report(
    body: ReportIn, tenant: PublicTenantDep, ctx: ContextDep, language: LanguageDep
) -> ReportReceipt:
    """Receives a citizen's report (public; no account needed)."""
    doc = await service.receive_report(repo=ctx.repo, tenant=tenant, report=body)
    thanks = service.THANKS[1] if language == "en" else service.THANKS[0]
    return ReportReceipt(**service.public_view(doc, language), message=thanks)


@router.get("/{tenant}/reports/{report_id}")
async def get_public_report(
    report_id: IdPath, tenant: PublicTenantDep, ctx: ContextDep, language: LanguageDep
) -> ReportPublic:
    """A report's public view: category, text, place and status, never the contact."""
    doc = await ctx.repo.get_report(tenant, report_id)
    if doc is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail=MESSAGES.message("report_not_found", language)
        )
    return ReportPublic(**service.public_view(doc, language))


@router.get("/reports")
async def list_reports(
    tenant: TenantDep,
    ctx: ContextDep,
    language: LanguageDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[
        AwareDatetime | None, Query(description="Only reports received before this time.")
    ] = None,
    status_filter: Annotated[IssueStatus | None, Query(alias="status")] = None,
) -> ReportPage:
    """The caller's tenant's reports, newest first, with contact data (staff only)."""
    docs = await ctx.repo.list_reports(
        tenant,
        limit=limit,
        before=before,
        status=status_filter.value if status_filter else None,
    )
    return ReportPage(items=[ReportStaff(**service.staff_view(d, language)) for d in docs])
