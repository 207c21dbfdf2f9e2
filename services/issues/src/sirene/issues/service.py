"""Business rules of issues as plain functions: tenant set-up, receiving and routing reports,
the status workflow, staff work (comments, reassignment, merging, moderation) and the views."""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sirene.runtime import Document
from sirene.runtime.errors import (
    Catalogue,
    ConflictError,
    DomainError,
    InvalidInputError,
    NotFoundError,
)
from sirene.schemas import Channel, new_id, notification_id_for, utcnow

from . import geo, metrics
from .limits import Limiter
from .models import (
    OPEN_STATUSES,
    STATUS_LABELS,
    Attribute,
    CategoryIn,
    DepartmentIn,
    Geometry,
    ReportIn,
    ReportStatus,
    Role,
    StatusChangeIn,
)
from .photos import CleanPhoto
from .repository import Repository
from .routing import Rule, route
from .staff import Principal

MESSAGES = Catalogue(
    {
        "tenant_unknown": ("Diese Gemeinde gibt es hier nicht.", "No such municipality here."),
        "report_not_found": ("Meldung nicht gefunden.", "Report not found."),
        "not_found": ("Nicht gefunden: {what}.", "Not found: {what}."),
        "category_unknown": (
            "Diese Kategorie gibt es nicht (mehr).",
            "This category does not exist (any more).",
        ),
        "attribute_required": (
            "Bitte beantworten Sie: {question}",
            "Please answer: {question}",
        ),
        "attribute_invalid": (
            "Ungültige Antwort auf: {question}",
            "Invalid answer to: {question}",
        ),
        "outside_municipality": (
            "Der Ort liegt außerhalb von {town}. Bitte wählen Sie einen Ort im Gemeindegebiet "
            "oder wenden Sie sich an die zuständige Gemeinde.",
            "The location is outside {town}. Please choose a place within the municipality or "
            "contact the municipality responsible.",
        ),
        "contact_required": (
            "Bitte geben Sie eine E-Mail-Adresse oder Telefonnummer an; anonyme Meldungen sind "
            "hier nicht möglich.",
            "Please give an e-mail address or phone number; anonymous reports are not possible "
            "here.",
        ),
        "rate_limited": (
            "Zu viele Meldungen in kurzer Zeit. Bitte versuchen Sie es in {seconds} Sekunden "
            "erneut.",
            "Too many reports in a short time. Please try again in {seconds} seconds.",
        ),
        "too_many_photos": ("Höchstens {max} Fotos.", "At most {max} photos."),
        "photo_too_large": (
            "Das Foto ist zu groß (höchstens {mb} MB).",
            "The photo is too large (at most {mb} MB).",
        ),
        "photo_type": (
            "Nur Fotos im Format JPEG, PNG oder WebP.",
            "Only photos in JPEG, PNG or WebP format.",
        ),
        "photo_invalid": ("Die Datei ist kein lesbares Foto.", "The file is not a readable photo."),
        "status_unchanged": (
            "Die Meldung hat diesen Status bereits.",
            "The report already has this status.",
        ),
        "use_merge": (
            "Duplikate bitte über „Zusammenführen“ schließen.",
            "Close duplicates with 'merge'.",
        ),
        "template_unknown": ("Diese Textvorlage gibt es nicht.", "No such response template."),
        "department_unknown": ("Diese Abteilung gibt es nicht.", "No such department."),
        "area_unknown": ("Dieses Gebiet gibt es nicht.", "No such area."),
        "forbidden": (
            "Dafür fehlt Ihnen die Berechtigung.",
            "You are not allowed to do this.",
        ),
        "merge_self": (
            "Eine Meldung kann nicht mit sich selbst zusammengeführt werden.",
            "A report cannot be merged into itself.",
        ),
        "merge_target_closed": (
            "Die Zielmeldung ist bereits abgeschlossen oder selbst ein Duplikat.",
            "The target report is already closed or a duplicate itself.",
        ),
        "merge_category": (
            "Nur Meldungen derselben Kategorie können zusammengeführt werden.",
            "Only reports of the same category can be merged.",
        ),
        "not_moderated": ("Die Meldung wartet nicht auf Freigabe.", "Not awaiting moderation."),
        "not_public": ("Die Meldung ist nicht öffentlich.", "The report is not public."),
        "concurrent_change": (
            "Die Meldung wurde gerade geändert. Bitte laden Sie neu.",
            "The report was just changed. Please reload.",
        ),
        "geometry_invalid": ("Ungültiges Gebiet: {reason}", "Invalid area: {reason}"),
        "staff_id_taken": ("Diese Kennung ist vergeben.", "This id is taken."),
        "department_in_use": (
            "Die Abteilung ist noch Standard-Abteilung oder Ziel einer Regel.",
            "The department is still the default desk or the target of a rule.",
        ),
        "area_in_use": (
            "Das Gebiet wird noch von einer Regel verwendet.",
            "The area is still used by a rule.",
        ),
        "csrf": (
            "Die Sitzung ist abgelaufen oder die Anfrage kam nicht aus dem Posteingang. Bitte "
            "laden Sie die Seite neu.",
            "The session has expired or the request did not come from the inbox. Please reload "
            "the page.",
        ),
        "password_mismatch": (
            "Die beiden Passwörter stimmen nicht überein.",
            "The two passwords do not match.",
        ),
        "password_short": (
            "Das Passwort muss mindestens {min} Zeichen lang sein.",
            "The password must be at least {min} characters long.",
        ),
        "password_long": (
            "Das Passwort darf höchstens {max} Zeichen lang sein.",
            "The password may be at most {max} characters long.",
        ),
        "password_weak": (
            "Das Passwort ist zu leicht zu erraten (nicht die Kennung, nicht nur wenige "
            "verschiedene Zeichen).",
            "The password is too easy to guess (not the user id, not just a few different "
            "characters).",
        ),
        "current_password_wrong": (
            "Das bisherige Passwort stimmt nicht.",
            "The current password is wrong.",
        ),
        "password_unchanged": (
            "Das neue Passwort muss sich vom bisherigen unterscheiden.",
            "The new password must differ from the current one.",
        ),
        "login_blocked": (
            "Zu viele fehlgeschlagene Versuche. Bitte versuchen Sie es in {minutes} Minuten "
            "erneut oder wenden Sie sich an die Administration.",
            "Too many failed attempts. Please try again in {minutes} minutes or contact the "
            "administration.",
        ),
        "setup_code_invalid": (
            "Dieser Link zum Festlegen des Passworts ist ungültig, abgelaufen oder schon "
            "benutzt. Bitte bitten Sie die Administration um einen neuen.",
            "This link for setting the password is invalid, expired or already used. Please "
            "ask the administration for a new one.",
        ),
    }
)
"""Reason texts of every refusal of the service (German first)."""


