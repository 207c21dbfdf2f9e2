"""HTTP API of issues: the public report API (tenant in the path), the staff inbox (bearer
token: the tenant's administrator token or a staff account's token; role and departments
decide what is visible) and the administration of categories, departments, areas, routing
rules, staff and the tenant's settings. Thin: validate, call the service function, shape."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import AwareDatetime, BaseModel

from sirene.runtime.auth import TENANT_PATTERN, bearer
from sirene.runtime.errors import (
    ConflictError,
    InvalidInputError,
    LanguageDep,
    NotFoundError,
    message,
)
from sirene.runtime.http import IdPath

from . import service
from .limits import Limiter
from .models import (
    SLUG,
    AreaIn,
    CategoryIn,
    CategoryOut,
    CommentIn,
    DepartmentIn,
    MergeIn,
    ModerationIn,
    NearbyReport,
    ReassignIn,
    ReportIn,
    ReportPage,
    ReportPublic,
    ReportReceipt,
    ReportStaff,
    ReportStatus,
    Role,
    RuleIn,
    StaffIn,
    StatusChangeIn,
    TemplateIn,
    TenantConfigIn,
)
from .notify import NotificationRelay
from .photos import CleanPhoto
from .repository import Repository
from .settings import IssuesSettings
from .signin import (
    COOKIE,
    CSRF_HEADER,
    LoginGuard,
    Session,
    Sessions,
    new_setup_code,
    password_fingerprint,
)
from .staff import Principal, new_token, same_secret, token_hash

SlugPath = Annotated[str, Path(pattern=SLUG)]


@dataclass(frozen=True, slots=True)
class Context:
    """What the routes need, built once by `create_app`."""

    settings: IssuesSettings
    repo: Repository
    limiter: Limiter
    relay: NotificationRelay
    sessions: Sessions
    logins: LoginGuard

    def staff_url(self, tenant: str) -> str:
        """Where a tenant's staff inbox is (linked from department e-mails)."""
        return f"{self.settings.portal_base}/{tenant}/staff"

    def setup_url(self, tenant: str, code: str) -> str:
        """A password set-up link; the code travels in the fragment, so it never reaches a
        server's or proxy's request log (the page's script moves it into the form)."""
        return f"{self.settings.portal_base}/{tenant}/staff/passwort#code={code}"


def get_context(request: Request) -> Context:
    """The app's `Context`."""
    ctx: Context = request.app.state.ctx
    return ctx


ContextDep = Annotated[Context, Depends(get_context)]


async def public_tenant(
    tenant: Annotated[str, Path(pattern=TENANT_PATTERN)], ctx: ContextDep
) -> str:
    """The tenant named in the path, if this installation serves it; 404 otherwise."""
    if tenant not in ctx.settings.api_tokens:
        raise NotFoundError("tenant_unknown")
    return tenant


PublicTenantDep = Annotated[str, Depends(public_tenant)]


def _principal_of(doc: dict[str, Any]) -> Principal:
    return Principal(
        doc["tenant"],
        doc["id"],
        doc["name"],
        Role(doc["role"]),
        frozenset(doc.get("departments", [])),
    )


async def session_principal(ctx: Context, cookie: str) -> tuple[Principal, Session] | None:
    """The staff member of a live inbox session, with the session; None when the session is
    gone, or its account was deleted, deactivated or given a new password since."""
    session = await ctx.sessions.get(cookie)
    if session is None:
        return None
    doc = await ctx.repo.get_kind("staff", session.tenant, session.staff_id)
    if (
        doc is None
        or not doc.get("active", True)
        or session.tenant not in ctx.settings.api_tokens
        or password_fingerprint(doc) != session.fingerprint
    ):
        await ctx.sessions.close(cookie)
        return None
    return _principal_of(doc), session


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def staff_principal(
    request: Request,
    ctx: ContextDep,
    language: LanguageDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The staff member the request is from: a bearer token (API clients; the administrator
    token of the settings or a staff token), else the inbox session cookie — which, for every
    state-changing method, needs the session's CSRF token in `X-CSRF-Token`. 401 otherwise."""
    found: Principal | None = None
    if credentials is not None:
        presented = credentials.credentials
        for tenant, token in ctx.settings.api_tokens.items():
            if presented and same_secret(presented, token.get_secret_value()):
                found = Principal(tenant, "admin", "Administration", Role.ADMIN, frozenset())
        if found is None and presented.startswith("sis_"):
            doc = await ctx.repo.staff_by_token_hash(token_hash(presented))
            if doc is not None and doc["tenant"] in ctx.settings.api_tokens:
                found = _principal_of(doc)
    elif cookie := request.cookies.get(COOKIE):
        signed_in = await session_principal(ctx, cookie)
        if signed_in is not None:
            found, session = signed_in
            if request.method not in SAFE_METHODS:
                sent = request.headers.get(CSRF_HEADER, "")
                if not same_secret(sent, session.csrf):
                    raise service.ForbiddenError("csrf")
    if found is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail=message("unauthorized", language),
            headers={"WWW-Authenticate": "Bearer"},
        )
    return found


