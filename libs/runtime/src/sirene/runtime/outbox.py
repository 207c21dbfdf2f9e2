"""Outbox relay: publishes documents whose `outbox.state` is 'pending' and marks them 'sent'.

The outbox lives on the document itself, so the business write and the "to be published" mark
are one single-document atomic update (no multi-document transactions, works on FerretDB v1)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from prometheus_client import Counter, Histogram
from pydantic import BaseModel
from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from redis.asyncio import Redis

from sirene.schemas import utcnow

from .kafka import BatchProducer
from .logging import mask
from .mongo import Document, chunked

log = logging.getLogger(__name__)

PENDING = "pending"
SENT = "sent"
FAILED = "failed"

BuildEvent = Callable[[Document], tuple[str, BaseModel | None]]
"""Turns a pending document into (Kafka key, event); event None publishes a tombstone (null
value: on a compacted topic the key is forgotten)."""

AfterSent = Callable[[list[Document]], Awaitable[None]]
"""Called with the documents just marked sent (e.g. to delete erased ones)."""


def pending_outbox(now: datetime, **extra: object) -> dict[str, object]:
    """The outbox value a writer stores together with its change."""
    return {"state": PENDING, "since": now, **extra}


class OutboxRelay:
    """Relays pending outbox documents of one collection to one topic.

    Contract: writers set `outbox` to `pending_outbox(...)` and increment `version` in the same
    single-document update, then call `wake()`. The relay publishes every pending document
    (oldest first, in batches) and marks it sent only if its `version` is unchanged, so a newer
    write stays pending and goes out next round. It runs once at start (picking up whatever a
    crash left pending), again whenever woken, and every `poll_interval_s` as a safety net.
    Delivery is at-least-once: a crash between the broker's acknowledgement and the mark sends
    the event again, so consumers must be idempotent (event id, version). One relay task per
    process. With `claims` (Redis), a relay first claims each document version for
    `claim_ttl_s` and relays only what it claimed, so replicas do not send the same version at
    the same moment; a claim left by a crashed replica runs out, and another sends then."""

    def __init__(
        self,
        *,
        name: str,
        collection: AsyncCollection[Document],
        producer: BatchProducer,
        topic: str,
        build: BuildEvent,
        poll_interval_s: float,
        batch_size: int,
        relayed: Counter,
        lag: Histogram,
        after_sent: AfterSent | None = None,
        claims: Redis | None = None,
        claim_ttl_s: float = 30.0,
    ) -> None:
        self.name = name
        self._collection = collection
        self._producer = producer
        self._topic = topic
        self._build = build
        self._poll_interval_s = poll_interval_s
        self._batch_size = batch_size
        self._relayed = relayed
        self._lag = lag
        self._after_sent = after_sent
        self._claims = claims
        self._claim_ttl_ms = int(claim_ttl_s * 1000)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Asks the relay to run now (call after committing a pending outbox)."""
        self._wake.set()

    def start(self) -> None:
        """Starts the relay loop in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self.name}")

    async def stop(self) -> None:
        """Stops the loop; pending documents stay pending for the next start."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                full_batch = True
                while full_batch:  # a full batch means more may be waiting
                    full_batch = await self.relay_once() == self._batch_size
            except asyncio.CancelledError:
                raise
            except Exception:  # Kafka or MongoDB away: stay pending, try again next round
                log.exception("outbox relay failed; retrying", extra={"relay": self.name})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_interval_s)

    def _claim_key(self, doc: Document) -> str:
        return f"sirene:outbox-claim:{self.name}:{doc['_id']}:{doc['version']}"

    async def _claimed(self, claims: Redis, docs: list[Document]) -> list[Document]:
        """The documents whose current version this relay claimed (one round trip)."""
        pipe = claims.pipeline(transaction=False)
        for doc in docs:
            pipe.set(self._claim_key(doc), b"1", nx=True, px=self._claim_ttl_ms)
        won = await pipe.execute()
        return [doc for doc, ok in zip(docs, won, strict=True) if ok]

    async def relay_once(self) -> int:
        """Publishes one batch of pending documents; returns how many it took on (a full batch
        means more may be waiting)."""
        docs = [
            doc
            async for doc in self._collection.find({"outbox.state": PENDING})
            .sort("outbox.since", 1)
            .limit(self._batch_size)
        ]
        if docs and self._claims is not None:
            docs = await self._claimed(self._claims, docs)
        if not docs:
            return 0
        records: list[tuple[bytes | None, bytes | None]] = []
        sent: list[Document] = []
        marks: list[UpdateOne] = []
        now = utcnow()
        for doc in docs:
            try:
                key, event = self._build(doc)
            except Exception as exc:  # a document that can never become a valid event
                log.exception("outbox document cannot be relayed", extra={"relay": self.name})
                marks.append(
                    UpdateOne(
                        {"_id": doc["_id"], "version": doc["version"]},
                        {"$set": {"outbox.state": FAILED, "outbox.reason": mask(str(exc))[:500]}},
                    )
                )
                continue
            value = event.model_dump_json().encode() if event is not None else None
            records.append((key.encode(), value))
            sent.append(doc)
        if records:
            try:
                await self._producer.send_many(self._topic, records)
            except Exception:
                if self._claims is not None:  # not sent: the next round may take them at once
                    with contextlib.suppress(Exception):
                        await self._claims.delete(*(self._claim_key(doc) for doc in docs))
                raise
        for doc in sent:
            marks.append(
                UpdateOne(
                    {"_id": doc["_id"], "version": doc["version"], "outbox.state": PENDING},
                    {"$set": {"outbox.state": SENT, "outbox.sent_at": now}},
                )
            )
            since = doc["outbox"].get("since")
            if isinstance(since, datetime):
                self._lag.observe(max(0.0, (now - since.astimezone(UTC)).total_seconds()))
        for chunk in chunked(marks):
            await self._collection.bulk_write(chunk, ordered=False)
        self._relayed.inc(len(sent))
        if sent and self._after_sent is not None:
            await self._after_sent(sent)
        return len(docs)
