"""Business rules of the publisher as plain functions: exercise marking, lanes, scheduling,
publishing through the outbox on the alert document, and delivery progress from receipts."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from pydantic import ValidationError
from pymongo import UpdateOne

from sirene.runtime import Document
from sirene.runtime.errors import ConflictError, InvalidInputError, NotFoundError
from sirene.runtime.outbox import pending_outbox
from sirene.schemas import (
    RECEIPT_RANK,
    AlertPublished,
    AlertStatus,
    Audience,
    Certainty,
    Channel,
    ChannelTexts,
    DeliveryReceipt,
    FanoutSummary,
    Lane,
    Language,
    MsgType,
    ReceiptStatus,
    Severity,
    Urgency,
    new_id,
    utcnow,
)

from . import attachments, cap, metrics
from .accounts import Principal, TenantPolicy, audit_entry, require, verify_totp
from .alert_templates import cancel_texts
from .errors import ForbiddenError
from .models import AlertIn, AlertUpdateIn, ChannelProgress, ProgressOut
from .repository import Repository, unpack_audience
from .roles import Role
from .sms import sms_length

Wake = Callable[[], None]

MARKERS: dict[AlertStatus, dict[Language, str]] = {
    AlertStatus.EXERCISE: {Language.DE: "ÜBUNG: ", Language.EN: "EXERCISE: "},
    AlertStatus.TEST: {Language.DE: "TEST: ", Language.EN: "TEST: "},
}
"""What every channel text of an Exercise/Test alert starts with, per language."""

_URGENT_SEVERITIES = {Severity.EXTREME, Severity.SEVERE}


def _status_codes() -> dict[ReceiptStatus, int]:
    """A number per status that orders like RECEIPT_RANK (rank * 10 + a tie-breaker), so the
    stored status of a task can move only up with MongoDB's `$max`."""
    codes: dict[ReceiptStatus, int] = {}
    ties: dict[int, int] = defaultdict(int)
    for status in ReceiptStatus:
        rank = RECEIPT_RANK[status]
        codes[status] = rank * 10 + ties[rank]
        ties[rank] += 1
    return codes


STATUS_CODE: dict[ReceiptStatus, int] = _status_codes()
STATUS_OF_CODE: dict[int, ReceiptStatus] = {code: status for status, code in STATUS_CODE.items()}
FINAL_RANK = 2
"""Statuses from this rank up (failed/undelivered/expired, delivered, confirmed) are final."""
DELIVERED_RANK = RECEIPT_RANK[ReceiptStatus.DELIVERED]


def lane_for(severity: Severity, urgency: Urgency) -> Lane:
    """Urgent lane for Extreme/Severe or Immediate alerts, bulk for everything else."""
    if severity in _URGENT_SEVERITIES or urgency is Urgency.IMMEDIATE:
        return Lane.URGENT
    return Lane.BULK


def mark_texts(
    texts: dict[Language, ChannelTexts], status: AlertStatus
) -> dict[Language, ChannelTexts]:
    """Prefixes every channel text of an Exercise/Test alert with its marker ("ÜBUNG: ",
    "EXERCISE: ", "TEST: "), so it can never be mistaken for a real warning. Texts that
    already start with the marker are left as they are. Raises `InvalidInputError` when a
    marked text no longer fits its channel."""
    markers = MARKERS.get(status)
    if markers is None:
        return dict(texts)
    marked: dict[Language, ChannelTexts] = {}
    for language, channel_texts in texts.items():
        marker = markers[language]
        values = {
            field: value if value is None or value.startswith(marker) else marker + value
            for field, value in channel_texts.model_dump().items()
        }
        try:
            marked[language] = ChannelTexts.model_validate(values)
        except ValidationError as exc:
            error = exc.errors()[0]
            field = str(error["loc"][0])
            limit = ChannelTexts.model_fields[field].metadata
            max_length = next((m.max_length for m in limit if hasattr(m, "max_length")), 0)
            raise InvalidInputError(
                ("body", "texts", language.value, field),
                "text_too_long",
                marker=marker.strip(),
                limit=max_length,
            ) from None
    return marked


SCHEDULE_HORIZON = timedelta(days=90)
"""How far ahead a publication may be scheduled."""
SCHEDULE_SLACK = timedelta(seconds=1)
"""An effective time at most this far ahead counts as 'now' (no scheduling round trip)."""


def _check_times(
    *, effective: datetime | None, expires: datetime | None, duration: int | None, now: datetime
) -> None:
    if expires is not None and duration is not None:
        raise InvalidInputError(("body", "expires"), "expires_and_duration")
    if effective is not None and effective > now + SCHEDULE_HORIZON:
        raise InvalidInputError(("body", "effective"), "schedule_too_far")
    if expires is not None and expires <= (effective or now):
        raise InvalidInputError(("body", "expires"), "expires_not_after_effective")


def schedule(doc: Document, *, now: datetime, default_duration_s: int) -> tuple[datetime, datetime]:
    """(effective, expires) of an alert published `now`."""
    effective: datetime = doc.get("effective") or now
    expires: datetime | None = doc.get("expires")
    if expires is None:
        minutes = doc.get("duration_minutes")
        expires = effective + (
            timedelta(minutes=minutes) if minutes else timedelta(seconds=default_duration_s)
        )
    return effective, expires


