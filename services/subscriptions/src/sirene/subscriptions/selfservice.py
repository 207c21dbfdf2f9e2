"""What citizens do themselves, and what they ask of others: self-registration with a code
(SMS or voice call), login, registering a relative who must consent (call: press 1, SMS:
reply JA), consent records, STOP and other inbound SMS, one-click e-mail unsubscribe, and
the GDPR rights (export, erasure).

Every path that sends an SMS or places a call passes the abuse limits (`RateLimiter`) first,
and validates everything it would store before anything is sent."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pymongo.errors import DuplicateKeyError

from sirene.runtime import Document, mask
from sirene.runtime.errors import ConflictError, DomainError, InvalidInputError, NotFoundError
from sirene.runtime.logging import mask_phone
from sirene.runtime.outbox import pending_outbox
from sirene.schemas import Channel, InboundSms, Language, new_id, utcnow

from . import metrics
from .codes import CheckResult, Codes, EmailLink, EmailLinks, Pending
from .mailer import Mailer, MailError, VerificationMail
from .models import (
    LocationIn,
    MePatch,
    QuietHoursIn,
    RegistrationIn,
    RelativeIn,
)
from .ratelimit import RateLimiter, Scope, email_scopes, number_prefix, registration_scopes
from .repository import Repository
from .service import Wake, _change_citizen, citizen_view, normalize_email, normalize_phone
from .settings import SubscriptionsSettings
from .telephony import Telephony, TelephonyError

log = logging.getLogger(__name__)

STOP_WORDS = frozenset(
    {"STOP", "STOPP", "ABMELDEN", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "ENDE", "QUIT"}
)
YES_WORDS = frozenset({"JA", "J", "1", "YES", "Y"})
NO_WORDS = frozenset({"NEIN", "N", "2", "NO"})

VERIFY_VOICE_PATH = "/twilio/verify/voice"
CONSENT_ASK_PATH = "/twilio/consent/ask"
CONSENT_ANSWER_PATH = "/twilio/consent/answer"
CONSENT_STATUS_PATH = "/twilio/consent/status"

_ERASE_WAIT_S = 15.0


class UpstreamError(DomainError):
    """The SMS or call could not be handed to the provider (502; nothing was stored)."""

    status_code = 502


class GoneError(DomainError):
    """The code expired or was used up (410)."""

    status_code = 410


def classify_inbound(body: str) -> str:
    """'stop', 'yes', 'no' or 'other' for the text of an inbound SMS."""
    word = re.sub(r"[^\w]", "", body.strip().split()[0] if body.strip() else "").upper()
    if word in STOP_WORDS:
        return "stop"
    if word in YES_WORDS:
        return "yes"
    if word in NO_WORDS:
        return "no"
    return "other"


def _topic_names(topics: Sequence[Document], language: str) -> str:
    names = [(t["name"].get(language) or t["name"]["de"]) for t in topics]
    return ", ".join(names)


@dataclass(slots=True)
class SelfService:
    """Citizen self-service flows; built once by `create_app`."""

    settings: SubscriptionsSettings
    repo: Repository
    wake: Wake
    codes: Codes
    limiter: RateLimiter
    telephony: Telephony
    links: EmailLinks
    mailer: Mailer

    # --- helpers --------------------------------------------------------------------------

    def known_tenant(self, tenant: str) -> None:
        """`NotFoundError` unless the service serves `tenant`."""
        if tenant not in self.settings.api_tokens and tenant not in self.settings.tenant_names:
            raise NotFoundError("tenant_unknown")

    def phone(self, tenant: str, raw: str, channel: str, loc: tuple[str | int, ...]) -> str:
        return normalize_phone(
            raw,
            channel=Channel(channel),
            default_region=self.settings.default_region,
            allowed_countries=self.settings.countries_for(tenant),
            loc=loc,
        )

    async def public_topics(
        self, tenant: str, ids: Sequence[str], loc: tuple[str | int, ...]
    ) -> list[Document]:
        """The chosen topics, each of which must be a public topic of the tenant."""
        available = {t["id"]: t for t in await self.repo.public_topics(tenant)}
        chosen: list[Document] = []
        for topic in dict.fromkeys(ids):
            if topic not in available:
                raise InvalidInputError((*loc, topic), "topic_unknown", topic=topic)
            chosen.append(available[topic])
        return chosen

    async def consent_record(
        self,
        *,
        tenant: str,
        citizen_id: str,
        action: str,
        scope: str,
        channel: str,
        by: str,
        topics: Sequence[str],
        text: str,
    ) -> None:
        await self.repo.add_consent(
            {
                "_id": new_id(),
                "tenant": tenant,
                "citizen_id": citizen_id,
                "action": action,
                "scope": scope,
                "channel": channel,
                "by": by,
                "topics": list(topics),
                "text": text,
                "at": utcnow(),
            }
        )

    # --- self-registration and login ------------------------------------------------------

    async def start_registration(
        self, *, tenant: str, body: RegistrationIn, ip: str
    ) -> tuple[str, str, str]:
        """Checks the registration, counts it against the abuse limits and sends a code by
        SMS or call. Returns (verification id, channel, E.164 number)."""
        self.known_tenant(tenant)
        phone = self.phone(tenant, body.phone, body.channel, ("body", "phone"))
        await self.public_topics(tenant, body.topics, ("body", "topics"))
        await self.limiter.hit(
            registration_scopes(self.settings.limits, tenant=tenant, ip=ip, phone=phone)
        )
        data = {
            "purpose": "register",
            "phone": phone,
            "channel": body.channel,
            "registration": body.model_dump(mode="json", exclude={"phone"}),
        }
        verification_id = await self._send_code(
            tenant=tenant, phone=phone, channel=body.channel, data=data, language=body.language
        )
        return verification_id, body.channel, phone

    async def start_login(self, *, tenant: str, raw_phone: str, ip: str) -> tuple[str, str, str]:
        """Sends a login code to a registered number. An unknown number gets the same answer
        and nothing is sent, so the form does not reveal who is registered."""
        self.known_tenant(tenant)
        phone = self.phone(tenant, raw_phone, "voice", ("body", "phone"))
        await self.limiter.hit(
            registration_scopes(self.settings.limits, tenant=tenant, ip=ip, phone=phone)
        )
        citizen = await self.repo.citizen_by_phone(tenant, phone)
        sms = citizen is not None and (citizen["contacts"].get("sms") or {}).get("address") == phone
        channel = "sms" if sms else "voice"
        if citizen is None or not citizen["active"]:
            return new_id(), channel, phone
        data = {"purpose": "login", "phone": phone, "channel": channel, "citizen": citizen["id"]}
        verification_id = await self._send_code(
            tenant=tenant,
            phone=phone,
            channel=channel,
            data=data,
            language=Language(citizen["language"]),
        )
        return verification_id, channel, phone

    async def _send_code(
        self, *, tenant: str, phone: str, channel: str, data: dict[str, Any], language: Language
    ) -> str:
        verification_id, code = await self.codes.create(
            tenant=tenant, data=data, ttl_s=self.settings.code_ttl_s
        )
        name = self.settings.tenant_name(tenant)
        minutes = self.settings.code_ttl_s // 60
        try:
            if channel == "sms":
                body = (
                    f"{code} is your {name} confirmation code. Valid for {minutes} minutes."
                    if language is Language.EN
                    else f"{code} ist Ihr Bestätigungscode für {name}. Gültig {minutes} Minuten."
                )
                await self.telephony.send_sms(to=phone, body=body, kind="verify_sms")
            else:
                twiml_url = self.telephony.url(
                    VERIFY_VOICE_PATH, v=verification_id, c=code, l=language.value
                )
                await self.telephony.call(
                    to=phone,
                    twiml_url=twiml_url,
                    status_url=self.telephony.url(VERIFY_VOICE_PATH + "/status"),
                    kind="verify_voice",
                )
        except TelephonyError:
            await self.codes.redis.delete(f"sub:verif:{verification_id}")
            raise UpstreamError("send_failed") from None
        metrics.VERIFICATIONS.labels(event=f"sent_{channel}").inc()
        return verification_id

    async def verification_twiml(self, *, verification_id: str, code: str, language: str) -> str:
        """TwiML speaking the code (only while the verification is pending)."""
        from .telephony import code_twiml

        pending = await self.codes.peek(verification_id)
        if pending is None or not await self.codes.code_for_call(verification_id, code):
            raise NotFoundError("code_expired")
        return code_twiml(
            code, language=language, tenant_name=self.settings.tenant_name(pending.tenant)
        )

    async def verify(self, *, verification_id: str, code: str, ip: str) -> tuple[Document, str]:
        """Checks a code; on success registers (or logs in) the citizen and opens a session.
        Returns (citizen document, session token)."""
        await self.limiter.hit([Scope("verify_ip", ip, self.settings.limits.verify_ip)])
        result, pending = await self.codes.check(verification_id, code)
        metrics.VERIFICATIONS.labels(event="verified" if result == CheckResult.OK else result).inc()
        if result == CheckResult.WRONG:
            raise InvalidInputError(("body", "code"), "code_wrong")
        if result == CheckResult.EXHAUSTED:
            raise GoneError("code_exhausted")
        if pending is None:
            raise GoneError("code_expired")
        if pending.data["purpose"] == "login":
            doc = await self.repo.get_citizen(pending.tenant, pending.data["citizen"])
            if doc is None:
                raise GoneError("code_expired")
        else:
            doc = await self._register_verified(pending)
        token = await self.codes.open_session(
            tenant=pending.tenant, citizen_id=doc["id"], ttl_s=self.settings.session_ttl_s
        )
        return doc, token

    async def _register_verified(self, pending: Pending) -> Document:
        tenant = pending.tenant
        phone: str = pending.data["phone"]
        channel: str = pending.data["channel"]
        reg = RegistrationIn.model_validate({**pending.data["registration"], "phone": phone})
        topics = await self.public_topics(tenant, reg.topics, ("body", "topics"))
        subscriptions = {t["id"]: [channel] for t in topics}
        text = consent_text_self(channel, topics, reg.language.value)
        existing = await self.repo.citizen_by_phone(tenant, phone)
        if existing is not None:
            # Registered before (or by staff): the verified number is theirs; reactivate it on
            # the verified channel and add the chosen topics.

            async def change(doc: Document) -> Document | None:
                merged = dict(doc.get("subscriptions", {}))
                for topic, channels in subscriptions.items():
                    merged[topic] = list(dict.fromkeys([*merged.get(topic, []), *channels]))
                return {
                    f"contacts.{channel}": {"address": phone, "active": True},
                    "subscriptions": merged,
                    "active": True,
                }

            doc = await _change_citizen(
                repo=self.repo,
                wake=self.wake,
                tenant=tenant,
                citizen_id=existing["id"],
                change=change,
                kind="verified",
            )
        else:
            now = utcnow()
            citizen_id = new_id()
            contacts: Document = {"sms": None, "voice": None, "email": None, "push": []}
            contacts[channel] = {"address": phone, "active": True}
            doc = {
                "_id": f"{tenant}:{citizen_id}",
                "tenant": tenant,
                "id": citizen_id,
                "name": reg.name,
                "active": True,
                "language": reg.language.value,
                "district": reg.district,
                "location": reg.location.model_dump() if reg.location else None,
                "quiet_hours": reg.quiet_hours.model_dump() if reg.quiet_hours else None,
                "origin": "self",
                "contacts": contacts,
                "subscriptions": subscriptions,
                "version": 1,
                "created_at": now,
                "updated_at": now,
                "outbox": pending_outbox(now),
            }
            try:
                await self.repo.citizens.insert_one(doc)
            except DuplicateKeyError:
                raise ConflictError("conflict") from None
            metrics.CITIZEN_CHANGES.labels(change="self_registered").inc()
            self.wake()
        await self.consent_record(
            tenant=tenant,
            citizen_id=doc["id"],
            action="granted",
            scope="registration",
            channel=channel,
            by="self",
            topics=list(subscriptions),
            text=text,
        )
        return doc

    # --- the citizen's own data -----------------------------------------------------------

    async def me(self, tenant: str, citizen_id: str) -> Document:
        doc = await self.repo.get_citizen(tenant, citizen_id)
        if doc is None:
            raise NotFoundError("citizen_not_found")
        return doc

    async def change_me(self, *, tenant: str, citizen_id: str, patch: MePatch) -> Document:
        async def change(_: Document) -> Document | None:
            changes: Document = {}
            for field in ("name", "district"):
                if field in patch.model_fields_set:
                    changes[field] = getattr(patch, field)
            if patch.language is not None:
                changes["language"] = patch.language.value
            if "location" in patch.model_fields_set:
                changes["location"] = _dump(patch.location)
            if "quiet_hours" in patch.model_fields_set:
                changes["quiet_hours"] = _dump(patch.quiet_hours)
            return changes or None

        return await _change_citizen(
            repo=self.repo,
            wake=self.wake,
            tenant=tenant,
            citizen_id=citizen_id,
            change=change,
            kind="self_profile",
        )

    async def choose_topics(
        self, *, tenant: str, citizen_id: str, subscriptions: dict[str, list[Channel]]
    ) -> Document:
        """Replaces the citizen's own choice (public topics only, verified channels only) and
        records it."""
        from .service import check_subscriptions

        await self.public_topics(tenant, list(subscriptions), ("body", "subscriptions"))

        async def change(doc: Document) -> Document | None:
            cleaned = await check_subscriptions(
                repo=self.repo,
                tenant=tenant,
                subscriptions=subscriptions,
                contacts=doc["contacts"],
                loc=("body", "subscriptions"),
            )
            return {"subscriptions": {t: [c.value for c in chs] for t, chs in cleaned.items()}}

        doc = await _change_citizen(
            repo=self.repo,
            wake=self.wake,
            tenant=tenant,
            citizen_id=citizen_id,
            change=change,
            kind="self_subscriptions",
        )
        channels = sorted({c for chs in doc["subscriptions"].values() for c in chs})
        await self.consent_record(
            tenant=tenant,
            citizen_id=citizen_id,
            action="granted",
            scope="topics",
            channel=",".join(channels) or "-",
            by="self",
            topics=list(doc["subscriptions"]),
            text="Auswahl der Themen und Kanäle",
        )
        return doc

    # --- relatives ------------------------------------------------------------------------

    async def register_relative(
        self, *, tenant: str, registrant: Document, body: RelativeIn, ip: str
    ) -> Document:
        """Stores the relative inactive and asks them for consent (call or SMS)."""
        phone = self.phone(tenant, body.phone, body.channel, ("body", "phone"))
        topics = await self.public_topics(tenant, body.topics, ("body", "topics"))
        if await self.repo.citizen_by_phone(tenant, phone) is not None:
            raise ConflictError("phone_registered")
        await self.limiter.hit(
            registration_scopes(self.settings.limits, tenant=tenant, ip=ip, phone=phone)
        )
        now = utcnow()
        citizen_id = new_id()
        contacts: Document = {"sms": None, "voice": None, "email": None, "push": []}
        contacts[body.channel] = {"address": phone, "active": True}
        registrant_name = registrant.get("name") or (
            "Ein Angehöriger" if body.language is Language.DE else "A relative"
        )
        text = consent_text_relative(
            body.channel,
            topics,
            body.language.value,
            registrant_name,
            self.settings.tenant_name(tenant),
        )
        doc: Document = {
            "_id": f"{tenant}:{citizen_id}",
            "tenant": tenant,
            "id": citizen_id,
            "name": body.name,
            "active": False,
            "language": body.language.value,
            "district": body.district,
            "location": None,
            "quiet_hours": None,
            "origin": "relative",
            "registered_by": registrant["id"],
            "consent": {
                "state": "pending",
                "channel": body.channel,
                "requested_at": now,
                "expires_at": now + timedelta(seconds=self.settings.consent_ttl_s),
                "registrant_name": registrant_name,
            },
            "contacts": contacts,
            "subscriptions": {t["id"]: [body.channel] for t in topics},
            "version": 1,
            "created_at": now,
            "updated_at": now,
            "outbox": pending_outbox(now),
        }
        await self.repo.citizens.insert_one(doc)
        self.wake()
        await self.consent_record(
            tenant=tenant,
            citizen_id=citizen_id,
            action="requested",
            scope="registration",
            channel=body.channel,
            by=f"relative:{registrant['id']}",
            topics=[t["id"] for t in topics],
            text=text,
        )
        try:
            if body.channel == "sms":
                await self.telephony.send_sms(to=phone, body=text, kind="consent_sms")
            else:
                await self.telephony.call(
                    to=phone,
                    twiml_url=self.telephony.url(CONSENT_ASK_PATH, t=tenant, c=citizen_id),
                    status_url=self.telephony.url(CONSENT_STATUS_PATH, t=tenant, c=citizen_id),
                    kind="consent_voice",
                )
        except TelephonyError:
            await self._settle_consent(tenant, citizen_id, "failed", via=body.channel)
            raise UpstreamError("send_failed") from None
        metrics.CONSENT.labels(outcome="requested", channel=body.channel).inc()
        return doc

    async def consent_question(self, *, tenant: str, citizen_id: str) -> str:
        """TwiML of the consent call (asks to press 1 or 2)."""
        from .telephony import consent_answer_twiml, consent_question_twiml

        doc = await self.repo.get_citizen(tenant, citizen_id)
        if doc is None or (doc.get("consent") or {}).get("state") != "pending":
            return consent_answer_twiml(language=doc["language"] if doc else "de", granted=None)
        topics = [await self.repo.get_topic(tenant, t) for t in doc["subscriptions"]]
        return consent_question_twiml(
            language=doc["language"],
            tenant_name=self.settings.tenant_name(tenant),
            registrant=doc["consent"].get("registrant_name") or "",
            topics=_topic_names([t for t in topics if t], doc["language"]),
            action_url=self.telephony.url(CONSENT_ANSWER_PATH, t=tenant, c=citizen_id),
        )

    async def consent_keypress(self, *, tenant: str, citizen_id: str, digits: str) -> str:
        """The called relative pressed `digits`: 1 agrees, 2 refuses. TwiML answer."""
        from .telephony import consent_answer_twiml

        granted = {"1": True, "2": False}.get(digits.strip()[:1])
        doc = await self.repo.get_citizen(tenant, citizen_id)
        language = doc["language"] if doc else "de"
        if granted is None:
            return consent_answer_twiml(language=language, granted=None)
        settled = await self._settle_consent(
            tenant, citizen_id, "granted" if granted else "refused", via="voice"
        )
        return consent_answer_twiml(language=language, granted=granted if settled else None)

    async def consent_call_ended(self, *, tenant: str, citizen_id: str, status: str) -> None:
        """Status callback of the consent call: a call that ended without an answer (no
        answer, busy, failed, or hung up before pressing a key) leaves the relative inactive."""
        if status in {"no-answer", "busy", "failed", "canceled", "completed"}:
            await self._settle_consent(tenant, citizen_id, "no_answer", via="voice")

    async def _settle_consent(
        self, tenant: str, citizen_id: str, outcome: str, *, via: str
    ) -> bool:
        """Moves a pending consent to `outcome` (granted activates the relative). False when it
        was no longer pending (answered already, expired, withdrawn)."""
        now = utcnow()
        changed = False

        async def change(doc: Document) -> Document | None:
            nonlocal changed
            consent = doc.get("consent") or {}
            if consent.get("state") != "pending":
                return None
            expires = consent.get("expires_at")
            expired = expires is not None and _aware(expires) < now
            outcome_now = "expired" if expired else outcome
            changed = outcome_now == outcome
            changes: Document = {"consent.state": outcome_now, "consent.settled_at": now}
            if outcome_now == "granted":
                changes["active"] = True
            return changes

        try:
            doc = await _change_citizen(
                repo=self.repo,
                wake=self.wake,
                tenant=tenant,
                citizen_id=citizen_id,
                change=change,
                kind=f"consent_{outcome}",
            )
        except NotFoundError:
            return False
        if changed:
            metrics.CONSENT.labels(outcome=outcome, channel=via).inc()
            await self.consent_record(
                tenant=tenant,
                citizen_id=citizen_id,
                action=outcome,
                scope="registration",
                channel=via,
                by="self",
                topics=list(doc.get("subscriptions", {})),
                text={"granted": "Zugestimmt", "refused": "Abgelehnt"}.get(outcome, outcome),
            )
        return changed

    async def relatives(self, *, tenant: str, citizen_id: str) -> list[Document]:
        """The people the citizen registered; requests left unanswered past `CONSENT_TTL_S`
        are settled as `expired` on the way (a late "JA" can no longer activate them)."""
        docs = await self.repo.relatives_of(tenant, citizen_id)
        now = utcnow()
        for index, doc in enumerate(docs):
            consent = doc.get("consent") or {}
            expires = consent.get("expires_at")
            if consent.get("state") == "pending" and expires and _aware(expires) < now:
                await self._settle_consent(tenant, doc["id"], "expired", via=consent["channel"])
                docs[index] = await self.repo.get_citizen(tenant, doc["id"]) or doc
        return docs

    async def withdraw_relative(self, *, tenant: str, citizen_id: str, relative_id: str) -> None:
        """The registrant withdraws what they registered: the relative's data is erased."""
        doc = await self.repo.get_citizen(tenant, relative_id)
        if doc is None or doc.get("registered_by") != citizen_id:
            raise NotFoundError("citizen_not_found")
        await self.erase(tenant=tenant, citizen_id=relative_id, by="registrant")

    # --- inbound SMS ----------------------------------------------------------------------

    async def handle_inbound(self, events: Sequence[InboundSms]) -> None:
        """STOP deactivates SMS for the number in every tenant; JA/NEIN answer a pending
        consent request sent by SMS. Other texts are ignored (counted)."""
        for event in events:
            meaning = classify_inbound(event.body)
            metrics.INBOUND_SMS.labels(meaning=meaning).inc()
            if meaning == "other":
                continue
            for doc in await self.repo.citizens_with_sms(event.from_number):
                consent = doc.get("consent") or {}
                if consent.get("state") == "pending" and consent.get("channel") == "sms":
                    outcome = {"yes": "granted", "no": "refused", "stop": "refused"}[meaning]
                    await self._settle_consent(doc["tenant"], doc["id"], outcome, via="sms")
                    if meaning != "stop":
                        continue
                if meaning == "stop":
                    await self._stop_sms(doc, event.from_number)
            log.info(
                "inbound sms handled",
                extra={"meaning": meaning, "from": mask_phone(event.from_number)},
            )

    async def _stop_sms(self, doc: Document, number: str) -> None:
        stopped = False

        async def change(current: Document) -> Document | None:
            nonlocal stopped
            point = current["contacts"].get("sms")
            if not point or point["address"] != number or not point["active"]:
                return None
            stopped = True
            return {"contacts.sms.active": False, "contacts.sms.deactivated_reason": "stop"}

        try:
            await _change_citizen(
                repo=self.repo,
                wake=self.wake,
                tenant=doc["tenant"],
                citizen_id=doc["id"],
                change=change,
                kind="sms_stop",
            )
        except NotFoundError:
            return
        if stopped:
            await self.consent_record(
                tenant=doc["tenant"],
                citizen_id=doc["id"],
                action="withdrawn",
                scope="channel:sms",
                channel="sms",
                by="self",
                topics=list(doc.get("subscriptions", {})),
                text="SMS STOP",
            )

    # --- e-mail address verification ------------------------------------------------------

    async def start_email(
        self, *, tenant: str, citizen_id: str, raw_email: str, topics: list[str] | None, ip: str
    ) -> tuple[str, str]:
        """Sets the citizen's e-mail address, inactive until a single-use link mailed to it is
        confirmed, and sends that link; any earlier link stops working. `topics` (default: the
        topics the citizen already follows) get the e-mail channel once confirmed. Returns
        (`sent` or `already_verified`, the address).

        The new address replaces the old one at once, inactive: a citizen who gives a new
        address has usually given up the old one, and warnings must not go on reaching a
        mailbox that may now belong to someone else."""
        address = normalize_email(raw_email, loc=("body", "email"))
        doc = await self.me(tenant, citizen_id)
        point = doc["contacts"].get("email") or {}
        if topics is None:
            chosen = list(doc.get("subscriptions", {}))
        else:
            chosen = [t["id"] for t in await self.public_topics(tenant, topics, ("body", "topics"))]
        if point.get("active") and _email_hash(point["address"]) == _email_hash(address):
            # verified already: add the channel to the chosen topics, nothing to confirm
            if chosen and topics is not None:
                await self._add_email_channel(tenant, citizen_id, chosen, kind="self_email")
                await self.consent_record(
                    tenant=tenant,
                    citizen_id=citizen_id,
                    action="granted",
                    scope="topics",
                    channel="email",
                    by="self",
                    topics=chosen,
                    text="E-Mail für weitere Themen gewählt",
                )
            return "already_verified", point["address"]
        await self.limiter.hit(
            email_scopes(self.settings.limits, tenant=tenant, ip=ip, email=address)
        )
        language = Language(doc["language"])
        link = EmailLink(
            tenant=tenant,
            citizen_id=citizen_id,
            email_hash=_email_hash(address),
            topics=chosen,
            language=language.value,
        )
        token = await self.links.create(link, ttl_s=self.settings.email_link_ttl_s)
        try:
            await self.mailer.send(
                tenant=tenant,
                mail=VerificationMail(
                    to=address,
                    link=self.email_link_url(tenant, token, language),
                    tenant_name=self.settings.tenant_name(tenant),
                    language=language,
                    valid_hours=max(1, self.settings.email_link_ttl_s // 3600),
                ),
            )
        except MailError:
            await self.links.drop(token, link)
            raise UpstreamError("send_failed") from None

        async def change(current: Document) -> Document | None:
            stored = current["contacts"].get("email") or {}
            if (
                stored.get("address") == address
                and stored.get("deactivated_reason") == "unverified"
            ):
                return None  # asked again for the pending address: only the link is new
            return {
                "contacts.email": {
                    "address": address,
                    "active": False,
                    "deactivated_reason": "unverified",
                }
            }

        try:
            await _change_citizen(
                repo=self.repo,
                wake=self.wake,
                tenant=tenant,
                citizen_id=citizen_id,
                change=change,
                kind="email_unverified",
            )
        except DomainError:
            await self.links.drop(token, link)
            raise
        metrics.VERIFICATIONS.labels(event="sent_email").inc()
        log.info("e-mail verification sent", extra={"to": mask(address)})
        return "sent", address

    def email_link_url(self, tenant: str, token: str, language: Language) -> str:
        """The confirm page a verification e-mail links to."""
        lang = "&lang=en" if language is Language.EN else ""
        return (
            f"{self.settings.base_url.rstrip('/')}/portal/{tenant}/email/bestaetigen"
            f"?token={token}{lang}"
        )

    async def pending_email(self, *, tenant: str, token: str) -> str:
        """The address a still valid link would confirm (for the confirm page, which changes
        nothing); `GoneError` when the link expired, was used or replaced."""
        link = await self.links.peek(token)
        if link is None or link.tenant != tenant:
            raise GoneError("email_link_gone")
        doc = await self.repo.get_citizen(tenant, link.citizen_id)
        point = (doc or {}).get("contacts", {}).get("email") or {}
        if not point or _email_hash(point["address"]) != link.email_hash:
            raise GoneError("email_link_gone")
        return str(point["address"])

    async def confirm_email(self, *, token: str, ip: str, tenant: str | None = None) -> Document:
        """Confirms the address the link names (once): the e-mail contact point becomes active,
        the chosen topics get the e-mail channel, a consent record is kept and the profile is
        published. `GoneError` for a link that expired, was used or replaced (nothing
        changes); `tenant` (from the page's address) must be the link's."""
        await self.limiter.hit([Scope("verify_ip", ip, self.settings.limits.verify_ip)])
        taken = await self.links.take(token)
        if taken is None:
            metrics.VERIFICATIONS.labels(event="email_link_gone").inc()
            raise GoneError("email_link_gone")
        link, ttl = taken
        if tenant is not None and link.tenant != tenant:
            await self.links.restore(token, link, ttl_s=ttl)
            raise GoneError("email_link_gone")
        known = {t["id"]: t for t in await self.repo.list_topics(link.tenant)}
        topics = [known[t] for t in link.topics if t in known]
        superseded = False

        async def change(doc: Document) -> Document | None:
            nonlocal superseded
            point = doc["contacts"].get("email")
            if not point or _email_hash(point["address"]) != link.email_hash:
                superseded = True
                return None
            subscriptions = {k: list(v) for k, v in doc.get("subscriptions", {}).items()}
            for topic in topics:
                channels = subscriptions.setdefault(topic["id"], [])
                if "email" not in channels:
                    channels.append("email")
            changes: Document = {"subscriptions": subscriptions}
            if not point["active"]:
                changes["contacts.email"] = {"address": point["address"], "active": True}
            elif subscriptions == doc.get("subscriptions", {}):
                return None
            return changes

        try:
            # one write: the activation and the e-mail channel go out in one profile
            doc = await _change_citizen(
                repo=self.repo,
                wake=self.wake,
                tenant=link.tenant,
                citizen_id=link.citizen_id,
                change=change,
                kind="email_verified",
            )
        except NotFoundError:
            raise GoneError("email_link_gone") from None
        except ConflictError:
            await self.links.restore(token, link, ttl_s=ttl)
            raise
        if superseded:
            metrics.VERIFICATIONS.labels(event="email_link_superseded").inc()
            raise GoneError("email_link_gone")
        await self.consent_record(
            tenant=link.tenant,
            citizen_id=link.citizen_id,
            action="granted",
            scope="channel:email",
            channel="email",
            by="self",
            topics=[t["id"] for t in topics],
            text="E-Mail-Adresse per Bestätigungslink bestätigt; Themen: "
            + (_topic_names(topics, "de") or "-"),
        )
        metrics.VERIFICATIONS.labels(event="email_confirmed").inc()
        log.info("e-mail address verified", extra={"topics": len(topics)})
        return doc

    async def remove_email(self, *, tenant: str, citizen_id: str) -> Document:
        """Removes the citizen's e-mail address (verified or pending) and the e-mail channel
        from every topic; a pending link stops working."""
        removed: Document = {}

        async def change(doc: Document) -> Document | None:
            point = doc["contacts"].get("email")
            if not point:
                return None
            removed.update(point)
            subscriptions = {
                topic: [c for c in channels if c != "email"]
                for topic, channels in doc.get("subscriptions", {}).items()
            }
            return {
                "contacts.email": None,
                "subscriptions": {t: chs for t, chs in subscriptions.items() if chs},
            }

        doc = await _change_citizen(
            repo=self.repo,
            wake=self.wake,
            tenant=tenant,
            citizen_id=citizen_id,
            change=change,
            kind="email_removed",
        )
        await self.links.forget_citizen(tenant=tenant, citizen_id=citizen_id)
        if removed.get("active"):
            await self.consent_record(
                tenant=tenant,
                citizen_id=citizen_id,
                action="withdrawn",
                scope="channel:email",
                channel="email",
                by="self",
                topics=list(doc.get("subscriptions", {})),
                text="E-Mail-Adresse entfernt",
            )
        return doc

    async def _add_email_channel(
        self, tenant: str, citizen_id: str, topics: Sequence[str], *, kind: str
    ) -> Document:
        """Adds the e-mail channel to those of `topics` that exist (a verified address)."""
        existing = await self.repo.existing_topic_ids(tenant, topics)

        async def change(doc: Document) -> Document | None:
            subscriptions = {k: list(v) for k, v in doc.get("subscriptions", {}).items()}
            changed = False
            for topic in topics:
                if topic in existing and "email" not in subscriptions.get(topic, []):
                    subscriptions.setdefault(topic, []).append("email")
                    changed = True
            return {"subscriptions": subscriptions} if changed else None

        return await _change_citizen(
            repo=self.repo,
            wake=self.wake,
            tenant=tenant,
            citizen_id=citizen_id,
            change=change,
            kind=kind,
        )

    # --- e-mail unsubscribe ---------------------------------------------------------------

    def unsubscribe_token(self, tenant: str, citizen_id: str, email: str) -> str:
        """A signed token naming one citizen's e-mail address (no expiry: a link in an old
        e-mail must still work; it stops working when the address changes)."""
        payload = json.dumps([tenant, citizen_id, _email_hash(email)], separators=(",", ":"))
        body = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
        return f"{body}.{self._sign(body)}"

    def unsubscribe_url(self, tenant: str, citizen_id: str, email: str) -> str:
        return (
            f"{self.settings.base_url.rstrip('/')}/abmelden/email?token="
            f"{self.unsubscribe_token(tenant, citizen_id, email)}"
        )

    def _sign(self, body: str) -> str:
        key = self.settings.link_secret.get_secret_value().encode()
        digest = hmac.new(key, b"unsubscribe:" + body.encode(), "sha256").digest()
        return base64.urlsafe_b64encode(digest[:20]).decode().rstrip("=")

    def read_unsubscribe_token(self, token: str) -> tuple[str, str, str]:
        """(tenant, citizen id, e-mail hash) of a valid token; `NotFoundError` otherwise."""
        body, _, signature = token.partition(".")
        if not body or not hmac.compare_digest(signature, self._sign(body)):
            raise NotFoundError("link_invalid")
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            tenant, citizen_id, email_hash = json.loads(raw)
        except (ValueError, TypeError):
            raise NotFoundError("link_invalid") from None
        return str(tenant), str(citizen_id), str(email_hash)

    async def unsubscribe_email(self, token: str) -> bool:
        """Deactivates the e-mail address the token names; False if it was already off."""
        tenant, citizen_id, email_hash = self.read_unsubscribe_token(token)
        stopped = False

        async def change(doc: Document) -> Document | None:
            nonlocal stopped
            point = doc["contacts"].get("email")
            if not point or _email_hash(point["address"]) != email_hash or not point["active"]:
                return None
            stopped = True
            return {
                "contacts.email.active": False,
                "contacts.email.deactivated_reason": "unsubscribed",
            }

        doc = await _change_citizen(
            repo=self.repo,
            wake=self.wake,
            tenant=tenant,
            citizen_id=citizen_id,
            change=change,
            kind="email_unsubscribe",
        )
        if stopped:
            await self.consent_record(
                tenant=tenant,
                citizen_id=citizen_id,
                action="withdrawn",
                scope="channel:email",
                channel="email",
                by="self",
                topics=list(doc.get("subscriptions", {})),
                text="E-Mail-Abmeldelink",
            )
        return stopped

    # --- GDPR -----------------------------------------------------------------------------

    async def export(self, *, tenant: str, citizen_id: str) -> dict[str, Any]:
        """Everything stored about the citizen (Art. 15/20 GDPR), as JSON-ready data."""
        doc = await self.me(tenant, citizen_id)
        consents = await self.repo.consents_of(tenant, citizen_id)
        relatives = await self.repo.relatives_of(tenant, citizen_id)
        view = citizen_view(doc)
        email = (doc["contacts"].get("email") or {}).get("address")
        return {
            "format": "sirene.citizen-export.v1",
            "generated_at": utcnow().isoformat(),
            "municipality": self.settings.tenant_name(tenant),
            "citizen": _jsonable(view),
            "consent_records": [
                _jsonable({k: v for k, v in c.items() if k not in {"_id", "tenant"}})
                for c in consents
            ],
            "registered_relatives": [
                {
                    "id": r["id"],
                    "name": r.get("name"),
                    "consent": (r.get("consent") or {}).get("state"),
                    "active": r["active"],
                }
                for r in relatives
            ],
            "email_unsubscribe_url": (
                self.unsubscribe_url(tenant, citizen_id, email) if email else None
            ),
            "stored_elsewhere": {
                "citizen.profile": "routing profile (Kafka, compacted; replaced by a tombstone "
                "on erasure)",
                "redis": "sessions, pending verification codes and e-mail links (as hashes), "
                "abuse counters (all expire)",
            },
        }

    async def erase(self, *, tenant: str, citizen_id: str, by: str) -> bool:
        """Erases the citizen (Art. 17 GDPR): personal data stripped and a tombstone queued on
        citizen.profile in one write; consent records, sessions and abuse counters deleted; an
        anonymous audit stub kept; the document itself deleted once the tombstone is
        acknowledged. Returns True when the document is already gone."""
        doc = await self.me(tenant, citizen_id)
        phones = [
            p["address"] for p in (doc["contacts"].get("sms"), doc["contacts"].get("voice")) if p
        ]
        emails = [p["address"] for p in (doc["contacts"].get("email"),) if p]

        async def change(_: Document) -> Document | None:
            return {
                "erased": True,
                "active": False,
                "name": None,
                "district": None,
                "location": None,
                "quiet_hours": None,
                "contacts": {"sms": None, "voice": None, "email": None, "push": []},
                "subscriptions": {},
                "consent": None,
            }

        # `_change_citizen` writes through `update_citizen`, which refuses erased documents,
        # so nothing can change the citizen after this point.
        await _change_citizen(
            repo=self.repo,
            wake=self.wake,
            tenant=tenant,
            citizen_id=citizen_id,
            change=change,
            kind="erased",
        )
        await self.repo.forget_consents(tenant, citizen_id)
        await self.repo.unlink_relatives(tenant, citizen_id)
        await self.codes.forget_citizen(tenant=tenant, citizen_id=citizen_id)
        await self.links.forget_citizen(tenant=tenant, citizen_id=citizen_id)
        cut = self.settings.limits.prefix_cut
        await self.limiter.forget(
            [*phones, *(number_prefix(p, cut) for p in phones), *(e.lower() for e in emails)]
        )
        await self.repo.add_erasure(
            {
                "_id": new_id(),
                "tenant": tenant,
                "at": utcnow(),
                "by": by,
                "origin": doc.get("origin", "staff"),
            }
        )
        metrics.ERASURES.labels(by=by).inc()
        deadline = asyncio.get_running_loop().time() + _ERASE_WAIT_S
        while asyncio.get_running_loop().time() < deadline:
            if await self.repo.citizens.find_one({"_id": doc["_id"]}, {"_id": 1}) is None:
                return True
            await asyncio.sleep(0.1)
        return False


def consent_text_self(channel: str, topics: Sequence[Document], language: str) -> str:
    names = _topic_names(topics, language) or "-"
    how = "SMS" if channel == "sms" else "Anruf"
    return f"Selbst angemeldet, bestätigt per Code ({how}); Themen: {names}"


def consent_text_relative(
    channel: str, topics: Sequence[Document], language: str, registrant: str, tenant_name: str
) -> str:
    names = _topic_names(topics, language)
    if channel == "sms":
        if language == "en":
            return (
                f"{tenant_name}: {registrant} registered you for warnings by SMS ({names}). "
                "Reply YES to agree or NO to decline."
            )
        return (
            f"{tenant_name}: {registrant} hat Sie für Warnungen per SMS angemeldet ({names}). "
            "Antworten Sie JA, um zuzustimmen, oder NEIN."
        )
    return (
        f"Anruf von {tenant_name}: {registrant} möchte Sie für Warnungen per Telefon anmelden "
        f"({names}); Zustimmung mit Taste 1, Ablehnung mit Taste 2."
    )


def _email_hash(email: str) -> str:
    return hashlib.sha256(email.lower().encode()).hexdigest()[:24]


def _dump(value: LocationIn | QuietHoursIn | None) -> dict[str, Any] | None:
    return value.model_dump() if value is not None else None


def _aware(value: Any) -> Any:
    from datetime import UTC

    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _jsonable(value: Any) -> Any:
    """Datetimes as ISO strings, recursively."""
    from datetime import datetime

    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value
