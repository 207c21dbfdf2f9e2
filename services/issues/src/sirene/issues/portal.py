"""The citizen portal and the staff inbox pages (German, English with `?lang=en`, the
language cookie or the browser's preference; server-rendered, the citizen pages work without
JavaScript): the report form with a Leaflet map (vector outline of the municipality, no tiles
needed), duplicate suggestions, photo upload, the public status page of each report, and the
staff sign-in (password, session cookie), inbox, sign-out and password set-up."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile

from sirene.runtime.auth import TENANT_PATTERN
from sirene.runtime.errors import DomainError, InvalidInputError
from sirene.runtime.http import IdPath
from sirene.schemas import utcnow

from . import metrics, service
from .api import Context, get_context, session_principal, submit_report, views
from .i18n import Translator, lang_of, remember, switch_url
from .models import SLUG, ReportIn, ReportStatus
from .photos import CleanPhoto, PhotoError, clean_photo
from .service import RateLimitedError
from .signin import (
    COOKIE,
    CSRF_FIELD,
    MAX_PASSWORD,
    check_password_rules,
    hash_password,
    password_matches,
)
from .staff import same_secret, token_hash

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
LOCAL_TIME = ZoneInfo("Europe/Berlin")
templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=StrictUndefined,
)

FORM_FIELDS = (
    "category",
    "description",
    "lat",
    "lon",
    "address",
    "contact",
    "email",
    "phone",
    "name",
    "photos",
)
"""Form fields whose name an error message may carry (`field.<name>` in the catalogues)."""
PYDANTIC_REASONS = {
    "string_too_short": "reason.string_too_short",
    "string_too_long": "reason.string_too_long",
    "missing": "reason.missing",
    "float_parsing": "reason.float_parsing",
    "greater_than_equal": "reason.out_of_range",
    "less_than_equal": "reason.out_of_range",
}

TenantPath = Annotated[str, PathParam(pattern=TENANT_PATTERN)]

router = APIRouter(prefix="/portal", include_in_schema=False)

_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob: https:; style-src 'self'; "
        "script-src 'self'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _render(
    request: Request, name: str, status: int = 200, *, here: str | None = None, **values: Any
) -> HTMLResponse:
    """A page in the caller's language; `here` is the page's GET address (for the language
    switch of a page answering a POST)."""
    t = Translator(lang_of(request))

    def local(value: datetime, kind: str = "datetime_format") -> str:
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(LOCAL_TIME).strftime(t(kind))

    html = templates.get_template(name).render(
        t=t,
        lang=t.lang,
        switch_url=switch_url(request, here),
        script_texts=t.script_texts(),
        local=local,
        **values,
    )
    response = HTMLResponse(html, status_code=status, headers=_SECURITY_HEADERS)
    remember(request, response)
    return response


def _not_found(request: Request, key: str, town: str = "") -> HTMLResponse:
    return _render(request, "error.html", 404, title_key="not_found_title", text_key=key, town=town)


async def _page_context(ctx: Context, tenant: str, lang: str) -> dict[str, Any]:
    config = await service.tenant_config(repo=ctx.repo, tenant=tenant)
    categories = [
        {**c, "label": service.category_label(c, c["id"], lang)}
        for c in await ctx.repo.list_kind("categories", tenant)
        if c.get("active", True)
    ]
    return {
        "tenant": tenant,
        "town": config["name"],
        "allow_anonymous": config.get("allow_anonymous", True),
        "moderation": config.get("moderation", False),
        "categories": categories,
        "max_photos": ctx.settings.max_photos,
        "max_photo_mb": ctx.settings.max_photo_mb,
    }


def _unknown_tenant(ctx: Context, tenant: str, request: Request) -> HTMLResponse | None:
    if tenant in ctx.settings.api_tokens:
        return None
    return _not_found(request, "tenant_unknown")


@router.get("/{tenant}/", response_class=HTMLResponse)
async def form_page(tenant: TenantPath, request: Request) -> Response:
    """The report form."""
    ctx = get_context(request)
    if (missing := _unknown_tenant(ctx, tenant, request)) is not None:
        return missing
    page = await _page_context(ctx, tenant, lang_of(request))
    return _render(request, "report.html", **page, values={}, errors=[])


@router.get("/{tenant}")
async def form_redirect(tenant: TenantPath) -> RedirectResponse:
    return RedirectResponse(f"/portal/{tenant}/", status_code=308)


def _report_from(form: FormData) -> ReportIn:
    def text(name: str) -> str | None:
        value = form.get(name)
        return value.strip() if isinstance(value, str) and value.strip() else None

    contact = {k: text(f"contact_{k}") for k in ("name", "email", "phone")}
    attributes = {
        key.removeprefix("attribute_"): value.strip()
        for key, value in form.multi_items()
        if key.startswith("attribute_") and isinstance(value, str) and value.strip()
    }
    return ReportIn.model_validate(
        {
            "category": text("category") or "",
            "description": text("description") or "",
            "lat": text("lat"),
            "lon": text("lon"),
            "address": text("address"),
            "attributes": attributes,
            "contact": {k: v for k, v in contact.items() if v} or None,
        }
    )


async def read_photos(form: FormData, ctx: Context) -> list[CleanPhoto]:
    """The uploaded photos, each checked and cleaned (raises PhotoError / DomainError)."""
    uploads = [
        f for f in form.getlist("photos") if isinstance(f, UploadFile) and (f.filename or f.size)
    ]
    if len(uploads) > ctx.settings.max_photos:
        raise DomainError("too_many_photos", max=ctx.settings.max_photos)
    limit = ctx.settings.max_photo_mb * 1024 * 1024
    photos = []
    for upload in uploads:
        raw = await upload.read(limit + 1)
        photos.append(clean_photo(raw, max_bytes=limit, max_side=ctx.settings.photo_max_side))
    return photos


def form_errors(exc: ValidationError, t: Translator) -> list[str]:
    """Each problem of the form as a sentence naming the field, in the page's language."""
    errors = []
    for err in exc.errors():
        field = next(
            (f"field.{p}" for p in reversed(err["loc"]) if str(p) in FORM_FIELDS), "field.input"
        )
        empty = err.get("input") in (None, "") or err["type"] == "missing"
        reason = (
            "reason.missing" if empty else PYDANTIC_REASONS.get(str(err["type"]), "reason.invalid")
        )
        errors.append(t("form_error", field=t(field), reason=t(reason)))
    return errors


