"""Relays the notifications queued on reports (`pending_notifications`) to
`notification.requested`.

A change and its notification are one single-document write (the notification sits in the
report's own outbox), so they cannot diverge. The relay sends every queued notification,
waits for Kafka's acknowledgement, then removes exactly those from the outbox. A crash between
the two sends them again: at-least-once, made effectively-once downstream by the deterministic
notification id (fanout derives the task id from it; the channel worker claims it)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

from sirene.runtime import BatchProducer
from sirene.schemas import NOTIFICATION_REQUESTED, NotificationRequested, utcnow

from .metrics import NOTIFICATION_LAG, NOTIFICATIONS_RELAYED
from .repository import Repository

log = logging.getLogger(__name__)


class NotificationRelay:
    """Background task: runs at start, when woken after a write, and every `interval_s`."""

    def __init__(
        self, *, repo: Repository, producer: BatchProducer, interval_s: float, batch: int = 200
    ) -> None:
        self._repo = repo
        self._producer = producer
        self._interval_s = interval_s
        self._batch = batch
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Asks the relay to run now (after a write that queued a notification)."""
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="issues-notification-relay")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                while await self.relay_once() == self._batch:
                    continue  # a full batch: more may be queued, relay the next at once
            except asyncio.CancelledError:
                raise
            except Exception:  # Kafka or MongoDB away: stays queued, next round retries
                log.exception("notification relay failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval_s)

    async def relay_once(self) -> int:
        """Sends the queued notifications of up to `batch` reports; returns how many reports
        it looked at."""
        docs = await self._repo.pending_notifications(self._batch)
        if not docs:
            return 0
        records: list[tuple[bytes | None, bytes]] = []
        done: list[tuple[str, list[str]]] = []
        requested: list[datetime] = []
        for doc in docs:
            ids: list[str] = []
            for note_id, raw in (doc.get("pending_notifications") or {}).items():
                try:
                    event = NotificationRequested.model_validate(raw)
                except ValueError:
                    log.exception("queued notification is invalid; dropped")
                    ids.append(note_id)
                    continue
                records.append((event.recipient_id.encode(), event.model_dump_json().encode()))
                requested.append(event.requested_at)
                ids.append(note_id)
            done.append((doc["_id"], ids))
        if records:
            await self._producer.send_many(NOTIFICATION_REQUESTED, records)
        for doc_id, ids in done:
            await self._repo.clear_notifications(doc_id, ids)
        now = utcnow()
        for at in requested:
            at = at if at.tzinfo else at.replace(tzinfo=UTC)
            NOTIFICATION_LAG.observe(max(0.0, (now - at).total_seconds()))
        NOTIFICATIONS_RELAYED.inc(len(records))
        return len(docs)
