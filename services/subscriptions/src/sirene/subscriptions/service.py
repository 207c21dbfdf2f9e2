"""Business rules of subscriptions as plain functions: contact normalisation, subscription
checks, citizen changes (each one marks the citizen's profile pending in the same write), the
routing profile, and deactivation of dead contact points."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import phonenumbers
from phonenumbers import PhoneNumberType

from sirene.runtime import Document
from sirene.runtime.errors import ConflictError, InvalidInputError, NotFoundError
from sirene.runtime.outbox import pending_outbox
from sirene.schemas import (
    Channel,
    CitizenProfile,
    Contacts,
    DeliveryReceipt,
    ErrorClass,
    GeoPoint,
    Language,
    PushDevice,
    QuietHours,
    contact_key_for,
    new_id,
    profile_key,
    task_id_for,
    utcnow,
)

from . import metrics
from .models import CitizenIn, CitizenPatch, ContactsIn, TopicIn
from .repository import Repository

log = logging.getLogger(__name__)

_SMS_TYPES = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}
_VOICE_TYPES = _SMS_TYPES | {
    PhoneNumberType.FIXED_LINE,
    PhoneNumberType.VOIP,
    PhoneNumberType.PERSONAL_NUMBER,
}
_COSTLY_TYPES = {PhoneNumberType.PREMIUM_RATE, PhoneNumberType.SHARED_COST}
_EMAIL = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$")
_UPDATE_ATTEMPTS = 3

Loc = tuple[str | int, ...]
Wake = Callable[[], None]


def normalize_phone(
    raw: str,
    *,
    channel: Channel,
    default_region: str,
    allowed_countries: Sequence[str],
    loc: Loc,
) -> str:
    """The number in E.164, or `InvalidInputError` saying why it cannot be used on `channel`:
    not a number, a country not allowed, premium-rate/shared-cost, or (SMS) not a mobile."""
    try:
        number = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException:
        raise InvalidInputError(loc, "phone_invalid") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidInputError(loc, "phone_invalid")
    country = phonenumbers.region_code_for_number(number) or "?"
    if country not in allowed_countries:
        raise InvalidInputError(
            loc, "phone_country", country=country, allowed=", ".join(allowed_countries)
        )
    kind = phonenumbers.number_type(number)
    if kind in _COSTLY_TYPES:
        raise InvalidInputError(loc, "phone_premium")
    if channel is Channel.SMS and kind not in _SMS_TYPES:
        raise InvalidInputError(loc, "phone_not_mobile")
    if channel is Channel.VOICE and kind not in _VOICE_TYPES:
        raise InvalidInputError(loc, "phone_not_callable")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(raw: str, *, loc: Loc) -> str:
    """The address with its domain lower-cased, or `InvalidInputError`."""
    if not _EMAIL.match(raw):
        raise InvalidInputError(loc, "email_invalid")
    local, domain = raw.rsplit("@", 1)
    return f"{local}@{domain.lower()}"


def contacts_document(
    contacts: ContactsIn, *, default_region: str, allowed_countries: Sequence[str]
) -> Document:
    """Stored form of entered contact points: normalised and active."""

    def point(address: str) -> Document:
        return {"address": address, "active": True}

    base: Loc = ("body", "contacts")
    doc: Document = {"sms": None, "voice": None, "email": None, "push": []}
    for channel in (Channel.SMS, Channel.VOICE):
        raw = getattr(contacts, channel.value)
        if raw is not None:
            doc[channel.value] = point(
                normalize_phone(
                    raw,
                    channel=channel,
                    default_region=default_region,
                    allowed_countries=allowed_countries,
                    loc=(*base, channel.value),
                )
            )
    if contacts.email is not None:
        doc["email"] = point(normalize_email(contacts.email, loc=(*base, "email")))
    seen: set[str] = set()
    for device in contacts.push:
        if device.token not in seen:
            seen.add(device.token)
            doc["push"].append(
                {"platform": device.platform.value, "token": device.token, "active": True}
            )
    return doc


def has_contact(contacts: Document, channel: Channel) -> bool:
    """Whether the citizen has an active contact point for `channel`."""
    if channel is Channel.PUSH:
        return any(device["active"] for device in contacts.get("push", []))
    point = contacts.get(channel.value)
    return bool(point and point["active"])


async def check_subscriptions(
    *,
    repo: Repository,
    tenant: str,
    subscriptions: dict[str, list[Channel]],
    contacts: Document,
    loc: Loc,
) -> dict[str, list[Channel]]:
    """The choice with duplicate channels removed, after checking that every topic exists in
    the tenant and every chosen channel has an active contact point."""
    known = await repo.existing_topic_ids(tenant, subscriptions)
    cleaned: dict[str, list[Channel]] = {}
    for topic, channels in sorted(subscriptions.items()):
        if topic not in known:
            raise InvalidInputError((*loc, topic), "topic_unknown", topic=topic)
        unique = list(dict.fromkeys(channels))
        for channel in unique:
            if not has_contact(contacts, channel):
                raise InvalidInputError((*loc, topic), "channel_without_contact", channel=channel)
        cleaned[topic] = unique
    return cleaned


def _stored(subscriptions: dict[str, list[Channel]]) -> dict[str, list[str]]:
    return {topic: [c.value for c in channels] for topic, channels in subscriptions.items()}


async def create_topic(*, repo: Repository, tenant: str, topic: TopicIn) -> Document:
    """Stores a topic of the tenant; `ConflictError` when its id is taken."""
    doc: Document = {
        "tenant": tenant,
        **topic.model_dump(mode="json"),
        "created_at": utcnow(),
    }
    if not await repo.insert_topic(doc):
        raise ConflictError("topic_exists", topic=topic.id)
    return doc


async def create_citizen(
    *,
    repo: Repository,
    wake: Wake,
    tenant: str,
    body: CitizenIn,
    default_region: str,
    allowed_countries: Sequence[str],
) -> Document:
    """Registers a citizen (active: staff registered them with consent) and queues their
    profile for citizen.profile in the same insert."""
    contacts = contacts_document(
        body.contacts, default_region=default_region, allowed_countries=allowed_countries
    )
    subscriptions = await check_subscriptions(
        repo=repo,
        tenant=tenant,
        subscriptions=body.subscriptions,
        contacts=contacts,
        loc=("body", "subscriptions"),
    )
    now = utcnow()
    citizen_id = body.id or new_id()
    doc: Document = {
        "_id": f"{tenant}:{citizen_id}",
        "tenant": tenant,
        "id": citizen_id,
        "name": body.name,
        "active": True,
        "language": body.language.value,
        "district": body.district,
        "location": body.location.model_dump() if body.location else None,
        "quiet_hours": body.quiet_hours.model_dump() if body.quiet_hours else None,
        "origin": "staff",
        "contacts": contacts,
        "subscriptions": _stored(subscriptions),
        "version": 1,
        "created_at": now,
        "updated_at": now,
        "outbox": pending_outbox(now),
    }
    if not await repo.insert_citizen(doc):
        raise ConflictError("citizen_exists")
    metrics.CITIZEN_CHANGES.labels(change="created").inc()
    wake()
    channels = sorted({c.value for chs in subscriptions.values() for c in chs})
    await repo.add_consent(
        {
            "_id": new_id(),
            "tenant": tenant,
            "citizen_id": citizen_id,
            "action": "granted",
            "scope": "registration",
            "channel": ",".join(channels) or "-",
            "by": "staff",
            "topics": list(subscriptions),
            "text": "Von der Verwaltung erfasst; die Einwilligung liegt der Verwaltung vor.",
            "at": now,
        }
    )
    return doc


async def get_citizen(*, repo: Repository, tenant: str, citizen_id: str) -> Document:
    """The tenant's citizen, or `NotFoundError`."""
    doc = await repo.get_citizen(tenant, citizen_id)
    if doc is None:
        raise NotFoundError("citizen_not_found")
    return doc


