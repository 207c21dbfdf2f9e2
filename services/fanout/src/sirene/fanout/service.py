"""Expanding an alert into delivery tasks: one per citizen, per chosen channel, per contact.

An alert is *planned* (`plan_alert`: split into shards of the audience index, one
`fanout.shard.<lane>` record each) and every shard is *expanded* (`expand_shard`) by whichever
fanout instance consumes it. The last shard to be counted emits the alert's `FanoutSummary`."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from sirene.runtime import BatchProducer
from sirene.schemas import (
    ALERT_FANOUT,
    AlertPublished,
    Channel,
    ChannelTexts,
    DeliveryTask,
    FanoutShard,
    FanoutSummary,
    Lane,
    Language,
    PushPlatform,
    contact_key_for,
    delivery_topic,
    fanout_shard_topic,
    task_id_for,
    utcnow,
)

from .metrics import ALERTS_EXPANDED, EXPANSION_SECONDS, SHARDS_EXPANDED, TASKS_PRODUCED
from .repository import AudienceIndex, Recipient

log = logging.getLogger(__name__)

Record = tuple[str, int, bytes | None, bytes]
"""(topic, partition, key, value) of a task record."""


_CHANNEL = {c.value: c for c in Channel}
"""Channel by value, without an enum call per task on the hot path."""


def channels_for(alert: AlertPublished, recipient: Recipient) -> set[Channel]:
    """The channels a citizen chose for the alert's topics (for 'everyone': any topic)."""
    subs = recipient.subscriptions
    topics = subs.keys() if alert.audience.everyone else (t for t in alert.audience.topics)
    return {_CHANNEL[ch] for topic in topics for ch in subs.get(topic, ())}


def _texts(alert: AlertPublished, language: Language) -> tuple[Language, ChannelTexts]:
    if language in alert.texts:
        return language, alert.texts[language]
    return Language.DE, alert.texts[Language.DE]


def _title_body(channel: Channel, texts: ChannelTexts) -> tuple[str | None, str]:
    match channel:
        case Channel.PUSH:
            return texts.push_title, texts.push_body
        case Channel.SMS:
            return None, texts.sms
        case Channel.VOICE:
            return None, texts.voice
        case Channel.EMAIL:
            return texts.email_subject or texts.headline, texts.email_body or texts.push_body


def _addresses(channel: Channel, contacts: dict[str, Any]) -> Iterator[tuple[str, str | None]]:
    """(address, push platform) of a citizen's active contact points on a channel."""
    if channel is Channel.PUSH:
        for platform, token in contacts.get("push") or []:
            yield token, platform
        return
    address = contacts.get(channel.value)
    if isinstance(address, str) and address:
        yield address, None


def tasks_for(alert: AlertPublished, recipient: Recipient) -> Iterator[DeliveryTask]:
    """Every task for one recipient, with the text in the citizen's language (German
    fallback). A channel without an active contact point yields nothing. (The reference form
    of what `TaskEncoder` emits as bytes.)"""
    language, texts = _texts(alert, recipient.language)
    for channel in sorted(channels_for(alert, recipient)):
        title, body = _title_body(channel, texts)
        for address, platform in _addresses(channel, recipient.contacts):
            yield DeliveryTask(
                tenant_id=alert.tenant_id,
                alert_id=alert.alert_id,
                citizen_id=recipient.citizen_id,
                lane=alert.lane,
                language=language,
                severity=alert.severity,
                exercise=alert.exercise,
                published_at=alert.published_at,
                expires=alert.expires,
                # the contact is part of the id: a late receipt about an old number can never
                # be taken for the citizen's new one
                task_id=task_id_for(
                    alert.alert_id, recipient.citizen_id, channel, contact_key_for(address)
                ),
                channel=channel,
                address=address,
                push_platform=PushPlatform(platform) if platform else None,
                title=title,
                body=body,
                fallback_address=_fallback_address(channel, recipient.contacts),
            )


