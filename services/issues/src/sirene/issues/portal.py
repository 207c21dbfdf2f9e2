"""The citizen portal (German; server-rendered, works without JavaScript): the report form
with a Leaflet map (vector outline of the municipality, no tiles needed), duplicate
suggestions, photo upload, and the public status page of each report."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile

from sirene.runtime.auth import TENANT_PATTERN
from sirene.runtime.errors import DomainError
from sirene.runtime.http import IdPath

from . import service
from .api import Context, get_context, submit_report, views
from .models import STATUS_LABELS, ReportIn, ReportStatus
from .photos import CleanPhoto, PhotoError, clean_photo

HERE = Path(__file__).parent
LOCAL_TIME = ZoneInfo("Europe/Berlin")
templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _local(value: datetime, pattern: str = "%d.%m.%Y %H:%M") -> str:
    """A UTC timestamp as German local time (what citizens read)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(LOCAL_TIME).strftime(pattern)


templates.filters["ortszeit"] = _local

FIELD_NAMES = {
    "category": "Kategorie",
    "description": "Beschreibung",
    "lat": "Ort (Breitengrad)",
    "lon": "Ort (Längengrad)",
    "address": "Adresse",
    "contact": "Kontakt",
    "email": "E-Mail",
    "phone": "Telefon",
    "name": "Name",
    "photos": "Fotos",
}
PYDANTIC_GERMAN = {
    "string_too_short": "ist zu kurz",
    "string_too_long": "ist zu lang",
    "missing": "fehlt",
    "float_parsing": "ist keine Zahl",
    "greater_than_equal": "liegt außerhalb des gültigen Bereichs",
    "less_than_equal": "liegt außerhalb des gültigen Bereichs",
    "string_pattern_mismatch": "ist ungültig",
    "value_error": "ist ungültig",
}

TenantPath = Annotated[str, PathParam(pattern=TENANT_PATTERN)]

router = APIRouter(prefix="/portal", include_in_schema=False)


def _render(name: str, status: int = 200, **values: Any) -> HTMLResponse:
    html = templates.get_template(name).render(**values)
    return HTMLResponse(html, status_code=status, headers=_SECURITY_HEADERS)


_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob: https:; style-src 'self'; "
        "script-src 'self'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


async def _page_context(ctx: Context, tenant: str) -> dict[str, Any]:
    config = await service.tenant_config(repo=ctx.repo, tenant=tenant)
    categories = [
        c for c in await ctx.repo.list_kind("categories", tenant) if c.get("active", True)
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


def _unknown_tenant(ctx: Context, tenant: str) -> HTMLResponse | None:
    if tenant in ctx.settings.api_tokens:
        return None
    return _render(
        "error.html", 404, title="Nicht gefunden", text="Diese Gemeinde gibt es hier nicht."
    )


@router.get("/{tenant}/", response_class=HTMLResponse)
async def form_page(tenant: TenantPath, request: Request) -> Response:
    """The report form."""
    ctx = get_context(request)
    if (missing := _unknown_tenant(ctx, tenant)) is not None:
        return missing
    return _render("report.html", **await _page_context(ctx, tenant), values={}, errors=[])


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


@router.post("/{tenant}/melden", response_class=HTMLResponse)
async def submit(tenant: TenantPath, request: Request) -> Response:
    """Receives the form (multipart, with photos); on success shows the status page."""
    ctx = get_context(request)
    if (missing := _unknown_tenant(ctx, tenant)) is not None:
        return missing
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
        for err in exc.errors():
            field = next(
                (FIELD_NAMES[str(p)] for p in reversed(err["loc"]) if str(p) in FIELD_NAMES),
                "Eingabe",
            )
            empty = err.get("input") in (None, "") or err["type"] == "missing"
            reason = "fehlt" if empty else PYDANTIC_GERMAN.get(str(err["type"]), "ist ungültig")
            errors.append(f"{field} {reason}.")
    except PhotoError as exc:
        errors.append(service.MESSAGES.message(exc.code, "de", mb=ctx.settings.max_photo_mb))
    except DomainError as exc:
        status = exc.status_code
        errors.append(service.MESSAGES.message(exc.code, "de", **exc.params))
    else:
        return RedirectResponse(f"/portal/{tenant}/meldungen/{doc['id']}?neu=1", status_code=303)
    return _render(
        "report.html", status, **await _page_context(ctx, tenant), values=values, errors=errors
    )


@router.get("/{tenant}/staff", response_class=HTMLResponse)
async def staff_page(tenant: TenantPath, request: Request) -> Response:
    """The staff inbox (signs in with a staff token; all data comes from the staff API)."""
    ctx = get_context(request)
    if (missing := _unknown_tenant(ctx, tenant)) is not None:
        return missing
    page = await _page_context(ctx, tenant)
    statuses = [(s.value, STATUS_LABELS[s][0]) for s in ReportStatus]
    return _render("staff.html", **page, statuses=statuses)


@router.get("/{tenant}/meldungen/{report_id}", response_class=HTMLResponse)
async def status_page(tenant: TenantPath, report_id: IdPath, request: Request) -> Response:
    """The public status page of a report (never the contact)."""
    ctx = get_context(request)
    if (missing := _unknown_tenant(ctx, tenant)) is not None:
        return missing
    doc = await ctx.repo.get_report(tenant, report_id)
    if doc is None:
        return _render("error.html", 404, title="Nicht gefunden", text="Meldung nicht gefunden.")
    config = await service.tenant_config(repo=ctx.repo, tenant=tenant)
    report = service.public_view(doc, "de", **await views(ctx, tenant))
    return _render(
        "status.html",
        tenant=tenant,
        town=config["name"],
        report=report,
        new=request.query_params.get("neu") == "1",
    )