async def _change_citizen(
    *,
    repo: Repository,
    wake: Wake,
    tenant: str,
    citizen_id: str,
    change: Callable[[Document], Awaitable[Document | None]],
    kind: str,
) -> Document:
    """Reads the citizen, asks `change` for the fields to set (None: nothing to do) and writes
    them if nobody changed the citizen meanwhile, retrying a few times."""
    for _ in range(_UPDATE_ATTEMPTS):
        doc = await get_citizen(repo=repo, tenant=tenant, citizen_id=citizen_id)
        changes = await change(doc)
        if changes is None:
            return doc
        updated = await repo.update_citizen(
            tenant, citizen_id, version=doc["version"], changes=changes, now=utcnow()
        )
        if updated is not None:
            metrics.CITIZEN_CHANGES.labels(change=kind).inc()
            wake()
            return updated
    raise ConflictError("conflict")


async def set_subscriptions(
    *,
    repo: Repository,
    wake: Wake,
    tenant: str,
    citizen_id: str,
    subscriptions: dict[str, list[Channel]],
) -> Document:
    """Replaces the citizen's channel choice per topic (checked like on registration)."""

    async def change(doc: Document) -> Document | None:
        cleaned = await check_subscriptions(
            repo=repo,
            tenant=tenant,
            subscriptions=subscriptions,
            contacts=doc["contacts"],
            loc=("body", "subscriptions"),
        )
        return {"subscriptions": _stored(cleaned)}

    return await _change_citizen(
        repo=repo,
        wake=wake,
        tenant=tenant,
        citizen_id=citizen_id,
        change=change,
        kind="subscriptions",
    )


