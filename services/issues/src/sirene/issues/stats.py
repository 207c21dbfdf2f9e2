"""Report counts for the "Citizen reports" dashboard: how many reports stand in each status and
how many open ones are past their category's promised handling time, per tenant.

Counted in MongoDB (two aggregations) every `interval_s` and exposed as gauges, so a scrape
never queries the database. Every replica counts the same data: dashboards take `max by`.
Labels are bounded: tenants come from configuration, statuses from `ReportStatus`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime

from prometheus_client import Gauge

from sirene.schemas import utcnow

from .models import OPEN_STATUSES, ReportStatus
from .repository import Repository

log = logging.getLogger(__name__)

REPORTS = Gauge(
    "sirene_issues_reports",
    "Citizen reports by tenant and current status.",
    ["tenant", "status"],
)
OVERDUE = Gauge(
    "sirene_issues_reports_overdue",
    "Open reports past their category's promised handling time (SLA), by tenant.",
    ["tenant"],
)


async def count(
    repo: Repository, now: datetime | None = None
) -> tuple[dict[tuple[str, str], int], dict[str, int]]:
    """(tenant, status) → reports, and tenant → overdue open reports."""
    by_status: dict[tuple[str, str], int] = {}
    pipeline = [{"$group": {"_id": {"tenant": "$tenant", "status": "$status"}, "n": {"$sum": 1}}}]
    async for row in await repo.reports.aggregate(pipeline):
        by_status[(str(row["_id"]["tenant"]), str(row["_id"]["status"]))] = int(row["n"])
    overdue: dict[str, int] = {}
    late = {
        "status": {"$in": [s.value for s in OPEN_STATUSES]},
        "expected_at": {"$lt": now or utcnow()},
    }
    pipeline = [{"$match": late}, {"$group": {"_id": "$tenant", "n": {"$sum": 1}}}]
    async for row in await repo.reports.aggregate(pipeline):
        overdue[str(row["_id"])] = int(row["n"])
    return by_status, overdue


class ReportGauges:
    """Keeps the gauges current for the configured tenants while running."""

    def __init__(self, repo: Repository, tenants: list[str], *, interval_s: float = 15.0) -> None:
        self._repo = repo
        self._tenants = tenants
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    async def update(self) -> None:
        by_status, overdue = await count(self._repo)
        for tenant in self._tenants:  # zeros too: "no overdue report" is a value, not a gap
            for status in ReportStatus:
                REPORTS.labels(tenant, status.value).set(by_status.get((tenant, status.value), 0))
            OVERDUE.labels(tenant).set(overdue.get(tenant, 0))

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="issues-report-gauges")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.update()
            except asyncio.CancelledError:
                raise
            except Exception:  # metrics must never take the service down
                log.warning("counting reports for the metrics failed", exc_info=True)
            await asyncio.sleep(self._interval_s)
