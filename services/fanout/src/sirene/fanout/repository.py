"""The audience index in Redis, built from the compacted `citizen.profile` topic, and the
per-alert bookkeeping of sharded expansion.

Layout (prefix `sirene:aud`; `<b>` is the citizen's bucket, crc32(citizen id) mod `buckets`):
- `<p>:layout` — `v4:<buckets>`; a different (or missing) value means the index is rebuilt;
- `<p>:prof:<tenant>:<citizen>` — the citizen's routing profile (compact JSON, with the
  precomputed routes of `routing.py`);
- `<p>:topic:<tenant>:<topic>:<b>` — active citizen ids subscribed to the topic, per bucket;
- `<p>:all:<tenant>:<b>` — all active citizen ids, per bucket;
- `<p>:offsets` — hash partition → next offset of `citizen.profile` already applied;
- `<p>:follower` — lease of the one instance that follows the profile topic;
- `<p>:run:<alert>` / `<p>:done:<alert>` — an alert's shard count, start time and expected
  counts per channel, and the shards already counted (kept `run_ttl_s`);
- `<p>:held:<alert>:<release>:<b>` — citizens a bulk post was held back for during their quiet
  hours, by the epoch second they end; `<p>:held-due` (sorted set `<alert>|<release>` by
  release) says what is due when, `<p>:held-releases:<alert>` every release of the post, and
  `<p>:held-alert:<alert>` keeps the post to expand then (all kept until a day after the post
  expires; see `quiet.py`).

Index updates and the offsets they came from are written in one MULTI/EXEC, fenced by the
follower lease, so the index is exactly as current as the offsets say and a follower that lost
its lease cannot write; when Redis loses its data, the offsets go with it and the index is
rebuilt from the start of the compacted topic.

Buckets are what shards are made of: shard `s` of `n` (n divides `buckets`) is every bucket
`b` with `b mod n == s`, so any instance can expand any shard without coordination."""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import orjson
from aiokafka.partitioner import murmur2
from redis.asyncio import Redis
from redis.exceptions import WatchError

from sirene.schemas import AlertPublished, CitizenProfile, Language, utcnow

from .quiet import window_of
from .routing import CHANNEL_ORDER, Routes, routes_for

LAYOUT_VERSION = "v4"


class LeaseLostError(RuntimeError):
    """This instance no longer holds the follower lease; another instance follows now."""


@dataclass(frozen=True, slots=True)
class Recipient:
    """What the fanout needs of one citizen. Read from the index, it carries its `routes`
    and no `contacts` (the routes hold the contact points)."""

    citizen_id: str
    language: Language
    district: str | None
    contacts: dict[str, object]
    subscriptions: dict[str, list[str]]
    key_hash: int = 0
    """Kafka's murmur2 hash of the citizen id (as the default partitioner computes it), kept in
    the index so emission does not hash every key again."""
    routes: Routes | None = None
    """The precomputed per-task parts (`routing.Routes`); None: computed from `contacts`."""
    location: tuple[float, float] | None = None
    """The address point as (lon, lat), for area targeting."""


Chunk = tuple[int, list[bytes], list[bytes | None]]
"""(bucket, citizen ids, their compact profiles) — what `AudienceIndex.audience_raw` streams;
a profile is None when the citizen left the index between the set scan and the fetch."""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def key_hash(citizen_id: str) -> int:
    """The positive murmur2 hash Kafka's default partitioner uses for a key."""
    return int(murmur2(citizen_id.encode())) & 0x7FFFFFFF


def _compact(profile: CitizenProfile) -> bytes:
    """The citizen's routing profile: version, language, district, `p` the address point
    ([lon, lat]; absent when none), Kafka key hash,
    subscriptions (topic → channels, sorted), `a` every subscribed channel (sorted), `t` the
    routes (`routing.Routes`, which also hold the contact points) and `q` the quiet hours
    (`[start, end]` minutes after local midnight; absent when none)."""
    c = profile.contacts
    contacts = {
        "sms": c.sms,
        "voice": c.voice,
        "email": c.email,
        "push": [[d.platform.value, d.token] for d in c.push],
    }
    subscriptions = {
        t: sorted({ch.value for ch in chs}) for t, chs in profile.subscriptions.items() if chs
    }
    chosen = {ch for chs in subscriptions.values() for ch in chs}
    quiet = window_of(profile.quiet_hours)
    return orjson.dumps(
        {
            **({"q": quiet} if quiet else {}),
            "v": profile.version,
            "l": profile.language.value,
            "d": profile.district,
            **({"p": [loc.lon, loc.lat]} if (loc := profile.location) else {}),
            "h": key_hash(profile.citizen_id),
            "s": subscriptions,
            "a": [ch for ch in CHANNEL_ORDER if ch in chosen],
            "t": routes_for(profile.citizen_id, contacts),
        }
    )