def _published_fields(doc: Document, *, now: datetime, default_duration_s: int) -> Document:
    """The fields that turn an alert into a published one with a pending outbox. Checks that
    the result is a valid `alert.published` event before anything is written."""
    effective, expires = schedule(doc, now=now, default_duration_s=default_duration_s)
    if expires <= now:
        raise ConflictError("expired")
    fields: Document = {
        "state": "published",
        "effective": effective,
        "expires": expires,
        "published_at": now,
        "updated_at": now,
        "outbox": pending_outbox(now, event_id=new_id()),
    }
    alert_event({**doc, **fields})  # raises if the event would be invalid
    return fields


def _go_live_fields(doc: Document, *, now: datetime, default_duration_s: int) -> Document:
    """Published now, or scheduled when its effective time lies ahead (the scheduler then
    publishes it exactly once: only the transition out of 'scheduled' writes the outbox)."""
    effective: datetime | None = doc.get("effective")
    if effective is not None and effective > now + SCHEDULE_SLACK:
        _, expires = schedule(doc, now=now, default_duration_s=default_duration_s)
        return {"state": "scheduled", "scheduled_at": now, "updated_at": now, "expires": expires}
    return _published_fields(doc, now=now, default_duration_s=default_duration_s)


def needs_approval(doc: Document, policy: TenantPolicy) -> bool:
    """Four-eyes rule: alerts of the tenant's four-eyes severities need a second person's
    approval; a Cancel never waits (withdrawing a warning must be fast)."""
    return doc["msg_type"] != MsgType.CANCEL.value and Severity(doc["severity"]) in policy.four_eyes


def check_may_send(principal: Principal, *, severity: Severity, urgency: Urgency) -> None:
    """Alerters send anything; editors only posts that are neither urgent nor four-eyes."""
    if principal.has(Role.ALERTER):
        require(principal, Role.ALERTER)
        return
    if not principal.has(Role.EDITOR):
        raise ForbiddenError("role_required", role=Role.ALERTER.value)
    if lane_for(severity, urgency) is Lane.URGENT or severity in principal.policy.four_eyes:
        raise ForbiddenError("editor_alert_only")


async def _audit(
    repo: Repository, principal: Principal, action: str, doc: Document, **detail: Any
) -> None:
    await repo.add_audit(audit_entry(principal, action, alert_id=doc["id"], **detail))


def _new_doc(
    *,
    principal: Principal,
    body: AlertIn,
    texts: dict[Language, ChannelTexts],
    msg_type: MsgType,
    references: list[str],
    audience: Audience,
    now: datetime,
) -> Document:
    alert_id = new_id()
    return {
        "_id": alert_id,
        "tenant": principal.tenant,
        "id": alert_id,
        "state": "draft",
        "status": body.status.value,
        "msg_type": msg_type.value,
        "references": references,
        "exercise": body.status is not AlertStatus.ACTUAL,
        "severity": body.severity.value,
        "urgency": body.urgency.value,
        "certainty": body.certainty.value,
        "category": body.category,
        "headline": body.headline or texts[Language.DE].headline,
        "lane": lane_for(body.severity, body.urgency).value,
        "texts": {lang.value: t.model_dump(exclude_none=True) for lang, t in texts.items()},
        "audience": audience.model_dump(mode="json"),
        "effective": body.effective,
        "expires": body.expires,
        "duration_minutes": body.duration_minutes,
        "created_at": now,
        "created_by": principal.id,
        "created_by_name": principal.name,
        "updated_at": now,
        "published_at": None,
        "version": 1,
        "outbox": None,
    }


async def create_alert(
    *,
    repo: Repository,
    wake: Wake,
    principal: Principal,
    body: AlertIn,
    default_duration_s: int,
    msg_type: MsgType = MsgType.ALERT,
    references: list[str] | None = None,
    audience: Audience | None = None,
    source: str | None = None,
) -> Document:
    """Stores a new alert (marked for Exercise/Test, with its lane). With `publish` it is sent
    at once ("Senden"): published — with a pending outbox in the same single insert —,
    scheduled, or waiting for a second person's approval (four-eyes rule)."""
    if Language.DE not in body.texts:
        raise InvalidInputError(("body", "texts"), "german_required")
    if body.msg_type is not msg_type:
        raise InvalidInputError(("body", "msg_type"), "msg_type_via_reference")
    check_may_send(principal, severity=body.severity, urgency=body.urgency)
    if body.audience is None and audience is None:
        raise InvalidInputError(("body", "audience"), "audience_required")
    now = utcnow()
    _check_times(
        effective=body.effective, expires=body.expires, duration=body.duration_minutes, now=now
    )
    texts = mark_texts(body.texts, body.status)
    doc = _new_doc(
        principal=principal,
        body=body,
        texts=texts,
        msg_type=msg_type,
        references=references or [],
        audience=audience or body.audience,
        now=now,
    )
    if source:
        doc["source"] = source
    action = "created"
    if body.publish:
        if needs_approval(doc, principal.policy):
            doc |= {"state": "awaiting_approval", "submitted_by": principal.id, "updated_at": now}
            action = "submitted"
        else:
            doc |= _go_live_fields(doc, now=now, default_duration_s=default_duration_s)
            doc["released_by"] = principal.id
            action = doc["state"]
    await repo.insert_alert(doc)
    await _audit(repo, principal, "created", doc, msg_type=doc["msg_type"], status=doc["status"])
    if action != "created":
        await _audit(repo, principal, action, doc)
    if doc["state"] == "published":
        metrics.ALERTS_PUBLISHED.labels(lane=doc["lane"], status=doc["status"]).inc()
        wake()
    return doc


