"""Kafka wiring: the FastStream broker for consumers, a batch producer for hot paths, topic
creation from the registry, and dead-lettering of messages that cannot be processed."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.partitioner import DefaultPartitioner
from faststream import BaseMiddleware
from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import REGISTRY
from pydantic import BaseModel, ValidationError

from sirene.schemas import DEAD_LETTER, TENANT_UNKNOWN, TOPICS, DeadLetter

from .metric_defs import DEAD_LETTERS
from .settings import ServiceSettings

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
Record = tuple[bytes | None, bytes | None]
"""A Kafka record as (key, value); a None value is a tombstone."""

_MAX_DEAD_PAYLOAD = 64 * 1024


REDELIVERY_PAUSE_S = 1.0
"""Mean pause before a failed batch is consumed again."""


class PauseBeforeRedelivery(BaseMiddleware):
    """When a handler fails (a server is down, an unexpected error), waits about a second
    before the batch is handed back for redelivery, so a lasting failure is retried calmly
    instead of in a tight loop against the failing server. Poison messages never get here:
    handlers dead-letter them."""

    async def consume_scope(self, call_next: Any, msg: Any) -> Any:
        try:
            return await call_next(msg)
        except Exception:
            await asyncio.sleep(REDELIVERY_PAUSE_S * (0.5 + random.random()))  # noqa: S311
            raise


def create_broker(settings: ServiceSettings, **kwargs: Any) -> KafkaBroker:
    """A FastStream broker for the service's consumers, with Prometheus metrics and a pause
    before redelivering a failed batch."""
    return KafkaBroker(
        settings.kafka,
        client_id=settings.service_name,
        middlewares=[
            KafkaPrometheusMiddleware(registry=REGISTRY, app_name=settings.service_name),
            PauseBeforeRedelivery,
        ],
        graceful_timeout=15.0,
        # through our masked root handler; per-message lines at DEBUG, out of INFO
        logger=logging.getLogger("sirene.kafka"),
        log_level=logging.DEBUG,
        **kwargs,
    )


class BatchProducer:
    """Produces through aiokafka's batch path (`create_batch`/`send_batch`), partitioned by key
    exactly like Kafka's default partitioner, so one key's records stay in order.

    Contract: `start()` before use, `stop()` at shutdown. `send_many` returns once every record
    is acknowledged by the broker (acks=all); it raises if any record was not."""

    def __init__(self, bootstrap: str, *, client_id: str, linger_ms: int = 5) -> None:
        self._bootstrap = bootstrap
        self._client_id = client_id
        self._linger_ms = linger_ms
        self._partitioner = DefaultPartitioner()
        self._partitions: dict[str, list[int]] = {}
        self._started: AIOKafkaProducer | None = None
        self._send_lock: asyncio.Lock | None = None

    @property
    def _producer(self) -> AIOKafkaProducer:
        if self._started is None:
            raise RuntimeError("BatchProducer.start() has not been awaited")
        return self._started

    async def start(self) -> None:
        # aiokafka binds its producer to the running loop, so it is created here, not in
        # __init__ (composition roots run before the server's loop exists)
        producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            acks="all",
            linger_ms=self._linger_ms,
            max_batch_size=512 * 1024,
            max_request_size=4 * 1024 * 1024,
            enable_idempotence=True,
        )
        await producer.start()
        self._started = producer

    async def stop(self) -> None:
        if self._started is not None:
            await self._started.stop()
            self._started = None

    async def send(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        """Sends one record and waits for the acknowledgement (for low-rate events)."""
        await self._producer.send_and_wait(topic, value=value, key=key)

    async def send_model(self, topic: str, event: BaseModel, key: str | None) -> None:
        """Sends one pydantic event as JSON."""
        await self.send(topic, event.model_dump_json().encode(), key.encode() if key else None)

    async def partitions_for(self, topic: str) -> list[int]:
        """The topic's partition numbers (cached; waits for metadata on first use)."""
        if topic not in self._partitions:
            self._partitions[topic] = sorted(await self._producer.partitions_for(topic))
        return self._partitions[topic]

    async def send_many(self, topic: str, records: Iterable[Record]) -> int:
        """Sends records in per-partition batches and waits for all acknowledgements.
        Returns how many were sent."""
        partitions = await self.partitions_for(topic)
        builders: dict[int, Any] = {}
        pending: list[asyncio.Future[Any]] = []
        count = 0
        for key, value in records:
            partition = (
                self._partitioner(key, partitions, partitions)
                if key is not None
                else partitions[count % len(partitions)]
            )
            batch = builders.get(partition)
            if batch is None:
                batch = builders[partition] = self._producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None) is None:
                pending.append(await self._producer.send_batch(batch, topic, partition=partition))
                batch = builders[partition] = self._producer.create_batch()
                if batch.append(key=key, value=value, timestamp=None) is None:
                    raise ValueError(f"record of {len(value or b'')} bytes exceeds the batch size")
            count += 1
        for partition, batch in builders.items():
            if batch.record_count():
                pending.append(await self._producer.send_batch(batch, topic, partition=partition))
        if pending:
            await asyncio.gather(*pending)
        return count

    async def send_partitioned(
        self, records: Iterable[tuple[str, int, bytes | None, bytes]]
    ) -> list[asyncio.Future[Any]]:
        """Hands (topic, partition, key, value) records to the producer in per-partition
        batches and returns the batches' delivery futures without waiting for them, so a hot
        path that has computed its partitions itself can keep a bounded number of batches in
        flight while it prepares the next. Await every future (it raises if the broker refused
        the batch). Callers take turns handing over their batches: aiokafka queues one batch
        per partition, and many tasks waiting for the same slot at once time out."""
        builders: dict[tuple[str, int], Any] = {}
        full: list[tuple[Any, str, int]] = []
        for topic, partition, key, value in records:
            batch = builders.get((topic, partition))
            if batch is None:
                batch = builders[topic, partition] = self._producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None) is None:
                full.append((batch, topic, partition))
                batch = builders[topic, partition] = self._producer.create_batch()
                if batch.append(key=key, value=value, timestamp=None) is None:
                    raise ValueError(f"record of {len(value)} bytes exceeds the batch size")
        full.extend((b, t, p) for (t, p), b in builders.items() if b.record_count())
        if self._send_lock is None:
            self._send_lock = asyncio.Lock()
        async with self._send_lock:
            return [
                await self._producer.send_batch(batch, topic, partition=partition)
                for batch, topic, partition in full
            ]

    async def send_grouped(self, records: Iterable[tuple[str, bytes | None, bytes]]) -> int:
        """Sends (topic, key, value) records, batching per topic and partition."""
        by_topic: dict[str, list[Record]] = defaultdict(list)
        for topic, key, value in records:
            by_topic[topic].append((key, value))
        sent = await asyncio.gather(*(self.send_many(t, rs) for t, rs in by_topic.items()))
        return sum(sent)


