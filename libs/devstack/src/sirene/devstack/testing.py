"""Real infrastructure for integration and end-to-end tests.

Found in this order: explicit URLs from the environment (`SIRENE_KAFKA`, `SIRENE_MONGODB_URI`,
`SIRENE_REDIS_URL`) → testcontainers when a Docker engine answers → the native local stack,
started on demand as the tests' own instance (`stack.TEST`: ports offset by 1000, data under
`.local/test-stack/`, so a running `make up` is neither used nor disturbed) and stopped again
at the end unless `SIRENE_KEEP_STACK=1`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI

from sirene.runtime import ensure_topics
from sirene.schemas import TOPICS

from . import stack

log = logging.getLogger(__name__)


@dataclass
class InfraUrls:
    """Where the test servers are, and how to hand them to a service's settings."""

    kafka: str
    mongodb_uri: str
    redis_url: str
    source: str

    def settings_env(self, **extra: str) -> dict[str, str]:
        """Environment for a service process: infrastructure plus `extra`."""
        return {
            "SIRENE_KAFKA": self.kafka,
            "SIRENE_MONGODB_URI": self.mongodb_uri,
            "SIRENE_REDIS_URL": self.redis_url,
            "SIRENE_ENVIRONMENT": "test",
            **extra,
        }

    def settings_kwargs(self, *, tag: str | None = None) -> dict[str, object]:
        """Keyword arguments for a `ServiceSettings` subclass, isolated by a fresh tag: own
        MongoDB database and own consumer groups."""
        tag = tag or uuid.uuid4().hex[:10]
        return {
            "kafka": self.kafka,
            "mongodb_uri": self.mongodb_uri,
            "redis_url": self.redis_url,
            "mongodb_db": f"test_{tag}",
            "kafka_group_prefix": f"test-{tag}.",
            "kafka_offset_reset": "latest",
            "environment": "test",
        }


def _docker_engine_answers() -> bool:
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


@contextlib.contextmanager
def _testcontainers() -> Iterator[InfraUrls]:
    from testcontainers.kafka import KafkaContainer
    from testcontainers.mongodb import MongoDbContainer
    from testcontainers.redis import RedisContainer

    with (
        KafkaContainer("confluentinc/cp-kafka:7.9.0").with_kraft() as kafka,
        MongoDbContainer("mongo:8.0") as mongo,
        RedisContainer("redis:7.4") as redis,
    ):
        host, port = redis.get_container_host_ip(), redis.get_exposed_port(6379)
        yield InfraUrls(
            kafka=kafka.get_bootstrap_server(),
            mongodb_uri=mongo.get_connection_url(),
            redis_url=f"redis://{host}:{port}/0",
            source="testcontainers",
        )


@contextlib.contextmanager
def real_infra() -> Iterator[InfraUrls]:
    """Yields real Kafka, MongoDB and Redis servers with every registry topic created."""
    env = {k: os.environ.get(k) for k in ("SIRENE_KAFKA", "SIRENE_MONGODB_URI", "SIRENE_REDIS_URL")}
    if all(env.values()):
        urls = InfraUrls(
            kafka=str(env["SIRENE_KAFKA"]),
            mongodb_uri=str(env["SIRENE_MONGODB_URI"]),
            redis_url=str(env["SIRENE_REDIS_URL"]),
            source="environment",
        )
        asyncio.run(ensure_topics(urls.kafka, list(TOPICS)))
        yield urls
        return
    if _docker_engine_answers():
        with _testcontainers() as urls:
            asyncio.run(ensure_topics(urls.kafka, list(TOPICS)))
            yield urls
        return
    # the tests' own instance (other ports, other data): a running `make up` is left alone
    layout = stack.TEST
    if not stack.running(layout, ("kafka", "ferretdb", "redis")):
        stack.wipe_data(layout)  # every test session starts from empty servers
    started = stack.start_all(stack.infra_procs(layout), echo=log.info)
    try:
        asyncio.run(ensure_topics(layout.kafka_url, list(TOPICS)))
        yield InfraUrls(
            kafka=layout.kafka_url,
            mongodb_uri=layout.mongodb_uri,
            redis_url=layout.redis_url,
            source="native local stack (test instance)",
        )
    finally:
        if os.environ.get("SIRENE_KEEP_STACK") != "1":
            stack.stop_all(started, echo=None)


class TopicReader:
    """Reads what is produced to some topics from the moment it starts (no consumer group).

    Usage:
        async with TopicReader(urls.kafka, ["delivery.receipt"]) as reader:
            ... produce ...
            records = await reader.collect(lambda r: ..., count=3, timeout_s=20)
    """

    def __init__(self, bootstrap: str, topics: list[str]) -> None:
        self._bootstrap = bootstrap
        self._topics = topics
        self._consumer: Any = None
        self.seen: list[Any] = []

    async def __aenter__(self) -> TopicReader:
        from aiokafka import AIOKafkaConsumer

        # no group: every partition of the topics is assigned to this reader
        consumer = AIOKafkaConsumer(
            *self._topics,
            bootstrap_servers=self._bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="latest",
        )
        await consumer.start()
        for _ in range(100):
            if {tp.topic for tp in consumer.assignment()} == set(self._topics):
                break
            await asyncio.sleep(0.05)
        else:
            raise RuntimeError(f"could not read all of {self._topics}")
        for tp in consumer.assignment():
            await consumer.position(tp)  # resolve 'latest' now, before the test produces
        self._consumer = consumer
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._consumer.stop()

    async def collect(
        self, predicate: Callable[[Any], bool], *, count: int, timeout_s: float = 30.0
    ) -> list[Any]:
        """Waits for `count` records matching `predicate` (records seen earlier count too);
        returns them, or raises AssertionError with what was seen when time runs out."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            matched = [r for r in self.seen if predicate(r)]
            if len(matched) >= count:
                return matched
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(
                    f"expected {count} matching records on {self._topics}, got {len(matched)} "
                    f"(of {len(self.seen)} seen)"
                )
            batches = await self._consumer.getmany(timeout_ms=int(min(remaining, 0.5) * 1000))
            for records in batches.values():
                self.seen.extend(records)


@contextlib.asynccontextmanager
async def serve_app(app: FastAPI) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """A service's app with its lifespan running (Kafka, MongoDB, Redis, background loops), and
    an HTTP client that calls it in-process."""
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        yield app, client
