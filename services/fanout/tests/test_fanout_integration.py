"""The fanout against real Kafka and Redis: index from profiles, expansion, dead letters."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from sirene.devstack.testing import InfraUrls, TopicReader
from sirene.fanout.app import create_app
from sirene.fanout.service import PriorityGate
from sirene.fanout.settings import FanoutSettings
from sirene.runtime import Infra
from sirene.schemas import (
    ALERT_FANOUT,
    ALERT_PUBLISHED,
    CITIZEN_PROFILE,
    DEAD_LETTER,
    AlertPublished,
    Channel,
    CitizenProfile,
    FanoutShard,
    Lane,
    delivery_topic,
    fanout_shard_topic,
    profile_key,
    utcnow,
)
from sirene.schemas.examples import EXAMPLES

pytestmark = pytest.mark.integration

DELIVERY_TOPICS = [delivery_topic(c, lane) for c in Channel for lane in Lane]


def _profile(
    tenant: str, i: int, *, topics: dict[str, list[str]], version: int = 1, active: bool = True
) -> CitizenProfile:
    return CitizenProfile(
        tenant_id=tenant,
        citizen_id=f"c-{i}",
        active=active,
        contacts={
            "sms": f"+49151{i:08d}",
            "voice": f"+4930{i:07d}",
            "push": [{"platform": "apns", "token": f"{i:064x}"}],
        },
        subscriptions=topics,
        version=version,
        updated_at=utcnow(),
    )


def _alert(tenant: str, topics: list[str]) -> AlertPublished:
    now = utcnow()
    return AlertPublished.model_validate(
        {
            **EXAMPLES["alert.published"][0],
            "tenant_id": tenant,
            "alert_id": uuid.uuid4().hex,
            "audience": {"topics": topics},
            "effective": now,
            "published_at": now,
            "expires": now + timedelta(hours=1),
        }
    )


async def _produce(bootstrap: str, topic: str, records: list[tuple[str, bytes | None]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value=value, key=key.encode())
    finally:
        await producer.stop()


@pytest.fixture
def tenant() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


async def test_profiles_build_the_index_and_an_alert_expands_once_per_contact(
    sirene_infra: InfraUrls, tenant: str
) -> None:
    # 30 citizens on "warn" (sms+push), 10 of them also on "verkehr" (voice); one erased, one
    # inactive, one updated to drop SMS; a stale older version must not win.
    profiles = [
        _profile(
            tenant,
            i,
            topics={"warn": ["sms", "push"], **({"verkehr": ["voice"]} if i < 10 else {})},
        )
        for i in range(30)
    ]
    records: list[tuple[str, bytes | None]] = [
        (profile_key(tenant, p.citizen_id), p.model_dump_json().encode()) for p in profiles
    ]
    records.append((profile_key(tenant, "c-0"), None))  # erasure (tombstone)
    records.append(
        (
            profile_key(tenant, "c-1"),
            _profile(tenant, 1, topics={"warn": ["sms"]}, version=2, active=False)
            .model_dump_json()
            .encode(),
        )
    )
    records.append(
        (
            profile_key(tenant, "c-2"),
            _profile(tenant, 2, topics={"warn": ["push"]}, version=3).model_dump_json().encode(),
        )
    )
    records.append(
        (
            profile_key(tenant, "c-2"),
            _profile(tenant, 2, topics={"warn": ["sms", "push"]}, version=2)
            .model_dump_json()
            .encode(),
        )
    )
    await _produce(sirene_infra.kafka, CITIZEN_PROFILE, records)

    settings = FanoutSettings(
        **sirene_infra.settings_kwargs(),  # type: ignore[arg-type]
        index_prefix=f"test:{uuid.uuid4().hex[:8]}",
        chunk_size=100,
    )
    app = create_app(settings)
    infra: Infra = app.state.infra
    async with (
        app.router.lifespan_context(app),
        TopicReader(sirene_infra.kafka, [*DELIVERY_TOPICS, ALERT_FANOUT]) as reader,
    ):
        await infra.wait_until_assigned()
        for _ in range(100):
            if await _lag(app) == 0:
                break
            await asyncio.sleep(0.1)
        assert await _lag(app) == 0

        alert = _alert(tenant, ["warn", "verkehr"])
        await _produce(
            sirene_infra.kafka,
            ALERT_PUBLISHED,
            [(alert.alert_id, alert.model_dump_json().encode())],
        )
        summary_records = await reader.collect(
            lambda r: r.topic == ALERT_FANOUT and json.loads(r.value)["alert_id"] == alert.alert_id,
            count=1,
        )
        summary = json.loads(summary_records[0].value)
        tasks = [
            json.loads(r.value)
            for r in reader.seen
            if r.topic != ALERT_FANOUT and json.loads(r.value)["alert_id"] == alert.alert_id
        ]

    # 28 active citizens (c-0 erased, c-1 inactive); c-2 has push only (newest version wins),
    # so voice (verkehr, c-0..c-9) reaches c-3..c-9
    by_channel = Counter(t["channel"] for t in tasks)
    assert by_channel == {"sms": 27, "push": 28, "voice": 7}
    assert summary["expected"] == {"sms": 27, "push": 28, "voice": 7, "email": 0}
    assert summary["recipients"] == 28
    assert len({t["task_id"] for t in tasks}) == len(tasks), "task ids are unique"
    assert {t["lane"] for t in tasks} == {"urgent"}
    assert not any(t["citizen_id"] in ("c-0", "c-1") for t in tasks)
    assert all(
        r.key.decode() == json.loads(r.value)["citizen_id"]
        for r in reader.seen
        if r.topic != ALERT_FANOUT
    )


async def _lag(app: object) -> int:
    import httpx

    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://fanout") as client:
        return int((await client.get("/api/v1/index/status")).json()["lag"])


async def test_malformed_alert_goes_to_dead_letter_and_the_next_alert_still_expands(
    sirene_infra: InfraUrls, tenant: str
) -> None:
    await _produce(
        sirene_infra.kafka,
        CITIZEN_PROFILE,
        [
            (
                profile_key(tenant, "c-1"),
                _profile(tenant, 1, topics={"warn": ["sms"]}).model_dump_json().encode(),
            )
        ],
    )
    settings = FanoutSettings(
        **sirene_infra.settings_kwargs(),  # type: ignore[arg-type]
        index_prefix=f"test:{uuid.uuid4().hex[:8]}",
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        TopicReader(
            sirene_infra.kafka,
            [DEAD_LETTER, ALERT_FANOUT, delivery_topic(Channel.SMS, Lane.URGENT)],
        ) as reader,
    ):
        await app.state.infra.wait_until_assigned()
        for _ in range(100):
            if await _lag(app) == 0:
                break
            await asyncio.sleep(0.1)
        marker = uuid.uuid4().hex
        bad_json = b'{"tenant_id": "' + tenant.encode() + b'", "alert_id": "' + marker.encode()
        missing_fields = json.dumps({"tenant_id": tenant, "alert_id": marker + "x"}).encode()
        good = _alert(tenant, ["warn"])
        await _produce(
            sirene_infra.kafka,
            ALERT_PUBLISHED,
            [
                (marker, bad_json),
                (marker, missing_fields),
                (marker, good.model_dump_json().encode()),  # same key → same partition, after them
            ],
        )
        letters = await reader.collect(
            lambda r: r.topic == DEAD_LETTER and marker in json.loads(r.value)["payload"],
            count=2,
        )
        await reader.collect(
            lambda r: r.topic == ALERT_FANOUT and json.loads(r.value)["alert_id"] == good.alert_id,
            count=1,
        )
    reasons = [json.loads(r.value)["reason"] for r in letters]
    assert any(reason.startswith("invalid JSON") for reason in reasons)
    assert any("schema violation" in reason and "severity" in reason for reason in reasons)
    letter = json.loads(letters[0].value)
    assert letter["source_topic"] == ALERT_PUBLISHED
    assert letter["service"] == "fanout"


async def test_an_urgent_alert_does_not_wait_for_a_bulk_expansion(
    sirene_infra: InfraUrls, tenant: str
) -> None:
    """A bulk post is being expanded when a warning comes in behind it on the same partition
    of `alert.published`. The bulk expansion is held at its first chunk until the warning's
    summary is out: the warning is planned and expanded by its own lane's groups on its own
    shard topic, so it completes while the bulk post is still in flight (with one consumer
    for both lanes it would wait behind the held bulk expansion, and the test would time out)."""
    from sirene.runtime import BatchProducer

    producer = BatchProducer(sirene_infra.kafka, client_id="test")
    await producer.start()
    try:
        await producer.send_many(
            CITIZEN_PROFILE,
            (
                (
                    profile_key(tenant, f"c-{i}").encode(),
                    _profile(
                        tenant,
                        i,
                        topics={"news": ["push"], **({"warn": ["sms"]} if i < 200 else {})},
                    )
                    .model_dump_json()
                    .encode(),
                )
                for i in range(3_000)
            ),
        )
    finally:
        await producer.stop()
    settings = FanoutSettings(
        **sirene_infra.settings_kwargs(),  # type: ignore[arg-type]
        index_prefix=f"test:{uuid.uuid4().hex[:8]}",
        chunk_size=100,
    )
    app = create_app(settings)
    gate: PriorityGate = app.state.gate
    bulk_started = asyncio.Event()
    release_bulk = asyncio.Event()
    original_wait_turn = gate.wait_turn

    async def held_bulk(lane: Lane) -> None:
        if lane is Lane.BULK:
            bulk_started.set()
            await release_bulk.wait()
        await original_wait_turn(lane)

    gate.wait_turn = held_bulk  # type: ignore[method-assign]
    async with (
        app.router.lifespan_context(app),
        TopicReader(sirene_infra.kafka, [ALERT_FANOUT]) as reader,
    ):
        await app.state.infra.wait_until_assigned()
        await _wait_for_index(app)
        bulk = _alert(tenant, ["news"]).model_copy(update={"lane": Lane.BULK})
        urgent = _alert(tenant, ["warn"])
        await _produce(
            sirene_infra.kafka,
            ALERT_PUBLISHED,
            [
                ("one-key", bulk.model_dump_json().encode()),
                ("one-key", urgent.model_dump_json().encode()),
            ],
        )
        await asyncio.wait_for(bulk_started.wait(), 60)
        urgent_summary = json.loads(
            (
                await reader.collect(
                    lambda r: json.loads(r.value)["alert_id"] == urgent.alert_id,
                    count=1,
                    timeout_s=60,
                )
            )[0].value
        )
        assert not [r for r in reader.seen if json.loads(r.value)["alert_id"] == bulk.alert_id]
        release_bulk.set()
        bulk_summary = json.loads(
            (
                await reader.collect(
                    lambda r: json.loads(r.value)["alert_id"] == bulk.alert_id,
                    count=1,
                    timeout_s=120,
                )
            )[0].value
        )
    assert urgent_summary["expected"]["sms"] == 200
    assert urgent_summary["lane"] == "urgent"
    assert bulk_summary["expected"]["push"] == 3_000
    assert urgent_summary["completed_at"] < bulk_summary["completed_at"]


async def _wait_for_index(app: object, timeout_s: float = 120.0) -> None:
    """Polls until the fanout's index has applied every profile record produced so far."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while await _lag(app) != 0:
        assert asyncio.get_running_loop().time() < deadline, "index did not catch up"
        await asyncio.sleep(0.1)