def _fallback_address(channel: Channel, contacts: dict[str, Any]) -> str | None:
    """For a push task, the citizen's mobile: where the push worker falls back to SMS when the
    device is gone (only for tenants that enable fallback; see `sirene.runtime.delivery`)."""
    if channel is not Channel.PUSH:
        return None
    mobile = contacts.get("sms")
    return mobile if isinstance(mobile, str) and mobile else None


_PER_TASK = (
    "event_id",
    "task_id",
    "citizen_id",
    "address",
    "push_platform",
    "fallback_address",
)


class TaskEncoder:
    """Encodes an alert's tasks straight to the JSON bytes `DeliveryTask` validates, without
    building a model per task: the fields every task of a (language, channel) shares are
    serialized once, by pydantic, and only the per-task fields are added. Equal to
    `tasks_for(...)` serialized (a unit test holds them together)."""

    def __init__(self, alert: AlertPublished) -> None:
        self.alert = alert
        self._alert_prefix = f"{alert.alert_id}\x1f".encode()
        self._event_prefix = uuid.uuid4().hex[:20]
        self._events = 0
        self._heads: dict[tuple[Language, Channel], bytes] = {}
        self.topics = {channel: delivery_topic(channel, alert.lane) for channel in Channel}

    def _head(self, language: Language, channel: Channel) -> bytes:
        head = self._heads.get((language, channel))
        if head is None:
            alert = self.alert
            used, texts = _texts(alert, language)
            title, body = _title_body(channel, texts)
            sample = DeliveryTask(
                tenant_id=alert.tenant_id,
                alert_id=alert.alert_id,
                citizen_id="x",
                lane=alert.lane,
                language=used,
                severity=alert.severity,
                exercise=alert.exercise,
                published_at=alert.published_at,
                expires=alert.expires,
                task_id="0" * 32,
                channel=channel,
                address="xxx",
                title=title,
                body=body,
            ).model_dump(mode="json", exclude=set(_PER_TASK))
            head = self._heads[language, channel] = orjson.dumps(sample)[:-1] + b","
        return head

    def encode(self, recipient: Recipient) -> Iterator[tuple[Channel, bytes]]:
        """(channel, JSON value) of every task of one recipient."""
        citizen = recipient.citizen_id
        citizen_json = orjson.dumps(citizen)
        id_prefix = self._alert_prefix + citizen.encode() + b"\x1f"
        for channel in sorted(channels_for(self.alert, recipient)):
            head = self._head(recipient.language, channel)
            id_channel = id_prefix + channel.value.encode() + b"\x1f"
            fallback = orjson.dumps(_fallback_address(channel, recipient.contacts))
            for address, platform in _addresses(channel, recipient.contacts):
                contact_key = hashlib.sha256(address.encode()).hexdigest()[:16]
                task_id = hashlib.sha256(id_channel + contact_key.encode()).hexdigest()[:32]
                self._events += 1
                yield (
                    channel,
                    b"".join(
                        (
                            head,
                            b'"event_id":"',
                            f"{self._event_prefix}{self._events:012x}".encode(),
                            b'","task_id":"',
                            task_id.encode(),
                            b'","citizen_id":',
                            citizen_json,
                            b',"address":',
                            orjson.dumps(address),
                            b',"push_platform":',
                            orjson.dumps(platform),
                            b',"fallback_address":',
                            fallback,
                            b"}",
                        )
                    ),
                )


@dataclass
class ShardResult:
    """What expanding one shard produced."""

    expected: Counter[Channel] = field(default_factory=Counter)
    recipients: int = 0


class PriorityGate:
    """Lets bulk expansion step aside while urgent shards are being expanded in the same
    process: bulk waits before each chunk until no urgent shard is active, so a warning gets
    the process to itself instead of sharing it with a newsletter."""

    def __init__(self) -> None:
        self._urgent = 0
        self._clear = asyncio.Event()
        self._clear.set()

    def enter(self, lane: Lane) -> None:
        if lane is Lane.URGENT:
            self._urgent += 1
            self._clear.clear()

    def leave(self, lane: Lane) -> None:
        if lane is Lane.URGENT:
            self._urgent -= 1
            if self._urgent == 0:
                self._clear.set()

    async def wait_turn(self, lane: Lane) -> None:
        if lane is Lane.BULK:
            await self._clear.wait()


