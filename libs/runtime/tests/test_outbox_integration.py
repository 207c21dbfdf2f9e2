"""The outbox relay against the real MongoDB server (FerretDB locally) and Redis: replicas
that claim each document version send it once between them."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Iterable
from typing import cast

import pytest
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client import Counter as PromCounter
from pydantic import BaseModel
from redis.asyncio import Redis

from sirene.devstack.testing import InfraUrls
from sirene.runtime import BatchProducer, ServiceSettings, create_mongo_client
from sirene.runtime.mongo import Document
from sirene.runtime.outbox import OutboxRelay, pending_outbox
from sirene.schemas import utcnow

pytestmark = pytest.mark.integration


class _Event(BaseModel):
    id: int
    version: int


class _Recorder:
    """Stands in for the Kafka producer: what each replica sent (the broker is not the point)."""

    def __init__(self, sent: Counter[bytes]) -> None:
        self.sent = sent

    async def send_many(
        self, topic: str, records: Iterable[tuple[bytes | None, bytes | None]]
    ) -> int:
        assert topic == "t"
        await asyncio.sleep(0.02)  # the broker's acknowledgement takes a moment
        count = 0
        for key, _ in records:
            assert key is not None
            self.sent[key] += 1
            count += 1
        return count


async def test_two_replicas_with_claims_send_each_pending_version_once(
    sirene_infra: InfraUrls,
) -> None:
    settings = ServiceSettings(**sirene_infra.settings_kwargs())  # type: ignore[arg-type]
    client = create_mongo_client(settings)
    redis = Redis.from_url(sirene_infra.redis_url)
    collection = client[settings.mongodb_db][f"outbox_{uuid.uuid4().hex[:6]}"]
    registry = CollectorRegistry()
    relayed = PromCounter("t_relayed", "relayed", registry=registry)
    lag = Histogram("t_lag", "lag", registry=registry)
    sent: Counter[bytes] = Counter()
    name = f"test-{uuid.uuid4().hex[:6]}"
    try:
        now = utcnow()
        await collection.insert_many(
            [{"_id": i, "version": 1, "outbox": pending_outbox(now)} for i in range(40)]
        )

        def build(doc: Document) -> tuple[str, BaseModel | None]:
            return str(doc["_id"]), _Event(id=doc["_id"], version=doc["version"])

        relays = [
            OutboxRelay(
                name=name,
                collection=collection,
                producer=cast(BatchProducer, _Recorder(sent)),
                topic="t",
                build=build,
                poll_interval_s=60,
                batch_size=100,
                relayed=relayed,
                lag=lag,
                claims=redis,
            )
            for _ in range(2)
        ]
        taken = await asyncio.gather(*(relay.relay_once() for relay in relays))
        assert sum(taken) == 40
        assert sent == Counter({str(i).encode(): 1 for i in range(40)}), "each version once"
        assert await collection.count_documents({"outbox.state": "sent"}) == 40
        # a new version is a new claim: it goes out again, once
        await collection.update_one(
            {"_id": 7}, {"$set": {"outbox": pending_outbox(utcnow())}, "$inc": {"version": 1}}
        )
        await asyncio.gather(*(relay.relay_once() for relay in relays))
        assert sent[b"7"] == 2
    finally:
        await client.drop_database(settings.mongodb_db)
        await client.close()
        async for key in redis.scan_iter(match=f"sirene:outbox-claim:{name}:*"):
            await redis.delete(key)
        await redis.aclose()