class ForbiddenError(DomainError):
    """The caller's role does not allow the request (403)."""

    status_code = 403


class RateLimitedError(DomainError):
    """Too many requests from one client or contact (429)."""

    status_code = 429


THANKS = (
    "Vielen Dank! Ihre Meldung ist eingegangen. Unter der Meldungsnummer können Sie den Stand "
    "verfolgen.",
    "Thank you! Your report has been received. Use its number to follow its status.",
)
NOTIFY_VALID_DAYS = 7

DEFAULT_DEPARTMENT = DepartmentIn(id="buergerservice", name="Bürgerservice")
DEFAULT_CATEGORIES = [
    CategoryIn(
        code="illegal_dumping",
        name_de="Illegale Müllablagerung",
        name_en="Illegal dumping",
        group="Sauberkeit",
        keywords=["Müll", "Sperrmüll"],
        sla_hours=72,
    ),
    CategoryIn(
        code="vandalism",
        name_de="Vandalismus",
        name_en="Vandalism",
        group="Sauberkeit",
        sla_hours=120,
    ),
    CategoryIn(
        code="graffiti",
        name_de="Graffiti",
        name_en="Graffiti",
        group="Sauberkeit",
        sla_hours=240,
    ),
    CategoryIn(
        code="streetlight",
        name_de="Defekte Straßenbeleuchtung",
        name_en="Broken street light",
        group="Straße",
        sla_hours=120,
        attributes=[
            Attribute(
                code="mast",
                description="Mastnummer (falls sichtbar)",
                datatype="string",
                required=False,
            )
        ],
    ),
    CategoryIn(
        code="road_damage",
        name_de="Straßenschaden",
        name_en="Road damage",
        group="Straße",
        sla_hours=168,
    ),
    CategoryIn(code="other", name_de="Sonstiges", name_en="Other", group="Sonstiges"),
]


