"""Expanding an alert into delivery tasks: one per citizen, per chosen channel, per contact.

An alert is *planned* (`plan_alert`: split into shards of the audience index, one
`fanout.shard.<lane>` record each) and every shard is *expanded* (`expand_shard`) by whichever
fanout instance consumes it. The last shard to be counted emits the alert's `FanoutSummary`."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
import uuid
from collections import Counter, deque
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import orjson

from sirene.runtime import BatchProducer
from sirene.schemas import (
    ALERT_FANOUT,
    AlertPublished,
    Audience,
    Channel,
    ChannelTexts,
    DeliveryTask,
    FanoutShard,
    FanoutSummary,
    Lane,
    Language,
    MsgType,
    PushPlatform,
    contact_key_for,
    delivery_topic,
    fanout_shard_topic,
    task_id_for,
    utcnow,
)
from sirene.schemas.geo import PreparedArea

from .metrics import (
    ALERTS_EXPANDED,
    EXPANSION_SECONDS,
    QUIET_HOURS,
    SHARDS_EXPANDED,
    TASKS_PRODUCED,
)
from .quiet import QuietClock
from .repository import AudienceIndex, Recipient
from .routing import CHANNEL_ORDER, addresses, fallback_address, routes_for

log = logging.getLogger(__name__)

Record = tuple[str, int, bytes | None, bytes]
"""(topic, partition, key, value) of a task record."""

T = TypeVar("T")


_CHANNEL = {c.value: c for c in Channel}
"""Channel by value, without an enum call per task on the hot path."""

ENCODE_SLICE = 1000
"""Citizens encoded between two yields to the event loop (heartbeats, the follower, and an
urgent shard in the same process get their turn)."""


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


@dataclass(frozen=True, slots=True)
class Where:
    """An alert's geographic restriction: citizens of one of its districts, or with their
    address point in one of its areas (closed polygons, `sirene.schemas.geo`)."""

    districts: frozenset[str]
    areas: PreparedArea | None

    @classmethod
    def of(cls, audience: Audience) -> Where | None:
        """None when the audience is not restricted to a place."""
        if not audience.districts and not audience.areas:
            return None
        areas = PreparedArea([a.polygon for a in audience.areas]) if audience.areas else None
        return cls(frozenset(audience.districts), areas)

    def admits(self, district: str | None, point: Sequence[float] | None) -> bool:
        """Whether a citizen of `district` living at `point` ([lon, lat]) is in the place."""
        if district is not None and district in self.districts:
            return True
        return self.areas is not None and point is not None and self.areas.contains(*point)


def tasks_for(alert: AlertPublished, recipient: Recipient) -> Iterator[DeliveryTask]:
    """Every task for one recipient, with the text in the citizen's language (German
    fallback). A channel without an active contact point yields nothing. (The reference form
    of what `TaskEncoder` emits as bytes.)"""
    language, texts = _texts(alert, recipient.language)
    for channel in sorted(channels_for(alert, recipient)):
        title, body = _title_body(channel, texts)
        for address, platform in addresses(channel, recipient.contacts):
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
                fallback_address=fallback_address(channel, recipient.contacts),
            )


_PER_TASK = (
    "event_id",
    "task_id",
    "citizen_id",
    "address",
    "push_platform",
    "fallback_address",
)


@dataclass
class EncodedChunk:
    """The task records of a chunk of citizens, tasks per channel (including those held back),
    who was reached now, who is held back for their quiet hours (by the epoch second they end)
    and how many were skipped because the post expires before their quiet hours end."""

    records: list[Record]
    counts: dict[str, int]
    reached: list[bytes]
    held: dict[int, list[bytes]] = field(default_factory=dict)
    skipped: int = 0


class TaskEncoder:
    """Encodes an alert's tasks straight to the JSON bytes `DeliveryTask` validates, without
    building a model per task: the fields every task of a (language, channel) shares are
    serialized once, by pydantic, the per-citizen fields come precomputed from the index
    (`routing.Routes`), and per task only the event id and the task id (one sha256) are added.
    Equal to `tasks_for(...)` serialized (a unit test holds them together)."""

    def __init__(self, alert: AlertPublished) -> None:
        self.alert = alert
        self._alert_prefix = f"{alert.alert_id}\x1f".encode()
        self._event_prefix = uuid.uuid4().hex[:20].encode()
        self._events = 0
        self.topics = {channel.value: delivery_topic(channel, alert.lane) for channel in Channel}
        self._channel_of_topic = {topic: _CHANNEL[ch] for ch, topic in self.topics.items()}
        # each head ends where the event id's counter begins
        self._heads = {
            (language.value, channel.value): self._head(language, channel)
            + b'"event_id":"'
            + self._event_prefix
            for language in Language
            for channel in Channel
        }
        self._everyone = alert.audience.everyone
        self._topics = sorted(set(alert.audience.topics))

    def _head(self, language: Language, channel: Channel) -> bytes:
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
        return orjson.dumps(sample)[:-1] + b","

    def encode_chunk(
        self,
        ids: Sequence[bytes],
        raws: Sequence[bytes | None],
        partitions: dict[str, list[int]],
        where: Where | None = None,
        quiet: QuietClock | None = None,
    ) -> EncodedChunk:
        """The task records of citizens given by id and compact index profile (None: left the
        index meanwhile, skipped), partitioned by citizen as Kafka's default partitioner does
        (`partitions`: channel → the lane topic's partitions). With `where`, only citizens
        in that place (district or area). With `quiet` (bulk posts), a citizen inside their
        quiet hours gets no task now: they are held back until the hours end (their tasks are
        counted), or skipped when the post expires before."""
        records: list[Record] = []
        reached: list[bytes] = []
        held: dict[int, list[bytes]] = {}
        skipped = 0
        expires = self.alert.expires.timestamp()
        counts = dict.fromkeys(CHANNEL_ORDER, 0)
        heads, topics, prefix = self._heads, self.topics, self._alert_prefix
        sha256, loads, append = hashlib.sha256, orjson.loads, records.append
        everyone, wanted = self._everyone, self._topics
        single = wanted[0] if len(wanted) == 1 else None
        events = self._events
        for citizen, raw in zip(ids, raws, strict=True):
            if raw is None:
                continue
            data = loads(raw)
            if where is not None and not where.admits(data["d"], data.get("p")):
                continue
            if everyone:
                chosen = data["a"]
            elif single is not None:
                chosen = data["s"].get(single)
            else:
                subs = data["s"]
                chosen = sorted({ch for t in wanted for ch in subs.get(t, ())})
            if not chosen:
                continue
            routes = data["t"]
            if quiet is not None and "q" in data:
                release = quiet.held_until(data["q"])
                if release is not None:
                    sizes = [(ch, len(routes.get(ch) or ())) for ch in chosen]
                    if not any(n for _, n in sizes):
                        continue
                    if release >= expires:
                        skipped += 1
                        continue
                    for channel, n in sizes:
                        counts[channel] += n
                    held.setdefault(release, []).append(citizen)
                    continue
            language, hashed = data["l"], data["h"]
            hit = False
            for channel in chosen:
                contacts = routes.get(channel)
                if not contacts:
                    continue
                head, topic = heads[language, channel], topics[channel]
                parts = partitions[channel]
                partition = parts[hashed % len(parts)]
                for suffix, tail in contacts:
                    events += 1
                    append(
                        (
                            topic,
                            partition,
                            citizen,
                            b'%s%012x","task_id":"%s",%s'
                            % (
                                head,
                                events,
                                sha256(prefix + suffix.encode()).hexdigest()[:32].encode(),
                                tail.encode(),
                            ),
                        )
                    )
                counts[channel] += len(contacts)
                hit = True
            if hit:
                reached.append(citizen)
        self._events = events
        return EncodedChunk(records, counts, reached, held, skipped)

    def encode(self, recipient: Recipient) -> Iterator[tuple[Channel, bytes]]:
        """(channel, JSON value) of every task of one recipient (the unbatched form of
        `encode_chunk`, for tests and tools)."""
        subscriptions = {t: sorted(set(chs)) for t, chs in recipient.subscriptions.items() if chs}
        chosen = {ch for chs in subscriptions.values() for ch in chs}
        raw = orjson.dumps(
            {
                "l": recipient.language.value,
                "d": recipient.district,
                **({"p": list(recipient.location)} if recipient.location else {}),
                "h": recipient.key_hash,
                "s": subscriptions,
                "a": [ch for ch in CHANNEL_ORDER if ch in chosen],
                "t": recipient.routes
                if recipient.routes is not None
                else routes_for(recipient.citizen_id, recipient.contacts),
            }
        )
        partitions = {topic: [0] for topic in self.topics}
        chunk = self.encode_chunk([recipient.citizen_id.encode()], [raw], partitions)
        for topic, _, _, value in chunk.records:
            yield self._channel_of_topic[topic], value


@dataclass
class ShardResult:
    """What expanding one shard produced."""

    expected: Counter[Channel] = field(default_factory=Counter)
    recipients: int = 0
    held: int = 0
    """Of the recipients, those held back for their quiet hours."""
    skipped: int = 0
    """Citizens in quiet hours that outlast the post."""


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
    zone: ZoneInfo | None = None,
    release: int | None = None,
) -> ShardResult:
    """Streams one shard of the alert's audience from the index and emits its tasks chunk by
    chunk through the batch producer, partitioned by citizen (Kafka's default partitioning).
    At most `max_in_flight` chunks wait for their acknowledgement at a time, so memory stays
    flat whatever the audience size; the function returns once every task is acknowledged.
    Re-running it yields the same task ids.

    With `zone` (local time of quiet hours), a bulk post holds back the citizens inside their
    quiet hours (`quiet.py`). With `release`, the shard expands exactly the citizens held back
    until that moment, as they are now (no quiet hours apply)."""
    result = ShardResult()
    encoder = TaskEncoder(alert)
    # an Update/Cancel goes to exactly the citizens the alert it references reached
    referenced = alert.references[0] if alert.references and release is None else None
    where = Where.of(alert.audience) if referenced is None else None
    waiting = await _waiting_for(alert, index) if referenced is not None else []
    quiet = (
        QuietClock(utcnow(), zone)
        if zone is not None and release is None and alert.lane is Lane.BULK
        else None
    )
    partitions = {
        channel: await producer.partitions_for(topic) for channel, topic in encoder.topics.items()
    }
    in_flight: deque[list[asyncio.Future[Any]]] = deque()
    chunks = prefetched(
        index.audience_raw(
            alert.tenant_id,
            everyone=alert.audience.everyone,
            topics=alert.audience.topics,
            chunk_size=chunk_size,
            shard=shard,
            shards=shards,
            recipients_of=referenced,
            held_of=(alert.alert_id, release) if release is not None else None,
            waiting=waiting,
        )
    )
    try:
        async for bucket, ids, raws in chunks:
            if gate is not None:
                await gate.wait_turn(alert.lane)
            records: list[Record] = []
            reached: list[bytes] = []
            held: dict[int, list[bytes]] = {}
            for start in range(0, len(ids), ENCODE_SLICE):
                if start:
                    await asyncio.sleep(0)
                end = start + ENCODE_SLICE
                part = encoder.encode_chunk(
                    ids[start:end], raws[start:end], partitions, where, quiet
                )
                records.extend(part.records)
                reached.extend(part.reached)
                for due, citizens in part.held.items():
                    held.setdefault(due, []).extend(citizens)
                    result.held += len(citizens)
                result.skipped += part.skipped
                for channel, count in part.counts.items():
                    if count:
                        result.expected[_CHANNEL[channel]] += count
            result.recipients += len(reached) + sum(len(c) for c in held.values())
            if held:
                await index.hold(alert, bucket, held)
            if reached:
                await index.record_recipients(
                    alert.tenant_id, alert.alert_id, bucket, reached, expires=alert.expires
                )
            if records:
                in_flight.append(await producer.send_partitioned(records))
            while len(in_flight) > max_in_flight:
                await asyncio.gather(*in_flight.popleft())
        while in_flight:
            await asyncio.gather(*in_flight.popleft())
    finally:
        await chunks.aclose()
        for futures in in_flight:
            for future in futures:
                future.cancel()
    return result


async def prefetched(source: AsyncIterator[T]) -> AsyncGenerator[T, None]:
    """Yields the items of `source`, fetching the next one while the caller works on the
    current one (the Redis round trips of the audience overlap with encoding)."""
    pending: asyncio.Future[T] = asyncio.ensure_future(anext(source))
    try:
        while True:
            try:
                item = await pending
            except StopAsyncIteration:
                return
            pending = asyncio.ensure_future(anext(source))
            yield item
    finally:
        if not pending.done():
            pending.cancel()
        with contextlib.suppress(BaseException):
            await pending
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            await aclose()


async def _waiting_for(alert: AlertPublished, index: AudienceIndex) -> list[int]:
    """For an Update: the releases its original held citizens back for — they never got the
    original, so they get the correction (after their quiet hours, if it is a bulk post). A
    Cancel goes only to whom the original reached."""
    if alert.msg_type is not MsgType.UPDATE or not alert.references:
        return []
    return await index.held_releases(alert.references[0])


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
    for referenced in alert.references:
        # a correction or cancellation supersedes the post: whoever it still waits for (quiet
        # hours) gets only the correction, if anything
        await withdraw_held(index=index, producer=producer, alert_id=referenced)
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
        waiting=await _waiting_for(alert, index) if alert.references else [],
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
    zone: ZoneInfo | None = None,
) -> FanoutSummary | None:
    """Expands one shard, counts it once towards the alert's expected totals, and — when it is
    the last shard to be counted — emits the alert's `FanoutSummary` on `alert.fanout` (and
    returns it). A quiet-hours release shard is only expanded: its citizens were counted when
    they were held back."""
    alert = task.alert
    began = time.perf_counter()
    if alert.expires <= utcnow():
        # too late to deliver anything (the workers would drop every task): count the shard
        # as empty so the alert's summary still completes
        log.warning("shard of an expired alert skipped", extra={"alert_id": alert.alert_id})
        result = ShardResult()
    else:
        result = await _expand_gated(task, index, producer, chunk_size, max_in_flight, gate, zone)
    if result.held or result.skipped:
        QUIET_HOURS.labels(outcome="held").inc(result.held)
        QUIET_HOURS.labels(outcome="skipped_expiring").inc(result.skipped)
    if task.release is not None:
        QUIET_HOURS.labels(outcome="released").inc(result.recipients)
        for channel, count in result.expected.items():
            TASKS_PRODUCED.labels(channel=channel.value, lane=alert.lane.value).inc(count)
        log.info(
            "quiet hours over: held-back citizens released",
            extra={
                "alert_id": alert.alert_id,
                "shard": task.shard,
                "recipients": result.recipients,
            },
        )
        return None
    counts = {f"expected:{c.value}": n for c, n in result.expected.items()}
    counts["recipients"] = result.recipients
    counts["held"] = result.held
    done, totals = await index.complete_shard(
        alert.alert_id,
        task.shard,
        counts,
        shards=task.shards,
        published_at=alert.published_at,
        ttl_s=run_ttl_s,
    )
    for channel, count in result.expected.items():
        # held-back tasks are counted as produced when they are released
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
        held=totals.get("held", 0),
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
    zone: ZoneInfo | None,
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
            zone=zone,
            release=task.release,
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
        held=result.held,
        started_at=started_at,
        completed_at=utcnow(),
    )
    await producer.send_model(ALERT_FANOUT, summary, key=alert.alert_id)
    return summary


async def release_due(
    *, index: AudienceIndex, producer: BatchProducer, instance: str, now: datetime | None = None
) -> int:
    """Releases the citizens whose quiet hours have ended: for each due (post, release) entry
    it emits release shards on the bulk shard topic (as many as the post's expansion had), then
    removes the entry. One instance at a time per entry (a short claim); a crash before the
    removal makes a later pass emit the shards again, which yields the same task ids. Returns
    the entries released."""
    released = 0
    for alert_id, release in await index.due_releases(now or utcnow()):
        if not await index.claim_release(alert_id, release, instance, ttl_s=60):
            continue
        alert = await index.held_alert(alert_id)
        if alert is not None:
            run, _ = await index.run_of(alert_id)
            shards = run.shards if run is not None else 1
            await producer.send_grouped(
                (
                    fanout_shard_topic(Lane.BULK),
                    f"{alert_id}:{release}:{shard}".encode(),
                    FanoutShard(
                        tenant_id=alert.tenant_id,
                        alert=alert,
                        shard=shard,
                        shards=shards,
                        release=release,
                    )
                    .model_dump_json()
                    .encode(),
                )
                for shard in range(shards)
            )
        await index.finish_release(alert_id, release)
        released += 1
    return released


async def withdraw_held(*, index: AudienceIndex, producer: BatchProducer, alert_id: str) -> None:
    """Withdraws a post's pending quiet-hours releases (it was cancelled or updated) and takes
    their tasks out of its expected totals, emitting the corrected `FanoutSummary`."""
    releases = await index.drop_held(alert_id)
    alert = await index.held_alert(alert_id) if releases else None
    if alert is None:
        return
    run, _ = await index.run_of(alert_id)
    encoder = TaskEncoder(alert)
    partitions = {channel: [0] for channel in encoder.topics}
    counts: Counter[str] = Counter()
    citizens = 0
    for release in releases:
        async for _bucket, ids, raws in index.audience_raw(
            alert.tenant_id,
            everyone=alert.audience.everyone,
            topics=alert.audience.topics,
            chunk_size=5000,
            held_of=(alert_id, release),
        ):
            # counted as they were held back: the same routes, without the quiet check
            part = encoder.encode_chunk(ids, raws, partitions, Where.of(alert.audience))
            counts.update(part.counts)
            citizens += len(part.reached)
    QUIET_HOURS.labels(outcome="withdrawn").inc(citizens)
    totals = await index.adjust_totals(
        alert_id,
        {
            **{f"expected:{ch}": -n for ch, n in counts.items()},
            "recipients": -citizens,
            "held": -citizens,
        },
    )
    result = ShardResult(
        expected=Counter({c: max(0, totals.get(f"expected:{c.value}", 0)) for c in Channel}),
        recipients=max(0, totals.get("recipients", 0)),
        held=max(0, totals.get("held", 0)),
    )
    await _summarize(producer, alert, result, run.started_at if run is not None else utcnow())
    log.info(
        "held-back deliveries withdrawn",
        extra={"alert_id": alert_id, "releases": len(releases), "recipients": citizens},
    )
