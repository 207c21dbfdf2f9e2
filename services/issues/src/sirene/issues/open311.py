"""Open311 GeoReport v2 (http://wiki.open311.org/GeoReport_v2) for each tenant, under
`/open311/{tenant}/v2/`, in JSON and XML (`.json` / `.xml` suffix).

Errors follow the spec: an array of `{code, description}` (XML: `<errors><error>`), with
400 for bad input, 403 for a missing or wrong api_key, 404 for an unknown id or service.
Parameters are parsed here (not by FastAPI) so that every refusal has the spec's shape.

Statuses: the spec's `status` is `open` (received, in progress) or `closed` (resolved,
rejected, duplicate); the extended status travels as `detailed_status`. GET requests without
dates covers the last 90 days, a date range may span at most 90 days, and at most 1,000
requests are returned (newest first). Reports waiting for moderation are not listed."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree import ElementTree as ET

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from sirene.runtime import Document
from sirene.runtime.errors import DomainError, InvalidInputError, language_of
from sirene.schemas import utcnow

from . import service
from .api import Context, get_context, submit_report, views
from .models import OPEN_STATUSES, ContactIn, ReportIn, ReportStatus
from .staff import same_secret

WINDOW = timedelta(days=90)
MAX_REQUESTS = 1000
FORMATS = {"json": "application/json", "xml": "text/xml"}
_LIST_ITEMS = {
    "services": "service",
    "service_requests": "request",
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
    "errors": "error",
}


class Open311Error(Exception):
    """A refusal in the spec's error format."""

    def __init__(self, status: int, description: str, code: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.errors = [{"code": code or status, "description": description}]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return _iso(value)
    return str(value)


def _iso(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _xml_into(parent: ET.Element, name: str, value: Any) -> None:
    element = ET.SubElement(parent, name)
    if isinstance(value, Mapping):
        for key, item in value.items():
            _xml_into(element, key, item)
    elif isinstance(value, list):
        for item in value:
            _xml_into(element, _LIST_ITEMS.get(name, "item"), item)
    else:
        element.text = _text(value)


def to_xml(root: str, value: Any) -> bytes:
    """The spec's XML: a root element holding the fields or the list items."""
    element = ET.Element(root)
    if isinstance(value, list):
        for item in value:
            _xml_into(element, _LIST_ITEMS[root], item)
    else:
        for key, item in value.items():
            _xml_into(element, key, item)
    body: bytes = ET.tostring(element, encoding="utf-8", xml_declaration=True)
    return body


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def respond(fmt: str, root: str, value: Any, status: int = 200) -> Response:
    """The answer in the requested format."""
    if fmt == "xml":
        return Response(to_xml(root, value), status_code=status, media_type=FORMATS["xml"])
    return JSONResponse(_jsonable(value), status_code=status)


def error_response(fmt: str, exc: Open311Error) -> Response:
    return respond(fmt if fmt in FORMATS else "json", "errors", exc.errors, exc.status)


def _format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise Open311Error(400, f"unsupported format '{fmt[:10]}': use json or xml")
    return fmt


def _tenant(ctx: Context, tenant: str) -> str:
    if tenant not in ctx.settings.api_tokens:
        raise Open311Error(404, "jurisdiction not found")
    return tenant


def _parse_datetime(name: str, raw: str) -> datetime:
    try:
        value = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise Open311Error(
            400, f"{name} is not a W3C datetime (e.g. 2026-11-01T00:00:00Z)"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _status_of(doc: Document) -> str:
    return "open" if ReportStatus(doc["status"]) in OPEN_STATUSES else "closed"


def request_view(
    doc: Document, *, lookups: dict[str, Any], base_url: str, language: str
) -> dict[str, Any]:
    """A report as an Open311 service request (never the contact)."""
    category = lookups["categories"].get(doc["category"])
    department = lookups["departments"].get(doc.get("department") or "")
    photos = doc.get("photos", [])
    media = (
        f"{base_url}/api/v1/{doc['tenant']}/reports/{doc['id']}/photos/{photos[0]}"
        if photos
        else doc.get("media_url")
    )
    return {
        "service_request_id": doc["id"],
        "status": _status_of(doc),
        "detailed_status": doc["status"],
        "status_notes": doc.get("status_notes"),
        "service_name": service.category_label(category, doc["category"], language),
        "service_code": doc["category"],
        "description": doc["description"],
        "agency_responsible": department["name"] if department else None,
        "service_notice": None,
        "requested_datetime": doc["created_at"],
        "updated_datetime": doc["updated_at"],
        "expected_datetime": doc.get("expected_at"),
        "address": doc.get("address"),
        "address_id": None,
        "zipcode": None,
        "lat": doc["location"]["lat"],
        "long": doc["location"]["lon"],
        "media_url": media,
    }


def build_router() -> APIRouter:
    """The Open311 routes (every answer built here, including errors)."""
    router = APIRouter(prefix="/open311/{tenant}/v2", tags=["open311"])

    async def guarded(request: Request, fmt: str, work: Any) -> Response:
        try:
            answer: Response = await work(_format(fmt))
            return answer
        except Open311Error as exc:
            return error_response(fmt, exc)
        except DomainError as exc:
            text = service.MESSAGES.message(exc.code, language_of(request), **exc.params)
            if isinstance(exc, InvalidInputError):
                names = {"category": "service_code", "lon": "long", "attributes": "attribute"}
                field = ".".join(names.get(str(p), str(p)) for p in exc.loc[1:])
                text = f"{field}: {text}"
            status = 400 if exc.status_code in (400, 409, 422) else exc.status_code
            return error_response(fmt, Open311Error(status, text))

    @router.get("/discovery.{fmt}")
    async def discovery(tenant: str, fmt: str, request: Request) -> Response:
        """Where this jurisdiction's endpoint is and what it speaks."""
        ctx = get_context(request)

        async def work(f: str) -> Response:
            _tenant(ctx, tenant)
            config = await service.tenant_config(repo=ctx.repo, tenant=tenant)
            url = f"{ctx.settings.base_url}/open311/{tenant}/v2"
            body = {
                "changeset": _iso(datetime(2026, 11, 22, tzinfo=UTC)),
                "contact": f"{config['name']}: {ctx.settings.portal_base}/{tenant}/",
                "key_service": f"API keys are issued by the administration of {config['name']}.",
                "endpoints": [
                    {
                        "specification": "http://wiki.open311.org/GeoReport_v2",
                        "url": url,
                        "changeset": _iso(datetime(2026, 11, 22, tzinfo=UTC)),
                        "type": "production",
                        "formats": list(FORMATS.values()),
                    }
                ],
            }
            return respond(f, "discovery", body)

        return await guarded(request, fmt, work)

    @router.get("/services.{fmt}")
    async def services(tenant: str, fmt: str, request: Request) -> Response:
        """The service list: every active category."""
        ctx = get_context(request)
        language = language_of(request)

        async def work(f: str) -> Response:
            _tenant(ctx, tenant)
            await service.tenant_config(repo=ctx.repo, tenant=tenant)
            items = [
                {
                    "service_code": c["id"],
                    "service_name": service.category_label(c, c["id"], language),
                    "description": c.get("description", ""),
                    "metadata": bool(c.get("attributes")),
                    "type": "realtime",
                    "keywords": ",".join(c.get("keywords", [])),
                    "group": c.get("group", ""),
                }
                for c in await ctx.repo.list_kind("categories", tenant)
                if c.get("active", True)
            ]
            return respond(f, "services", items)

        return await guarded(request, fmt, work)

    @router.get("/services/{service_code}.{fmt}")
    async def definition(tenant: str, service_code: str, fmt: str, request: Request) -> Response:
        """A service definition: the category's extra attributes."""
        ctx = get_context(request)

        async def work(f: str) -> Response:
            _tenant(ctx, tenant)
            category = await ctx.repo.get_kind("categories", tenant, service_code)
            if category is None or not category.get("active", True):
                raise Open311Error(404, f"service_code {service_code[:40]} not found")
            attributes = [
                {
                    "variable": True,
                    "code": a["code"],
                    "datatype": a.get("datatype", "string"),
                    "required": bool(a.get("required")),
                    "datatype_description": a.get("datatype_description") or "",
                    "order": a.get("order", 1),
                    "description": a["description"],
                    "values": [{"key": v["key"], "name": v["name"]} for v in a.get("values", [])],
                }
                for a in sorted(category.get("attributes", []), key=lambda a: a.get("order", 1))
            ]
            body = {"service_code": category["id"], "attributes": attributes}
            return respond(f, "service_definition", body)

        return await guarded(request, fmt, work)

    @router.post("/requests.{fmt}")
    async def create(tenant: str, fmt: str, request: Request) -> Response:
        """Creates a service request (api_key required)."""
        ctx = get_context(request)

        async def work(f: str) -> Response:
            _tenant(ctx, tenant)
            form = await request.form()
            fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
            api_key = fields.get("api_key", "")
            keys = ctx.settings.open311_api_keys.get(tenant, [])
            if not api_key or not any(same_secret(api_key, k.get_secret_value()) for k in keys):
                raise Open311Error(403, "api_key is missing or not valid for this jurisdiction")
            report = _report_from_form(form.multi_items())
            doc = await submit_report(
                ctx=ctx, tenant=tenant, report=report, photos=[], request=request, via="open311"
            )
            media = fields.get("media_url")
            if media and re.match(r"^https?://", media) and len(media) <= 500:
                await ctx.repo.patch_report({"_id": doc["_id"]}, {"$set": {"media_url": media}})
            body = [
                {
                    "service_request_id": doc["id"],
                    "token": doc["token"],
                    "service_notice": "",
                    "account_id": None,
                }
            ]
            return respond(f, "service_requests", body, status=201)

        return await guarded(request, fmt, work)

    @router.get("/requests.{fmt}")
    async def search(tenant: str, fmt: str, request: Request) -> Response:
        """Service requests by id list, or by service, status and date window."""
        ctx = get_context(request)
        language = language_of(request)

        async def work(f: str) -> Response:
            _tenant(ctx, tenant)
            params = request.query_params
            query: dict[str, Any] = {"tenant": tenant, "moderation": "public"}
            ids = _csv(params.get("service_request_id"))
            if ids:
                if len(ids) > MAX_REQUESTS:
                    raise Open311Error(400, f"at most {MAX_REQUESTS} service_request_id values")
                query["id"] = {"$in": ids}
            else:
                codes = _csv(params.get("service_code"))
                if codes:
                    query["category"] = {"$in": codes}
                statuses = _csv(params.get("status"))
                if statuses:
                    if not set(statuses) <= {"open", "closed"}:
                        raise Open311Error(400, "status must be open, closed or both")
                    wanted = [
                        s.value
                        for s in ReportStatus
                        if ("open" if s in OPEN_STATUSES else "closed") in statuses
                    ]
                    query["status"] = {"$in": wanted}
                start = params.get("start_date")
                end = params.get("end_date")
                end_at = _parse_datetime("end_date", end) if end else None
                start_at = _parse_datetime("start_date", start) if start else None
                if start_at and end_at and end_at < start_at:
                    raise Open311Error(400, "end_date is before start_date")
                if start_at and end_at and end_at - start_at > WINDOW:
                    raise Open311Error(400, "start_date and end_date may span at most 90 days")
                if start_at is None:
                    start_at = (end_at or utcnow()) - WINDOW
                if end_at is None and start_at + WINDOW < utcnow():
                    end_at = start_at + WINDOW
                query["created_at"] = {"$gte": start_at, **({"$lte": end_at} if end_at else {})}
            docs = await ctx.repo.find_reports(query, limit=MAX_REQUESTS)
            lookups = await views(ctx, tenant)
            items = [
                request_view(d, lookups=lookups, base_url=ctx.settings.base_url, language=language)
                for d in docs
            ]
            return respond(f, "service_requests", items)

        return await guarded(request, fmt, work)

    @router.get("/requests/{request_id}.{fmt}")
    async def one(tenant: str, request_id: str, fmt: str, request: Request) -> Response:
        """One service request (as a list of one, as the spec says)."""
        ctx = get_context(request)
        language = language_of(request)

        async def work(f: str) -> Response:
            _tenant(ctx, tenant)
            doc = await ctx.repo.get_report(tenant, request_id[:64])
            if doc is None or doc["moderation"] != "public":
                raise Open311Error(404, f"service_request_id {request_id[:64]} not found")
            lookups = await views(ctx, tenant)
            item = request_view(
                doc, lookups=lookups, base_url=ctx.settings.base_url, language=language
            )
            return respond(f, "service_requests", [item])

        return await guarded(request, fmt, work)

    @router.get("/tokens/{token}.{fmt}")
    async def token(tenant: str, token: str, fmt: str, request: Request) -> Response:
        """The service request id behind a token from POST requests."""
        ctx = get_context(request)

        async def work(f: str) -> Response:
            _tenant(ctx, tenant)
            doc = await ctx.repo.get_by_token(tenant, token[:64])
            if doc is None:
                raise Open311Error(404, f"token {token[:64]} not found")
            return respond(
                f, "service_requests", [{"service_request_id": doc["id"], "token": doc["token"]}]
            )

        return await guarded(request, fmt, work)

    return router


def _csv(raw: str | None) -> list[str]:
    return [part.strip() for part in (raw or "").split(",") if part.strip()]


_ATTRIBUTE = re.compile(r"^attribute\[([a-z0-9][a-z0-9_-]{0,62})\](\[\])?$")


def _report_from_form(items: Sequence[tuple[str, Any]]) -> ReportIn:
    """The report in a POST requests form; 400 with the reason if it is not usable."""
    fields: dict[str, str] = {}
    attributes: dict[str, str | list[str]] = {}
    for key, value in items:
        if not isinstance(value, str):
            continue
        match = _ATTRIBUTE.match(key)
        if match:
            code, multi = match.group(1), match.group(2)
            if multi:
                existing = attributes.setdefault(code, [])
                if isinstance(existing, list):
                    existing.append(value)
            else:
                attributes[code] = value
        else:
            fields[key] = value
    if not fields.get("service_code"):
        raise Open311Error(400, "service_code is required")
    if not fields.get("lat") or not fields.get("long"):
        raise Open311Error(400, "lat and long are required (address_string alone is not enough)")
    name = " ".join(p for p in (fields.get("first_name"), fields.get("last_name")) if p) or None
    try:
        contact = ContactIn(
            name=name, email=fields.get("email") or None, phone=fields.get("phone") or None
        )
        return ReportIn(
            category=fields["service_code"],
            description=fields.get("description") or "",
            lat=fields["lat"],  # type: ignore[arg-type]
            lon=fields["long"],  # type: ignore[arg-type]
            address=fields.get("address_string") or None,
            attributes=attributes,
            contact=contact if (contact.email or contact.phone) else None,
        )
    except ValidationError as exc:
        names = {"lon": "long", "category": "service_code"}
        reasons = "; ".join(
            f"{names.get(str(err['loc'][-1]), '.'.join(str(p) for p in err['loc']))}: {err['msg']}"
            for err in exc.errors()[:5]
        )
        raise Open311Error(400, reasons) from None