# --- tenant set-up -----------------------------------------------------------------------------


async def ensure_tenant_defaults(*, repo: Repository, tenant: str) -> None:
    """Gives a tenant without configuration a working desk: the standard categories, the
    department 'Bürgerservice' as default desk, anonymous reports allowed, no moderation.
    Leaves configured tenants alone."""
    if await repo.get_config(tenant) is not None:
        return
    await repo.insert_kind("departments", tenant, DEFAULT_DEPARTMENT.model_dump())
    for category in DEFAULT_CATEGORIES:
        await repo.insert_kind(
            "categories", tenant, {"id": category.code, **category.model_dump(mode="json")}
        )
    await repo.put_config(
        tenant,
        {
            "name": tenant.replace("-", " ").title(),
            "allow_anonymous": True,
            "moderation": False,
            "default_department": DEFAULT_DEPARTMENT.id,
            "boundary": None,
            "center": None,
        },
    )


async def tenant_config(*, repo: Repository, tenant: str) -> Document:
    """The tenant's configuration (defaults created on first use)."""
    config = await repo.get_config(tenant)
    if config is None:
        await ensure_tenant_defaults(repo=repo, tenant=tenant)
        config = await repo.get_config(tenant)
    assert config is not None  # noqa: S101 - just written
    return config


def category_label(category: Document | None, code: str, language: str) -> str:
    """A category's name in German, or English for 'en' (the code if it is gone)."""
    if category is None:
        return code
    if language == "en" and category.get("name_en"):
        return str(category["name_en"])
    return str(category["name_de"])


def status_label(status: str, language: str) -> str:
    german, english = STATUS_LABELS[ReportStatus(status)]
    return english if language == "en" else german


async def categories_by_code(*, repo: Repository, tenant: str) -> dict[str, Document]:
    return {c["id"]: c for c in await repo.list_kind("categories", tenant)}


async def departments_by_id(*, repo: Repository, tenant: str) -> dict[str, Document]:
    return {d["id"]: d for d in await repo.list_kind("departments", tenant)}


# --- receiving ---------------------------------------------------------------------------------


def check_attributes(category: Document, answers: dict[str, Any]) -> dict[str, Any]:
    """Validates answers against the category's extra questions; returns the known ones."""
    clean: dict[str, Any] = {}
    for attribute in category.get("attributes", []):
        code, question = attribute["code"], attribute["description"]
        value = answers.get(code)
        if value in (None, "", []):
            if attribute.get("required"):
                raise InvalidInputError(
                    ("body", "attributes", code), "attribute_required", question=question
                )
            continue
        keys = {v["key"] for v in attribute.get("values", [])}
        datatype = attribute.get("datatype", "string")
        if datatype == "singlevaluelist" and (not isinstance(value, str) or value not in keys):
            raise InvalidInputError(
                ("body", "attributes", code), "attribute_invalid", question=question
            )
        if datatype == "multivaluelist":
            values = value if isinstance(value, list) else [value]
            if not values or any(v not in keys for v in values):
                raise InvalidInputError(
                    ("body", "attributes", code), "attribute_invalid", question=question
                )
            value = values
        if datatype == "number":
            try:
                float(str(value))
            except ValueError:
                raise InvalidInputError(
                    ("body", "attributes", code), "attribute_invalid", question=question
                ) from None
        if isinstance(value, str) and len(value) > 1000:
            raise InvalidInputError(
                ("body", "attributes", code), "attribute_invalid", question=question
            )
        clean[code] = value
    return clean


def check_in_municipality(config: Document, lat: float, lon: float) -> None:
    """Refuses a location outside the tenant's boundary (a point on it counts as inside)."""
    boundary = config.get("boundary")
    if not boundary:
        return
    polygons = Geometry.model_validate(boundary).polygons()
    if not geo.area_contains(polygons, lon, lat):
        raise InvalidInputError(("body", "lat"), "outside_municipality", town=config["name"])


