"""Scheduled publication: a loop that publishes due alerts (see `service.release_due`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from redis.asyncio import Redis

from sirene.runtime import Document
from sirene.schemas import utcnow

from .repository import Repository
from .service import Wake, release_due

log = logging.getLogger(__name__)


class Scheduler:
    """Looks for due scheduled alerts every `interval_s` (and once right at start, so what
    fell due while the publisher was down goes out at once). Several replicas are safe: each
    due alert version is first claimed in Redis (for 30 s), and the state transition decides
    as well — on MongoDB it alone would, but FerretDB v1 can let two conditional updates of one
    document both succeed."""

    def __init__(
        self,
        *,
        redis: Redis,
        repo: Repository,
        wake: Wake,
        interval_s: float,
        default_duration_s: int,
    ) -> None:
        self._redis = redis
        self._repo = repo
        self._wake = wake
        self._interval_s = interval_s
        self._default_duration_s = default_duration_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="publisher-scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _claim(self, doc: Document) -> bool:
        key = f"sirene:publisher:release:{doc['tenant']}:{doc['id']}:{doc['version']}"
        return bool(await self._redis.set(key, b"1", nx=True, ex=30))

    async def _run(self) -> None:
        while True:
            try:
                await release_due(
                    repo=self._repo,
                    wake=self._wake,
                    now=utcnow(),
                    default_duration_s=self._default_duration_s,
                    claim=self._claim,
                )
            except asyncio.CancelledError:
                raise
            except Exception:  # MongoDB away: try again next round, nothing is lost
                log.exception("scheduler round failed; retrying")
            await asyncio.sleep(self._interval_s)