_LANGUAGE = {language.value: language for language in Language}


def _recipient(citizen_id: str, raw: bytes) -> Recipient:
    data = orjson.loads(raw)
    return Recipient(
        citizen_id=citizen_id,
        language=_LANGUAGE[data["l"]],
        district=data["d"],
        contacts={},
        subscriptions=data["s"],
        key_hash=data["h"],
        routes=data["t"],
        location=(data["p"][0], data["p"][1]) if "p" in data else None,
    )


# Counts one shard of an alert exactly once (a re-expanded shard adds nothing) and returns how
# many shards are counted and the totals so far.
# A run whose record is gone (expired, or planned against another index) is recorded anew from
# the shard's own shard count and the alert's publish time.
# KEYS: run hash, done set. ARGV: shard, ttl seconds, shards, started_at, then field/increment
# pairs.
_COMPLETE_SHARD = """
redis.call('HSETNX', KEYS[1], 'shards', ARGV[3])
redis.call('HSETNX', KEYS[1], 'started_at', ARGV[4])
if redis.call('SADD', KEYS[2], ARGV[1]) == 1 then
  for i = 5, #ARGV, 2 do redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return {redis.call('SCARD', KEYS[2]), redis.call('HGETALL', KEYS[1])}
"""

# One step of streaming an audience set with its profiles: SSCAN, then the profile of each
# member (by key prefix + id; nil when gone), in slices (Lua's unpack has a limit).
# KEYS: the set. ARGV: cursor, count, profile key prefix. Returns {cursor, id, profile, ...}.
# (Profile keys are derived, not declared: the index lives on one Redis, not a cluster.)
_SCAN_PROFILES = """
local scanned = redis.call('SSCAN', KEYS[1], ARGV[1], 'COUNT', ARGV[2])
local ids = scanned[2]
local out = {scanned[1]}
for first = 1, #ids, 1000 do
  local last = math.min(first + 999, #ids)
  local keys = {}
  for i = first, last do keys[#keys + 1] = ARGV[3] .. ids[i] end
  local values = redis.call('MGET', unpack(keys))
  for i = first, last do
    out[#out + 1] = ids[i]
    out[#out + 1] = values[i - first + 1]
  end
end
return out
"""

# Adds newline-separated members to a set and sets its expiry: one argument instead of
# thousands for the client to pack. KEYS: the set. ARGV: members, ttl seconds.
_ADD_MEMBERS = """
local batch = {}
for member in string.gmatch(ARGV[1], '[^\\n]+') do
  batch[#batch + 1] = member
  if #batch == 1000 then
    redis.call('SADD', KEYS[1], unpack(batch))
    batch = {}
  end
end
if #batch > 0 then redis.call('SADD', KEYS[1], unpack(batch)) end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""

# Takes or renews the follower lease. KEYS: lease. ARGV: instance id, ttl ms. Returns 1 if held.
_LEASE = """
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""


HELD_KEPT_AFTER_EXPIRY = timedelta(days=1)
"""Held-back citizens of a post are kept this long after it expires (then nothing is due)."""

RECIPIENTS_KEPT_AFTER_EXPIRY = timedelta(days=2)
"""An Update or Cancel of an alert that expired longer ago has nobody left to warn."""


@dataclass(frozen=True, slots=True)
class Run:
    """An alert's expansion as recorded in Redis."""

    shards: int
    started_at: datetime