StaffDep = Annotated[Principal, Depends(staff_principal)]


async def lead_principal(principal: StaffDep) -> Principal:
    service.require(principal, Role.LEAD)
    return principal


async def admin_principal(principal: StaffDep) -> Principal:
    service.require(principal, Role.ADMIN)
    return principal


LeadDep = Annotated[Principal, Depends(lead_principal)]
AdminDep = Annotated[Principal, Depends(admin_principal)]


def client_ip(request: Request, settings: IssuesSettings) -> str:
    """The caller's address (X-Forwarded-For only from a trusted proxy)."""
    peer = request.client.host if request.client else "unknown"
    forwarded = request.headers.get("x-forwarded-for")
    if forwarded and peer in settings.trusted_proxies:
        return forwarded.split(",")[0].strip()
    return peer


async def views(ctx: Context, tenant: str) -> dict[str, Any]:
    """Lookups the views need (category and department names)."""
    return {
        "categories": await service.categories_by_code(repo=ctx.repo, tenant=tenant),
        "departments": await service.departments_by_id(repo=ctx.repo, tenant=tenant),
    }


async def submit_report(
    *,
    ctx: Context,
    tenant: str,
    report: ReportIn,
    photos: list[CleanPhoto],
    request: Request,
    via: str,
) -> dict[str, Any]:
    """Abuse limits, then the service; wakes the notification relay."""
    contact = report.contact.model_dump(exclude_none=True) if report.contact else None
    await service.check_limits(
        limiter=ctx.limiter,
        tenant=tenant,
        client_ip=client_ip(request, ctx.settings),
        contact=contact,
        # an Open311 client holds an api_key and relays many citizens from one address:
        # only its citizens' contacts are limited, not its IP
        per_ip=None if via == "open311" else ctx.settings.reports_per_ip,
        per_contact=ctx.settings.reports_per_contact,
        window_s=ctx.settings.limit_window_s,
    )
    doc = await service.receive_report(
        repo=ctx.repo,
        tenant=tenant,
        report=report,
        photos=photos,
        staff_url=ctx.staff_url(tenant),
        via=via,
    )
    if doc.get("notify_pending"):
        ctx.relay.wake()
    return doc


# --- public ------------------------------------------------------------------------------------

public = APIRouter(prefix="/api/v1/{tenant}", tags=["public"])


class PublicConfig(BaseModel):
    """What the portal needs to know about a municipality."""

    name: str
    allow_anonymous: bool
    moderation: bool
    center: tuple[float, float] | None
    boundary: dict[str, Any] | None
    areas: list[dict[str, Any]]
    max_photos: int
    max_photo_mb: int
    tile_url: str | None


@public.get("/config")
async def get_public_config(tenant: PublicTenantDep, ctx: ContextDep) -> PublicConfig:
    """The municipality's name, map outline and districts, and the form's limits."""
    config = await service.tenant_config(repo=ctx.repo, tenant=tenant)
    areas = await ctx.repo.list_kind("areas", tenant)
    return PublicConfig(
        name=config["name"],
        allow_anonymous=config.get("allow_anonymous", True),
        moderation=config.get("moderation", False),
        center=config.get("center"),
        boundary=config.get("boundary"),
        areas=[{"id": a["id"], "name": a["name"], "geometry": a["geometry"]} for a in areas],
        max_photos=ctx.settings.max_photos,
        max_photo_mb=ctx.settings.max_photo_mb,
        tile_url=ctx.settings.tile_url,
    )


