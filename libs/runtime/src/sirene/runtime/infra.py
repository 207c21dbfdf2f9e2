"""The long-lived infrastructure clients of one service, built once in its composition root."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from faststream.kafka import KafkaBroker
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from .kafka import BatchProducer, create_broker, ensure_topics
from .lag import ConsumerLagMonitor
from .mongo import Document, create_mongo_client
from .redis import create_redis
from .settings import ServiceSettings

log = logging.getLogger(__name__)


class Infra:
    """Kafka (FastStream broker + batch producer), MongoDB and Redis clients.

    Contract: register subscribers on `broker` before `start()`; `start()` creates the service's
    topics, connects the producer and starts consuming; `stop()` stops consuming first, then
    closes clients. `check()` pings every server and is what `/readyz` reports."""

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        topics: Sequence[str] = (),
        mongo: bool = True,
        redis: bool = True,
    ) -> None:
        self.settings = settings
        self.topics = list(topics)
        self.broker: KafkaBroker = create_broker(settings)
        self.producer = BatchProducer(settings.kafka, client_id=settings.service_name)
        self._mongo: AsyncMongoClient[Document] | None = (
            create_mongo_client(settings) if mongo else None
        )
        self._redis: Redis | None = create_redis(settings) if redis else None
        self.lag = ConsumerLagMonitor(self.broker, settings.service_name)

    @property
    def db(self) -> AsyncDatabase[Document]:
        """The service's MongoDB database."""
        if self._mongo is None:
            raise RuntimeError(f"{self.settings.service_name} was built without MongoDB")
        return self._mongo[self.settings.mongodb_db]

    @property
    def redis(self) -> Redis:
        """The service's Redis client."""
        if self._redis is None:
            raise RuntimeError(f"{self.settings.service_name} was built without Redis")
        return self._redis

    async def start(self) -> None:
        if self.topics:
            await ensure_topics(self.settings.kafka, self.topics)
        await self.producer.start()
        await self.broker.start()
        self.lag.start()

    async def stop(self) -> None:
        await self.lag.stop()
        await self.broker.stop()
        await self.producer.stop()
        if self._mongo is not None:
            await self._mongo.close()
        if self._redis is not None:
            await self._redis.aclose()

    async def wait_until_assigned(self, timeout_s: float = 30.0) -> None:
        """Waits until every subscriber of the broker has partitions assigned and its positions
        resolved (used by tests and tools that must not publish before a 'latest' consumer
        group is listening)."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            found = [getattr(s, "consumer", None) for s in self.broker.subscribers]
            consumers = [c for c in found if c is not None]
            if (
                consumers
                and len(consumers) == len(found)
                and all(c.assignment() for c in consumers)
            ):
                # resolving the positions applies the offset reset now, not at the first fetch
                for consumer in consumers:
                    for tp in consumer.assignment():
                        await consumer.position(tp)
                return
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("Kafka consumers got no partitions assigned in time")
            await asyncio.sleep(0.1)

    async def check(self, timeout_s: float = 2.0) -> dict[str, str]:
        """Pings Kafka, MongoDB and Redis; returns 'ok' or the failure per server."""
        probes: dict[str, asyncio.Future[object]] = {}

        async def kafka() -> object:
            if not await self.broker.ping(timeout=timeout_s):
                raise ConnectionError("broker did not answer")
            return True

        probes["kafka"] = asyncio.ensure_future(kafka())
        if self._mongo is not None:
            probes["mongodb"] = asyncio.ensure_future(self.db.command("ping"))
        if self._redis is not None:
            probes["redis"] = asyncio.ensure_future(self._redis.ping())
        results: dict[str, str] = {}
        for name, probe in probes.items():
            try:
                await asyncio.wait_for(probe, timeout_s)
                results[name] = "ok"
            except Exception as exc:  # a readiness probe reports any failure, it never raises
                results[name] = f"{type(exc).__name__}: {exc}"[:200]
        return results