async def _fanout(
    sirene_infra: InfraUrls, *, tag: str | None = None, prefix: str | None = None, **extra: object
) -> FastAPI:
    settings = FanoutSettings(
        **sirene_infra.settings_kwargs(tag=tag),  # type: ignore[arg-type]
        index_prefix=prefix or f"test:{uuid.uuid4().hex[:8]}",
        **extra,  # type: ignore[arg-type]
    )
    return create_app(settings)


def _tasks_of(reader: TopicReader, alert_id: str) -> list[dict[str, Any]]:
    return [
        value
        for value in (json.loads(r.value) for r in reader.seen if r.topic != ALERT_FANOUT)
        if value["alert_id"] == alert_id
    ]


async def test_the_same_alert_twice_gives_the_same_tasks_and_counts_once(
    sirene_infra: InfraUrls, tenant: str
) -> None:
    """A duplicate `alert.published` (a relay retry, a rebalance) is expanded again — into
    exactly the same task ids, spread over the same shards — and its expected counts are not
    doubled: each shard is counted once."""
    await _produce(
        sirene_infra.kafka,
        CITIZEN_PROFILE,
        [
            (
                profile_key(tenant, f"c-{i}"),
                _profile(tenant, i, topics={"warn": ["sms", "push"]}).model_dump_json().encode(),
            )
            for i in range(120)
        ],
    )
    app = await _fanout(sirene_infra, shard_size=100, index_buckets=8, chunk_size=100)
    async with (
        app.router.lifespan_context(app),
        TopicReader(sirene_infra.kafka, [*DELIVERY_TOPICS, ALERT_FANOUT]) as reader,
    ):
        await app.state.infra.wait_until_assigned()
        await _wait_for_index(app)
        alert = _alert(tenant, ["warn"])
        record = (alert.alert_id, alert.model_dump_json().encode())
        await _produce(sirene_infra.kafka, ALERT_PUBLISHED, [record])
        first = await reader.collect(
            lambda r: r.topic == ALERT_FANOUT and json.loads(r.value)["alert_id"] == alert.alert_id,
            count=1,
        )
        once = _tasks_of(reader, alert.alert_id)
        await _produce(sirene_infra.kafka, ALERT_PUBLISHED, [record])
        summaries = await reader.collect(
            lambda r: r.topic == ALERT_FANOUT and json.loads(r.value)["alert_id"] == alert.alert_id,
            count=2,
        )
        await reader.collect(
            lambda r: r.topic != ALERT_FANOUT and json.loads(r.value)["alert_id"] == alert.alert_id,
            count=2 * len(once),
        )
        twice = _tasks_of(reader, alert.alert_id)
    assert len(once) == 240
    ids_once = Counter(t["task_id"] for t in once)
    assert max(ids_once.values()) == 1
    # the second expansion produced every task id again, and nothing else
    assert Counter(t["task_id"] for t in twice) == Counter(dict.fromkeys(ids_once, 2))
    by_id: dict[str, list[dict[str, Any]]] = {}
    for task in twice:
        by_id.setdefault(task["task_id"], []).append(task)
    for copies in by_id.values():
        a, b = ({k: v for k, v in t.items() if k not in ("event_id", "created_at")} for t in copies)
        assert a == b
    first_summary = json.loads(first[0].value)
    assert first_summary["expected"] == {"sms": 120, "push": 120, "voice": 0, "email": 0}
    for summary in (json.loads(r.value) for r in summaries):
        assert summary["expected"] == first_summary["expected"], "counted once per shard"
        assert summary["recipients"] == 120
        assert summary["started_at"] == first_summary["started_at"]