@public.get("/categories")
async def list_categories(
    tenant: PublicTenantDep, ctx: ContextDep, language: LanguageDep
) -> list[CategoryOut]:
    """The active report categories with their names (public)."""
    await service.tenant_config(repo=ctx.repo, tenant=tenant)
    return [
        CategoryOut(
            id=c["id"],
            label=service.category_label(c, c["id"], language),
            description=c.get("description", ""),
            group=c.get("group", ""),
            attributes=c.get("attributes", []),
            sla_hours=c.get("sla_hours"),
        )
        for c in await ctx.repo.list_kind("categories", tenant)
        if c.get("active", True)
    ]


@public.post("/reports", status_code=status.HTTP_201_CREATED)
async def create_report(
    body: ReportIn,
    tenant: PublicTenantDep,
    ctx: ContextDep,
    language: LanguageDep,
    request: Request,
) -> ReportReceipt:
    """Receives a citizen's report (public; no account needed). Photos: see the portal form."""
    doc = await submit_report(
        ctx=ctx, tenant=tenant, report=body, photos=[], request=request, via="api"
    )
    thanks = service.THANKS[1] if language == "en" else service.THANKS[0]
    view = service.public_view(doc, language, **await views(ctx, tenant))
    return ReportReceipt(**view, message=thanks)


@public.get("/reports/nearby")
async def nearby(
    tenant: PublicTenantDep,
    ctx: ContextDep,
    language: LanguageDep,
    category: Annotated[str, Query(pattern=SLUG)],
    lat: Annotated[float, Query(ge=-90, le=90)],
    lon: Annotated[float, Query(ge=-180, le=180)],
) -> list[NearbyReport]:
    """Open public reports of the category within the duplicate radius (50 m), nearest first:
    offered as 'support this instead' before a new report is sent."""
    lookups = await views(ctx, tenant)
    found = await service.nearby_open_reports(
        repo=ctx.repo,
        tenant=tenant,
        category=category,
        lat=lat,
        lon=lon,
        radius_m=ctx.settings.duplicate_radius_m,
    )
    return [
        NearbyReport(
            id=d["id"],
            category_label=service.category_label(
                lookups["categories"].get(d["category"]), d["category"], language
            ),
            description=d["description"][:300],
            status_label=service.status_label(d["status"], language),
            distance_m=round(m, 1),
            supporters=d.get("supporters", 0),
        )
        for d, m in found
    ]


@public.get("/reports/{report_id}")
async def get_public_report(
    report_id: IdPath, tenant: PublicTenantDep, ctx: ContextDep, language: LanguageDep
) -> ReportPublic:
    """A report's public status page data: never the contact or internal comments."""
    doc = await ctx.repo.get_report(tenant, report_id)
    if doc is None:
        raise NotFoundError("report_not_found")
    return ReportPublic(**service.public_view(doc, language, **await views(ctx, tenant)))


@public.post("/reports/{report_id}/support")
async def support(
    report_id: IdPath,
    tenant: PublicTenantDep,
    ctx: ContextDep,
    language: LanguageDep,
    request: Request,
) -> ReportPublic:
    """'I have the same problem': counts a supporter instead of a new report (limited per IP)."""
    wait = await ctx.limiter.hit(
        f"{tenant}:support:{report_id}",
        client_ip(request, ctx.settings),
        limit=1,
        window_s=24 * 3600,
    )
    if wait is None:
        doc = await service.support_report(repo=ctx.repo, tenant=tenant, report_id=report_id)
    else:  # the same client again: counted once, answered as before
        found = await ctx.repo.get_report(tenant, report_id)
        if found is None or found["moderation"] != "public":
            raise NotFoundError("report_not_found")
        doc = found
    return ReportPublic(**service.public_view(doc, language, **await views(ctx, tenant)))


