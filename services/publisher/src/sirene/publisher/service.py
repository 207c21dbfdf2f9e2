"""Business rules of the publisher as plain functions: exercise marking, lanes, scheduling,
publishing through the outbox on the alert document, and delivery progress from receipts."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

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

from . import metrics
from .models import AlertIn, ChannelProgress, ProgressOut
from .repository import Repository

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


EFFECTIVE_SKEW = timedelta(minutes=1)
"""How far in the future `effective` may lie (clock skew) while scheduling does not exist."""


def _check_times(
    *, effective: datetime | None, expires: datetime | None, duration: int | None, now: datetime
) -> None:
    if expires is not None and duration is not None:
        raise InvalidInputError(("body", "expires"), "expires_and_duration")
    if effective is not None and effective > now + EFFECTIVE_SKEW:
        # nothing holds an alert back until its time yet: refuse rather than send it now
        raise InvalidInputError(("body", "effective"), "scheduling_unsupported")
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


async def create_alert(
    *, repo: Repository, wake: Wake, tenant: str, body: AlertIn, default_duration_s: int
) -> Document:
    """Stores a new alert (marked for Exercise/Test, with its lane); with `publish` it is
    stored already published with a pending outbox, in the same single insert."""
    if Language.DE not in body.texts:
        raise InvalidInputError(("body", "texts"), "german_required")
    if body.msg_type is not MsgType.ALERT:
        raise InvalidInputError(("body", "msg_type"), "msg_type_unsupported")
    now = utcnow()
    _check_times(
        effective=body.effective, expires=body.expires, duration=body.duration_minutes, now=now
    )
    texts = mark_texts(body.texts, body.status)
    alert_id = new_id()
    doc: Document = {
        "_id": alert_id,
        "tenant": tenant,
        "id": alert_id,
        "state": "draft",
        "status": body.status.value,
        "msg_type": body.msg_type.value,
        "exercise": body.status is not AlertStatus.ACTUAL,
        "severity": body.severity.value,
        "urgency": body.urgency.value,
        "certainty": body.certainty.value,
        "category": body.category,
        "headline": body.headline or texts[Language.DE].headline,
        "lane": lane_for(body.severity, body.urgency).value,
        "texts": {lang.value: t.model_dump(exclude_none=True) for lang, t in texts.items()},
        "audience": body.audience.model_dump(mode="json"),
        "effective": body.effective,
        "expires": body.expires,
        "duration_minutes": body.duration_minutes,
        "created_at": now,
        "updated_at": now,
        "published_at": None,
        "version": 1,
        "outbox": None,
        "fanout": None,
    }
    if body.publish:
        doc |= _published_fields(doc, now=now, default_duration_s=default_duration_s)
    await repo.insert_alert(doc)
    if body.publish:
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
    *, repo: Repository, wake: Wake, tenant: str, alert_id: str, default_duration_s: int
) -> Document:
    """Publishes a draft (idempotent: an already published alert is returned unchanged, and
    no second alert.published is emitted)."""
    for _ in range(3):
        doc = await get_alert(repo=repo, tenant=tenant, alert_id=alert_id)
        if doc["state"] == "published":
            return doc
        fields = _published_fields(doc, now=utcnow(), default_duration_s=default_duration_s)
        updated = await repo.publish_draft(tenant, alert_id, version=doc["version"], changes=fields)
        if updated is not None:
            metrics.ALERTS_PUBLISHED.labels(lane=doc["lane"], status=doc["status"]).inc()
            wake()
            return updated
    return await get_alert(repo=repo, tenant=tenant, alert_id=alert_id)


def alert_event(doc: Document) -> tuple[str, AlertPublished]:
    """The `alert.published` event of a published alert document, and its key."""
    event = AlertPublished(
        event_id=doc["outbox"]["event_id"],
        tenant_id=doc["tenant"],
        alert_id=doc["id"],
        msg_type=MsgType(doc["msg_type"]),
        status=AlertStatus(doc["status"]),
        exercise=doc["exercise"],
        severity=Severity(doc["severity"]),
        urgency=Urgency(doc["urgency"]),
        certainty=doc["certainty"],
        category=doc["category"],
        lane=Lane(doc["lane"]),
        texts={Language(k): ChannelTexts.model_validate(v) for k, v in doc["texts"].items()},
        audience=Audience.model_validate(doc["audience"]),
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
                "completed_at": summary.completed_at,
            },
        )
        metrics.FANOUT_SUMMARIES.labels(result="stored" if stored else "unknown_alert").inc()


async def apply_receipts(*, repo: Repository, receipts: Iterable[DeliveryReceipt]) -> int:
    """Folds receipts into one document per task whose status only moves up the rank
    (`$max` of the status code), plus first/last delivery times on the alert. A batch is
    first collapsed per task, then written with two unordered bulk writes; returns how many
    tasks were touched."""
    tasks: dict[tuple[str, str], Document] = {}
    delivered: dict[tuple[str, str], tuple[datetime, datetime]] = {}
    for receipt in receipts:
        code = STATUS_CODE[receipt.status]
        key = (receipt.tenant_id, receipt.task_id)
        task = tasks.get(key)
        if task is None:
            tasks[key] = {
                "alert_id": receipt.alert_id,
                "channel": receipt.channel.value,
                "code": code,
                "at": receipt.occurred_at,
            }
        else:
            task["code"] = max(task["code"], code)
            task["at"] = max(task["at"], receipt.occurred_at)
        if RECEIPT_RANK[receipt.status] >= DELIVERED_RANK:
            alert_key = (receipt.tenant_id, receipt.alert_id)
            first, last = delivered.get(alert_key, (receipt.occurred_at, receipt.occurred_at))
            delivered[alert_key] = (min(first, receipt.occurred_at), max(last, receipt.occurred_at))
        metrics.RECEIPTS_APPLIED.labels(
            channel=receipt.channel.value, status=receipt.status.value
        ).inc()
    task_ops = [
        UpdateOne(
            {"_id": f"{tenant}:{task_id}"},
            {
                "$max": {"code": task["code"], "last_receipt_at": task["at"]},
                "$setOnInsert": {
                    "tenant": tenant,
                    "task_id": task_id,
                    "alert_id": task["alert_id"],
                    "channel": task["channel"],
                },
            },
            upsert=True,
        )
        for (tenant, task_id), task in tasks.items()
    ]
    alert_ops = [
        UpdateOne(
            {"tenant": tenant, "id": alert_id},
            {
                "$min": {"progress.first_delivery_at": first},
                "$max": {"progress.last_delivery_at": last},
            },
        )
        for (tenant, alert_id), (first, last) in delivered.items()
    ]
    await repo.apply(task_ops, alert_ops)
    return len(task_ops)


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
    doc = await get_alert(repo=repo, tenant=tenant, alert_id=alert_id)
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
        **{k: v for k, v in doc.items() if k not in {"_id", "tenant", "outbox", "version"}},
        "relay_state": outbox["state"] if outbox else None,
    }