@router.post("/{tenant}/melden", response_class=HTMLResponse)
async def submit(tenant: TenantPath, request: Request) -> Response:
    """Receives the form (multipart, with photos); on success shows the status page."""
    ctx = get_context(request)
    if (missing := _unknown_tenant(ctx, tenant, request)) is not None:
        return missing
    t = Translator(lang_of(request))
    limit = (ctx.settings.max_photo_mb * (ctx.settings.max_photos + 1) + 1) * 1024 * 1024
    form = await request.form(max_files=ctx.settings.max_photos + 1, max_part_size=limit)
    values = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    errors: list[str] = []
    status = 422
    try:
        report = _report_from(form)
        photos = await read_photos(form, ctx)
        doc = await submit_report(
            ctx=ctx, tenant=tenant, report=report, photos=photos, request=request, via="portal"
        )
    except ValidationError as exc:
        errors = form_errors(exc, t)
    except PhotoError as exc:
        errors.append(service.MESSAGES.message(exc.code, t.lang, mb=ctx.settings.max_photo_mb))
    except DomainError as exc:
        status = exc.status_code
        errors.append(service.MESSAGES.message(exc.code, t.lang, **exc.params))
    else:
        return RedirectResponse(f"/portal/{tenant}/meldungen/{doc['id']}?neu=1", status_code=303)
    page = await _page_context(ctx, tenant, t.lang)
    return _render(
        request,
        "report.html",
        status,
        here=f"/portal/{tenant}/",
        **page,
        values=values,
        errors=errors,
    )