async def get_alert(*, repo: Repository, tenant: str, alert_id: str) -> Document:
    """The tenant's alert, or `NotFoundError` (also for another tenant's alert)."""
    doc = await repo.get_alert(tenant, alert_id)
    if doc is None:
        raise NotFoundError("alert_not_found")
    return doc


async def publish_alert(
    *, repo: Repository, wake: Wake, principal: Principal, alert_id: str, default_duration_s: int
) -> Document:
    """ "Senden" for a draft: published (or scheduled) at once, or — under the four-eyes rule —
    waiting for approval. Idempotent: an alert already past its draft is returned unchanged,
    and no second alert.published is emitted."""
    for _ in range(3):
        doc = await get_alert(repo=repo, tenant=principal.tenant, alert_id=alert_id)
        if doc["state"] != "draft":
            return doc
        check_may_send(
            principal, severity=Severity(doc["severity"]), urgency=Urgency(doc["urgency"])
        )
        now = utcnow()
        if needs_approval(doc, principal.policy):
            fields: Document = {
                "state": "awaiting_approval",
                "submitted_by": principal.id,
                "updated_at": now,
            }
        else:
            fields = _go_live_fields(doc, now=now, default_duration_s=default_duration_s)
            fields["released_by"] = principal.id
        updated = await repo.transition(
            principal.tenant, alert_id, state="draft", version=doc["version"], changes=fields
        )
        if updated is not None:
            await _audit(repo, principal, _action_of(updated), updated)
            if updated["state"] == "published":
                metrics.ALERTS_PUBLISHED.labels(lane=doc["lane"], status=doc["status"]).inc()
                wake()
            return updated
    return await get_alert(repo=repo, tenant=principal.tenant, alert_id=alert_id)


EDITABLE_FIELDS = (
    "severity",
    "urgency",
    "certainty",
    "category",
    "headline",
    "lane",
    "texts",
    "audience",
    "effective",
    "expires",
    "duration_minutes",
)
"""What editing a draft may change (status and message type never change after creation)."""


def draft_body(doc: Document) -> dict[str, Any]:
    """The `AlertIn`-shaped body of a stored alert (texts without exercise markers; no
    headline when it is the German text's own), the base a partial edit is laid over."""
    texts = unmarked_texts(doc["texts"])
    headline = doc.get("headline")
    own_headline = unmarked_texts({"de": {"h": headline or ""}})["de"]["h"]
    return {
        "status": doc["status"],
        "msg_type": doc["msg_type"],
        "severity": doc["severity"],
        "urgency": doc["urgency"],
        "certainty": doc["certainty"],
        "category": doc["category"],
        "headline": None if own_headline == texts["de"].get("headline") else headline,
        "texts": texts,
        "audience": doc["audience"],
        "effective": doc.get("effective"),
        "expires": doc.get("expires"),
        "duration_minutes": doc.get("duration_minutes"),
    }


