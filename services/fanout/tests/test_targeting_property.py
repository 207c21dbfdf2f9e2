"""Property: whatever the profiles and the alert's audience (topics, districts, areas), the
fanout's index, shards and task encoding reach exactly the contact points a brute-force reading
of the profiles names.
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
from sirene.fanout.service import TaskEncoder, Where
from sirene.schemas import AlertPublished, CitizenProfile, GeoPoint, utcnow
from sirene.schemas.examples import EXAMPLES

pytestmark = pytest.mark.integration

TENANT = "prop"
TOPICS = ["t1", "t2", "t3"]
DISTRICTS = ["nord", "sued", "mitte"]
CHANNELS = ["sms", "voice", "push", "email"]
# Target areas are rectangles here, so the brute force can decide containment by comparison:
# (outer [min_lon, max_lon, min_lat, max_lat], hole or None). Borders are closed, holes open.
Rect = tuple[float, float, float, float]
AREAS: dict[str, tuple[Rect, Rect | None]] = {
    "ring": ((1.0, 3.0, 1.0, 3.0), (1.5, 2.5, 1.5, 2.5)),
    "east": ((2.5, 4.0, 0.0, 1.5), None),
}
# coordinates on, inside and outside every border
COORDS = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0]

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
            location=GeoPoint(lon=draw(st.sampled_from(COORDS)), lat=draw(st.sampled_from(COORDS)))
            if draw(st.booleans())
            else None,
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
    areas = draw(st.lists(st.sampled_from(sorted(AREAS)), unique=True, max_size=2))
    return {
        "everyone": everyone,
        "topics": topics,
        "districts": districts,
        "areas": [{"description": name, "polygon": _polygon(*AREAS[name])} for name in areas],
    }


def _ring(rect: Rect) -> list[list[float]]:
    x0, x1, y0, y1 = rect
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]


def _polygon(outer: Rect, hole: Rect | None) -> list[list[list[float]]]:
    return [_ring(outer), *([_ring(hole)] if hole else [])]


def _in_area(name: str, lon: float, lat: float) -> bool:
    (x0, x1, y0, y1), hole = AREAS[name]
    if not (x0 <= lon <= x1 and y0 <= lat <= y1):
        return False
    if hole is None:
        return True
    hx0, hx1, hy0, hy1 = hole
    return not (hx0 < lon < hx1 and hy0 < lat < hy1)


def brute_force(
    population: list[tuple[CitizenProfile, bool]], audience: dict[str, object]
) -> list[Delivery]:
    """Who must get what, read straight off the profiles."""
    wanted: list[Delivery] = []
    districts: list[str] = audience["districts"]  # type: ignore[assignment]
    areas = [a["description"] for a in audience["areas"]]  # type: ignore[attr-defined]
    for profile, erased in population:
        if erased or not profile.active:
            continue
        if districts or areas:
            point = profile.location
            in_district = profile.district in districts
            in_area = point is not None and any(_in_area(a, point.lon, point.lat) for a in areas)
            if not (in_district or in_area):
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
        where = Where.of(alert.audience)
        partitions = {channel: [0] for channel in encoder.topics}
        got: list[Delivery] = []
        task_ids: set[str] = set()
        for shard in range(shards):
            async for _bucket, ids, raws in index.audience_raw(
                TENANT,
                everyone=alert.audience.everyone,
                topics=alert.audience.topics,
                chunk_size=7,  # several chunks per bucket
                shard=shard,
                shards=shards,
            ):
                for _topic, _partition, _key, raw in encoder.encode_chunk(
                    ids, raws, partitions, where
                ).records:
                    task = orjson.loads(raw)
                    got.append((task["citizen_id"], task["channel"], task["address"]))
                    task_ids.add(task["task_id"])
        return sorted(got), len(task_ids)
    finally:
        async for key in redis.scan_iter(match=f"{index.prefix}:*", count=10_000):
            await redis.delete(key)
        await redis.aclose()


@settings(
    max_examples=40,
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