@public.get("/reports/{report_id}/photos/{photo_id}")
async def get_photo(
    report_id: IdPath, photo_id: IdPath, tenant: PublicTenantDep, ctx: ContextDep
) -> Response:
    """A report's photo (metadata-free JPEG) — public once the report is public."""
    doc = await ctx.repo.get_report(tenant, report_id)
    if doc is None or photo_id not in doc.get("photos", []) or doc["moderation"] != "public":
        raise NotFoundError("report_not_found")
    photo = await ctx.repo.get_photo(tenant, photo_id)
    if photo is None:
        raise NotFoundError("report_not_found")
    return Response(
        bytes(photo["data"]),
        media_type=photo["content_type"],
        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )


# --- staff -------------------------------------------------------------------------------------

staff = APIRouter(prefix="/api/v1", tags=["staff"])


class Me(BaseModel):
    """The calling staff member."""

    tenant: str
    id: str
    name: str
    role: Role
    departments: list[str]


@staff.get("/me")
async def me(principal: StaffDep) -> Me:
    """Who the token belongs to (the inbox shows it)."""
    return Me(
        tenant=principal.tenant,
        id=principal.staff_id,
        name=principal.name,
        role=principal.role,
        departments=sorted(principal.departments),
    )


@staff.get("/reports")
async def inbox(
    principal: StaffDep,
    ctx: ContextDep,
    language: LanguageDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[
        AwareDatetime | None, Query(description="Only reports received before this time.")
    ] = None,
    status_filter: Annotated[list[ReportStatus] | None, Query(alias="status")] = None,
    category: Annotated[str | None, Query(pattern=SLUG)] = None,
    department: Annotated[str | None, Query(pattern=r"^(-|[a-z0-9][a-z0-9_-]{0,62})$")] = None,
    overdue: bool | None = None,
    moderation: Literal["pending", "public", "hidden"] | None = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
) -> ReportPage:
    """Reports of the caller's departments (all for administrators), newest first, with
    filters; `department=-` lists unassigned reports (administrators)."""
    query = service.staff_query(
        principal,
        status=[s.value for s in status_filter or []],
        category=category,
        department=department,
        overdue=overdue,
        moderation=moderation,
        before=before,
        text=q,
    )
    docs = await ctx.repo.find_reports(query, limit=limit)
    lookups = await views(ctx, principal.tenant)
    items = [ReportStaff(**service.staff_view(d, language, **lookups)) for d in docs]
    next_before: datetime | None = docs[-1]["created_at"] if len(docs) == limit else None
    return ReportPage(items=items, next_before=next_before)


@staff.get("/moderation")
async def moderation_queue(
    principal: LeadDep, ctx: ContextDep, language: LanguageDep
) -> ReportPage:
    """Reports waiting for moderation before public display, oldest first."""
    query = service.staff_query(principal, moderation="pending")
    docs = await ctx.repo.find_reports(query, limit=200, sort=[("created_at", 1)])
    lookups = await views(ctx, principal.tenant)
    return ReportPage(
        items=[ReportStaff(**service.staff_view(d, language, **lookups)) for d in docs]
    )


async def _staff_answer(ctx: Context, doc: dict[str, Any], language: str) -> ReportStaff:
    if doc.get("notify_pending"):
        ctx.relay.wake()
    return ReportStaff(**service.staff_view(doc, language, **await views(ctx, doc["tenant"])))


@staff.get("/reports/{report_id}")
async def staff_report(
    report_id: IdPath, principal: StaffDep, ctx: ContextDep, language: LanguageDep
) -> ReportStaff:
    """One report with contact, comments and history (if in the caller's reach)."""
    doc = await service.report_for_staff(repo=ctx.repo, principal=principal, report_id=report_id)
    return await _staff_answer(ctx, doc, language)


@staff.post("/reports/{report_id}/status")
async def set_status(
    report_id: IdPath,
    body: StatusChangeIn,
    principal: StaffDep,
    ctx: ContextDep,
    language: LanguageDep,
) -> ReportStaff:
    """A new status with its public note; the reporter is informed."""
    doc = await service.change_status(
        repo=ctx.repo,
        principal=principal,
        report_id=report_id,
        change=body,
        portal_url=ctx.settings.portal_base,
    )
    return await _staff_answer(ctx, doc, language)


