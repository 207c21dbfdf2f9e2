"""Property: whatever the profiles and the alert's audience, the fanout's index, shards and
task encoding reach exactly the contact points a brute-force reading of the profiles names.
Runs against the real Redis (modest example count: each example is a few hundred round trips)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from sirene.devstack.testing import InfraUrls
from sirene.fanout.repository import AudienceIndex
from sirene.fanout.service import TaskEncoder
from sirene.schemas import AlertPublished, CitizenProfile, utcnow
from sirene.schemas.examples import EXAMPLES

pytestmark = pytest.mark.integration

TENANT = "prop"
TOPICS = ["t1", "t2", "t3"]
DISTRICTS = ["nord", "sued", "mitte"]
CHANNELS = ["sms", "voice", "push", "email"]

Delivery = tuple[str, str, str]
"""(citizen, channel, address)"""


@st.composite
def profiles(draw: st.DrawFn) -> list[tuple[CitizenProfile, bool]]:
    """Profiles of distinct citizens, each with whether it is erased afterwards (tombstone)."""
    count = draw(st.integers(min_value=0, max_value=30))
    result = []
    for i in range(count):
        subs = draw(
            st.dictionaries(
                st.sampled_from(TOPICS),
                st.lists(st.sampled_from(CHANNELS), unique=True, max_size=3),
                max_size=3,
            )
        )
        devices = draw(st.integers(min_value=0, max_value=2))
        profile = CitizenProfile(
            tenant_id=TENANT,
            citizen_id=f"c-{i}",
            active=draw(st.booleans()) or draw(st.booleans()),
            district=draw(st.sampled_from([*DISTRICTS, None])),
            contacts={
                "sms": f"+49151{i:08d}" if draw(st.booleans()) else None,
                "voice": f"+4930{i:08d}" if draw(st.booleans()) else None,
                "email": f"c{i}@example.org" if draw(st.booleans()) else None,
                "push": [{"platform": "apns", "token": f"{i:060x}{d:04x}"} for d in range(devices)],
            },
            subscriptions=subs,  # type: ignore[arg-type]
            version=1,
            updated_at=utcnow(),
        )
        result.append((profile, draw(st.integers(0, 9)) == 0))
    return result


@st.composite
def audiences(draw: st.DrawFn) -> dict[str, object]:
    everyone = draw(st.booleans())
    topics = draw(st.lists(st.sampled_from(TOPICS), unique=True, min_size=0 if everyone else 1))
    districts = draw(st.lists(st.sampled_from(DISTRICTS), unique=True, max_size=2))
    return {"everyone": everyone, "topics": topics, "districts": districts}


def brute_force(
    population: list[tuple[CitizenProfile, bool]], audience: dict[str, object]
) -> list[Delivery]:
    """Who must get what, read straight off the profiles."""
    wanted: list[Delivery] = []
    districts = audience["districts"]
    for profile, erased in population:
        if erased or not profile.active:
            continue
        if districts and profile.district not in districts:  # type: ignore[operator]
            continue
        topics = profile.subscriptions if audience["everyone"] else audience["topics"]
        channels = {ch.value for t in topics for ch in profile.subscriptions.get(t, [])}  # type: ignore[union-attr]
        contacts = profile.contacts
        for channel in channels:
            if channel == "push":
                wanted.extend((profile.citizen_id, channel, d.token) for d in contacts.push)
            elif address := getattr(contacts, channel):
                wanted.append((profile.citizen_id, channel, address))
    return sorted(wanted)


async def fanned_out(
    redis_url: str,
    population: list[tuple[CitizenProfile, bool]],
    audience: dict[str, object],
    shards: int,
) -> tuple[list[Delivery], int]:
    redis = Redis.from_url(redis_url)
    index = AudienceIndex(redis, f"prop:{uuid.uuid4().hex[:10]}", buckets=8)
    try:
        await index.apply([(TENANT, p.citizen_id, p) for p, _ in population], {})
        await index.apply([(TENANT, p.citizen_id, None) for p, erased in population if erased], {})
        now = utcnow()
        alert = AlertPublished.model_validate(
            {
                **EXAMPLES["alert.published"][0],
                "tenant_id": TENANT,
                "audience": audience,
                "effective": now,
                "published_at": now,
                "expires": now + timedelta(hours=1),
            }
        )
        encoder = TaskEncoder(alert)
        got: list[Delivery] = []
        task_ids: set[str] = set()
        for shard in range(shards):
            async for chunk in index.audience(
                TENANT,
                everyone=alert.audience.everyone,
                topics=alert.audience.topics,
                chunk_size=7,  # several chunks per bucket
                shard=shard,
                shards=shards,
            ):
                for recipient in chunk:
                    if alert.audience.districts and (
                        recipient.district not in alert.audience.districts
                    ):
                        continue
                    for _channel, raw in encoder.encode(recipient):
                        task = orjson.loads(raw)
                        got.append((task["citizen_id"], task["channel"], task["address"]))
                        task_ids.add(task["task_id"])
        return sorted(got), len(task_ids)
    finally:
        async for key in redis.scan_iter(match=f"{index.prefix}:*", count=10_000):
            await redis.delete(key)
        await redis.aclose()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(population=profiles(), audience=audiences(), shards=st.sampled_from([1, 2, 8]))
def test_area_and_topic_targeting_matches_brute_force(
    sirene_infra: InfraUrls,
    population: list[tuple[CitizenProfile, bool]],
    audience: dict[str, object],
    shards: int,
) -> None:
    got, distinct_ids = asyncio.run(
        fanned_out(sirene_infra.redis_url, population, audience, shards)
    )
    assert got == brute_force(population, audience)
    assert distinct_ids == len(got), "one task id per delivery"