async def expand_shard(
    *,
    alert: AlertPublished,
    shard: int,
    shards: int,
    index: AudienceIndex,
    producer: BatchProducer,
    chunk_size: int,
    max_in_flight: int = 4,
    gate: PriorityGate | None = None,
) -> ShardResult:
    """Streams one shard of the alert's audience from the index and emits its tasks chunk by
    chunk through the batch producer, partitioned by citizen (Kafka's default partitioning).
    At most `max_in_flight` chunks wait for their acknowledgement at a time, so memory stays
    flat whatever the audience size; the function returns once every task is acknowledged.
    Re-running it yields the same task ids."""
    result = ShardResult()
    encoder = TaskEncoder(alert)
    # an Update/Cancel goes to exactly the citizens the alert it references reached
    referenced = alert.references[0] if alert.references else None
    districts = set(alert.audience.districts) if referenced is None else set()
    partitions = {
        channel: await producer.partitions_for(topic) for channel, topic in encoder.topics.items()
    }
    in_flight: deque[list[asyncio.Future[Any]]] = deque()
    try:
        async for chunk in index.audience(
            alert.tenant_id,
            everyone=alert.audience.everyone,
            topics=alert.audience.topics,
            chunk_size=chunk_size,
            shard=shard,
            shards=shards,
            recipients_of=referenced,
        ):
            if gate is not None:
                await gate.wait_turn(alert.lane)
            records: list[Record] = []
            reached_ids: list[str] = []
            for position, recipient in enumerate(chunk):
                if position % 500 == 499:
                    # let heartbeats, the follower and urgent work run on a loaded machine
                    await asyncio.sleep(0)
                if districts and recipient.district not in districts:
                    continue
                key = recipient.citizen_id.encode()
                reached = False
                for channel, value in encoder.encode(recipient):
                    parts = partitions[channel]
                    records.append(
                        (
                            encoder.topics[channel],
                            parts[recipient.key_hash % len(parts)],
                            key,
                            value,
                        )
                    )
                    result.expected[channel] += 1
                    reached = True
                result.recipients += reached
                if reached:
                    reached_ids.append(recipient.citizen_id)
            if reached_ids:
                await index.record_recipients(
                    alert.tenant_id, alert.alert_id, reached_ids, expires=alert.expires
                )
            if records:
                in_flight.append(await producer.send_partitioned(records))
            while len(in_flight) > max_in_flight:
                await asyncio.gather(*in_flight.popleft())
        while in_flight:
            await asyncio.gather(*in_flight.popleft())
    finally:
        for futures in in_flight:
            for future in futures:
                future.cancel()
    return result


async def plan_alert(
    *,
    alert: AlertPublished,
    index: AudienceIndex,
    producer: BatchProducer,
    per_shard: int,
    run_ttl_s: int,
) -> int:
    """Splits an alert into shards (by the size of its audience) and emits one
    `fanout.shard.<lane>` record per shard. A repeated alert keeps the shard count of its first
    planning. An expired alert is not expanded: its summary says 0 at once. Returns the
    number of shards emitted."""
    started_at = utcnow()
    if alert.expires <= started_at:
        log.warning("alert expired before fanout", extra={"alert_id": alert.alert_id})
        ALERTS_EXPANDED.labels(lane=alert.lane.value, outcome="expired").inc()
        await _summarize(producer, alert, ShardResult(), started_at)
        return 0
    size = await index.audience_size(
        alert.tenant_id,
        everyone=alert.audience.everyone,
        topics=alert.audience.topics,
        recipients_of=alert.references[0] if alert.references else None,
    )
    run = await index.begin_run(
        alert.alert_id,
        shards=index.shards_for(size, per_shard=per_shard),
        started_at=started_at,
        ttl_s=run_ttl_s,
    )
    topic = fanout_shard_topic(alert.lane)
    await producer.send_grouped(
        (
            topic,
            f"{alert.alert_id}:{shard}".encode(),
            FanoutShard(tenant_id=alert.tenant_id, alert=alert, shard=shard, shards=run.shards)
            .model_dump_json()
            .encode(),
        )
        for shard in range(run.shards)
    )
    log.info(
        "alert planned",
        extra={"alert_id": alert.alert_id, "shards": run.shards, "audience_bound": size},
    )
    return run.shards