async def change_citizen(
    *,
    repo: Repository,
    wake: Wake,
    tenant: str,
    citizen_id: str,
    patch: CitizenPatch,
    default_region: str,
    allowed_countries: Sequence[str],
) -> Document:
    """Changes contact points, language or district. New contact points must still serve
    every channel the citizen chose (else 422: change the subscriptions first)."""
    contacts = (
        contacts_document(
            patch.contacts, default_region=default_region, allowed_countries=allowed_countries
        )
        if patch.contacts is not None
        else None
    )

    async def change(doc: Document) -> Document | None:
        changes: Document = {}
        if contacts is not None:
            for channels in doc.get("subscriptions", {}).values():
                for channel in channels:
                    if not has_contact(contacts, Channel(channel)):
                        raise InvalidInputError(
                            ("body", "contacts"), "channel_without_contact", channel=channel
                        )
            changes["contacts"] = contacts
        if patch.name is not None:
            changes["name"] = patch.name
        if patch.language is not None:
            changes["language"] = patch.language.value
        if "district" in patch.model_fields_set:
            changes["district"] = patch.district
        if "location" in patch.model_fields_set:
            changes["location"] = patch.location.model_dump() if patch.location else None
        if "quiet_hours" in patch.model_fields_set:
            changes["quiet_hours"] = patch.quiet_hours.model_dump() if patch.quiet_hours else None
        return changes or None

    return await _change_citizen(
        repo=repo, wake=wake, tenant=tenant, citizen_id=citizen_id, change=change, kind="profile"
    )


def profile_of(doc: Document) -> tuple[str, CitizenProfile | None]:
    """The routing profile of a stored citizen (active contact points only) and its key; None
    (a tombstone: gone from every audience) for an erased citizen."""
    if doc.get("erased"):
        return profile_key(doc["tenant"], doc["id"]), None
    contacts = doc["contacts"]

    def active(channel: Channel) -> str | None:
        point = contacts.get(channel.value)
        return point["address"] if point and point["active"] else None

    profile = CitizenProfile(
        tenant_id=doc["tenant"],
        citizen_id=doc["id"],
        active=doc["active"],
        language=Language(doc["language"]),
        district=doc.get("district"),
        contacts=Contacts(
            sms=active(Channel.SMS),
            voice=active(Channel.VOICE),
            email=active(Channel.EMAIL),
            push=[
                PushDevice.model_validate({"platform": d["platform"], "token": d["token"]})
                for d in contacts.get("push", [])
                if d["active"]
            ],
        ),
        subscriptions=doc.get("subscriptions", {}),
        quiet_hours=QuietHours(**doc["quiet_hours"]) if doc.get("quiet_hours") else None,
        location=GeoPoint(**doc["location"]) if doc.get("location") else None,
        version=doc["version"],
        updated_at=doc["updated_at"],
    )
    return profile_key(doc["tenant"], doc["id"]), profile