@staff.post("/reports/{report_id}/comments", status_code=status.HTTP_201_CREATED)
async def comment(
    report_id: IdPath,
    body: CommentIn,
    principal: StaffDep,
    ctx: ContextDep,
    language: LanguageDep,
) -> ReportStaff:
    """An internal comment (staff only)."""
    doc = await service.add_comment(
        repo=ctx.repo, principal=principal, report_id=report_id, text=body.text
    )
    return await _staff_answer(ctx, doc, language)


@staff.post("/reports/{report_id}/assignment")
async def assign(
    report_id: IdPath,
    body: ReassignIn,
    principal: StaffDep,
    ctx: ContextDep,
    language: LanguageDep,
) -> ReportStaff:
    """Moves the report to another department (history kept; that department is e-mailed)."""
    doc = await service.reassign(
        repo=ctx.repo,
        principal=principal,
        report_id=report_id,
        department=body.department,
        reason=body.reason,
        staff_url=ctx.staff_url(principal.tenant),
    )
    return await _staff_answer(ctx, doc, language)


@staff.post("/reports/{report_id}/merge")
async def merge(
    report_id: IdPath,
    body: MergeIn,
    principal: StaffDep,
    ctx: ContextDep,
    language: LanguageDep,
) -> ReportStaff:
    """Closes the report as a duplicate of `into` (leads and administrators)."""
    doc = await service.merge(
        repo=ctx.repo,
        principal=principal,
        report_id=report_id,
        into=body.into,
        portal_url=ctx.settings.portal_base,
    )
    return await _staff_answer(ctx, doc, language)


@staff.post("/reports/{report_id}/moderation")
async def moderate(
    report_id: IdPath,
    body: ModerationIn,
    principal: StaffDep,
    ctx: ContextDep,
    language: LanguageDep,
) -> ReportStaff:
    """Publishes or rejects a report waiting for moderation (leads and administrators)."""
    doc = await service.moderate(
        repo=ctx.repo,
        principal=principal,
        report_id=report_id,
        approve=body.approve,
        reason=body.reason,
        portal_url=ctx.settings.portal_base,
    )
    return await _staff_answer(ctx, doc, language)


@staff.get("/templates")
async def list_templates(principal: StaffDep, ctx: ContextDep) -> list[TemplateIn]:
    """The tenant's response templates."""
    return [
        TemplateIn.model_validate({k: d[k] for k in ("id", "title", "text", "status") if k in d})
        for d in await ctx.repo.list_kind("templates", principal.tenant)
    ]


@staff.put("/templates/{item_id}")
async def put_template(
    item_id: SlugPath, body: TemplateIn, principal: LeadDep, ctx: ContextDep
) -> TemplateIn:
    """Creates or replaces a response template (leads and administrators)."""
    _same_id(item_id, body.id)
    await ctx.repo.put_kind("templates", principal.tenant, body.model_dump(mode="json"))
    return body