async def run_shard(
    *,
    task: FanoutShard,
    index: AudienceIndex,
    producer: BatchProducer,
    chunk_size: int,
    max_in_flight: int,
    run_ttl_s: int,
    gate: PriorityGate | None = None,
) -> FanoutSummary | None:
    """Expands one shard, counts it once towards the alert's expected totals, and — when it is
    the last shard to be counted — emits the alert's `FanoutSummary` on `alert.fanout` (and
    returns it)."""
    alert = task.alert
    began = time.perf_counter()
    if alert.expires <= utcnow():
        # too late to deliver anything (the workers would drop every task): count the shard
        # as empty so the alert's summary still completes
        log.warning("shard of an expired alert skipped", extra={"alert_id": alert.alert_id})
        result = ShardResult()
    else:
        result = await _expand_gated(task, index, producer, chunk_size, max_in_flight, gate)
    counts = {f"expected:{c.value}": n for c, n in result.expected.items()}
    counts["recipients"] = result.recipients
    done, totals = await index.complete_shard(
        alert.alert_id,
        task.shard,
        counts,
        shards=task.shards,
        published_at=alert.published_at,
        ttl_s=run_ttl_s,
    )
    for channel, count in result.expected.items():
        TASKS_PRODUCED.labels(channel=channel.value, lane=alert.lane.value).inc(count)
    SHARDS_EXPANDED.labels(lane=alert.lane.value).inc()
    log.debug(
        "shard expanded",
        extra={
            "alert_id": alert.alert_id,
            "shard": task.shard,
            "tasks": sum(result.expected.values()),
            "seconds": round(time.perf_counter() - began, 3),
        },
    )
    if done < totals.get("shards", task.shards):
        return None
    run, _ = await index.run_of(alert.alert_id)
    started_at = run.started_at if run is not None else utcnow()
    total = ShardResult(
        expected=Counter({c: totals.get(f"expected:{c.value}", 0) for c in Channel}),
        recipients=totals.get("recipients", 0),
    )
    summary = await _summarize(producer, alert, total, started_at)
    ALERTS_EXPANDED.labels(lane=alert.lane.value, outcome="expanded").inc()
    EXPANSION_SECONDS.labels(lane=alert.lane.value).observe(
        (summary.completed_at - alert.published_at).total_seconds()
    )
    log.info(
        "alert expanded",
        extra={
            "alert_id": alert.alert_id,
            "tenant_id": alert.tenant_id,
            "shards": task.shards,
            "recipients": summary.recipients,
            "tasks": sum(summary.expected.values()),
            "seconds": round((summary.completed_at - started_at).total_seconds(), 3),
        },
    )
    return summary


async def _expand_gated(
    task: FanoutShard,
    index: AudienceIndex,
    producer: BatchProducer,
    chunk_size: int,
    max_in_flight: int,
    gate: PriorityGate | None,
) -> ShardResult:
    if gate is not None:
        gate.enter(task.alert.lane)
    try:
        return await expand_shard(
            alert=task.alert,
            shard=task.shard,
            shards=task.shards,
            index=index,
            producer=producer,
            chunk_size=chunk_size,
            max_in_flight=max_in_flight,
            gate=gate,
        )
    finally:
        if gate is not None:
            gate.leave(task.alert.lane)


async def _summarize(
    producer: BatchProducer, alert: AlertPublished, result: ShardResult, started_at: Any
) -> FanoutSummary:
    summary = FanoutSummary(
        tenant_id=alert.tenant_id,
        alert_id=alert.alert_id,
        lane=alert.lane,
        expected={channel: result.expected.get(channel, 0) for channel in Channel},
        recipients=result.recipients,
        started_at=started_at,
        completed_at=utcnow(),
    )
    await producer.send_model(ALERT_FANOUT, summary, key=alert.alert_id)
    return summary