def _receipt_matches(receipt: DeliveryReceipt, address: str) -> bool:
    """Whether the receipt's task was addressed to `address` (task ids include the contact
    key, so a receipt about a number the citizen has since replaced matches nothing)."""
    return receipt.task_id == task_id_for(
        receipt.alert_id, receipt.citizen_id, receipt.channel, contact_key_for(address)
    )


def dead_contact_changes(doc: Document, receipt: DeliveryReceipt) -> Document | None:
    """The fields that deactivate the contact point the receipt reports as dead, or None when
    it is unknown or already inactive (e.g. the citizen changed the number meanwhile)."""
    contacts = doc["contacts"]
    channel = receipt.channel
    if channel is Channel.PUSH:
        devices = [dict(d) for d in contacts.get("push", [])]
        hit = False
        for device in devices:
            if device["active"] and _receipt_matches(receipt, device["token"]):
                device["active"] = False
                device["deactivated_reason"] = ErrorClass.CONTACT_DEAD.value
                hit = True
        return {"contacts.push": devices} if hit else None
    point = contacts.get(channel.value)
    if not point or not point["active"] or not _receipt_matches(receipt, point["address"]):
        return None
    return {
        f"contacts.{channel.value}.active": False,
        f"contacts.{channel.value}.deactivated_reason": ErrorClass.CONTACT_DEAD.value,
    }


async def deactivate_dead_contacts(
    *, repo: Repository, wake: Wake, receipts: Iterable[DeliveryReceipt]
) -> int:
    """Deactivates the contact points that `contact_dead` receipts report (the profile goes out
    again without them); returns how many were deactivated. Other receipts are ignored."""
    deactivated = 0
    for receipt in receipts:
        if receipt.error_class is not ErrorClass.CONTACT_DEAD:
            continue
        hit = False

        async def change(doc: Document, receipt: DeliveryReceipt = receipt) -> Document | None:
            nonlocal hit
            changes = dead_contact_changes(doc, receipt)
            hit = changes is not None
            return changes

        try:
            await _change_citizen(
                repo=repo,
                wake=wake,
                tenant=receipt.tenant_id,
                citizen_id=receipt.citizen_id,
                change=change,
                kind="contact_dead",
            )
        except NotFoundError:
            continue
        if hit:
            deactivated += 1
            metrics.CONTACTS_DEACTIVATED.labels(channel=receipt.channel.value).inc()
            log.info(
                "contact point deactivated",
                extra={"channel": receipt.channel.value, "error_code": receipt.error_code},
            )
    return deactivated


def citizen_view(doc: Document) -> dict[str, Any]:
    """The staff view of a stored citizen (see `CitizenOut`)."""
    return {
        "id": doc["id"],
        "name": doc.get("name"),
        "active": doc["active"],
        "language": doc["language"],
        "district": doc.get("district"),
        "contacts": doc["contacts"],
        "subscriptions": doc.get("subscriptions", {}),
        "location": doc.get("location"),
        "quiet_hours": doc.get("quiet_hours"),
        "origin": doc.get("origin", "staff"),
        "registered_by": doc.get("registered_by"),
        "consent": (doc.get("consent") or {}).get("state"),
        "version": doc["version"],
        "profile_state": doc["outbox"]["state"],
        "created_at": doc["created_at"],
        "updated_at": doc["updated_at"],
    }