async def test_an_erasure_tombstone_removes_the_citizen_from_the_next_alert(
    sirene_infra: InfraUrls, tenant: str
) -> None:
    await _produce(
        sirene_infra.kafka,
        CITIZEN_PROFILE,
        [
            (
                profile_key(tenant, f"c-{i}"),
                _profile(tenant, i, topics={"warn": ["sms"]}).model_dump_json().encode(),
            )
            for i in range(10)
        ],
    )
    app = await _fanout(sirene_infra, index_buckets=8)
    async with (
        app.router.lifespan_context(app),
        TopicReader(sirene_infra.kafka, [*DELIVERY_TOPICS, ALERT_FANOUT]) as reader,
    ):
        await app.state.infra.wait_until_assigned()
        await _wait_for_index(app)
        before, after = _alert(tenant, ["warn"]), _alert(tenant, ["warn"])
        await _produce(
            sirene_infra.kafka,
            ALERT_PUBLISHED,
            [(before.alert_id, before.model_dump_json().encode())],
        )
        await reader.collect(
            lambda r: (
                r.topic == ALERT_FANOUT and json.loads(r.value)["alert_id"] == before.alert_id
            ),
            count=1,
        )
        await _produce(sirene_infra.kafka, CITIZEN_PROFILE, [(profile_key(tenant, "c-4"), None)])
        await _wait_for_index(app)
        await _produce(
            sirene_infra.kafka,
            ALERT_PUBLISHED,
            [(after.alert_id, after.model_dump_json().encode())],
        )
        summary = await reader.collect(
            lambda r: r.topic == ALERT_FANOUT and json.loads(r.value)["alert_id"] == after.alert_id,
            count=1,
        )
    reached_before = {t["citizen_id"] for t in _tasks_of(reader, before.alert_id)}
    reached_after = {t["citizen_id"] for t in _tasks_of(reader, after.alert_id)}
    assert "c-4" in reached_before
    assert reached_after == reached_before - {"c-4"}
    assert json.loads(summary[0].value)["recipients"] == 9