async def edit_draft(
    *,
    repo: Repository,
    wake: Wake,
    principal: Principal,
    alert_id: str,
    body: AlertIn,
    default_duration_s: int,
    expected_version: int | None = None,
) -> Document:
    """Replaces the content of the tenant's draft (same rules as creating it), only while it
    is a draft: the write is conditional on state 'draft' and the version read, so an edit can
    never overwrite a concurrent submission, approval or another edit (409 instead). Status
    and message type stay (an exercise never becomes a real alert); an Update keeps the
    original's audience and category. With `publish` the edited draft is sent at once."""
    doc = await get_alert(repo=repo, tenant=principal.tenant, alert_id=alert_id)
    # may this person touch the draft as it is, and send what it becomes?
    check_may_send(principal, severity=Severity(doc["severity"]), urgency=Urgency(doc["urgency"]))
    if doc["state"] != "draft":
        raise ConflictError("not_draft", state=doc["state"])
    if expected_version is not None and expected_version != doc["version"]:
        raise ConflictError("edit_conflict")
    if Language.DE not in body.texts:
        raise InvalidInputError(("body", "texts"), "german_required")
    if body.status.value != doc["status"]:
        raise InvalidInputError(("body", "status"), "status_fixed", status=doc["status"])
    if body.msg_type.value != doc["msg_type"]:
        raise InvalidInputError(("body", "msg_type"), "msg_type_fixed", msg_type=doc["msg_type"])
    check_may_send(principal, severity=body.severity, urgency=body.urgency)
    audience = body.audience.model_dump(mode="json")
    stored = Audience.model_validate(unpack_audience(doc["audience"]))
    if doc["msg_type"] != MsgType.ALERT.value and (
        body.audience != stored or body.category != doc["category"]
    ):
        raise InvalidInputError(("body", "audience"), "reference_audience_fixed")
    now = utcnow()
    _check_times(
        effective=body.effective, expires=body.expires, duration=body.duration_minutes, now=now
    )
    texts = mark_texts(body.texts, AlertStatus(doc["status"]))
    changes: Document = {
        "severity": body.severity.value,
        "urgency": body.urgency.value,
        "certainty": body.certainty.value,
        "category": body.category,
        "headline": body.headline or texts[Language.DE].headline,
        "lane": lane_for(body.severity, body.urgency).value,
        "texts": {lang.value: t.model_dump(exclude_none=True) for lang, t in texts.items()},
        "audience": audience,
        "effective": body.effective,
        "expires": body.expires,
        "duration_minutes": body.duration_minutes,
    }
    changed = sorted(
        k for k in EDITABLE_FIELDS if _comparable(changes[k]) != _comparable(doc.get(k))
    )
    changes |= {"updated_at": now, "edited_by": principal.id, "edited_by_name": principal.name}
    updated = await repo.transition(
        principal.tenant, alert_id, state="draft", version=doc["version"], changes=changes
    )
    if updated is None:
        current = await get_alert(repo=repo, tenant=principal.tenant, alert_id=alert_id)
        if current["state"] != "draft":
            raise ConflictError("not_draft", state=current["state"])
        raise ConflictError("edit_conflict")
    await _audit(repo, principal, "edited", updated, fields=changed)
    if body.publish:
        return await publish_alert(
            repo=repo,
            wake=wake,
            principal=principal,
            alert_id=alert_id,
            default_duration_s=default_duration_s,
        )
    return updated


