"""The report gauges count what MongoDB holds: reports per tenant and status, and open reports
past their promised handling time."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from pymongo import AsyncMongoClient

from sirene.devstack.testing import InfraUrls
from sirene.issues.repository import Repository
from sirene.issues.stats import OVERDUE, REPORTS, ReportGauges
from sirene.schemas import utcnow

pytestmark = pytest.mark.integration


async def test_gauges_count_reports_by_status_and_overdue(sirene_infra: InfraUrls) -> None:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(sirene_infra.mongodb_uri)
    db = client[f"test_stats_{uuid.uuid4().hex[:8]}"]
    try:
        repo = Repository(db)
        now = utcnow()
        a, b = f"a{uuid.uuid4().hex[:6]}", f"b{uuid.uuid4().hex[:6]}"
        rows = [
            (a, "received", now - timedelta(hours=1)),  # open, overdue
            (a, "in_progress", now + timedelta(days=1)),  # open, not yet due
            (a, "in_progress", now - timedelta(days=2)),  # open, overdue
            (a, "resolved", now - timedelta(days=2)),  # closed: never overdue
            (b, "received", None),  # no SLA
        ]
        await db["reports"].insert_many(
            [
                {"tenant": t, "id": uuid.uuid4().hex, "status": s, "expected_at": due}
                for t, s, due in rows
            ]
        )
        await ReportGauges(repo, [a, b]).update()
        assert REPORTS.labels(a, "received")._value.get() == 1
        assert REPORTS.labels(a, "in_progress")._value.get() == 2
        assert REPORTS.labels(a, "resolved")._value.get() == 1
        assert REPORTS.labels(a, "duplicate")._value.get() == 0
        assert REPORTS.labels(b, "received")._value.get() == 1
        assert OVERDUE.labels(a)._value.get() == 2
        assert OVERDUE.labels(b)._value.get() == 0
    finally:
        await client.drop_database(db.name)
        await client.close()