async def route_report(
    *, repo: Repository, tenant: str, config: Document, category: str, lat: float, lon: float
) -> tuple[str | None, str | None, str]:
    """(department, rule id, reason) for a new report."""
    rules = [
        Rule(
            id=r["id"],
            department=r["department"],
            category=r.get("category"),
            area=r.get("area"),
            priority=r.get("priority", 100),
        )
        for r in await repo.list_kind("rules", tenant)
    ]
    needed = {r.area for r in rules if r.area}
    areas = {
        a["id"]: Geometry.model_validate(a["geometry"]).polygons()
        for a in await repo.list_kind("areas", tenant)
        if a["id"] in needed
    }
    decision = route(
        category=category,
        lat=lat,
        lon=lon,
        rules=rules,
        areas=areas,
        default_department=config.get("default_department"),
    )
    return decision.department, decision.rule, decision.reason


async def check_limits(
    *,
    limiter: Limiter,
    tenant: str,
    client_ip: str,
    contact: Document | None,
    per_ip: int | None,
    per_contact: int,
    window_s: int,
) -> None:
    """Counts a submission against the per-IP (None: not counted) and per-contact limits;
    429 when over."""
    wait = None
    if per_ip is not None:
        wait = await limiter.hit(f"{tenant}:ip", client_ip, limit=per_ip, window_s=window_s)
    for key in ("email", "phone"):
        if wait is None and contact and contact.get(key):
            wait = await limiter.hit(
                f"{tenant}:contact", str(contact[key]), limit=per_contact, window_s=window_s
            )
    if wait is not None:
        metrics.REJECTED.labels(reason="rate_limited").inc()
        raise RateLimitedError("rate_limited", seconds=wait)


def notification_channel(contact: Document | None) -> tuple[Channel, str] | None:
    """How the reporter is told about changes: SMS to a phone number, else e-mail."""
    if not contact:
        return None
    if contact.get("phone"):
        phone = "".join(ch for ch in str(contact["phone"]) if ch.isdigit() or ch == "+")
        if phone.startswith("00"):
            phone = "+" + phone[2:]
        elif phone.startswith("0"):
            phone = "+49" + phone[1:]
        return Channel.SMS, phone
    if contact.get("email"):
        return Channel.EMAIL, str(contact["email"])
    return None


def _notification(
    *,
    tenant: str,
    report_id: str,
    step: str,
    recipient: str,
    channel: Channel,
    address: str,
    subject: str | None,
    body: str,
    now: datetime,
) -> Document:
    notification_id = notification_id_for("issues", report_id, step, recipient)
    return {
        "notification_id": notification_id,
        "tenant_id": tenant,
        "source": "issues",
        "reference": report_id,
        "recipient_id": recipient,
        "channel": channel.value,
        "address": address,
        "language": "de",
        "subject": subject,
        "body": body,
        "requested_at": now,
        "expires": now + timedelta(days=NOTIFY_VALID_DAYS),
    }


def reporter_notification(
    *,
    doc: Document,
    config: Document,
    category: Document | None,
    step: str,
    note: str | None,
    status_url: str,
    now: datetime,
) -> Document | None:
    """The message to the reporter about a status change (None without contact)."""
    how = notification_channel(doc.get("contact"))
    if how is None:
        return None
    channel, address = how
    label = status_label(doc["status"], "de")
    what = category_label(category, doc["category"], "de")
    short = doc["id"][:8]
    text = f"{config['name']}: Ihre Meldung {short} ({what}) ist jetzt „{label}“."
    if note:
        text += " " + (note if len(note) <= 200 else note[:197] + "…")
    text += f" Stand: {status_url}"
    return _notification(
        tenant=doc["tenant"],
        report_id=doc["id"],
        step=step,
        recipient=f"report-{doc['id']}",
        channel=channel,
        address=address,
        subject=f"Ihre Meldung {short}: {label}",
        body=text,
        now=now,
    )


