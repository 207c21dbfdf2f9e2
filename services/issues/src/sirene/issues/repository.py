"""MongoDB access of issues: citizen reports. Every query filters by tenant."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from sirene.runtime import Document


class Repository:
    """Reports of every tenant; methods take the tenant explicitly."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.reports: AsyncCollection[Document] = db["reports"]

    async def ensure_indexes(self) -> None:
        """Creates the indexes (idempotent; called at startup)."""
        await self.reports.create_index(
            [("tenant", ASCENDING), ("id", ASCENDING)], unique=True, name="tenant_id"
        )
        await self.reports.create_index(
            [("tenant", ASCENDING), ("created_at", DESCENDING)], name="tenant_created"
        )

    async def insert_report(self, doc: Document) -> None:
        """Stores a new report."""
        await self.reports.insert_one(doc)

    async def get_report(self, tenant: str, report_id: str) -> Document | None:
        """The report, if it belongs to the tenant."""
        return await self.reports.find_one({"tenant": tenant, "id": report_id})

    async def list_reports(
        self, tenant: str, *, limit: int, before: datetime | None, status: str | None
    ) -> list[Document]:
        """The tenant's reports, newest first."""
        query: dict[str, Any] = {"tenant": tenant}
        if before is not None:
            query["created_at"] = {"$lt": before}
        if status is not None:
            query["status"] = status
        cursor = self.reports.find(query).sort("created_at", DESCENDING).limit(limit)
        return [doc async for doc in cursor]
