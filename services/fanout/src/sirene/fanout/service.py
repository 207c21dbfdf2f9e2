"""Expanding an alert into delivery tasks: one per citizen, per chosen channel, per contact."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator

from sirene.runtime import BatchProducer
from sirene.schemas import (
    ALERT_FANOUT,
    AlertPublished,
    Channel,
    ChannelTexts,
    DeliveryTask,
    FanoutSummary,
    Language,
    PushPlatform,
    contact_key_for,
    delivery_topic,
    task_id_for,
    utcnow,
)

from .metrics import ALERTS_EXPANDED, EXPANSION_SECONDS, TASKS_PRODUCED
from .recipients import RecipientLog
from .repository import AudienceIndex, Recipient

log = logging.getLogger(__name__)

Record = tuple[str, bytes, bytes]


def channels_for(alert: AlertPublished, recipient: Recipient) -> set[Channel]:
    """The channels a citizen chose for the alert's topics (for 'everyone': any topic)."""
    subs = recipient.subscriptions
    topics = subs.keys() if alert.audience.everyone else (t for t in alert.audience.topics)
    return {Channel(ch) for topic in topics for ch in subs.get(topic, ())}


def _texts(alert: AlertPublished, language: Language) -> tuple[Language, ChannelTexts]:
    if language in alert.texts:
        return language, alert.texts[language]
    return Language.DE, alert.texts[Language.DE]


def tasks_for(alert: AlertPublished, recipient: Recipient) -> Iterator[DeliveryTask]:
    """Every task for one recipient, with the text in the citizen's language (German
    fallback). A channel without an active contact point yields nothing."""
    language, texts = _texts(alert, recipient.language)
    contacts = recipient.contacts
    common = {
        "tenant_id": alert.tenant_id,
        "alert_id": alert.alert_id,
        "citizen_id": recipient.citizen_id,
        "lane": alert.lane,
        "language": language,
        "severity": alert.severity,
        "exercise": alert.exercise,
        "published_at": alert.published_at,
        "expires": alert.expires,
    }
    for channel in sorted(channels_for(alert, recipient)):
        if channel is Channel.PUSH:
            for platform, token in contacts.get("push") or []:  # type: ignore[attr-defined]
                yield DeliveryTask(
                    **common,  # type: ignore[arg-type]
                    task_id=task_id_for(
                        alert.alert_id, recipient.citizen_id, channel, contact_key_for(token)
                    ),
                    channel=channel,
                    address=token,
                    push_platform=PushPlatform(platform),
                    title=texts.push_title,
                    body=texts.push_body,
                )
            continue
        address = contacts.get(channel.value)
        if not isinstance(address, str) or not address:
            continue
        title, body = {
            Channel.SMS: (None, texts.sms),
            Channel.VOICE: (None, texts.voice),
            Channel.EMAIL: (
                texts.email_subject or texts.headline,
                texts.email_body or texts.push_body,
            ),
        }[channel]
        yield DeliveryTask(
            **common,  # type: ignore[arg-type]
            # the contact is part of the id: a late receipt about an old number can never be
            # taken for the citizen's new one
            task_id=task_id_for(
                alert.alert_id, recipient.citizen_id, channel, contact_key_for(address)
            ),
            channel=channel,
            address=address,
            title=title,
            body=body,
        )


async def expand_alert(
    *,
    alert: AlertPublished,
    index: AudienceIndex,
    producer: BatchProducer,
    chunk_size: int,
    log_: RecipientLog | None = None,
) -> FanoutSummary:
    """Streams the alert's audience from the index and emits its tasks chunk by chunk through
    the batch producer (each chunk acknowledged before the next is read, so memory stays flat).
    Re-running it yields the same task ids. Ends with a `FanoutSummary` on `alert.fanout`."""
    started_at = utcnow()
    began = time.perf_counter()
    expected: Counter[Channel] = Counter()
    recipients = 0
    if alert.expires <= started_at:
        outcome = "expired"
        log.warning("alert expired before fanout", extra={"alert_id": alert.alert_id})
    else:
        outcome = "expanded"
        districts = set(alert.audience.districts)
        # an Update/Cancel goes to exactly the recipients of the alert it references
        referenced = alert.references[0] if alert.references and log_ is not None else None
        source = (
            log_.recipients(index, alert.tenant_id, referenced, chunk_size=chunk_size)
            if log_ is not None and referenced is not None
            else index.audience(
                alert.tenant_id,
                everyone=alert.audience.everyone,
                topics=alert.audience.topics,
                chunk_size=chunk_size,
            )
        )
        async for chunk in source:
            records: list[Record] = []
            reached_ids: list[str] = []
            for recipient in chunk:
                if referenced is None and districts and recipient.district not in districts:
                    continue
                reached = False
                for task in tasks_for(alert, recipient):
                    records.append(
                        (
                            delivery_topic(task.channel, task.lane),
                            recipient.citizen_id.encode(),
                            task.model_dump_json().encode(),
                        )
                    )
                    expected[task.channel] += 1
                    reached = True
                recipients += reached
                if reached:
                    reached_ids.append(recipient.citizen_id)
            if log_ is not None:
                await log_.record(
                    alert.tenant_id, alert.alert_id, reached_ids, expires=alert.expires
                )
            if records:
                await producer.send_grouped(records)
    summary = FanoutSummary(
        tenant_id=alert.tenant_id,
        alert_id=alert.alert_id,
        lane=alert.lane,
        expected={channel: expected.get(channel, 0) for channel in Channel},
        recipients=recipients,
        started_at=started_at,
        completed_at=utcnow(),
    )
    await producer.send_model(ALERT_FANOUT, summary, key=alert.alert_id)
    for channel, count in expected.items():
        TASKS_PRODUCED.labels(channel=channel.value, lane=alert.lane.value).inc(count)
    ALERTS_EXPANDED.labels(lane=alert.lane.value, outcome=outcome).inc()
    EXPANSION_SECONDS.labels(lane=alert.lane.value).observe(time.perf_counter() - began)
    log.info(
        "alert expanded",
        extra={
            "alert_id": alert.alert_id,
            "tenant_id": alert.tenant_id,
            "recipients": recipients,
            "tasks": sum(expected.values()),
            "seconds": round(time.perf_counter() - began, 3),
        },
    )
    return summary