def _comparable(value: Any) -> Any:
    """A value as MongoDB keeps it (datetimes in UTC, to the millisecond)."""
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.replace(microsecond=aware.microsecond // 1000 * 1000)
    return value


def _action_of(doc: Document) -> str:
    state: str = doc["state"]
    return "submitted" if state == "awaiting_approval" else state


async def approve_alert(
    *, repo: Repository, wake: Wake, principal: Principal, alert_id: str, default_duration_s: int
) -> Document:
    """The second pair of eyes: an approver other than the author and the sender releases an
    alert that waits for approval (published or scheduled)."""
    doc = await get_alert(repo=repo, tenant=principal.tenant, alert_id=alert_id)
    require(principal, Role.APPROVER)
    if principal.id in {doc.get("created_by"), doc.get("submitted_by")}:
        raise ForbiddenError("self_approval")
    if doc["state"] != "awaiting_approval":
        raise ConflictError("not_awaiting_approval", state=doc["state"])
    now = utcnow()
    fields = _go_live_fields(doc, now=now, default_duration_s=default_duration_s)
    fields |= {"approved_by": principal.id, "approved_by_name": principal.name, "approved_at": now}
    updated = await repo.transition(
        principal.tenant,
        alert_id,
        state="awaiting_approval",
        version=doc["version"],
        changes=fields,
    )
    if updated is None:
        current = await get_alert(repo=repo, tenant=principal.tenant, alert_id=alert_id)
        raise ConflictError("not_awaiting_approval", state=current["state"])
    await _audit(repo, principal, "approved", updated)
    await _audit(repo, principal, _action_of(updated), updated)
    if updated["state"] == "published":
        metrics.ALERTS_PUBLISHED.labels(lane=doc["lane"], status=doc["status"]).inc()
        wake()
    return updated


async def reject_alert(
    *, repo: Repository, principal: Principal, alert_id: str, reason: str
) -> Document:
    """An approver sends an alert that waits for approval back to draft, with a reason (the
    author corrects it and sends it again)."""
    doc = await get_alert(repo=repo, tenant=principal.tenant, alert_id=alert_id)
    require(principal, Role.APPROVER)
    if doc["state"] != "awaiting_approval":
        raise ConflictError("not_awaiting_approval", state=doc["state"])
    changes: Document = {
        "state": "draft",
        "rejected_by": principal.id,
        "rejection_reason": reason,
        "submitted_by": None,
        "updated_at": utcnow(),
    }
    updated = await repo.transition(
        principal.tenant,
        alert_id,
        state="awaiting_approval",
        version=doc["version"],
        changes=changes,
    )
    if updated is None:
        current = await get_alert(repo=repo, tenant=principal.tenant, alert_id=alert_id)
        raise ConflictError("not_awaiting_approval", state=current["state"])
    await _audit(repo, principal, "rejected", updated, reason=reason)
    return updated


CANCEL_DURATION_MINUTES = 60
"""How long a Cancel stays deliverable (a late all-clear is pointless)."""

SYSTEM = Principal(tenant="", id="scheduler", name="Zeitplan", roles=frozenset())


async def release_due(
    *,
    repo: Repository,
    wake: Wake,
    now: datetime,
    default_duration_s: int,
    limit: int = 100,
    claim: Callable[[Document], Awaitable[bool]] | None = None,
) -> int:
    """Publishes every scheduled alert whose time has come. Exactly once: the move from
    'scheduled' to 'published' (with its pending outbox and event id) is one conditional
    single-document update, so a second scheduler or a restart finds nothing left to do; with
    `claim`, a replica first claims the alert's version (see `Scheduler`)."""
    released = 0
    for doc in await repo.due_scheduled(now, limit=limit):
        if claim is not None and not await claim(doc):
            continue
        try:
            fields = _published_fields(doc, now=now, default_duration_s=default_duration_s)
        except ConflictError:  # expired while waiting: it never goes out
            fields = {"state": "expired", "updated_at": now}
        updated = await repo.transition(
            doc["tenant"], doc["id"], state="scheduled", version=doc["version"], changes=fields
        )
        if updated is None:
            continue
        actor = replace(SYSTEM, tenant=doc["tenant"])
        await _audit(repo, actor, updated["state"], updated)
        if updated["state"] == "published":
            metrics.ALERTS_PUBLISHED.labels(lane=doc["lane"], status=doc["status"]).inc()
            released += 1
    if released:
        wake()
    return released


async def cancel_alert(
    *,
    repo: Repository,
    wake: Wake,
    principal: Principal,
    alert_id: str,
    texts: dict[Language, ChannelTexts] | None,
    default_duration_s: int,
) -> Document:
    """One click: a published alert gets a Cancel (CAP msgType Cancel, referencing it) that
    goes at once — no four-eyes wait — to exactly the original recipients, with the same
    status (an exercise stays an exercise). An alert that has not gone out yet (draft, waiting
    for approval, scheduled) is withdrawn instead. Returns the Cancel (or the withdrawn
    alert)."""
    doc = await get_alert(repo=repo, tenant=principal.tenant, alert_id=alert_id)
    check_may_send(principal, severity=Severity(doc["severity"]), urgency=Urgency(doc["urgency"]))
    if doc["msg_type"] == MsgType.CANCEL.value:
        raise ConflictError("not_cancellable")
    if doc.get("cancelled_by") or doc["state"] == "withdrawn":
        raise ConflictError("already_cancelled")
    if doc["state"] in {"draft", "awaiting_approval", "scheduled"}:
        now = utcnow()
        updated = await repo.transition(
            principal.tenant,
            alert_id,
            state=doc["state"],
            version=doc["version"],
            changes={"state": "withdrawn", "withdrawn_by": principal.id, "updated_at": now},
        )
        if updated is None:
            raise ConflictError("already_cancelled")
        await _audit(repo, principal, "withdrawn", updated)
        return updated
    if doc["state"] != "published":
        raise ConflictError("not_published", state=doc["state"])
    prefilled = cancel_texts(unmarked_texts(doc["texts"]))
    body = AlertIn(
        status=AlertStatus(doc["status"]),
        msg_type=MsgType.CANCEL,
        severity=Severity(doc["severity"]),
        urgency=Urgency(doc["urgency"]),
        certainty=Certainty(doc["certainty"]),
        category=doc["category"],
        texts=texts or {Language(k): ChannelTexts.model_validate(v) for k, v in prefilled.items()},
        audience=Audience.model_validate(unpack_audience(doc["audience"])),
        duration_minutes=CANCEL_DURATION_MINUTES,
        publish=True,
    )
    cancel = await create_alert(
        repo=repo,
        wake=wake,
        principal=principal,
        body=body,
        default_duration_s=default_duration_s,
        msg_type=MsgType.CANCEL,
        references=[doc["id"]],
    )
    await repo.mark(principal.tenant, alert_id, {"cancelled_by": cancel["id"]})
    await _audit(repo, principal, "cancelled", doc, cancel_id=cancel["id"])
    return cancel


async def update_alert(
    *,
    repo: Repository,
    wake: Wake,
    principal: Principal,
    alert_id: str,
    body: AlertUpdateIn,
    default_duration_s: int,
) -> Document:
    """A correction (CAP msgType Update, referencing the published alert) to exactly its
    recipients, with the same status; severity may change, and the four-eyes rule applies
    to the new severity."""
    doc = await get_alert(repo=repo, tenant=principal.tenant, alert_id=alert_id)
    if doc["state"] != "published":
        raise ConflictError("not_published", state=doc["state"])
    if doc.get("cancelled_by"):
        raise ConflictError("already_cancelled")
    if doc["msg_type"] == MsgType.CANCEL.value:
        raise ConflictError("not_cancellable")
    full = AlertIn(
        status=AlertStatus(doc["status"]),
        msg_type=MsgType.UPDATE,
        severity=body.severity or Severity(doc["severity"]),
        urgency=body.urgency or Urgency(doc["urgency"]),
        certainty=body.certainty or Certainty(doc["certainty"]),
        category=doc["category"],
        headline=body.headline,
        texts=body.texts,
        audience=Audience.model_validate(unpack_audience(doc["audience"])),
        expires=body.expires,
        duration_minutes=body.duration_minutes,
        publish=body.publish,
    )
    update = await create_alert(
        repo=repo,
        wake=wake,
        principal=principal,
        body=full,
        default_duration_s=default_duration_s,
        msg_type=MsgType.UPDATE,
        references=[doc["id"]],
    )
    await repo.mark(principal.tenant, alert_id, {"superseded_by": update["id"]})
    await _audit(repo, principal, "updated", doc, update_id=update["id"])
    return update


def unmarked_texts(texts: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """Channel texts without the exercise/test markers (they are added again when stored)."""
    markers = tuple(m for per in MARKERS.values() for m in per.values())
    out: dict[str, dict[str, str]] = {}
    for lang, fields in texts.items():
        clean: dict[str, str] = {}
        for key, value in fields.items():
            for marker in markers:
                value = value.removeprefix(marker)
            clean[key] = value
        out[lang] = clean
    return out


ATTACHMENT_LABELS = {Language.DE: "Anhang", Language.EN: "Attachment"}


def with_links(texts: ChannelTexts, links: list[Document], language: Language) -> ChannelTexts:
    """Channel texts with the attachments linked in push and e-mail (never SMS or voice)."""
    label = ATTACHMENT_LABELS.get(language, "Anhang")
    lines = "\n".join(f"- {a['filename']}: {a['url']}" for a in links)
    email = f"{texts.email_body or texts.push_body}\n\n{label}:\n{lines}"
    push = f"{texts.push_body}\n{label}: {links[0]['url']}"
    changes: dict[str, str] = {}
    if len(email) <= 20000:
        changes["email_body"] = email
    if len(push) <= 1000:
        changes["push_body"] = push
    return texts.model_copy(update=changes)


def alert_event(doc: Document) -> tuple[str, AlertPublished]:
    """The `alert.published` event of a published alert document, and its key."""
    texts = {Language(k): ChannelTexts.model_validate(v) for k, v in doc["texts"].items()}
    links: list[Document] = doc.get("attachments") or []
    if links:
        texts = {lang: with_links(t, links, lang) for lang, t in texts.items()}
    event = AlertPublished(
        event_id=doc["outbox"]["event_id"],
        tenant_id=doc["tenant"],
        alert_id=doc["id"],
        msg_type=MsgType(doc["msg_type"]),
        references=doc.get("references", []),
        status=AlertStatus(doc["status"]),
        exercise=doc["exercise"],
        severity=Severity(doc["severity"]),
        urgency=Urgency(doc["urgency"]),
        certainty=doc["certainty"],
        category=doc["category"],
        lane=Lane(doc["lane"]),
        texts=texts,
        audience=Audience.model_validate(unpack_audience(doc["audience"])),
        effective=doc["effective"],
        expires=doc["expires"],
        published_at=doc["published_at"],
    )
    return event.alert_id, event


async def store_fanout(*, repo: Repository, summaries: Iterable[FanoutSummary]) -> None:
    """Stores each fanout summary on its alert (ignored when the tenant has no such alert)."""
    for summary in summaries:
        stored = await repo.store_fanout(
            summary.tenant_id,
            summary.alert_id,
            {
                "expected": {c.value: n for c, n in summary.expected.items()},
                "recipients": summary.recipients,
                "held": summary.held,
                "completed_at": summary.completed_at,
            },
        )
        metrics.FANOUT_SUMMARIES.labels(result="stored" if stored else "unknown_alert").inc()


async def apply_receipts(*, repo: Repository, receipts: Iterable[DeliveryReceipt]) -> int:
    """Folds receipts into one document per task whose status only moves up the rank
    (`$max` of the status code), plus first/last delivery times on the alert. A batch is
    first collapsed per task, then written with two unordered bulk writes; returns how many
    tasks were touched. Receipts of tasks of no alert of this publisher (notifications of
    citizen reports travel the same pipeline) are counted and dropped, not stored."""
    receipts = list(receipts)
    known = await repo.known_alerts({(r.tenant_id, r.alert_id) for r in receipts})
    tasks: dict[tuple[str, str], Document] = {}
    delivered: dict[tuple[str, str], tuple[datetime, datetime]] = {}
    for receipt in receipts:
        if (receipt.tenant_id, receipt.alert_id) not in known:
            metrics.RECEIPTS_IGNORED.labels(channel=receipt.channel.value).inc()
            continue
        code = STATUS_CODE[receipt.status]
        key = (receipt.tenant_id, receipt.task_id)
        task = tasks.get(key)
        if task is None:
            task = tasks[key] = {
                "alert_id": receipt.alert_id,
                "channel": receipt.channel.value,
                "code": code,
                "at": receipt.occurred_at,
            }
        else:
            task["code"] = max(task["code"], code)
            task["at"] = max(task["at"], receipt.occurred_at)
        rank = RECEIPT_RANK[receipt.status]
        if rank >= DELIVERED_RANK:
            alert_key = (receipt.tenant_id, receipt.alert_id)
            first, last = delivered.get(alert_key, (receipt.occurred_at, receipt.occurred_at))
            delivered[alert_key] = (min(first, receipt.occurred_at), max(last, receipt.occurred_at))
            reached = task.get("reached_at")
            if reached is None or receipt.occurred_at < reached:
                task["reached_at"] = receipt.occurred_at
                task["published_at"] = receipt.published_at
        elif rank == FINAL_RANK:
            task["failure"] = max(task.get("failure", ""), failure_reason(receipt))
        metrics.RECEIPTS_APPLIED.labels(
            channel=receipt.channel.value, status=receipt.status.value
        ).inc()
    task_ops = [_task_op(tenant, task_id, task) for (tenant, task_id), task in tasks.items()]
    for task in tasks.values():
        if task.get("reached_at") is not None and task.get("published_at") is not None:
            metrics.PUBLISH_TO_DELIVERED.labels(channel=task["channel"]).observe(
                max(0.0, (task["reached_at"] - task["published_at"]).total_seconds())
            )
    time_ops = [
        UpdateOne(
            {"tenant": tenant, "alert_id": alert_id},
            {"$min": {"first_delivery_at": first}, "$max": {"last_delivery_at": last}},
            upsert=True,
        )
        for (tenant, alert_id), (first, last) in delivered.items()
    ]
    await repo.apply(task_ops, time_ops)
    return len(task_ops)


def failure_reason(receipt: DeliveryReceipt) -> str:
    """A failed/undelivered/expired receipt's reason as one sortable string
    `attempt|status|error class|provider code` (attempt zero-padded): stored with `$max`, the
    reason of the task's latest failed attempt wins whatever order receipts arrive in."""
    return "|".join(
        (
            f"{receipt.attempt:04d}",
            receipt.status.value,
            receipt.error_class.value if receipt.error_class else "",
            receipt.error_code or "",
        )
    )


def _task_op(tenant: str, task_id: str, task: Document) -> UpdateOne:
    """The commutative upsert of one task's folded receipts ($max/$min/$setOnInsert only):
    status code and last receipt time only grow, the first time the task reached its citizen
    (delivered or confirmed) only shrinks, and the failure reason of the latest attempt wins."""
    maxes: Document = {"code": task["code"], "last_receipt_at": task["at"]}
    if "failure" in task:
        maxes["failure"] = task["failure"]
    update: Document = {
        "$max": maxes,
        "$setOnInsert": {
            "tenant": tenant,
            "task_id": task_id,
            "alert_id": task["alert_id"],
            "channel": task["channel"],
        },
    }
    if task.get("reached_at") is not None:
        update["$min"] = {"reached_at": task["reached_at"]}
    return UpdateOne({"_id": f"{tenant}:{task_id}"}, update, upsert=True)


def _channel_progress(counts: dict[ReceiptStatus, int], expected: int | None) -> ChannelProgress:
    return ChannelProgress(
        expected=expected,
        total=sum(counts.values()),
        final=sum(n for s, n in counts.items() if RECEIPT_RANK[s] >= FINAL_RANK),
        statuses={s: counts.get(s, 0) for s in ReceiptStatus},
    )


async def progress(*, repo: Repository, tenant: str, alert_id: str) -> ProgressOut:
    """Delivery progress of the tenant's alert: tasks per channel and current status,
    expected counts from the fanout, first/last delivery, and whether it is complete."""
    doc = await repo.with_progress(await get_alert(repo=repo, tenant=tenant, alert_id=alert_id))
    per_channel: dict[Channel, dict[ReceiptStatus, int]] = defaultdict(dict)
    for channel, code, n in await repo.delivery_counts(tenant, alert_id):
        status = STATUS_OF_CODE.get(code)
        if status is None or channel not in Channel._value2member_map_:
            continue
        counts = per_channel[Channel(channel)]
        counts[status] = counts.get(status, 0) + n
    fanout: Document | None = doc.get("fanout")
    expected: dict[Channel, int] | None = (
        {Channel(c): int(n) for c, n in fanout["expected"].items()} if fanout else None
    )
    channels = {
        channel: _channel_progress(
            per_channel.get(channel, {}), expected.get(channel, 0) if expected else None
        )
        for channel in sorted({*per_channel, *(expected or {})})
    }
    totals: dict[ReceiptStatus, int] = defaultdict(int)
    for counts in per_channel.values():
        for status, n in counts.items():
            totals[status] += n
    total_progress = _channel_progress(
        dict(totals), sum(expected.values()) if expected is not None else None
    )
    complete = expected is not None and all(
        channels[channel].final >= n for channel, n in expected.items()
    )
    times: Document = doc.get("progress") or {}
    return ProgressOut(
        alert_id=doc["id"],
        state=doc["state"],
        recipients=fanout["recipients"] if fanout else None,
        held=int(fanout.get("held", 0)) if fanout else 0,
        channels=channels,
        totals=total_progress,
        first_delivery_at=times.get("first_delivery_at"),
        last_delivery_at=times.get("last_delivery_at"),
        complete=complete,
    )


def alert_view(doc: Document) -> dict[str, Any]:
    """The staff view of a stored alert (see `AlertOut`)."""
    outbox = doc.get("outbox")
    return {
        **{k: v for k, v in doc.items() if k not in {"_id", "tenant", "outbox"}},
        "relay_state": outbox["state"] if outbox else None,
        "sms_segments": {
            lang: sms_length(texts["sms"]).segments for lang, texts in doc["texts"].items()
        },
    }


async def place_name(*, repo: Repository, tenant: str) -> str:
    """The municipality's display name (tenant settings), e.g. 'Musterstadt'."""
    doc = await repo.tenant_settings(tenant)
    name = (doc or {}).get("display_name")
    return str(name) if name else tenant.replace("-", " ").title()


async def export_cap(*, repo: Repository, tenant: str, alert_id: str, sender: str) -> bytes:
    """The tenant's alert as a validated CAP 1.2 document (with the alerts it references)."""
    doc = await get_alert(repo=repo, tenant=tenant, alert_id=alert_id)
    referenced = [
        ref
        for ref_id in doc.get("references", [])
        if (ref := await repo.get_alert(tenant, ref_id)) is not None
    ]
    place = await place_name(repo=repo, tenant=tenant)
    return cap.export_alert(doc, sender=sender, place=place, referenced=referenced)


async def import_cap(
    *, repo: Repository, wake: Wake, principal: Principal, xml: bytes, default_duration_s: int
) -> Document:
    """A draft from a CAP 1.2 document (validated against the schema; 422 with the reason
    otherwise). The draft is never sent by the import itself."""
    try:
        raw, source = cap.import_body(xml, now=utcnow())
    except cap.CapError as exc:
        raise InvalidInputError(("body",), "cap_invalid", reason=str(exc)) from None
    try:
        body = AlertIn.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        raise InvalidInputError(
            ("body",), "cap_unsupported", reason=f"{where}: {error['msg']}"
        ) from None
    doc = await create_alert(
        repo=repo,
        wake=wake,
        principal=principal,
        body=body,
        default_duration_s=default_duration_s,
        source="cap",
    )
    await repo.mark(principal.tenant, doc["id"], {"cap_source": source})
    await _audit(repo, principal, "imported", doc, identifier=source["identifier"][:200])
    return {**doc, "cap_source": source}


async def confirm_totp(*, repo: Repository, principal: Principal, code: str) -> None:
    """Finishes TOTP enrolment with the authenticator's current code."""
    doc = await repo.get_staff(principal.tenant, principal.id)
    if doc is None:
        raise NotFoundError("staff_not_found")
    pending = doc.get("totp_pending")
    if not pending:
        raise ConflictError("totp_not_started")
    if not verify_totp(pending, code):
        raise InvalidInputError(("body", "code"), "totp_invalid")
    await repo.set_staff(
        principal.tenant, principal.id, {"totp_secret": pending, "totp_pending": None}
    )
    await _audit_staff(repo, principal, "totp_enabled")


async def _audit_staff(repo: Repository, principal: Principal, action: str) -> None:
    await repo.add_audit(audit_entry(principal, action, staff_id=principal.id))


async def add_attachment(
    *,
    repo: Repository,
    principal: Principal,
    alert_id: str,
    filename: str,
    data: bytes,
    max_mib: int,
    max_count: int,
    base_url: str,
) -> Document:
    """Adds an image or PDF to a draft (type from the content, image metadata stripped,
    stored in GridFS). It is linked in the push and e-mail texts when the alert goes out."""
    doc = await get_alert(repo=repo, tenant=principal.tenant, alert_id=alert_id)
    check_may_send(principal, severity=Severity(doc["severity"]), urgency=Urgency(doc["urgency"]))
    if doc["state"] != "draft":
        raise ConflictError("attachment_not_draft", count=max_count)
    try:
        prepared = attachments.prepare(data, filename, max_bytes=max_mib * 1024 * 1024)
    except attachments.AttachmentError as exc:
        raise InvalidInputError(("body", "file"), exc.code, limit=max_mib) from None
    file_id = new_id()
    entry: Document = {
        "id": file_id,
        "filename": prepared.filename,
        "content_type": prepared.content_type,
        "size": len(prepared.data),
        "sha256": prepared.sha256,
        "url": f"{base_url}/public/attachments/{file_id}/{quote(prepared.filename)}",
    }
    metadata = {
        "tenant": principal.tenant,
        "alert_id": alert_id,
        "content_type": entry["content_type"],
    }
    await repo.store_file(file_id, prepared.filename, prepared.data, metadata)
    updated = await repo.attach(principal.tenant, alert_id, entry, max_count=max_count)
    if updated is None:
        await repo.delete_file(file_id)
        raise ConflictError("attachment_not_draft", count=max_count)
    await _audit(repo, principal, "attachment_added", updated, filename=prepared.filename)
    return updated


async def staff_attachment(
    *, repo: Repository, tenant: str, alert_id: str, file_id: str
) -> tuple[Document, bytes]:
    """An attachment of the tenant's alert, for staff."""
    doc = await get_alert(repo=repo, tenant=tenant, alert_id=alert_id)
    entry = next((a for a in doc.get("attachments") or [] if a["id"] == file_id), None)
    if entry is None:
        raise NotFoundError("attachment_not_found")
    return entry, await repo.read_file(file_id)


async def public_attachment(*, repo: Repository, file_id: str) -> tuple[Document, bytes]:
    """An attachment for citizens: only while its alert is published."""
    doc = await repo.alert_with_attachment(file_id)
    if doc is None or doc["state"] != "published" or doc.get("cancelled_by"):
        raise NotFoundError("attachment_not_found")
    entry = next(a for a in doc["attachments"] if a["id"] == file_id)
    return entry, await repo.read_file(file_id)