@router.get("/{tenant}/meldungen/{report_id}", response_class=HTMLResponse)
async def status_page(tenant: TenantPath, report_id: IdPath, request: Request) -> Response:
    """The public status page of a report (never the contact)."""
    ctx = get_context(request)
    if (missing := _unknown_tenant(ctx, tenant, request)) is not None:
        return missing
    config = await service.tenant_config(repo=ctx.repo, tenant=tenant)
    doc = await ctx.repo.get_report(tenant, report_id)
    if doc is None:
        return _not_found(request, "report_not_found", config["name"])
    report = service.public_view(doc, lang_of(request), **await views(ctx, tenant))
    return _render(
        request,
        "status.html",
        tenant=tenant,
        town=config["name"],
        report=report,
        new=request.query_params.get("neu") == "1",
    )


# --- staff: sign-in, the inbox, sign-out, setting a password ------------------------------------

_NO_STORE = {"Cache-Control": "no-store"}


async def _staff_page(
    request: Request,
    ctx: Context,
    tenant: str,
    status: int = 200,
    *,
    error: str | None = None,
    notice: str | None = None,
    staff_id: str = "",
) -> HTMLResponse:
    """The inbox for a member signed in to this tenant, else the sign-in form."""
    lang = lang_of(request)
    page = await _page_context(ctx, tenant, lang)
    me, csrf = None, ""
    cookie = request.cookies.get(COOKIE)
    signed_in = await session_principal(ctx, cookie) if cookie else None
    if signed_in is not None and signed_in[0].tenant == tenant:
        me, csrf = signed_in[0], signed_in[1].csrf
    statuses = [(s.value, service.status_label(s, lang)) for s in ReportStatus]
    response = _render(
        request,
        "staff.html",
        status,
        here=f"/portal/{tenant}/staff",
        **page,
        statuses=statuses,
        me=me,
        csrf=csrf,
        error=error,
        notice=notice,
        staff_id=staff_id,
    )
    response.headers.update(_NO_STORE)
    return response


@router.get("/{tenant}/staff", response_class=HTMLResponse)
async def staff_page(tenant: TenantPath, request: Request) -> Response:
    """The staff inbox (after signing in; its data comes from the staff API, with the session
    cookie and the CSRF token of the page)."""
    ctx = get_context(request)
    if (missing := _unknown_tenant(ctx, tenant, request)) is not None:
        return missing
    notice = None
    if request.query_params.get("abgemeldet") == "1":
        notice = Translator(lang_of(request))("signed_out")
    return await _staff_page(request, ctx, tenant, notice=notice)


def _form_text(form: FormData, name: str, limit: int) -> str:
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