def department_notification(
    *,
    doc: Document,
    config: Document,
    category: Document | None,
    department: Document,
    staff_url: str,
    now: datetime,
) -> Document | None:
    """The e-mail announcing a new report to its department (None without an address)."""
    if not department.get("email"):
        return None
    what = category_label(category, doc["category"], "de")
    body = (
        f"Neue Meldung für {department['name']} ({config['name']}):\n\n"
        f"Kategorie: {what}\nOrt: {doc['location']['lat']:.6f}, {doc['location']['lon']:.6f}"
        f"{' (' + doc['address'] + ')' if doc.get('address') else ''}\n\n"
        f"{doc['description']}\n\nZum Posteingang: {staff_url}"
    )
    return _notification(
        tenant=doc["tenant"],
        report_id=doc["id"],
        step=f"assigned-{len(doc.get('assignments', []))}",
        recipient=f"department-{department['id']}",
        channel=Channel.EMAIL,
        address=str(department["email"]),
        subject=f"Neue Meldung: {what}",
        body=body,
        now=now,
    )


def _outbox(notes: Sequence[Document | None]) -> Document:
    """The `$set` part that queues notifications on the report's own outbox."""
    queued = {f"pending_notifications.{n['notification_id']}": n for n in notes if n}
    return {**queued, "notify_pending": True} if queued else {}


async def receive_report(
    *,
    repo: Repository,
    tenant: str,
    report: ReportIn,
    photos: Sequence[CleanPhoto] = (),
    staff_url: str,
    via: str = "portal",
) -> Document:
    """Validates a new report against the tenant's rules, routes it, stores it with its photos
    and queues the department's e-mail; returns the stored report."""
    config = await tenant_config(repo=repo, tenant=tenant)
    category = await repo.get_kind("categories", tenant, report.category)
    if category is None or not category.get("active", True):
        raise InvalidInputError(("body", "category"), "category_unknown")
    attributes = check_attributes(category, report.attributes)
    check_in_municipality(config, report.lat, report.lon)
    contact = report.contact.model_dump(exclude_none=True) if report.contact else {}
    if not (contact.get("email") or contact.get("phone")) and not config.get(
        "allow_anonymous", True
    ):
        raise InvalidInputError(("body", "contact"), "contact_required")
    department, rule, reason = await route_report(
        repo=repo,
        tenant=tenant,
        config=config,
        category=report.category,
        lat=report.lat,
        lon=report.lon,
    )
    now = utcnow()
    report_id = new_id()
    photo_ids: list[str] = []
    for photo in photos:
        photo_id = new_id()
        await repo.insert_photo(
            {
                "_id": f"{tenant}:{photo_id}",
                "tenant": tenant,
                "id": photo_id,
                "report": report_id,
                "data": photo.data,
                "content_type": photo.content_type,
                "width": photo.width,
                "height": photo.height,
                "created_at": now,
            }
        )
        photo_ids.append(photo_id)
    sla = category.get("sla_hours")
    doc: Document = {
        "_id": f"{tenant}:{report_id}",
        "tenant": tenant,
        "id": report_id,
        "token": secrets.token_hex(16),
        "via": via,
        "category": report.category,
        "description": report.description,
        "address": report.address,
        "location": {"lat": report.lat, "lon": report.lon},
        "attributes": attributes,
        "contact": contact or None,
        "status": ReportStatus.RECEIVED.value,
        "status_notes": None,
        "history": [{"at": now, "status": ReportStatus.RECEIVED.value, "note": None}],
        "department": department,
        "assignments": [
            {"at": now, "department": department, "by": "routing", "rule": rule, "reason": reason}
        ],
        "comments": [],
        "photos": photo_ids,
        "supporters": 0,
        "duplicate_of": None,
        "merged": [],
        "moderation": "pending" if config.get("moderation") else "public",
        "expected_at": now + timedelta(hours=sla) if sla else None,
        "closed_at": None,
        "created_at": now,
        "updated_at": now,
        "version": 1,
        "pending_notifications": {},
        "notify_pending": False,
    }
    if department:
        dept = await repo.get_kind("departments", tenant, department)
        if dept:
            note = department_notification(
                doc=doc,
                config=config,
                category=category,
                department=dept,
                staff_url=staff_url,
                now=now,
            )
            if note:
                doc["pending_notifications"] = {note["notification_id"]: note}
                doc["notify_pending"] = True
    await repo.insert_report(doc)
    metrics.REPORTS_RECEIVED.labels(
        via=via, with_contact=str(bool(contact)).lower(), routed=reason
    ).inc()
    return doc


