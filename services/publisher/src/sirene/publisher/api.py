"""HTTP API of the publisher (staff: a personal bearer token, or the tenant's integration token
from the settings). Thin: validate, check the role, call the service function, shape the
answer. Every query is scoped to the caller's tenant; another tenant's alert is a 404."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import httpx
from fastapi import (
    APIRouter,
    Body,
    Depends,
    FastAPI,
    Header,
    HTTPException,
    Query,
    Request,
    UploadFile,
    status,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import AwareDatetime, ValidationError

from sirene.runtime import Document
from sirene.runtime.auth import bearer
from sirene.runtime.errors import (
    ConflictError,
    InvalidInputError,
    LanguageDep,
    NotFoundError,
    message,
)
from sirene.runtime.errors import install_error_handlers as install_domain_error_handlers
from sirene.runtime.http import IdPath
from sirene.runtime.outbox import OutboxRelay
from sirene.schemas import utcnow

from . import accounts, cap, report, service
from .accounts import LoginGuard, Principal, Sessions, require
from .alert_templates import TEMPLATES
from .errors import MESSAGES
from .metrics import REJECTED_INPUT
from .models import (
    AlertIn,
    AlertOut,
    AlertPage,
    AlertPatchIn,
    AlertUpdateIn,
    AuditOut,
    CancelIn,
    ProgressOut,
    RejectIn,
    StaffIn,
    StaffOut,
    TemplateOut,
    TenantSettingsIn,
    TokenOut,
    TotpConfirmIn,
    TotpStartOut,
)
from .repository import Repository
from .roles import Role
from .settings import PublisherSettings


@dataclass(frozen=True, slots=True)
class Context:
    """What the routes need, built once by `create_app`."""

    settings: PublisherSettings
    repo: Repository
    relay: OutboxRelay
    sessions: Sessions
    logins: LoginGuard
    http: httpx.AsyncClient


def get_context(request: Request) -> Context:
    """The app's `Context`."""
    ctx: Context = request.app.state.ctx
    return ctx


ContextDep = Annotated[Context, Depends(get_context)]


