"""The staff console: server-rendered pages (Jinja2) with htmx, styled with KERN UX, in German
(default) or English — the texts are in the catalogues of `i18n`, the language comes from
`?lang=`, the language switch's cookie or the browser (`i18n.lang_of`).

Sign-in with user name, password (argon2) and — when enrolled — a TOTP code opens a session
(cookie `sirene_session`: HttpOnly, SameSite=Strict, Secure in production; the session itself
lives in Redis). Every form and htmx request carries the session's CSRF token. The console
calls the same service functions as the API, so roles, the four-eyes rule and tenant scoping
are the same."""

from __future__ import annotations

import hmac
import logging
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import httpx
from fastapi import APIRouter, Depends, FastAPI, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from jinja2.runtime import Context as Context_
from pydantic import ValidationError

from sirene.runtime.errors import ConflictError, DomainError, InvalidInputError
from sirene.runtime.http import IdPath
from sirene.schemas import AlertStatus, Audience, Channel, Language, ReceiptStatus, utcnow

from . import accounts, cap, i18n, report, service
from .accounts import Principal
from .alert_templates import TEMPLATES
from .api import Context, ContextDep, attachment_response, report_csv_response
from .areas import AreasField, areas_geojson
from .errors import MESSAGES
from .models import AlertIn, AlertUpdateIn, ProgressOut
from .roles import Role
from .service import MARKERS
from .sms import sms_length

log = logging.getLogger(__name__)

COOKIE = "sirene_session"
LOCAL_TZ = i18n.LOCAL_TZ
PACKAGE = Path(__file__).parent
WEB = PACKAGE.parents[2] / "web" / "node_modules"
"""Front-end packages installed by `npm ci` in services/publisher/web (deploy/local/install.sh)."""

templates = Jinja2Templates(directory=str(PACKAGE / "templates"))

SEVERITIES = ["Extreme", "Severe", "Moderate", "Minor", "Unknown"]
URGENCIES = ["Immediate", "Expected", "Future", "Past", "Unknown"]
CERTAINTIES = ["Observed", "Likely", "Possible", "Unlikely", "Unknown"]
CATEGORIES = [
    "Met",
    "Geo",
    "Safety",
    "Security",
    "Rescue",
    "Fire",
    "Health",
    "Env",
    "Transport",
    "Infra",
    "CBRNE",
    "Other",
]
"""CAP values offered in the compose form; their labels are in the catalogues (`i18n`)."""
TEXT_FIELDS = [
    ("headline", 160),
    ("push_title", 120),
    ("push_body", 1000),
    ("sms", 1600),
    ("voice", 2000),
    ("email_subject", 200),
    ("email_body", 20000),
]
"""Channel text fields and their longest length."""


@pass_context
def _local(context: Context_, value: datetime | None) -> str:
    return i18n.local_time(value, context.get("lang", i18n.DEFAULT_LANGUAGE))


templates.env.filters["local"] = _local
templates.env.globals.update(
    SEVERITIES=SEVERITIES,
    URGENCIES=URGENCIES,
    CERTAINTIES=CERTAINTIES,
    CATEGORIES=CATEGORIES,
    TEXT_FIELDS=TEXT_FIELDS,
)


class LoginRequired(Exception):
    """No valid console session: answered with a redirect to the sign-in page."""


async def console_principal(request: Request, ctx: ContextDep) -> Principal:
    """The signed-in staff member; for unsafe methods the CSRF token must match."""
    token = request.cookies.get(COOKIE)
    principal = await ctx.sessions.principal(repo=ctx.repo, token=token) if token else None
    if principal is None:
        raise LoginRequired
    if request.method not in {"GET", "HEAD"}:
        sent = request.headers.get("x-csrf-token")
        if sent is None:
            form = await request.form()
            value = form.get("csrf")
            sent = value if isinstance(value, str) else ""
        if not hmac.compare_digest(sent.encode(), principal.csrf.encode()):
            raise DomainError("csrf")
    return principal


ConsoleDep = Annotated[Principal, Depends(console_principal)]

router = APIRouter(prefix="/console", include_in_schema=False)