async def nearby_open_reports(
    *, repo: Repository, tenant: str, category: str, lat: float, lon: float, radius_m: float
) -> list[tuple[Document, float]]:
    """Open public reports of the category within `radius_m`, nearest first."""
    box = geo.bounding_box(lat, lon, radius_m)
    found = await repo.open_reports_near(tenant, category, box, [s.value for s in OPEN_STATUSES])
    near = [
        (d, geo.distance_m(lat, lon, d["location"]["lat"], d["location"]["lon"])) for d in found
    ]
    return sorted(((d, m) for d, m in near if m <= radius_m), key=lambda x: x[1])


async def support_report(*, repo: Repository, tenant: str, report_id: str) -> Document:
    """Counts one more citizen who has the same problem."""
    doc = await repo.get_report(tenant, report_id)
    if doc is None or doc["moderation"] != "public":
        raise NotFoundError("report_not_found")
    updated = await repo.patch_report(
        {"_id": doc["_id"]}, {"$inc": {"supporters": 1}}, return_after=True
    )
    return updated or doc


# --- staff work --------------------------------------------------------------------------------


def require(principal: Principal, role: Role) -> None:
    if not principal.at_least(role):
        metrics.REJECTED.labels(reason="forbidden").inc()
        raise ForbiddenError("forbidden")


async def report_for_staff(*, repo: Repository, principal: Principal, report_id: str) -> Document:
    """The report if it is in the caller's tenant and reach; 404 otherwise (no hint that it
    exists elsewhere)."""
    doc = await repo.get_report(principal.tenant, report_id)
    if doc is None or not principal.may_see(doc.get("department")):
        raise NotFoundError("report_not_found")
    return doc


def staff_query(
    principal: Principal,
    *,
    status: Sequence[str] = (),
    category: str | None = None,
    department: str | None = None,
    overdue: bool | None = None,
    moderation: str | None = None,
    before: datetime | None = None,
    text: str | None = None,
    now: datetime | None = None,
) -> Document:
    """The inbox filter of a staff member: always the tenant, and their departments."""
    query: dict[str, Any] = {"tenant": principal.tenant}
    if not principal.all_departments:
        allowed = sorted(principal.departments)
        if department is not None:
            allowed = [department] if department in principal.departments else []
        query["department"] = {"$in": allowed}
    elif department is not None:
        query["department"] = None if department == "-" else department
    if status:
        query["status"] = {"$in": list(status)}
    if category:
        query["category"] = category
    if moderation:
        query["moderation"] = moderation
    if before is not None:
        query["created_at"] = {"$lt": before}
    if overdue:
        query["expected_at"] = {"$lt": now or utcnow()}
        query.setdefault("status", {"$in": [s.value for s in OPEN_STATUSES]})
    if text:
        query["description"] = {"$regex": re.escape(text), "$options": "i"}
    return query


async def _apply(*, repo: Repository, doc: Document, update: Document) -> Document:
    updated = await repo.update_report(doc["tenant"], doc["id"], doc["version"], update)
    if updated is None:
        raise ConflictError("concurrent_change")
    return updated


async def change_status(
    *,
    repo: Repository,
    principal: Principal,
    report_id: str,
    change: StatusChangeIn,
    portal_url: str,
) -> Document:
    """Sets a new status with a public note (text or response template) and queues the
    reporter's notification in the same write."""
    doc = await report_for_staff(repo=repo, principal=principal, report_id=report_id)
    if change.status.value == doc["status"]:
        raise ConflictError("status_unchanged")
    if change.status is ReportStatus.DUPLICATE:
        raise InvalidInputError(("body", "status"), "use_merge")
    note = change.note
    if change.template:
        template = await repo.get_kind("templates", principal.tenant, change.template)
        if template is None:
            raise InvalidInputError(("body", "template"), "template_unknown")
        note = note or template["text"]
    return await _set_status(
        repo=repo,
        principal=principal,
        doc=doc,
        status=change.status,
        note=note,
        portal_url=portal_url,
    )