async def test_two_instances_expand_one_alert_together_and_one_follows_the_profiles(
    sirene_infra: InfraUrls, tenant: str
) -> None:
    """Horizontal scale: two fanout instances (same consumer groups, same index) split the
    shards of one alert between them; exactly one of them writes the index."""
    await _produce(
        sirene_infra.kafka,
        CITIZEN_PROFILE,
        [
            (
                profile_key(tenant, f"c-{i}"),
                _profile(tenant, i, topics={"news": ["push"]}).model_dump_json().encode(),
            )
            for i in range(1_000)
        ],
    )
    tag, prefix = uuid.uuid4().hex[:10], f"test:{uuid.uuid4().hex[:8]}"
    apps = [
        await _fanout(sirene_infra, tag=tag, prefix=prefix, shard_size=100, chunk_size=100)
        for _ in range(2)
    ]
    expanded: list[Counter[str]] = [Counter(), Counter()]
    for app, counts in zip(apps, expanded, strict=True):
        gate: PriorityGate = app.state.gate
        enter = gate.enter

        def counting(lane: Lane, enter: Any = enter, counts: Counter[str] = counts) -> None:
            counts[lane.value] += 1
            enter(lane)

        gate.enter = counting  # type: ignore[method-assign]
    async with (
        apps[0].router.lifespan_context(apps[0]),
        apps[1].router.lifespan_context(apps[1]),
        TopicReader(sirene_infra.kafka, [*DELIVERY_TOPICS, ALERT_FANOUT]) as reader,
    ):
        for app in apps:
            await app.state.infra.wait_until_assigned()
        await _wait_for_index(apps[0])
        assert [app.state.follower.leading for app in apps].count(True) == 1
        alert = _alert(tenant, ["news"]).model_copy(update={"lane": Lane.BULK})
        await _produce(
            sirene_infra.kafka,
            ALERT_PUBLISHED,
            [(alert.alert_id, alert.model_dump_json().encode())],
        )
        summary = json.loads(
            (
                await reader.collect(
                    lambda r: (
                        r.topic == ALERT_FANOUT
                        and json.loads(r.value)["alert_id"] == alert.alert_id
                    ),
                    count=1,
                    timeout_s=120,
                )
            )[0].value
        )
        tasks = _tasks_of(reader, alert.alert_id)
    assert summary["expected"]["push"] == 1_000
    assert len({t["task_id"] for t in tasks}) == 1_000
    # 16 shards (1,000 citizens, 100 a shard, rounded up to a power of two) over the shard
    # topic's 12 partitions, shared by two instances: both did a part
    assert summary["recipients"] == 1_000
    assert expanded[0]["bulk"] + expanded[1]["bulk"] >= 16
    assert expanded[0]["bulk"] > 0
    assert expanded[1]["bulk"] > 0