def _switch_url(request: Request, other: str) -> str:
    """The language switch: back to this page (a GET page; after a form post the page that
    shows the form's target) in the other language."""
    if request.method == "GET" and not request.headers.get("hx-request"):
        query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "lang"])
        back = request.url.path + (f"?{query}" if query else "")
    else:
        back = "/console/"
    return "/console/language?" + urlencode({"lang": other, "next": back})


def _page(
    request: Request,
    name: str,
    principal: Principal | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    lang = i18n.lang_of(request)
    other = "en" if lang == "de" else "de"

    def t(key: str, **params: Any) -> str:
        return i18n.text(lang, key, **params)

    def action_label(action: str) -> str:
        return t(f"action.{action}") if f"action.{action}" in i18n.DE else action

    def failure_label(status: str) -> str:
        return t(f"failure.{status}") if f"failure.{status}" in i18n.DE else status

    def error_class_label(value: str) -> str:
        return t(f"error_class.{value}") if f"error_class.{value}" in i18n.DE else value or "–"

    response = templates.TemplateResponse(
        request,
        name,
        {
            "me": principal,
            "Role": Role,
            "lang": lang,
            "other_lang": other,
            "switch_url": _switch_url(request, other),
            "t": t,
            "decimal": lambda value: i18n.decimal(value, lang),
            "action_label": action_label,
            "failure_label": failure_label,
            "error_class_label": error_class_label,
            **context,
        },
        status_code=status_code,
    )
    if request.query_params.get("lang") in i18n.LANGUAGES:
        _remember_language(request, response, lang)
    response.headers["Content-Language"] = lang
    return response


def _remember_language(request: Request, response: Response, lang: str) -> None:
    ctx: Context = request.app.state.ctx
    response.set_cookie(
        i18n.LANG_COOKIE,
        lang,
        max_age=365 * 86400,
        httponly=True,
        samesite="lax",
        secure=ctx.settings.environment == "production",
        path="/",
    )


def _error_text(request: Request, exc: DomainError) -> str:
    return MESSAGES.message(exc.code, i18n.lang_of(request), **exc.params)


def _safe_next(target: str) -> str:
    """Only a path of the console itself, never another host (`//evil`, `/\\evil`, a scheme)."""
    inside = target == "/console" or target.startswith("/console/")
    return (
        target
        if inside and "\\" not in target and "\r" not in target and "\n" not in target
        else "/console/"
    )


@router.get("/language")
async def switch_language(
    request: Request,
    lang: Annotated[str, Query(max_length=5)] = "de",
    back: Annotated[str, Query(alias="next", max_length=2000)] = "/console/",
) -> Response:
    """The language switch: remembers the language in a cookie and returns to the page."""
    chosen = lang if lang in i18n.LANGUAGES else i18n.DEFAULT_LANGUAGE
    response = RedirectResponse(_safe_next(back), status_code=303)
    _remember_language(request, response, chosen)
    return response


# --- sign-in ---------------------------------------------------------------------------------


@router.get("/login")
async def login_page(request: Request) -> HTMLResponse:
    return _page(request, "login.html", None, tenant=request.query_params.get("tenant", ""))


@router.post("/login")
async def login(
    request: Request,
    ctx: ContextDep,
    tenant: Annotated[str, Form(max_length=63)],
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    code: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    tenant, username = tenant.strip().lower(), username.strip().lower()
    if await ctx.logins.blocked(tenant, username):
        return _page(
            request,
            "login.html",
            None,
            status_code=429,
            tenant=tenant,
            username=username,
            error=MESSAGES.message("login_blocked", i18n.lang_of(request)),
        )
    found = await accounts.check_login(
        repo=ctx.repo, tenant=tenant, username=username, password=password, code=code or None
    )
    if found is None:
        await ctx.logins.failed(tenant, username)
        return _page(
            request,
            "login.html",
            None,
            status_code=401,
            tenant=tenant,
            username=username,
            error=MESSAGES.message("login_failed", i18n.lang_of(request)),
        )
    doc, mfa = found
    await ctx.logins.succeeded(tenant, username)
    token = await ctx.sessions.open(tenant=doc["tenant"], staff_id=doc["id"], mfa=mfa)
    principal = await ctx.sessions.principal(repo=ctx.repo, token=token)
    if principal is not None:
        await ctx.repo.add_audit(accounts.audit_entry(principal, "login", totp=mfa))
    response = RedirectResponse("/console/", status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=ctx.settings.environment == "production",
        max_age=ctx.settings.session_ttl_s,
        path="/",
    )
    return response


@router.post("/logout", dependencies=[Depends(console_principal)])
async def logout(request: Request, ctx: ContextDep) -> Response:
    token = request.cookies.get(COOKIE)
    if token:
        await ctx.sessions.close(token)
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/totp")
async def totp_page(request: Request, ctx: ContextDep, me: ConsoleDep) -> HTMLResponse:
    doc = await ctx.repo.get_staff(me.tenant, me.id)
    if doc is None:
        raise LoginRequired
    secret, uri = accounts.start_totp(doc)
    await ctx.repo.set_staff(me.tenant, me.id, {"totp_pending": secret})
    return _page(request, "totp.html", me, secret=secret, uri=uri, enabled=bool(doc["totp_secret"]))


@router.post("/totp")
async def totp_confirm(
    request: Request,
    ctx: ContextDep,
    me: ConsoleDep,
    code: Annotated[str, Form(max_length=10)],
) -> Response:
    try:
        await service.confirm_totp(repo=ctx.repo, principal=me, code=code)
    except DomainError as exc:
        doc = await ctx.repo.get_staff(me.tenant, me.id)
        secret = (doc or {}).get("totp_pending") or ""
        return _page(
            request,
            "totp.html",
            me,
            status_code=422,
            secret=secret,
            uri="",
            enabled=False,
            error=_error_text(request, exc),
        )
    token = request.cookies.get(COOKIE)
    if token:
        await ctx.sessions.set_mfa(token)
    return RedirectResponse("/console/", status_code=303)


# --- alerts ----------------------------------------------------------------------------------


@router.get("/")
async def home(request: Request, ctx: ContextDep, me: ConsoleDep) -> HTMLResponse:
    docs = await ctx.repo.list_alerts(me.tenant, limit=100, before=None)
    return _page(request, "alerts.html", me, alerts=docs, templates_=TEMPLATES.values())


def _blank_form() -> dict[str, Any]:
    return {
        "status": "Actual",
        "severity": "Moderate",
        "urgency": "Immediate",
        "certainty": "Observed",
        "category": "Safety",
        "duration_minutes": 120,
        "texts": {"de": {}, "en": {}},
        "topics": "gefahrenhinweise",
        "districts": "",
        "areas": "",
        "everyone": False,
        "effective": "",
    }


@router.get("/alerts/new")
async def compose(
    request: Request, ctx: ContextDep, me: ConsoleDep, template: str | None = None
) -> HTMLResponse:
    form = _blank_form()
    chosen = TEMPLATES.get(template or "")
    if chosen is not None:
        place = await service.place_name(repo=ctx.repo, tenant=me.tenant)
        form |= chosen.body(place)
    return _page(request, "compose.html", me, form=form, template=chosen, mode="new")


def _split(value: str) -> list[str]:
    return [p.strip() for p in value.replace(";", ",").split(",") if p.strip()]


def _form_values(data: dict[str, str]) -> dict[str, Any]:
    texts: dict[str, dict[str, str]] = {"de": {}, "en": {}}
    for lang in texts:
        for field, _limit in TEXT_FIELDS:
            value = data.get(f"{lang}_{field}", "").replace("\r\n", "\n").strip()
            if value:
                texts[lang][field] = value
    return {
        "status": data.get("status", "Actual"),
        "severity": data.get("severity", "Unknown"),
        "urgency": data.get("urgency", "Unknown"),
        "certainty": data.get("certainty", "Unknown"),
        "category": data.get("category", "Other"),
        "duration_minutes": data.get("duration_minutes") or None,
        "texts": texts,
        "topics": data.get("topics", ""),
        "districts": data.get("districts", ""),
        "areas": data.get("areas", "").strip(),
        "everyone": data.get("everyone") == "on",
        "effective": data.get("effective", ""),
    }


def _body(form: dict[str, Any], *, publish: bool) -> dict[str, Any]:
    effective = None
    if form["effective"]:
        effective = datetime.fromisoformat(form["effective"]).replace(tzinfo=LOCAL_TZ)
    texts = {lang: t for lang, t in form["texts"].items() if lang == "de" or t}
    return {
        "status": form["status"],
        "severity": form["severity"],
        "urgency": form["urgency"],
        "certainty": form["certainty"],
        "category": form["category"],
        "duration_minutes": int(form["duration_minutes"]) if form["duration_minutes"] else None,
        "texts": texts,
        "audience": {
            "everyone": form["everyone"],
            "topics": [] if form["everyone"] else _split(form["topics"]),
            "districts": _split(form["districts"]),
            "areas": AreasField.model_validate({"areas": form["areas"]}).areas,
        },
        "effective": effective,
        "publish": publish,
    }


def _compose_refused(
    request: Request,
    me: Principal,
    exc: ValidationError | DomainError,
    *,
    form: dict[str, Any],
    mode: str,
    original: dict[str, Any] | None = None,
) -> HTMLResponse:
    """The compose form again, the input kept, with why it was refused: 422 and the fields for
    invalid input, the domain error's status and message otherwise."""
    if isinstance(exc, ValidationError):
        status_code, errors = 422, _problems(exc)
    else:
        status_code, errors = exc.status_code, [_error_text(request, exc)]
    extra = {"original": original} if original is not None else {}
    return _page(
        request,
        "compose.html",
        me,
        status_code=status_code,
        form=form,
        mode=mode,
        template=None,
        errors=errors,
        **extra,
    )


def _problems(exc: ValidationError) -> list[str]:
    out = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"] if p not in {"body"})
        out.append(f"{where}: {error['msg']}")
    return out


@router.post("/alerts")
async def create(request: Request, ctx: ContextDep, me: ConsoleDep) -> Response:
    data = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    form = _form_values(data)
    try:
        body = AlertIn.model_validate(_body(form, publish=data.get("action") == "send"))
        doc = await service.create_alert(
            repo=ctx.repo,
            wake=ctx.relay.wake,
            principal=me,
            body=body,
            default_duration_s=ctx.settings.default_duration_s,
        )
    except (ValidationError, DomainError) as exc:
        return _compose_refused(request, me, exc, form=form, mode="new")
    return RedirectResponse(f"/console/alerts/{doc['id']}", status_code=303)


async def _detail(
    request: Request, ctx: Context, me: Principal, alert_id: str, **extra: Any
) -> HTMLResponse:
    doc = await service.get_alert(repo=ctx.repo, tenant=me.tenant, alert_id=alert_id)
    sms = {lang: sms_length(t["sms"]) for lang, t in doc["texts"].items()}
    refs = [
        r for ref in doc.get("references", []) if (r := await ctx.repo.get_alert(me.tenant, ref))
    ]
    audit = await ctx.repo.list_audit(me.tenant, alert_id=alert_id, limit=50)
    can_approve = (
        doc["state"] == "awaiting_approval"
        and me.has(Role.APPROVER)
        and me.id not in {doc.get("created_by"), doc.get("submitted_by")}
    )
    progress = await service.progress(repo=ctx.repo, tenant=me.tenant, alert_id=alert_id)
    return _page(
        request,
        "alert.html",
        me,
        status_code=extra.pop("status_code", 200),
        p=progress,
        **_progress_view(doc, progress, i18n.lang_of(request)),
        alert=doc,
        sms=sms,
        refs=refs,
        audit=audit,
        can_approve=can_approve,
        **extra,
    )


@router.get("/alerts/{alert_id}")
async def detail(alert_id: IdPath, request: Request, ctx: ContextDep, me: ConsoleDep) -> Response:
    return await _detail(request, ctx, me, alert_id)


async def _act(
    request: Request, ctx: Context, me: Principal, alert_id: str, action: str
) -> Response:
    try:
        if action == "send":
            doc = await service.publish_alert(
                repo=ctx.repo,
                wake=ctx.relay.wake,
                principal=me,
                alert_id=alert_id,
                default_duration_s=ctx.settings.default_duration_s,
            )
        elif action == "approve":
            doc = await service.approve_alert(
                repo=ctx.repo,
                wake=ctx.relay.wake,
                principal=me,
                alert_id=alert_id,
                default_duration_s=ctx.settings.default_duration_s,
            )
        else:
            doc = await service.cancel_alert(
                repo=ctx.repo,
                wake=ctx.relay.wake,
                principal=me,
                alert_id=alert_id,
                texts=None,
                default_duration_s=ctx.settings.default_duration_s,
            )
    except DomainError as exc:
        if exc.status_code == 404:
            raise
        return await _detail(
            request, ctx, me, alert_id, status_code=exc.status_code, error=_error_text(request, exc)
        )
    return RedirectResponse(f"/console/alerts/{doc['id']}", status_code=303)


@router.post("/alerts/{alert_id}/send")
async def send(alert_id: IdPath, request: Request, ctx: ContextDep, me: ConsoleDep) -> Response:
    return await _act(request, ctx, me, alert_id, "send")


@router.post("/alerts/{alert_id}/approve")
async def approve(alert_id: IdPath, request: Request, ctx: ContextDep, me: ConsoleDep) -> Response:
    return await _act(request, ctx, me, alert_id, "approve")


@router.post("/alerts/{alert_id}/attachments")
async def attach(
    alert_id: IdPath, request: Request, ctx: ContextDep, me: ConsoleDep, file: UploadFile
) -> Response:
    limit = ctx.settings.attachment_max_mib * 1024 * 1024
    try:
        await service.add_attachment(
            repo=ctx.repo,
            principal=me,
            alert_id=alert_id,
            filename=file.filename
            or i18n.text(i18n.lang_of(request), "alert.attachment_default_name"),
            data=await file.read(limit + 1),
            max_mib=ctx.settings.attachment_max_mib,
            max_count=ctx.settings.attachments_per_alert,
            base_url=ctx.settings.base_url,
        )
    except DomainError as exc:
        if exc.status_code == 404:
            raise
        return await _detail(
            request, ctx, me, alert_id, status_code=exc.status_code, error=_error_text(request, exc)
        )
    return RedirectResponse(f"/console/alerts/{alert_id}", status_code=303)


@router.get("/alerts/{alert_id}/attachments/{file_id}")
async def attachment(
    alert_id: IdPath, file_id: IdPath, ctx: ContextDep, me: ConsoleDep
) -> Response:
    entry, data = await service.staff_attachment(
        repo=ctx.repo, tenant=me.tenant, alert_id=alert_id, file_id=file_id
    )
    return attachment_response(entry, data)


@router.post("/alerts/{alert_id}/reject")
async def reject(
    alert_id: IdPath,
    request: Request,
    ctx: ContextDep,
    me: ConsoleDep,
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    try:
        if len(reason.strip()) < 3:
            raise InvalidInputError(("body", "reason"), "rejected_needs_reason")
        await service.reject_alert(
            repo=ctx.repo, principal=me, alert_id=alert_id, reason=reason.strip()
        )
    except DomainError as exc:
        if exc.status_code == 404:
            raise
        return await _detail(
            request, ctx, me, alert_id, status_code=exc.status_code, error=_error_text(request, exc)
        )
    return RedirectResponse(f"/console/alerts/{alert_id}", status_code=303)


@router.post("/alerts/{alert_id}/cancel")
async def cancel(alert_id: IdPath, request: Request, ctx: ContextDep, me: ConsoleDep) -> Response:
    return await _act(request, ctx, me, alert_id, "cancel")


@router.get("/alerts/{alert_id}/update")
async def update_form(
    alert_id: IdPath, request: Request, ctx: ContextDep, me: ConsoleDep
) -> HTMLResponse:
    doc = await service.get_alert(repo=ctx.repo, tenant=me.tenant, alert_id=alert_id)
    form = _blank_form() | {
        k: doc[k] for k in ("status", "severity", "urgency", "certainty", "category")
    }
    form["texts"] = service.unmarked_texts(doc["texts"])
    form["duration_minutes"] = doc.get("duration_minutes") or 120
    return _page(request, "compose.html", me, form=form, mode="update", original=doc, template=None)


@router.post("/alerts/{alert_id}/update")
async def update(alert_id: IdPath, request: Request, ctx: ContextDep, me: ConsoleDep) -> Response:
    data = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    form = _form_values(data)
    original = await service.get_alert(repo=ctx.repo, tenant=me.tenant, alert_id=alert_id)
    form["status"] = original["status"]
    try:
        raw = _body(form, publish=True)
        body = AlertUpdateIn.model_validate(
            {k: raw[k] for k in ("severity", "urgency", "certainty", "texts", "duration_minutes")}
        )
        doc = await service.update_alert(
            repo=ctx.repo,
            wake=ctx.relay.wake,
            principal=me,
            alert_id=alert_id,
            body=body,
            default_duration_s=ctx.settings.default_duration_s,
        )
    except (ValidationError, DomainError) as exc:
        return _compose_refused(request, me, exc, form=form, mode="update", original=original)
    return RedirectResponse(f"/console/alerts/{doc['id']}", status_code=303)


def _edit_form(doc: dict[str, Any]) -> dict[str, Any]:
    """The compose form filled with a stored draft (texts without their exercise markers)."""
    body = service.draft_body(doc)
    effective = doc.get("effective")
    audience = doc["audience"]
    return (
        _blank_form()
        | {k: body[k] for k in ("status", "severity", "urgency", "certainty", "category")}
        | {
            "texts": {"de": {}, "en": {}} | body["texts"],
            "duration_minutes": body["duration_minutes"] or "",
            "topics": ", ".join(audience.get("topics") or []),
            "districts": ", ".join(audience.get("districts") or []),
            "areas": areas_geojson(audience.get("areas") or []),
            "everyone": bool(audience.get("everyone")),
            "effective": effective.astimezone(LOCAL_TZ)
            .replace(tzinfo=None)
            .isoformat(timespec="seconds")
            if effective
            else "",
        }
    )


@router.get("/alerts/{alert_id}/edit")
async def edit_form(
    alert_id: IdPath, request: Request, ctx: ContextDep, me: ConsoleDep
) -> HTMLResponse:
    doc = await service.get_alert(repo=ctx.repo, tenant=me.tenant, alert_id=alert_id)
    if doc["state"] != "draft":
        exc = ConflictError("not_draft", state=doc["state"])
        return await _detail(
            request, ctx, me, alert_id, status_code=exc.status_code, error=_error_text(request, exc)
        )
    return _page(
        request, "compose.html", me, form=_edit_form(doc), mode="edit", original=doc, template=None
    )


@router.post("/alerts/{alert_id}/edit")
async def edit(alert_id: IdPath, request: Request, ctx: ContextDep, me: ConsoleDep) -> Response:
    data = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    form = _form_values(data)
    original = await service.get_alert(repo=ctx.repo, tenant=me.tenant, alert_id=alert_id)
    form["status"] = original["status"]
    version = data.get("version", "")
    try:
        raw = _body(form, publish=data.get("action") == "send")
        raw["msg_type"] = original["msg_type"]
        if original["msg_type"] != "Alert":  # an Update keeps the original's audience
            raw["audience"] = original["audience"]
            raw["category"] = original["category"]
        body = AlertIn.model_validate(raw)
        doc = await service.edit_draft(
            repo=ctx.repo,
            wake=ctx.relay.wake,
            principal=me,
            alert_id=alert_id,
            body=body,
            default_duration_s=ctx.settings.default_duration_s,
            expected_version=int(version) if version.isdigit() else None,
        )
    except (ValidationError, DomainError) as exc:
        if isinstance(exc, DomainError) and exc.status_code == 404:
            raise
        return _compose_refused(request, me, exc, form=form, mode="edit", original=original)
    return RedirectResponse(f"/console/alerts/{doc['id']}", status_code=303)


@router.get("/alerts/{alert_id}/progress")
async def progress_fragment(
    alert_id: IdPath, request: Request, ctx: ContextDep, me: ConsoleDep
) -> HTMLResponse:
    doc = await service.get_alert(repo=ctx.repo, tenant=me.tenant, alert_id=alert_id)
    progress = await service.progress(repo=ctx.repo, tenant=me.tenant, alert_id=alert_id)
    return _page(
        request,
        "_progress.html",
        me,
        alert=doc,
        p=progress,
        **_progress_view(doc, progress, i18n.lang_of(request)),
    )


def _seconds(start: datetime | None, end: datetime | None, lang: str) -> str:
    if start is None or end is None:
        return "–"
    return f"{i18n.decimal(max(0.0, (end - start).total_seconds()), lang)} s"


def _progress_view(doc: dict[str, Any], p: ProgressOut, lang: str) -> dict[str, Any]:
    expected = p.totals.expected
    reached = p.totals.statuses.get(ReceiptStatus.DELIVERED, 0) + p.totals.statuses.get(
        ReceiptStatus.CONFIRMED, 0
    )
    percent = int(reached * 100 / expected) if expected else (100 if expected == 0 else 0)
    rows = []
    for channel in Channel:
        c = p.channels.get(channel)
        if c is None:
            continue
        done = c.statuses.get(ReceiptStatus.DELIVERED, 0) + c.statuses.get(
            ReceiptStatus.CONFIRMED, 0
        )
        failed = sum(
            c.statuses.get(s, 0)
            for s in (ReceiptStatus.FAILED, ReceiptStatus.UNDELIVERED, ReceiptStatus.EXPIRED)
        )
        rows.append(
            {
                "channel": channel.value,
                "expected": c.expected,
                "queued": c.statuses.get(ReceiptStatus.QUEUED, 0),
                "sent": c.statuses.get(ReceiptStatus.SENT, 0),
                "delivered": c.statuses.get(ReceiptStatus.DELIVERED, 0),
                "confirmed": c.statuses.get(ReceiptStatus.CONFIRMED, 0),
                "failed": failed,
                "percent": int(done * 100 / c.expected) if c.expected else 0,
            }
        )
    published = doc.get("published_at")
    return {
        "rows": rows,
        "percent": percent,
        "reached": reached,
        "expected": expected,
        "first": _seconds(published, p.first_delivery_at, lang),
        "last": _seconds(published, p.last_delivery_at, lang),
        "polling": doc["state"] == "published" and not p.complete,
    }


@router.get("/alerts/{alert_id}/report")
async def report_page(
    alert_id: IdPath, request: Request, ctx: ContextDep, me: ConsoleDep
) -> HTMLResponse:
    """The delivery report: reach per channel over time (SVG chart and the same numbers as a
    table), expected vs reached per channel, failures by channel and reason."""
    doc, data = await report.alert_report(
        repo=ctx.repo, tenant=me.tenant, alert_id=alert_id, now=utcnow()
    )
    return _page(
        request,
        "report.html",
        me,
        alert=doc,
        r=data,
        chart=report.chart(data),
        offset_label=report.offset_label,
    )


@router.get("/alerts/{alert_id}/report.csv")
async def report_csv(alert_id: IdPath, ctx: ContextDep, me: ConsoleDep) -> Response:
    _, data = await report.alert_report(
        repo=ctx.repo, tenant=me.tenant, alert_id=alert_id, now=utcnow()
    )
    return report_csv_response(data)


@router.get("/alerts/{alert_id}/cap.xml")
async def cap_download(alert_id: IdPath, ctx: ContextDep, me: ConsoleDep) -> Response:
    xml = await service.export_cap(
        repo=ctx.repo,
        tenant=me.tenant,
        alert_id=alert_id,
        sender=ctx.settings.cap_sender(me.tenant),
    )
    return Response(
        xml,
        media_type="application/cap+xml",
        headers={"Content-Disposition": f'attachment; filename="{quote(alert_id)}.cap.xml"'},
    )


@router.post("/import")
async def import_cap(
    request: Request, ctx: ContextDep, me: ConsoleDep, file: UploadFile
) -> Response:
    raw = await file.read(cap.MAX_BYTES + 1)
    try:
        if len(raw) > cap.MAX_BYTES:
            raise InvalidInputError(
                ("body",),
                "cap_invalid",
                reason=i18n.text(i18n.lang_of(request), "import.too_large"),
            )
        doc = await service.import_cap(
            repo=ctx.repo,
            wake=ctx.relay.wake,
            principal=me,
            xml=raw,
            default_duration_s=ctx.settings.default_duration_s,
        )
    except DomainError as exc:
        docs = await ctx.repo.list_alerts(me.tenant, limit=100, before=None)
        return _page(
            request,
            "alerts.html",
            me,
            status_code=exc.status_code,
            alerts=docs,
            templates_=TEMPLATES.values(),
            error=_error_text(request, exc),
        )
    return RedirectResponse(f"/console/alerts/{doc['id']}", status_code=303)


@router.get("/audit")
async def audit_page(request: Request, ctx: ContextDep, me: ConsoleDep) -> HTMLResponse:
    entries = await ctx.repo.list_audit(me.tenant, alert_id=None, limit=200)
    return _page(request, "audit.html", me, entries=entries)


# --- live helpers while composing --------------------------------------------------------------


@router.post("/sms-length")
async def sms_fragment(request: Request, me: ConsoleDep) -> HTMLResponse:
    form = await request.form()
    lang = str(form.get("lang", "de"))
    text = str(form.get(f"{lang}_sms", ""))
    status = str(form.get("status", "Actual"))
    marker = MARKERS.get(AlertStatus(status)) if status in {"Exercise", "Test"} else None
    if marker and lang in {"de", "en"}:
        prefix = marker[Language(lang)]
        text = text if text.startswith(prefix) else prefix + text
    return _page(request, "_sms.html", me, length=sms_length(text), lang=lang)


@router.post("/estimate")
async def estimate_fragment(request: Request, ctx: ContextDep, me: ConsoleDep) -> HTMLResponse:
    """The compose form's live recipient estimate (a POST: pasted GeoJSON areas can be far
    larger than a URL should be)."""
    form = await request.form()
    topics, districts, everyone, areas = (
        str(form.get(name, "")) for name in ("topics", "districts", "everyone", "areas")
    )
    estimate: dict[str, Any] | None = None
    if everyone == "on" or _split(topics):
        try:
            audience = Audience(
                everyone=everyone == "on",
                topics=[] if everyone == "on" else _split(topics),
                districts=_split(districts),
                areas=AreasField.model_validate({"areas": areas}).areas,  # type: ignore[arg-type]
            )
        except ValidationError as exc:
            return _page(request, "_estimate.html", me, estimate={"invalid": _problems(exc)})
        try:
            response = await ctx.http.post(
                f"{ctx.settings.fanout_url}/api/v1/estimate",
                json={"tenant": me.tenant, "audience": audience.model_dump(mode="json")},
                headers={
                    "Authorization": f"Bearer {ctx.settings.estimate_token.get_secret_value()}"
                },
            )
            response.raise_for_status()
            estimate = response.json()
        except httpx.HTTPStatusError as exc:  # 401: the estimate tokens of the two differ
            log.warning("recipient estimate refused", extra={"status": exc.response.status_code})
            estimate = {"unavailable": True}
        except (httpx.HTTPError, ValueError):
            log.warning("recipient estimate unavailable")
            estimate = {"unavailable": True}
    return _page(request, "_estimate.html", me, estimate=estimate)


def install_console(app: FastAPI, *, assets_dir: str | None) -> None:
    """Mounts the console, its assets (KERN UX, htmx from npm; never a CDN) and the redirect
    to the sign-in page for requests without a session."""
    app.include_router(router)
    app.mount("/console/assets/app", StaticFiles(directory=PACKAGE / "static"), name="app")
    web = Path(assets_dir) if assets_dir else WEB
    for name, folder in (("kern", web / "@kern-ux/native/dist"), ("htmx", web / "htmx.org/dist")):
        if folder.is_dir():
            app.mount(f"/console/assets/{name}", StaticFiles(directory=folder), name=name)
        else:
            log.warning(
                "console assets missing (run `make install`)", extra={"folder": str(folder)}
            )

    async def to_login(request: Request, _: Exception) -> Response:
        if request.headers.get("hx-request"):
            return Response(status_code=401, headers={"HX-Redirect": "/console/login"})
        return RedirectResponse("/console/login", status_code=303)

    app.add_exception_handler(LoginRequired, to_login)

    @app.get("/", include_in_schema=False)
    async def root() -> Response:
        return RedirectResponse("/console/", status_code=307)