async def ensure_topics(bootstrap: str, names: Sequence[str], *, timeout_s: float = 30.0) -> None:
    """Creates the named registry topics that do not exist yet (idempotent, safe to race)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await asyncio.wait_for(admin.start(), timeout_s)
    try:
        existing = set(await admin.list_topics())
        missing = [TOPICS[name] for name in names if name not in existing]
        if not missing:
            return
        response = await admin.create_topics(
            [
                NewTopic(
                    spec.name,
                    num_partitions=spec.partitions,
                    replication_factor=1 if _single_broker(bootstrap) else 3,
                    topic_configs=dict(spec.config),
                )
                for spec in missing
            ]
        )
        for topic_error in getattr(response, "topic_errors", []):
            name, code = topic_error[0], topic_error[1]
            if code not in (0, TopicAlreadyExistsError.errno):
                raise RuntimeError(f"creating topic {name} failed with error code {code}")
        log.info("created topics", extra={"topics": [s.name for s in missing]})
    finally:
        await admin.close()


def _single_broker(bootstrap: str) -> bool:
    return len([b for b in bootstrap.split(",") if b.strip()]) == 1


class PoisonMessageError(Exception):
    """A message that will never be processable (bad JSON, schema violation). Dead-letter it."""


def decode(model: type[M], raw: bytes | None) -> M:
    """Validates a Kafka value against its model; raises `PoisonMessageError` with a reason
    suitable for the dead-letter topic."""
    if raw is None:
        raise PoisonMessageError("empty value (tombstone) on a topic that has none")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        if any(err["type"] == "json_invalid" for err in exc.errors()):
            raise PoisonMessageError(f"invalid JSON: {exc.errors()[0]['msg']}") from None
        reasons = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors()[:10]
        )
        raise PoisonMessageError(f"schema violation ({model.__name__}): {reasons}") from None


def _tenant_of(raw: bytes) -> str:
    try:
        value = json.loads(raw)
    except ValueError:
        return TENANT_UNKNOWN
    tenant = value.get("tenant_id") if isinstance(value, dict) else None
    if isinstance(tenant, str) and 2 <= len(tenant) <= 63 and tenant.replace("-", "").isalnum():
        return tenant.lower()
    return TENANT_UNKNOWN


async def dead_letter(
    producer: BatchProducer,
    *,
    service: str,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    reason: str,
) -> None:
    """Parks an unprocessable message on the dead-letter topic with the reason, so the consumer
    can commit past it instead of crash-looping."""
    payload = (value or b"")[:_MAX_DEAD_PAYLOAD]
    letter = DeadLetter(
        tenant_id=_tenant_of(payload),
        service=service,
        source_topic=topic,
        partition=partition,
        offset=offset,
        key=key.decode("utf-8", "replace") if key else None,
        payload=payload.decode("utf-8", "replace"),
        reason=reason[:2000],
    )
    await producer.send_model(DEAD_LETTER, letter, key=topic)
    DEAD_LETTERS.labels(service=service, topic=topic).inc()
    log.warning(
        "message dead-lettered",
        extra={"topic": topic, "partition": partition, "offset": offset, "reason": reason[:300]},
    )