async def _set_status(
    *,
    repo: Repository,
    principal: Principal,
    doc: Document,
    status: ReportStatus,
    note: str | None,
    portal_url: str,
    extra: Document | None = None,
) -> Document:
    now = utcnow()
    config = await tenant_config(repo=repo, tenant=principal.tenant)
    category = await repo.get_kind("categories", principal.tenant, doc["category"])
    step = f"status-{len(doc.get('history', []))}-{status.value}"
    future = {**doc, "status": status.value}
    notification = reporter_notification(
        doc=future,
        config=config,
        category=category,
        step=step,
        note=note,
        status_url=f"{portal_url}/{principal.tenant}/meldungen/{doc['id']}",
        now=now,
    )
    closed = status not in OPEN_STATUSES
    update: Document = {
        "$set": {
            "status": status.value,
            "status_notes": note,
            "updated_at": now,
            "closed_at": now if closed else None,
            **(extra or {}),
            **_outbox([notification]),
        },
        "$push": {
            "history": {"at": now, "status": status.value, "note": note, "by": principal.staff_id}
        },
    }
    updated = await _apply(repo=repo, doc=doc, update=update)
    metrics.STATUS_CHANGES.labels(status=status.value).inc()
    return updated


async def add_comment(
    *, repo: Repository, principal: Principal, report_id: str, text: str
) -> Document:
    """Adds an internal comment (never shown to the public or the reporter)."""
    doc = await report_for_staff(repo=repo, principal=principal, report_id=report_id)
    comment = {
        "id": new_id(),
        "at": utcnow(),
        "by": principal.staff_id,
        "by_name": principal.name,
        "text": text,
    }
    return await _apply(
        repo=repo,
        doc=doc,
        update={"$push": {"comments": comment}, "$set": {"updated_at": comment["at"]}},
    )


async def reassign(
    *,
    repo: Repository,
    principal: Principal,
    report_id: str,
    department: str,
    reason: str | None,
    staff_url: str,
) -> Document:
    """Moves a report to another department (kept in the assignment history) and announces
    it to that department by e-mail."""
    doc = await report_for_staff(repo=repo, principal=principal, report_id=report_id)
    target = await repo.get_kind("departments", principal.tenant, department)
    if target is None:
        raise InvalidInputError(("body", "department"), "department_unknown")
    if doc.get("department") == department:
        raise ConflictError("status_unchanged")
    now = utcnow()
    config = await tenant_config(repo=repo, tenant=principal.tenant)
    category = await repo.get_kind("categories", principal.tenant, doc["category"])
    entry = {
        "at": now,
        "department": department,
        "from": doc.get("department"),
        "by": principal.staff_id,
        "reason": reason,
    }
    future = {**doc, "assignments": [*doc.get("assignments", []), entry]}
    note = department_notification(
        doc=future,
        config=config,
        category=category,
        department=target,
        staff_url=staff_url,
        now=now,
    )
    updated = await _apply(
        repo=repo,
        doc=doc,
        update={
            "$set": {"department": department, "updated_at": now, **_outbox([note])},
            "$push": {"assignments": entry},
        },
    )
    metrics.REASSIGNMENTS.inc()
    return updated


async def merge(
    *, repo: Repository, principal: Principal, report_id: str, into: str, portal_url: str
) -> Document:
    """Closes `report_id` as a duplicate of `into`: its supporters (plus its reporter) count
    for the target, the reporter is told where to follow the matter."""
    require(principal, Role.LEAD)
    if report_id == into:
        raise InvalidInputError(("body", "into"), "merge_self")
    doc = await report_for_staff(repo=repo, principal=principal, report_id=report_id)
    target = await repo.get_report(principal.tenant, into)
    if target is None:
        raise InvalidInputError(("body", "into"), "report_not_found")
    if ReportStatus(target["status"]) not in OPEN_STATUSES:
        raise ConflictError("merge_target_closed")
    if target["category"] != doc["category"]:
        raise InvalidInputError(("body", "into"), "merge_category")
    if ReportStatus(doc["status"]) is ReportStatus.DUPLICATE:
        raise ConflictError("status_unchanged")
    note = (
        f"Diese Meldung betrifft dasselbe Anliegen wie Meldung {into[:8]} und wird dort "
        f"weiter bearbeitet: {portal_url}/{principal.tenant}/meldungen/{into}"
    )
    merged = await _set_status(
        repo=repo,
        principal=principal,
        doc=doc,
        status=ReportStatus.DUPLICATE,
        note=note,
        portal_url=portal_url,
        extra={"duplicate_of": into},
    )
    await repo.patch_report(
        {"_id": target["_id"]},
        {
            "$inc": {"supporters": 1 + int(doc.get("supporters", 0)), "version": 1},
            "$push": {"merged": report_id},
            "$set": {"updated_at": utcnow()},
        },
    )
    return merged