@staff.delete("/templates/{item_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_template(item_id: SlugPath, principal: LeadDep, ctx: ContextDep) -> None:
    if not await ctx.repo.delete_kind("templates", principal.tenant, item_id):
        raise NotFoundError("not_found", what=item_id)


class DepartmentOut(DepartmentIn):
    """A department with its members."""

    members: list[dict[str, str]]


@staff.get("/departments")
async def list_departments(principal: StaffDep, ctx: ContextDep) -> list[DepartmentOut]:
    """The tenant's departments with their members (for reassigning)."""
    members = await ctx.repo.list_kind("staff", principal.tenant)
    return [
        DepartmentOut(
            id=d["id"],
            name=d["name"],
            email=d.get("email"),
            members=[
                {"id": m["id"], "name": m["name"], "role": m["role"]}
                for m in members
                if d["id"] in m.get("departments", []) and m.get("active", True)
            ],
        )
        for d in await ctx.repo.list_kind("departments", principal.tenant)
    ]


# --- administration ----------------------------------------------------------------------------

admin = APIRouter(prefix="/api/v1/admin", tags=["admin"])


def _same_id(path_id: str, body_id: str) -> None:
    if path_id != body_id:
        raise InvalidInputError(("body", "id"), "not_found", what=body_id)


@admin.get("/config")
async def get_config(principal: AdminDep, ctx: ContextDep) -> TenantConfigIn:
    config = await service.tenant_config(repo=ctx.repo, tenant=principal.tenant)
    return TenantConfigIn.model_validate({k: v for k, v in config.items() if k != "_id"})


@admin.put("/config")
async def put_config(body: TenantConfigIn, principal: AdminDep, ctx: ContextDep) -> TenantConfigIn:
    """The municipality's name, anonymous reports, moderation, default desk and boundary."""
    if body.boundary is not None:
        try:
            body.boundary.check()
        except ValueError as exc:
            raise InvalidInputError(
                ("body", "boundary"), "geometry_invalid", reason=str(exc)
            ) from None
    if body.default_department and not await ctx.repo.get_kind(
        "departments", principal.tenant, body.default_department
    ):
        raise InvalidInputError(("body", "default_department"), "department_unknown")
    await service.tenant_config(repo=ctx.repo, tenant=principal.tenant)
    await ctx.repo.put_config(principal.tenant, body.model_dump(mode="json"))
    return body


@admin.get("/categories")
async def admin_categories(principal: AdminDep, ctx: ContextDep) -> list[CategoryIn]:
    return [_strip(CategoryIn, d) for d in await ctx.repo.list_kind("categories", principal.tenant)]


@admin.put("/categories/{item_id}")
async def put_category(
    item_id: SlugPath, body: CategoryIn, principal: AdminDep, ctx: ContextDep
) -> CategoryIn:
    """Creates or replaces a category (deactivate instead of deleting one in use)."""
    _same_id(item_id, body.code)
    await ctx.repo.put_kind(
        "categories", principal.tenant, {"id": body.code, **body.model_dump(mode="json")}
    )
    return body


@admin.get("/departments")
async def admin_departments(principal: AdminDep, ctx: ContextDep) -> list[DepartmentIn]:
    return [
        _strip(DepartmentIn, d) for d in await ctx.repo.list_kind("departments", principal.tenant)
    ]


@admin.put("/departments/{item_id}")
async def put_department(
    item_id: SlugPath, body: DepartmentIn, principal: AdminDep, ctx: ContextDep
) -> DepartmentIn:
    _same_id(item_id, body.id)
    await ctx.repo.put_kind("departments", principal.tenant, body.model_dump(mode="json"))
    return body


@admin.get("/areas")
async def admin_areas(principal: AdminDep, ctx: ContextDep) -> list[AreaIn]:
    return [_strip(AreaIn, d) for d in await ctx.repo.list_kind("areas", principal.tenant)]


@admin.put("/areas/{item_id}")
async def put_area(item_id: SlugPath, body: AreaIn, principal: AdminDep, ctx: ContextDep) -> AreaIn:
    """Creates or replaces a district (GeoJSON Polygon or MultiPolygon)."""
    _same_id(item_id, body.id)
    try:
        body.geometry.check()
    except ValueError as exc:
        raise InvalidInputError(("body", "geometry"), "geometry_invalid", reason=str(exc)) from None
    await ctx.repo.put_kind("areas", principal.tenant, body.model_dump(mode="json"))
    return body


@admin.get("/rules")
async def admin_rules(principal: AdminDep, ctx: ContextDep) -> list[RuleIn]:
    return [_strip(RuleIn, d) for d in await ctx.repo.list_kind("rules", principal.tenant)]


@admin.put("/rules/{item_id}")
async def put_rule(item_id: SlugPath, body: RuleIn, principal: AdminDep, ctx: ContextDep) -> RuleIn:
    """Creates or replaces a routing rule; its department, category and area must exist."""
    _same_id(item_id, body.id)
    tenant = principal.tenant
    if not await ctx.repo.get_kind("departments", tenant, body.department):
        raise InvalidInputError(("body", "department"), "department_unknown")
    if body.category and not await ctx.repo.get_kind("categories", tenant, body.category):
        raise InvalidInputError(("body", "category"), "category_unknown")
    if body.area and not await ctx.repo.get_kind("areas", tenant, body.area):
        raise InvalidInputError(("body", "area"), "area_unknown")
    await ctx.repo.put_kind("rules", tenant, body.model_dump(mode="json"))
    return body


@admin.delete("/{kind}/{item_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_item(
    kind: Literal["rules", "areas", "departments", "staff"],
    item_id: SlugPath,
    principal: AdminDep,
    ctx: ContextDep,
) -> None:
    """Deletes a rule, area, department or staff account (categories are deactivated). A
    department that is the default desk or a rule's target stays (409) until that changes."""
    if kind == "departments":
        config = await service.tenant_config(repo=ctx.repo, tenant=principal.tenant)
        rules = await ctx.repo.list_kind("rules", principal.tenant)
        if config.get("default_department") == item_id or any(
            r["department"] == item_id for r in rules
        ):
            raise ConflictError("department_in_use")
    if kind == "areas" and any(
        r.get("area") == item_id for r in await ctx.repo.list_kind("rules", principal.tenant)
    ):
        raise ConflictError("area_in_use")
    if not await ctx.repo.delete_kind(kind, principal.tenant, item_id):
        raise NotFoundError("not_found", what=item_id)


class StaffOut(StaffIn):
    """A staff account; `token` and the password set-up link only in the answer that created
    them."""

    password_set: bool = False
    token: str | None = None
    setup_code: str | None = None
    setup_url: str | None = None
    setup_expires_at: datetime | None = None


class SetupLink(BaseModel):
    """A one-time link with which a staff member chooses a (new) password."""

    setup_code: str
    setup_url: str
    setup_expires_at: datetime


@admin.get("/staff")
async def list_staff(principal: AdminDep, ctx: ContextDep) -> list[StaffOut]:
    """The tenant's staff accounts (never a token, password hash or set-up code)."""
    return [
        StaffOut(**_strip(StaffIn, d).model_dump(), password_set=bool(d.get("password_hash")))
        for d in await ctx.repo.list_kind("staff", principal.tenant)
    ]


@admin.post("/staff", status_code=status.HTTP_201_CREATED)
async def create_staff(body: StaffIn, principal: AdminDep, ctx: ContextDep) -> StaffOut:
    """Creates a staff account; the answer carries, once, its API token and a one-time link
    with which the member chooses the password for the inbox (only hashes are stored)."""
    for department in body.departments:
        if not await ctx.repo.get_kind("departments", principal.tenant, department):
            raise InvalidInputError(("body", "departments"), "department_unknown")
    token = new_token()
    setup = new_setup_code(ctx.settings.setup_link_ttl_h)
    created = await ctx.repo.insert_kind(
        "staff",
        principal.tenant,
        {
            **body.model_dump(mode="json"),
            "token_hash": token_hash(token),
            "active": True,
            "setup_hash": setup.hash,
            "setup_expires_at": setup.expires_at,
        },
    )
    if not created:
        raise ConflictError("staff_id_taken")
    return StaffOut(
        **body.model_dump(),
        token=token,
        setup_code=setup.code,
        setup_url=ctx.setup_url(principal.tenant, setup.code),
        setup_expires_at=setup.expires_at,
    )


@admin.post("/staff/{item_id}/password-link", status_code=status.HTTP_201_CREATED)
async def password_link(item_id: SlugPath, principal: AdminDep, ctx: ContextDep) -> SetupLink:
    """A new one-time password link for a staff member (forgotten password); an earlier link
    stops working. The current password stays valid until the member sets the new one."""
    setup = new_setup_code(ctx.settings.setup_link_ttl_h)
    if not await ctx.repo.set_setup_code(principal.tenant, item_id, setup.hash, setup.expires_at):
        raise NotFoundError("not_found", what=item_id)
    return SetupLink(
        setup_code=setup.code,
        setup_url=ctx.setup_url(principal.tenant, setup.code),
        setup_expires_at=setup.expires_at,
    )


def _strip(model: type[Any], doc: dict[str, Any]) -> Any:
    fields = model.model_fields
    data = {k: v for k, v in doc.items() if k in fields}
    if "code" in fields and "code" not in data:
        data["code"] = doc["id"]
    return model.model_validate(data)