@router.post("/{tenant}/staff/anmelden", response_class=HTMLResponse)
async def sign_in(tenant: TenantPath, request: Request) -> Response:
    """Checks staff id and password (argon2); opens a session in Redis and sets its cookie
    (HttpOnly, SameSite=Strict, Secure when configured). Refused while the account is locked
    after repeated failures."""
    ctx = get_context(request)
    if (missing := _unknown_tenant(ctx, tenant, request)) is not None:
        return missing
    t = Translator(lang_of(request))
    form = await request.form(max_files=0, max_fields=10)
    staff_id = _form_text(form, "staff_id", 64).strip().lower()
    password = _form_text(form, "password", MAX_PASSWORD + 1)
    if await ctx.logins.blocked(tenant, staff_id):
        metrics.SIGN_INS.labels(outcome="blocked").inc()
        minutes = max(1, ctx.settings.login_window_s // 60)
        error = t("login_blocked", minutes=minutes)
        return await _staff_page(request, ctx, tenant, 429, error=error, staff_id=staff_id)
    doc = await ctx.repo.get_kind("staff", tenant, staff_id) if re.match(SLUG, staff_id) else None
    usable = doc is not None and doc.get("active", True)
    stored = doc.get("password_hash") if doc is not None and usable else None
    if doc is None or not await password_matches(stored, password):
        await ctx.logins.failed(tenant, staff_id)
        metrics.SIGN_INS.labels(outcome="failed").inc()
        return await _staff_page(
            request, ctx, tenant, 401, error=t("login_failed"), staff_id=staff_id
        )
    await ctx.logins.succeeded(tenant, staff_id)
    metrics.SIGN_INS.labels(outcome="ok").inc()
    log.info("staff signed in", extra={"tenant": tenant, "staff_id": staff_id})
    response = RedirectResponse(f"/portal/{tenant}/staff", status_code=303)
    _set_session_cookie(response, ctx, await ctx.sessions.open(doc))
    return response


def _set_session_cookie(response: Response, ctx: Context, cookie: str) -> None:
    # no max-age: the cookie ends with the browser session; Redis ends idle sessions
    response.set_cookie(
        COOKIE,
        cookie,
        httponly=True,
        samesite="strict",
        secure=ctx.settings.cookie_secure,
        path="/",
    )


@router.post("/{tenant}/staff/abmelden")
async def sign_out(tenant: TenantPath, request: Request) -> Response:
    """Ends the session (with the page's CSRF token) and clears the cookie."""
    ctx = get_context(request)
    cookie = request.cookies.get(COOKIE)
    if cookie:
        signed_in = await session_principal(ctx, cookie)
        form = await request.form(max_files=0, max_fields=5)
        sent = _form_text(form, CSRF_FIELD, 100)
        if signed_in is not None and not same_secret(sent, signed_in[1].csrf):
            # not from the inbox page (a forged form): the session stays
            return RedirectResponse(f"/portal/{tenant}/staff", status_code=303)
        await ctx.sessions.close(cookie)
    response = RedirectResponse(f"/portal/{tenant}/staff?abgemeldet=1", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


@router.get("/{tenant}/staff/passwort", response_class=HTMLResponse)
async def password_page(tenant: TenantPath, request: Request) -> Response:
    """The form with which a staff member sets a password from a one-time set-up link."""
    ctx = get_context(request)
    if (missing := _unknown_tenant(ctx, tenant, request)) is not None:
        return missing
    config = await service.tenant_config(repo=ctx.repo, tenant=tenant)
    return _password_page(request, ctx, tenant, town=config["name"])


def _password_page(
    request: Request,
    ctx: Context,
    tenant: str,
    status: int = 200,
    *,
    town: str = "",
    errors: list[str] | None = None,
    done: str | None = None,
    code: str = "",
) -> HTMLResponse:
    response = _render(
        request,
        "password.html",
        status,
        here=f"/portal/{tenant}/staff/passwort",
        tenant=tenant,
        town=town,
        errors=errors or [],
        done=done,
        code=code,
        min_length=ctx.settings.password_min_length,
    )
    response.headers.update(_NO_STORE)
    return response


@router.post("/{tenant}/staff/passwort", response_class=HTMLResponse)
async def set_password(tenant: TenantPath, request: Request) -> Response:
    """Sets the password with a set-up code (once, before it expires); open sessions of the
    member end (they carry the old password's fingerprint)."""
    ctx = get_context(request)
    if (missing := _unknown_tenant(ctx, tenant, request)) is not None:
        return missing
    t = Translator(lang_of(request))
    config = await service.tenant_config(repo=ctx.repo, tenant=tenant)
    form = await request.form(max_files=0, max_fields=10)
    code = _form_text(form, "code", 100).strip()
    password = _form_text(form, "password", MAX_PASSWORD + 1)
    repeated = _form_text(form, "repeat", MAX_PASSWORD + 1)
    doc = await ctx.repo.staff_by_setup_hash(tenant, token_hash(code)) if code else None
    try:
        expires = doc.get("setup_expires_at") if doc else None
        if doc is None or expires is None or _aware(expires) < utcnow():
            raise InvalidInputError(("body", "code"), "setup_code_invalid")
        check_password_rules(
            password,
            repeated=repeated,
            staff_id=doc["id"],
            min_length=ctx.settings.password_min_length,
        )
        hashed = await hash_password(password)
        if not await ctx.repo.use_setup_code(tenant, doc["id"], token_hash(code), hashed, utcnow()):
            raise InvalidInputError(("body", "code"), "setup_code_invalid")
    except DomainError as exc:
        return _password_page(
            request,
            ctx,
            tenant,
            exc.status_code,
            town=config["name"],
            errors=[service.MESSAGES.message(exc.code, t.lang, **exc.params)],
            code=code,
        )
    log.info("staff password set", extra={"tenant": tenant, "staff_id": doc["id"]})
    return _password_page(
        request, ctx, tenant, town=config["name"], done=t("setup_done", staff_id=doc["id"])
    )


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# --- a signed-in member changes the password --------------------------------------------------


async def _change_page(
    request: Request,
    ctx: Context,
    tenant: str,
    csrf: str,
    status: int = 200,
    *,
    errors: list[str] | None = None,
    done: bool = False,
) -> HTMLResponse:
    config = await service.tenant_config(repo=ctx.repo, tenant=tenant)
    response = _render(
        request,
        "password_change.html",
        status,
        here=f"/portal/{tenant}/staff/passwort-aendern",
        tenant=tenant,
        town=config["name"],
        csrf=csrf,
        errors=errors or [],
        done=done,
        min_length=ctx.settings.password_min_length,
    )
    response.headers.update(_NO_STORE)
    return response


@router.get("/{tenant}/staff/passwort-aendern", response_class=HTMLResponse)
async def change_password_page(tenant: TenantPath, request: Request) -> Response:
    """The form with which a signed-in member changes the password."""
    ctx = get_context(request)
    cookie = request.cookies.get(COOKIE)
    signed_in = await session_principal(ctx, cookie) if cookie else None
    if signed_in is None or signed_in[0].tenant != tenant:
        return RedirectResponse(f"/portal/{tenant}/staff", status_code=303)
    return await _change_page(request, ctx, tenant, signed_in[1].csrf)


@router.post("/{tenant}/staff/passwort-aendern", response_class=HTMLResponse)
async def change_password(tenant: TenantPath, request: Request) -> Response:
    """Checks the current password (failures count towards the account's lockout), sets the
    new one and ends every other session of the member; this browser gets a fresh session."""
    ctx = get_context(request)
    cookie = request.cookies.get(COOKIE)
    signed_in = await session_principal(ctx, cookie) if cookie else None
    if cookie is None or signed_in is None or signed_in[0].tenant != tenant:
        return RedirectResponse(f"/portal/{tenant}/staff", status_code=303)
    me, session = signed_in
    form = await request.form(max_files=0, max_fields=10)
    if not same_secret(_form_text(form, CSRF_FIELD, 100), session.csrf):
        return RedirectResponse(f"/portal/{tenant}/staff", status_code=303)
    t = Translator(lang_of(request))
    current = _form_text(form, "current", MAX_PASSWORD + 1)
    password = _form_text(form, "password", MAX_PASSWORD + 1)
    repeated = _form_text(form, "repeat", MAX_PASSWORD + 1)
    doc = await ctx.repo.get_kind("staff", tenant, me.staff_id)
    try:
        if doc is None or await ctx.logins.blocked(tenant, me.staff_id):
            raise RateLimitedError(
                "login_blocked", minutes=max(1, ctx.settings.login_window_s // 60)
            )
        if not await password_matches(doc.get("password_hash"), current):
            await ctx.logins.failed(tenant, me.staff_id)
            raise InvalidInputError(("body", "current"), "current_password_wrong")
        check_password_rules(
            password,
            repeated=repeated,
            staff_id=me.staff_id,
            min_length=ctx.settings.password_min_length,
        )
        if password == current:
            raise InvalidInputError(("body", "password"), "password_unchanged")
        hashed = await hash_password(password)
        if not await ctx.repo.change_password(
            tenant, me.staff_id, doc.get("password_hash"), hashed, utcnow()
        ):
            raise InvalidInputError(("body", "current"), "current_password_wrong")
    except DomainError as exc:
        text = service.MESSAGES.message(exc.code, t.lang, **exc.params)
        return await _change_page(
            request, ctx, tenant, session.csrf, exc.status_code, errors=[text]
        )
    log.info("staff password changed", extra={"tenant": tenant, "staff_id": me.staff_id})
    await ctx.sessions.close(cookie)
    fresh = await ctx.repo.get_kind("staff", tenant, me.staff_id)
    assert fresh is not None  # noqa: S101 - just updated
    new_cookie = await ctx.sessions.open(fresh)
    new_session = await ctx.sessions.get(new_cookie)
    assert new_session is not None  # noqa: S101 - just opened
    response = await _change_page(request, ctx, tenant, new_session.csrf, done=True)
    _set_session_cookie(response, ctx, new_cookie)
    return response