async def moderate(
    *,
    repo: Repository,
    principal: Principal,
    report_id: str,
    approve: bool,
    reason: str | None,
    portal_url: str,
) -> Document:
    """Publishes a report waiting for moderation, or rejects it (the reporter is told)."""
    require(principal, Role.LEAD)
    doc = await report_for_staff(repo=repo, principal=principal, report_id=report_id)
    if doc["moderation"] != "pending":
        raise ConflictError("not_moderated")
    if approve:
        return await _apply(
            repo=repo,
            doc=doc,
            update={"$set": {"moderation": "public", "updated_at": utcnow()}},
        )
    return await _set_status(
        repo=repo,
        principal=principal,
        doc=doc,
        status=ReportStatus.REJECTED,
        note=reason or "Die Meldung konnte nicht veröffentlicht werden.",
        portal_url=portal_url,
        extra={"moderation": "hidden"},
    )


# --- views -------------------------------------------------------------------------------------


def is_overdue(doc: Document, now: datetime | None = None) -> bool:
    """Open and past the category's promised handling time."""
    expected = doc.get("expected_at")
    if expected is None or ReportStatus(doc["status"]) not in OPEN_STATUSES:
        return False
    if expected.tzinfo is None:
        expected = expected.replace(tzinfo=UTC)
    return bool(expected < (now or utcnow()))


def public_view(
    doc: Document,
    language: str,
    *,
    categories: dict[str, Document],
    departments: dict[str, Document],
) -> dict[str, Any]:
    """What anyone with the report's id may see: never the contact data or internal comments;
    while a report awaits moderation (or was hidden), only its status."""
    visible = doc["moderation"] == "public"
    department = departments.get(doc.get("department") or "")
    return {
        "id": doc["id"],
        "category": doc["category"],
        "category_label": category_label(
            categories.get(doc["category"]), doc["category"], language
        ),
        "description": doc["description"] if visible else None,
        "lat": doc["location"]["lat"] if visible else None,
        "lon": doc["location"]["lon"] if visible else None,
        "address": doc.get("address") if visible else None,
        "status": doc["status"],
        "status_label": status_label(doc["status"], language),
        "status_notes": doc.get("status_notes"),
        "agency_responsible": department["name"] if department else None,
        "expected_datetime": doc.get("expected_at"),
        "photos": list(doc.get("photos", [])) if visible else [],
        "supporters": doc.get("supporters", 0),
        "duplicate_of": doc.get("duplicate_of"),
        "moderation": doc["moderation"],
        "history": [
            {
                "at": h["at"],
                "status": h["status"],
                "status_label": status_label(h["status"], language),
                "note": h.get("note"),
            }
            for h in doc.get("history", [])
        ],
        "created_at": doc["created_at"],
        "updated_at": doc["updated_at"],
    }


def staff_view(
    doc: Document,
    language: str,
    *,
    categories: dict[str, Document],
    departments: dict[str, Document],
) -> dict[str, Any]:
    """What staff who may see the report get: everything, including the contact."""
    view = public_view(
        {**doc, "moderation": "public"}, language, categories=categories, departments=departments
    )
    return {
        **view,
        "moderation": doc["moderation"],
        "contact": doc.get("contact"),
        "department": doc.get("department"),
        "attributes": doc.get("attributes", {}),
        "overdue": is_overdue(doc),
        "assignments": doc.get("assignments", []),
        "comments": doc.get("comments", []),
        "merged": doc.get("merged", []),
        "history": [
            {**h, "status_label": status_label(h["status"], language)}
            for h in doc.get("history", [])
        ],
    }
