"""The audience index in Redis, built from the compacted `citizen.profile` topic.

Layout (prefix `sirene:aud`):
- `<p>:prof:<tenant>:<citizen>` — the citizen's routing profile (compact JSON);
- `<p>:topic:<tenant>:<topic>` — set of active citizen ids subscribed to the topic;
- `<p>:all:<tenant>` — set of all active citizen ids;
- `<p>:offsets` — hash partition → next offset of `citizen.profile` already applied.

Index updates and the offsets they came from are written in one MULTI/EXEC, so the index is
exactly as current as the offsets say; when Redis loses its data, the offsets go with it and
the index is rebuilt from the start of the compacted topic."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from redis.asyncio import Redis

from sirene.schemas import CitizenProfile, Language


@dataclass(frozen=True, slots=True)
class Recipient:
    """What the fanout needs of one citizen."""

    citizen_id: str
    language: Language
    district: str | None
    contacts: dict[str, object]
    subscriptions: dict[str, list[str]]


def _compact(profile: CitizenProfile) -> bytes:
    c = profile.contacts
    return orjson.dumps(
        {
            "v": profile.version,
            "l": profile.language.value,
            "d": profile.district,
            "c": {
                "sms": c.sms,
                "voice": c.voice,
                "email": c.email,
                "push": [[d.platform.value, d.token] for d in c.push],
            },
            "s": {t: [ch.value for ch in chs] for t, chs in profile.subscriptions.items()},
        }
    )


def _recipient(citizen_id: str, raw: bytes) -> Recipient:
    data = orjson.loads(raw)
    return Recipient(
        citizen_id=citizen_id,
        language=Language(data["l"]),
        district=data["d"],
        contacts=data["c"],
        subscriptions=data["s"],
    )


class AudienceIndex:
    """Reads and maintains the audience index. Safe to share between tasks."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix

    def _prof(self, tenant: str, citizen: str) -> str:
        return f"{self.prefix}:prof:{tenant}:{citizen}"

    def _topic(self, tenant: str, topic: str) -> str:
        return f"{self.prefix}:topic:{tenant}:{topic}"

    def _all(self, tenant: str) -> str:
        return f"{self.prefix}:all:{tenant}"

    @property
    def _offsets(self) -> str:
        return f"{self.prefix}:offsets"

    async def offsets(self) -> dict[int, int]:
        """Next offset to read per partition of `citizen.profile`."""
        raw = await self.redis.hgetall(self._offsets)
        return {int(k): int(v) for k, v in raw.items()}

    async def apply(
        self,
        changes: Sequence[tuple[str, str, CitizenProfile | None]],
        offsets: dict[int, int],
    ) -> dict[str, int]:
        """Applies profile records (tenant, citizen, profile or None for erasure) and records
        the offsets they came from, atomically. Older versions than the stored one are
        ignored. Returns counts per outcome."""
        keys = [self._prof(t, c) for t, c, _ in changes]
        current = await self.redis.mget(keys) if keys else []
        stored: dict[str, dict[str, Any]] = {}
        for key, raw in zip(keys, current, strict=True):
            if raw is not None:
                stored[key] = orjson.loads(raw)
        outcome = {"applied": 0, "stale": 0, "erased": 0}
        pipe = self.redis.pipeline(transaction=True)
        for (tenant, citizen, profile), key in zip(changes, keys, strict=True):
            old = stored.get(key)
            if profile is not None and old is not None and int(old["v"]) > profile.version:
                outcome["stale"] += 1
                continue
            old_topics: set[str] = set(old["s"]) if old is not None else set()
            if profile is None or not profile.active:
                for topic in old_topics:
                    pipe.srem(self._topic(tenant, topic), citizen)
                pipe.srem(self._all(tenant), citizen)
                pipe.delete(key)
                stored.pop(key, None)
                outcome["erased"] += 1
                continue
            new_topics = {t for t, chs in profile.subscriptions.items() if chs}
            for topic in old_topics - new_topics:
                pipe.srem(self._topic(tenant, topic), citizen)
            for topic in new_topics:
                pipe.sadd(self._topic(tenant, topic), citizen)
            pipe.sadd(self._all(tenant), citizen)
            compact = _compact(profile)
            pipe.set(key, compact)
            stored[key] = orjson.loads(compact)
            outcome["applied"] += 1
        if offsets:
            pipe.hset(self._offsets, mapping={str(p): str(o) for p, o in offsets.items()})
        await pipe.execute()
        return outcome

    async def profiles(self, tenant: str, citizen_ids: list[str]) -> list[Recipient]:
        """The indexed profiles of these citizens (erased ones are left out)."""
        raws = await self.redis.mget([self._prof(tenant, c) for c in citizen_ids])
        return [
            _recipient(c, raw)
            for c, raw in zip(citizen_ids, raws, strict=True)
            if isinstance(raw, bytes)
        ]

    async def audience(
        self,
        tenant: str,
        *,
        everyone: bool,
        topics: Iterable[str],
        chunk_size: int,
    ) -> AsyncIterator[list[Recipient]]:
        """Streams the audience in chunks of about `chunk_size` (never all at once). Citizens
        in several targeted topics come once."""
        topic_keys = [self._topic(tenant, t) for t in sorted(set(topics))]
        temp: str | None = None
        if everyone:
            source = self._all(tenant)
        elif len(topic_keys) == 1:
            source = topic_keys[0]
        else:
            # the union is computed inside Redis; the fanout still only sees one chunk at a time
            temp = source = f"{self.prefix}:tmp:{uuid.uuid4().hex}"
            await self.redis.sunionstore(temp, topic_keys)
            await self.redis.expire(temp, 3600)
        try:
            cursor = 0
            while True:
                cursor, members = await self.redis.sscan(source, cursor, count=chunk_size)
                if members:
                    ids = [m.decode() if isinstance(m, bytes) else str(m) for m in members]
                    raws = await self.redis.mget([self._prof(tenant, c) for c in ids])
                    yield [
                        _recipient(c, raw)
                        for c, raw in zip(ids, raws, strict=True)
                        if isinstance(raw, bytes)
                    ]
                if cursor == 0:
                    break
        finally:
            if temp is not None:
                await self.redis.delete(temp)