async def staff_principal(
    ctx: ContextDep,
    language: LanguageDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The staff member (or tenant integration) whose bearer token the request carries; 401
    otherwise."""
    principal = None
    if credentials is not None and credentials.credentials:
        tokens = {t: s.get_secret_value() for t, s in ctx.settings.api_tokens.items()}
        principal = await accounts.principal_for_token(
            repo=ctx.repo, token=credentials.credentials, tenant_tokens=tokens
        )
    if principal is None:
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail=message("unauthorized", language),
            headers={"WWW-Authenticate": "Bearer"},
        )
    return principal


StaffDep = Annotated[Principal, Depends(staff_principal)]

router = APIRouter(prefix="/api/v1", tags=["alerts"])


async def _outs(ctx: Context, docs: list[Document]) -> list[AlertOut]:
    """Staff views of the alerts, with their fanout summaries (one batched lookup)."""
    if not docs:
        return []
    fanouts = await ctx.repo.fanouts_of(str(docs[0]["tenant"]), [str(d["id"]) for d in docs])
    return [
        AlertOut.model_validate(service.alert_view({**d, "fanout": fanouts.get(str(d["id"]))}))
        for d in docs
    ]


async def _out(ctx: Context, doc: Document) -> AlertOut:
    return (await _outs(ctx, [doc]))[0]


@router.post("/alerts", status_code=status.HTTP_201_CREATED)
async def create_alert(body: AlertIn, staff: StaffDep, ctx: ContextDep) -> AlertOut:
    """Creates an alert as a draft, or sends it right away with `publish: true` (published,
    scheduled, or waiting for approval under the four-eyes rule)."""
    doc = await service.create_alert(
        repo=ctx.repo,
        wake=ctx.relay.wake,
        principal=staff,
        body=body,
        default_duration_s=ctx.settings.default_duration_s,
    )
    return await _out(ctx, doc)


def _if_match(value: str | None) -> int | None:
    """The version in an `If-Match` header (`3`, `"3"` or `W/"3"`); None without one."""
    if value is None or value.strip() == "*":
        return None
    digits = value.strip().removeprefix("W/").strip('"')
    if not digits.isdigit():  # matches no version there is
        raise ConflictError("edit_conflict")
    return int(digits)


IfMatch = Annotated[
    str | None,
    Header(
        description="The alert's `version` the edit is based on; another version: 409.",
        max_length=40,
    ),
]


@router.put("/alerts/{alert_id}")
async def replace_draft(
    alert_id: IdPath, body: AlertIn, staff: StaffDep, ctx: ContextDep, if_match: IfMatch = None
) -> AlertOut:
    """Edits a draft: the whole content is replaced and checked as when it was created. Only
    while it is a draft (409 once it waits for approval, is scheduled or published); status
    and message type stay. With `publish: true` the edited draft is sent at once."""
    doc = await service.edit_draft(
        repo=ctx.repo,
        wake=ctx.relay.wake,
        principal=staff,
        alert_id=alert_id,
        body=body,
        default_duration_s=ctx.settings.default_duration_s,
        expected_version=_if_match(if_match),
    )
    return await _out(ctx, doc)


@router.patch("/alerts/{alert_id}")
async def patch_draft(
    alert_id: IdPath,
    body: AlertPatchIn,
    staff: StaffDep,
    ctx: ContextDep,
    if_match: IfMatch = None,
) -> AlertOut:
    """Edits some fields of a draft (texts: per language given); the result is checked as a
    new alert would be. Same rules as PUT."""
    current = await service.get_alert(repo=ctx.repo, tenant=staff.tenant, alert_id=alert_id)
    merged = service.draft_body(current)
    given = body.model_dump(exclude_unset=True, exclude={"texts"}, mode="json")
    if body.texts is not None:
        texts = {lang.value: t.model_dump(exclude_none=True) for lang, t in body.texts.items()}
        merged["texts"] = {**merged["texts"], **texts}
    if "expires" in given and "duration_minutes" not in given:
        merged["duration_minutes"] = None
    if "duration_minutes" in given and "expires" not in given:
        merged["expires"] = None
    merged |= given
    try:
        full = AlertIn.model_validate(merged)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None
    doc = await service.edit_draft(
        repo=ctx.repo,
        wake=ctx.relay.wake,
        principal=staff,
        alert_id=alert_id,
        body=full,
        default_duration_s=ctx.settings.default_duration_s,
        expected_version=current["version"] if (asked := _if_match(if_match)) is None else asked,
    )
    return await _out(ctx, doc)


@router.post("/alerts/{alert_id}/publish")
async def publish_alert(alert_id: IdPath, staff: StaffDep, ctx: ContextDep) -> AlertOut:
    """ "Senden" for a draft (idempotent for an alert already sent)."""
    doc = await service.publish_alert(
        repo=ctx.repo,
        wake=ctx.relay.wake,
        principal=staff,
        alert_id=alert_id,
        default_duration_s=ctx.settings.default_duration_s,
    )
    return await _out(ctx, doc)


@router.post("/alerts/{alert_id}/approve")
async def approve_alert(alert_id: IdPath, staff: StaffDep, ctx: ContextDep) -> AlertOut:
    """Four-eyes approval by an approver who neither wrote nor sent the alert (403 otherwise)."""
    doc = await service.approve_alert(
        repo=ctx.repo,
        wake=ctx.relay.wake,
        principal=staff,
        alert_id=alert_id,
        default_duration_s=ctx.settings.default_duration_s,
    )
    return await _out(ctx, doc)


@router.post("/alerts/{alert_id}/reject")
async def reject_alert(
    alert_id: IdPath, body: RejectIn, staff: StaffDep, ctx: ContextDep
) -> AlertOut:
    """An approver sends an alert waiting for approval back to draft, with a reason."""
    doc = await service.reject_alert(
        repo=ctx.repo, principal=staff, alert_id=alert_id, reason=body.reason
    )
    return await _out(ctx, doc)


@router.post("/alerts/{alert_id}/cancel", status_code=status.HTTP_201_CREATED)
async def cancel_alert(
    alert_id: IdPath,
    staff: StaffDep,
    ctx: ContextDep,
    body: Annotated[CancelIn | None, Body()] = None,
) -> AlertOut:
    """Cancels a published alert: a Cancel to exactly its recipients, sent at once (the
    prefilled all-clear texts unless `texts` are given). Not yet sent: withdrawn."""
    doc = await service.cancel_alert(
        repo=ctx.repo,
        wake=ctx.relay.wake,
        principal=staff,
        alert_id=alert_id,
        texts=body.texts if body else None,
        default_duration_s=ctx.settings.default_duration_s,
    )
    return await _out(ctx, doc)


@router.post("/alerts/{alert_id}/update", status_code=status.HTTP_201_CREATED)
async def update_alert(
    alert_id: IdPath, body: AlertUpdateIn, staff: StaffDep, ctx: ContextDep
) -> AlertOut:
    """A correction (CAP Update) of a published alert to exactly its recipients."""
    doc = await service.update_alert(
        repo=ctx.repo,
        wake=ctx.relay.wake,
        principal=staff,
        alert_id=alert_id,
        body=body,
        default_duration_s=ctx.settings.default_duration_s,
    )
    return await _out(ctx, doc)


@router.post("/alerts/{alert_id}/attachments", status_code=status.HTTP_201_CREATED)
async def add_attachment(
    alert_id: IdPath, file: UploadFile, staff: StaffDep, ctx: ContextDep
) -> AlertOut:
    """Adds an image (JPEG, PNG; metadata stripped) or PDF to a draft (multipart `file`)."""
    limit = ctx.settings.attachment_max_mib * 1024 * 1024
    data = await file.read(limit + 1)
    doc = await service.add_attachment(
        repo=ctx.repo,
        principal=staff,
        alert_id=alert_id,
        filename=file.filename or "anhang",
        data=data,
        max_mib=ctx.settings.attachment_max_mib,
        max_count=ctx.settings.attachments_per_alert,
        base_url=ctx.settings.base_url,
    )
    return await _out(ctx, doc)


@router.get("/alerts/{alert_id}/attachments/{file_id}", response_class=Response)
async def get_attachment(
    alert_id: IdPath, file_id: IdPath, staff: StaffDep, ctx: ContextDep
) -> Response:
    """An attachment of the tenant's alert."""
    entry, data = await service.staff_attachment(
        repo=ctx.repo, tenant=staff.tenant, alert_id=alert_id, file_id=file_id
    )
    return attachment_response(entry, data)


def attachment_response(entry: dict[str, object], data: bytes) -> Response:
    """The file with a safe type, name and no sniffing."""
    return Response(
        data,
        media_type=str(entry["content_type"]),
        headers={
            "Content-Disposition": f'inline; filename="{entry["filename"]}"',
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'",
        },
    )


public_router = APIRouter(prefix="/public", tags=["public"])


@public_router.get("/attachments/{file_id}/{filename}", response_class=Response)
async def public_attachment(file_id: IdPath, ctx: ContextDep) -> Response:
    """An attachment for citizens (the link in push and e-mail): only while its alert is
    published; the id is a random 128-bit value (the file name in the path is cosmetic)."""
    entry, data = await service.public_attachment(repo=ctx.repo, file_id=file_id)
    response = attachment_response(entry, data)
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@router.get("/alerts")
async def list_alerts(
    staff: StaffDep,
    ctx: ContextDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[
        AwareDatetime | None, Query(description="Only alerts created before this time.")
    ] = None,
) -> AlertPage:
    """The caller's tenant's alerts, newest first."""
    docs = await ctx.repo.list_alerts(staff.tenant, limit=limit, before=before)
    return AlertPage(items=await _outs(ctx, docs))


@router.get("/alerts/{alert_id}")
async def get_alert(alert_id: IdPath, staff: StaffDep, ctx: ContextDep) -> AlertOut:
    """One alert of the caller's tenant (404 for any other tenant's)."""
    doc = await service.get_alert(repo=ctx.repo, tenant=staff.tenant, alert_id=alert_id)
    return await _out(ctx, doc)


@router.get("/alerts/{alert_id}/progress")
async def get_progress(alert_id: IdPath, staff: StaffDep, ctx: ContextDep) -> ProgressOut:
    """Live delivery progress: tasks per channel and status, expected counts, completeness."""
    return await service.progress(repo=ctx.repo, tenant=staff.tenant, alert_id=alert_id)


@router.get(
    "/alerts/{alert_id}/report.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
async def delivery_report_csv(alert_id: IdPath, staff: StaffDep, ctx: ContextDep) -> Response:
    """Delivery report as CSV: per channel expected/tasks/reached/failed, cumulative reach per
    channel and time bucket since publication, failures by channel and reason."""
    _, data = await report.alert_report(
        repo=ctx.repo, tenant=staff.tenant, alert_id=alert_id, now=utcnow()
    )
    return report_csv_response(data)


def report_csv_response(data: report.DeliveryReport) -> Response:
    return Response(
        report.to_csv(data).encode(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{report.csv_filename(data.alert_id)}"'
        },
    )


@router.get(
    "/alerts/{alert_id}/cap.xml",
    response_class=Response,
    responses={200: {"content": {"application/cap+xml": {}}}},
)
async def export_cap(alert_id: IdPath, staff: StaffDep, ctx: ContextDep) -> Response:
    """The alert as CAP 1.2 XML, validated against the OASIS schema before it is served."""
    xml = await service.export_cap(
        repo=ctx.repo,
        tenant=staff.tenant,
        alert_id=alert_id,
        sender=ctx.settings.cap_sender(staff.tenant),
    )
    return Response(xml, media_type="application/cap+xml")


@router.post("/alerts/import-cap", status_code=status.HTTP_201_CREATED)
async def import_cap(request: Request, staff: StaffDep, ctx: ContextDep) -> AlertOut:
    """Creates a draft from a CAP 1.2 XML document (request body, at most 1 MiB)."""
    raw = await request.body()
    if len(raw) > cap.MAX_BYTES:
        raise InvalidInputError(("body",), "cap_invalid", reason="größer als 1 MiB")
    doc = await service.import_cap(
        repo=ctx.repo,
        wake=ctx.relay.wake,
        principal=staff,
        xml=raw,
        default_duration_s=ctx.settings.default_duration_s,
    )
    return await _out(ctx, doc)


@router.get("/templates")
async def list_templates(staff: StaffDep, ctx: ContextDep) -> list[TemplateOut]:
    """Prefilled warning templates, texts filled in for the tenant."""
    place = await service.place_name(repo=ctx.repo, tenant=staff.tenant)
    return [TemplateOut(id=t.id, name=t.name, body=t.body(place)) for t in TEMPLATES.values()]


@router.get("/audit")
async def list_audit(
    staff: StaffDep,
    ctx: ContextDep,
    alert_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AuditOut]:
    """Who created, approved, published, updated or cancelled what, and when (newest first)."""
    entries = await ctx.repo.list_audit(staff.tenant, alert_id=alert_id, limit=limit)
    return [AuditOut.model_validate(e) for e in entries]


staff_router = APIRouter(prefix="/api/v1", tags=["staff"])


@staff_router.post("/staff", status_code=status.HTTP_201_CREATED)
async def create_staff(body: StaffIn, staff: StaffDep, ctx: ContextDep) -> StaffOut:
    """A new staff account of the caller's tenant (admins only)."""
    require(staff, Role.ADMIN)
    doc = await accounts.create_staff(
        repo=ctx.repo,
        tenant=staff.tenant,
        username=body.username,
        display_name=body.display_name,
        password=body.password.get_secret_value(),
        roles=body.roles,
    )
    await ctx.repo.add_audit(
        accounts.audit_entry(staff, "staff_created", staff_id=doc["id"], roles=doc["roles"])
    )
    return StaffOut.model_validate(accounts.staff_view(doc))


@staff_router.get("/staff")
async def list_staff(staff: StaffDep, ctx: ContextDep) -> list[StaffOut]:
    """The tenant's staff accounts (admins only)."""
    require(staff, Role.ADMIN)
    return [
        StaffOut.model_validate(accounts.staff_view(d))
        for d in await ctx.repo.list_staff(staff.tenant)
    ]


@staff_router.post("/staff/{staff_id}/tokens", status_code=status.HTTP_201_CREATED)
async def issue_token(staff_id: IdPath, staff: StaffDep, ctx: ContextDep) -> TokenOut:
    """A new personal API token for a staff member (admins, or the member for themselves)."""
    if staff.id != staff_id:
        require(staff, Role.ADMIN)
    token = await accounts.issue_api_token(repo=ctx.repo, tenant=staff.tenant, staff_id=staff_id)
    await ctx.repo.add_audit(accounts.audit_entry(staff, "token_issued", staff_id=staff_id))
    return TokenOut(token=token)


@staff_router.post("/me/totp")
async def start_totp(staff: StaffDep, ctx: ContextDep) -> TotpStartOut:
    """Begins TOTP enrolment for the caller: a secret for the authenticator app."""
    doc = await ctx.repo.get_staff(staff.tenant, staff.id)
    if doc is None:
        raise NotFoundError("staff_not_found")
    secret, uri = accounts.start_totp(doc)
    await ctx.repo.set_staff(staff.tenant, staff.id, {"totp_pending": secret})
    return TotpStartOut(secret=secret, uri=uri)


@staff_router.post("/me/totp/confirm", status_code=status.HTTP_204_NO_CONTENT)
async def confirm_totp(body: TotpConfirmIn, staff: StaffDep, ctx: ContextDep) -> None:
    """Finishes TOTP enrolment with the app's current code; from now on the code is needed
    at every console sign-in."""
    await service.confirm_totp(repo=ctx.repo, principal=staff, code=body.code)


@staff_router.put("/settings")
async def put_settings(
    body: TenantSettingsIn, staff: StaffDep, ctx: ContextDep
) -> TenantSettingsIn:
    """The tenant's policy: four-eyes severities, TOTP requirement (admins only)."""
    require(staff, Role.ADMIN)
    four_eyes = [s.value for s in body.four_eyes]
    current = await ctx.repo.tenant_settings(staff.tenant) or {}
    changes: dict[str, object] = {"four_eyes": four_eyes, "require_totp": body.require_totp}
    if body.display_name:
        changes["display_name"] = body.display_name
    await ctx.repo.put_tenant_settings(staff.tenant, {**current, **changes})
    await ctx.repo.add_audit(
        accounts.audit_entry(
            staff, "settings_changed", four_eyes=four_eyes, require_totp=body.require_totp
        )
    )
    return body


@staff_router.get("/settings")
async def get_settings(staff: StaffDep, ctx: ContextDep) -> TenantSettingsIn:
    """The tenant's policy."""
    return TenantSettingsIn(
        four_eyes=sorted(staff.policy.four_eyes),
        require_totp=staff.policy.require_totp,
        display_name=await service.place_name(repo=ctx.repo, tenant=staff.tenant),
    )


def install_error_handlers(app: FastAPI) -> None:
    """Turns domain errors into 4xx answers in the caller's language."""
    install_domain_error_handlers(app, catalogue=MESSAGES, rejected=REJECTED_INPUT)