async def test_a_shard_without_a_planned_run_is_expanded_and_summarized(
    sirene_infra: InfraUrls, tenant: str
) -> None:
    """A shard whose run record is gone (expired, or planned against another index) is still
    expanded and counted from its own shard count — never a crash loop."""
    await _produce(
        sirene_infra.kafka,
        CITIZEN_PROFILE,
        [
            (
                profile_key(tenant, f"c-{i}"),
                _profile(tenant, i, topics={"warn": ["voice"]}).model_dump_json().encode(),
            )
            for i in range(5)
        ],
    )
    app = await _fanout(sirene_infra, index_buckets=8)
    async with (
        app.router.lifespan_context(app),
        TopicReader(sirene_infra.kafka, [ALERT_FANOUT]) as reader,
    ):
        await app.state.infra.wait_until_assigned()
        await _wait_for_index(app)
        alert = _alert(tenant, ["warn"])
        shard = FanoutShard(tenant_id=tenant, alert=alert, shard=0, shards=1)
        await _produce(
            sirene_infra.kafka,
            fanout_shard_topic(Lane.URGENT),
            [(f"{alert.alert_id}:0", shard.model_dump_json().encode())],
        )
        summary = await reader.collect(
            lambda r: json.loads(r.value)["alert_id"] == alert.alert_id, count=1
        )
    assert json.loads(summary[0].value)["expected"]["voice"] == 5