class AudienceIndex:
    """Reads and maintains the audience index. Safe to share between tasks."""

    def __init__(
        self, redis: Redis, prefix: str, *, buckets: int = 64, lease_ms: int = 15_000
    ) -> None:
        if buckets < 1 or buckets & (buckets - 1):
            raise ValueError("buckets must be a power of two")
        self.redis = redis
        self.prefix = prefix
        self.buckets = buckets
        self.lease_ms = lease_ms
        self._complete_shard = redis.register_script(_COMPLETE_SHARD)
        self._scan_profiles = redis.register_script(_SCAN_PROFILES)
        self._add_members = redis.register_script(_ADD_MEMBERS)
        self._lease = redis.register_script(_LEASE)

    # --- keys ---------------------------------------------------------------------------------

    def bucket(self, citizen: str) -> int:
        """The bucket a citizen's id falls into."""
        return zlib.crc32(citizen.encode()) & (self.buckets - 1)

    def _prof(self, tenant: str, citizen: str) -> str:
        return f"{self.prefix}:prof:{tenant}:{citizen}"

    def _topic(self, tenant: str, topic: str, bucket: int) -> str:
        return f"{self.prefix}:topic:{tenant}:{topic}:{bucket}"

    def _all(self, tenant: str, bucket: int) -> str:
        return f"{self.prefix}:all:{tenant}:{bucket}"

    @property
    def _offsets(self) -> str:
        return f"{self.prefix}:offsets"

    @property
    def _layout(self) -> str:
        return f"{self.prefix}:layout"

    @property
    def lease_key(self) -> str:
        """The follower lease."""
        return f"{self.prefix}:follower"

    def _rcpt(self, tenant: str, alert_id: str, bucket: int) -> str:
        """Who an alert reached (one set per bucket, like the audience)."""
        return f"{self.prefix}:rcpt:{tenant}:{alert_id}:{bucket}"

    def _held(self, alert_id: str, release: int, bucket: int) -> str:
        """Citizens held back for their quiet hours, released at `release` (epoch second)."""
        return f"{self.prefix}:held:{alert_id}:{release}:{bucket}"

    @property
    def _held_due(self) -> str:
        return f"{self.prefix}:held-due"

    def _held_releases(self, alert_id: str) -> str:
        return f"{self.prefix}:held-releases:{alert_id}"

    def _held_alert(self, alert_id: str) -> str:
        return f"{self.prefix}:held-alert:{alert_id}"

    def _run(self, alert_id: str) -> str:
        return f"{self.prefix}:run:{alert_id}"

    def _done(self, alert_id: str) -> str:
        return f"{self.prefix}:done:{alert_id}"

    # --- layout and follower lease --------------------------------------------------------------

    async def ensure_layout(self) -> bool:
        """Makes sure the stored index has this layout (version and bucket count); if not, it
        is deleted so the follower rebuilds it from the start of the profile topic. Returns
        True when it was reset. Only the lease holder calls this."""
        wanted = f"{LAYOUT_VERSION}:{self.buckets}".encode()
        if await self.redis.get(self._layout) == wanted:
            return False
        async for keys in self._scan_batches(f"{self.prefix}:*"):
            await self.redis.unlink(*keys)
        await self.redis.set(self._layout, wanted)
        return True

    async def _scan_batches(self, pattern: str) -> AsyncIterator[list[bytes]]:
        batch: list[bytes] = []
        async for key in self.redis.scan_iter(match=pattern, count=1000):
            if key == self.lease_key.encode():
                continue
            batch.append(key)
            if len(batch) >= 1000:
                yield batch
                batch = []
        if batch:
            yield batch

    async def hold_lease(self, instance: str, ttl_ms: int) -> bool:
        """Takes or renews the follower lease for `instance`; False if another holds it."""
        return bool(await self._lease(keys=[self.lease_key], args=[instance, ttl_ms]))

    async def release_lease(self, instance: str) -> None:
        """Gives the lease up (at shutdown), if this instance holds it."""
        if await self.redis.get(self.lease_key) == instance.encode():
            await self.redis.delete(self.lease_key)

    async def offsets(self) -> dict[int, int]:
        """Next offset to read per partition of `citizen.profile`."""
        raw = await self.redis.hgetall(self._offsets)
        return {int(k): int(v) for k, v in raw.items()}

    # --- index maintenance ----------------------------------------------------------------------

    async def apply(
        self,
        changes: Sequence[tuple[str, str, CitizenProfile | None]],
        offsets: dict[int, int],
        *,
        lease: str | None = None,
    ) -> dict[str, int]:
        """Applies profile records (tenant, citizen, profile or None for erasure) and records
        the offsets they came from, atomically. Older versions than the stored one are
        ignored. With `lease`, the write happens only while that instance holds the follower
        lease (`LeaseLostError` otherwise). Returns counts per outcome."""
        keys = [self._prof(t, c) for t, c, _ in changes]
        for _ in range(5):
            async with self.redis.pipeline(transaction=True) as pipe:
                try:
                    if lease is not None:
                        await pipe.watch(self.lease_key)
                        holder = await pipe.get(self.lease_key)
                        if holder is None and await self.hold_lease(lease, self.lease_ms):
                            continue  # it had lapsed and nobody took it: held again, look again
                        if holder != lease.encode():
                            raise LeaseLostError("the follower lease is held by another instance")
                    # after WATCH the pipeline runs commands at once; without, ask directly
                    reader = pipe if lease is not None else self.redis
                    current = await reader.mget(keys) if keys else []
                    pipe.multi()  # type: ignore[no-untyped-call]
                    outcome = self._queue_changes(pipe, changes, keys, current)
                    if offsets:
                        pipe.hset(
                            self._offsets, mapping={str(p): str(o) for p, o in offsets.items()}
                        )
                    await pipe.execute()
                    return outcome
                except WatchError:
                    continue  # the lease was renewed or taken meanwhile: look again
        raise LeaseLostError("the follower lease kept changing during the index write")

    def _queue_changes(
        self,
        pipe: Any,
        changes: Sequence[tuple[str, str, CitizenProfile | None]],
        keys: Sequence[str],
        current: Sequence[bytes | str | None],
    ) -> dict[str, int]:
        stored: dict[str, dict[str, Any]] = {}
        for key, raw in zip(keys, current, strict=True):
            if raw is not None:
                stored[key] = orjson.loads(raw)
        outcome = {"applied": 0, "stale": 0, "erased": 0}
        for (tenant, citizen, profile), key in zip(changes, keys, strict=True):
            bucket = self.bucket(citizen)
            old = stored.get(key)
            if profile is not None and old is not None and int(old["v"]) > profile.version:
                outcome["stale"] += 1
                continue
            old_topics: set[str] = set(old["s"]) if old is not None else set()
            if profile is None or not profile.active:
                for topic in old_topics:
                    pipe.srem(self._topic(tenant, topic, bucket), citizen)
                pipe.srem(self._all(tenant, bucket), citizen)
                pipe.delete(key)
                stored.pop(key, None)
                outcome["erased"] += 1
                continue
            new_topics = {t for t, chs in profile.subscriptions.items() if chs}
            for topic in old_topics - new_topics:
                pipe.srem(self._topic(tenant, topic, bucket), citizen)
            for topic in new_topics:
                pipe.sadd(self._topic(tenant, topic, bucket), citizen)
            pipe.sadd(self._all(tenant, bucket), citizen)
            compact = _compact(profile)
            pipe.set(key, compact)
            stored[key] = orjson.loads(compact)
            outcome["applied"] += 1
        return outcome

    # --- audience ------------------------------------------------------------------------------

    def _sources(
        self,
        tenant: str,
        *,
        everyone: bool,
        topics: Iterable[str],
        bucket: int,
        recipients_of: str | None = None,
        held_of: tuple[str, int] | None = None,
        waiting: Sequence[int] = (),
    ) -> list[str]:
        if held_of is not None:  # a quiet-hours release: the citizens held back until then
            return [self._held(held_of[0], held_of[1], bucket)]
        if recipients_of is not None:  # an Update/Cancel: exactly who the original reached
            # (an Update also those the original was still held back for: `waiting` releases)
            return [
                self._rcpt(tenant, recipients_of, bucket),
                *(self._held(recipients_of, release, bucket) for release in waiting),
            ]
        if everyone:
            return [self._all(tenant, bucket)]
        return [self._topic(tenant, t, bucket) for t in sorted(set(topics))]

    async def audience_size(
        self,
        tenant: str,
        *,
        everyone: bool,
        topics: Iterable[str],
        recipients_of: str | None = None,
        held_of: tuple[str, int] | None = None,
        waiting: Sequence[int] = (),
    ) -> int:
        """An upper bound of the audience (citizens in several topics count once per topic),
        from set sizes only — used to choose how many shards an alert gets."""
        topics = list(topics)
        pipe = self.redis.pipeline(transaction=False)
        for bucket in range(self.buckets):
            for source in self._sources(
                tenant,
                everyone=everyone,
                topics=topics,
                bucket=bucket,
                recipients_of=recipients_of,
                held_of=held_of,
                waiting=waiting,
            ):
                pipe.scard(source)
        return sum(int(n) for n in await pipe.execute())

    def shards_for(self, size: int, *, per_shard: int) -> int:
        """How many shards an audience of `size` gets: the smallest power of two that keeps
        each shard at about `per_shard` citizens, at most one shard per bucket."""
        shards = 1
        while shards < self.buckets and size > shards * per_shard:
            shards *= 2
        return shards

    async def audience_raw(
        self,
        tenant: str,
        *,
        everyone: bool,
        topics: Iterable[str],
        chunk_size: int,
        shard: int = 0,
        shards: int = 1,
        recipients_of: str | None = None,
        held_of: tuple[str, int] | None = None,
        waiting: Sequence[int] = (),
    ) -> AsyncIterator[Chunk]:
        """Streams one shard of the audience in chunks of about `chunk_size` (never all at
        once), as raw ids and compact profiles, one bucket at a time. A citizen comes once per
        shard even if in several targeted topics (or returned twice by `SSCAN` while a set is
        resized): the shard remembers the ids of the bucket it is on, which bounds its memory
        by a bucket, not by the alert."""
        if shards < 1 or self.buckets % shards or not 0 <= shard < shards:
            raise ValueError(f"shard {shard} of {shards} does not divide {self.buckets} buckets")
        topics = list(topics)
        prof = self._prof(tenant, "").encode()
        for bucket in range(shard, self.buckets, shards):
            seen: set[bytes] = set()
            for source in self._sources(
                tenant,
                everyone=everyone,
                topics=topics,
                bucket=bucket,
                recipients_of=recipients_of,
                held_of=held_of,
                waiting=waiting,
            ):
                cursor = b"0"
                while True:
                    # one round trip: SSCAN and the profiles of what it returned, read by a
                    # script so the client does not pack thousands of keys per chunk
                    reply = await self._scan_profiles(
                        keys=[source], args=[cursor, chunk_size, prof]
                    )
                    cursor = reply[0]
                    ids: list[bytes] = []
                    raws: list[bytes | None] = []
                    for i in range(1, len(reply), 2):
                        member = reply[i]
                        if member not in seen:
                            seen.add(member)
                            ids.append(member)
                            raws.append(reply[i + 1])
                    if ids:
                        yield bucket, ids, raws
                    if cursor == b"0":
                        break

    async def audience(
        self,
        tenant: str,
        *,
        everyone: bool,
        topics: Iterable[str],
        chunk_size: int,
        shard: int = 0,
        shards: int = 1,
        recipients_of: str | None = None,
        held_of: tuple[str, int] | None = None,
    ) -> AsyncIterator[list[Recipient]]:
        """`audience_raw` as `Recipient`s (for the estimate and tests; expansion reads raw)."""
        async for _, ids, raws in self.audience_raw(
            tenant,
            everyone=everyone,
            topics=topics,
            chunk_size=chunk_size,
            shard=shard,
            shards=shards,
            recipients_of=recipients_of,
            held_of=held_of,
        ):
            yield [
                _recipient(c.decode(), raw)
                for c, raw in zip(ids, raws, strict=True)
                if isinstance(raw, bytes)
            ]

    # --- per-alert bookkeeping --------------------------------------------------------------

    async def record_recipients(
        self,
        tenant: str,
        alert_id: str,
        bucket: int,
        citizen_ids: Sequence[bytes],
        *,
        expires: datetime,
    ) -> None:
        """Adds citizens of one bucket (a chunk of `audience_raw`) to the alert's recipients,
        in one round trip (idempotent), kept until `RECIPIENTS_KEPT_AFTER_EXPIRY` after the
        alert expires: an Update or Cancel of it is expanded over exactly these citizens."""
        if not citizen_ids:
            return
        ttl = max(60, int((expires - utcnow() + RECIPIENTS_KEPT_AFTER_EXPIRY).total_seconds()))
        await self._add_members(
            keys=[self._rcpt(tenant, alert_id, bucket)], args=[b"\n".join(citizen_ids), ttl]
        )

    async def hold(self, alert: AlertPublished, bucket: int, held: dict[int, list[bytes]]) -> None:
        """Records citizens of one bucket the post is held back for, by the epoch second their
        quiet hours end, in one round trip (idempotent: sets, and the first due entry wins)."""
        if not held:
            return
        ttl = max(60, int((alert.expires - utcnow() + HELD_KEPT_AFTER_EXPIRY).total_seconds()))
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(self._held_alert(alert.alert_id), alert.model_dump_json(), ex=ttl, nx=True)
        for release, citizens in held.items():
            key = self._held(alert.alert_id, release, bucket)
            pipe.sadd(key, *citizens)
            pipe.expire(key, ttl)
            pipe.zadd(self._held_due, {f"{alert.alert_id}|{release}": release}, nx=True)
            pipe.sadd(self._held_releases(alert.alert_id), release)
        pipe.expire(self._held_releases(alert.alert_id), ttl)
        await pipe.execute()

    async def held_releases(self, alert_id: str) -> list[int]:
        """Every release a post held citizens back for (pending, released or withdrawn)."""
        return sorted(int(r) for r in await self.redis.smembers(self._held_releases(alert_id)))

    async def due_releases(self, now: datetime, limit: int = 50) -> list[tuple[str, int]]:
        """(alert id, release) of held-back citizens whose quiet hours have ended."""
        members = await self.redis.zrangebyscore(
            self._held_due, 0, int(now.timestamp()), start=0, num=limit
        )
        due = []
        for member in cast(list[bytes], members):
            alert_id, _, release = _text(member).partition("|")
            due.append((alert_id, int(release)))
        return due

    async def claim_release(self, alert_id: str, release: int, instance: str, ttl_s: int) -> bool:
        """Lets one instance at a time release one (alert, release) entry."""
        key = f"{self.prefix}:held-lock:{alert_id}|{release}"
        return bool(await self.redis.set(key, instance, nx=True, ex=ttl_s))

    async def held_alert(self, alert_id: str) -> AlertPublished | None:
        """The held-back post, as it was published (None once it is gone)."""
        raw = await self.redis.get(self._held_alert(alert_id))
        return None if raw is None else AlertPublished.model_validate_json(raw)

    async def finish_release(self, alert_id: str, release: int) -> None:
        """Removes a released entry from the due list (its shards are on their way)."""
        await self.redis.zrem(self._held_due, f"{alert_id}|{release}")

    async def drop_held(self, alert_id: str) -> list[int]:
        """Withdraws every pending release of a post (it was cancelled or updated); returns
        the releases withdrawn (their held sets stay until they expire, for counting)."""
        withdrawn: list[int] = []
        prefix = f"{alert_id}|"
        async for member, _score in self.redis.zscan_iter(self._held_due, match=f"{prefix}*"):
            text = _text(member)
            if text.startswith(prefix) and await self.redis.zrem(self._held_due, text):
                withdrawn.append(int(text[len(prefix) :]))
        return withdrawn

    async def begin_run(
        self, alert_id: str, *, shards: int, started_at: datetime, ttl_s: int
    ) -> Run:
        """Records how an alert is split, once: a repeated call (a re-delivered alert) gets the
        first call's shard count and start time back, so its shards stay the same."""
        key = self._run(alert_id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hsetnx(key, "shards", shards)
        pipe.hsetnx(key, "started_at", started_at.isoformat())
        pipe.expire(key, ttl_s)
        pipe.hmget(key, ["shards", "started_at"])
        *_, (stored_shards, stored_start) = await pipe.execute()
        return Run(int(stored_shards), datetime.fromisoformat(_text(stored_start)))

    async def complete_shard(
        self,
        alert_id: str,
        shard: int,
        counts: dict[str, int],
        *,
        shards: int,
        published_at: datetime,
        ttl_s: int,
    ) -> tuple[int, dict[str, int]]:
        """Adds a shard's counts to the alert's totals exactly once. Returns how many shards are
        counted and the totals (`shards` and the counted fields)."""
        args: list[str | int] = [shard, ttl_s, shards, published_at.isoformat()]
        for name, value in counts.items():
            args.extend((name, value))
        done, flat = await self._complete_shard(
            keys=[self._run(alert_id), self._done(alert_id)], args=args
        )
        totals: dict[str, int] = {}
        raw = dict(zip(flat[::2], flat[1::2], strict=True))
        for name, value in raw.items():
            key = name.decode()
            if key != "started_at":
                totals[key] = int(value)
        return int(done), totals

    async def run_of(self, alert_id: str) -> tuple[Run | None, dict[str, int]]:
        """An alert's recorded run and its totals so far (None if unknown or expired)."""
        raw = await self.redis.hgetall(self._run(alert_id))
        if not raw:
            return None, {}
        fields = {_text(k): _text(v) for k, v in raw.items()}
        run = Run(int(fields.pop("shards")), datetime.fromisoformat(fields.pop("started_at")))
        return run, {k: int(v) for k, v in fields.items()}

    async def adjust_totals(self, alert_id: str, changes: dict[str, int]) -> dict[str, int]:
        """Adds (negative) amounts to an alert's recorded totals; returns the totals."""
        pipe = self.redis.pipeline(transaction=True)
        for name, value in changes.items():
            if value:
                pipe.hincrby(self._run(alert_id), name, value)
        await pipe.execute()
        _, totals = await self.run_of(alert_id)
        return totals
