"""MongoDB access of the publisher: alerts (with the alert.published outbox on each alert
document) and one document per delivery task for progress. Every query filters by tenant."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from sirene.runtime import Document
from sirene.runtime.mongo import chunked

_DUPLICATE_KEY = 11000


class Repository:
    """Alerts and delivery states of every tenant; methods take the tenant explicitly."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.alerts: AsyncCollection[Document] = db["alerts"]
        self.deliveries: AsyncCollection[Document] = db["deliveries"]

    async def ensure_indexes(self) -> None:
        """Creates the indexes (idempotent; called at startup)."""
        await self.alerts.create_index(
            [("tenant", ASCENDING), ("id", ASCENDING)], unique=True, name="tenant_id"
        )
        await self.alerts.create_index(
            [("tenant", ASCENDING), ("created_at", DESCENDING)], name="tenant_created"
        )
        await self.alerts.create_index([("outbox.state", ASCENDING)], name="outbox_state")
        await self.deliveries.create_index(
            [("tenant", ASCENDING), ("alert_id", ASCENDING)], name="tenant_alert"
        )

    async def insert_alert(self, doc: Document) -> None:
        """Stores a new alert (if published, its outbox is already pending)."""
        await self.alerts.insert_one(doc)

    async def get_alert(self, tenant: str, alert_id: str) -> Document | None:
        """The alert, if it belongs to the tenant."""
        return await self.alerts.find_one({"tenant": tenant, "id": alert_id})

    async def list_alerts(
        self, tenant: str, *, limit: int, before: datetime | None
    ) -> list[Document]:
        """The tenant's alerts, newest first, created before `before` if given."""
        query: dict[str, Any] = {"tenant": tenant}
        if before is not None:
            query["created_at"] = {"$lt": before}
        cursor = self.alerts.find(query).sort("created_at", DESCENDING).limit(limit)
        return [doc async for doc in cursor]

    async def publish_draft(
        self, tenant: str, alert_id: str, *, version: int, changes: Document
    ) -> Document | None:
        """Turns a draft at `version` into a published alert with a pending outbox, in one
        single-document update. None when it is no longer that draft."""
        return await self.alerts.find_one_and_update(
            {"tenant": tenant, "id": alert_id, "state": "draft", "version": version},
            {"$set": changes, "$inc": {"version": 1}},
            return_document=ReturnDocument.AFTER,
        )

    async def store_fanout(self, tenant: str, alert_id: str, fanout: Document) -> bool:
        """Stores the fanout summary on the tenant's alert; False when there is no such alert."""
        result = await self.alerts.update_one(
            {"tenant": tenant, "id": alert_id}, {"$set": {"fanout": fanout}}
        )
        return result.matched_count > 0

    async def apply(self, deliveries: Sequence[UpdateOne], alerts: Sequence[UpdateOne]) -> None:
        """Applies delivery upserts and alert progress updates in unordered bulk writes. The
        updates only use $max/$min/$setOnInsert, so repeating them is harmless: an upsert
        race (duplicate key) is simply retried once."""
        for collection, ops in ((self.deliveries, deliveries), (self.alerts, alerts)):
            for chunk in chunked(ops):
                try:
                    await collection.bulk_write(chunk, ordered=False)
                except BulkWriteError as exc:
                    errors = exc.details.get("writeErrors", [])
                    if not errors or any(e.get("code") != _DUPLICATE_KEY for e in errors):
                        raise
                    await collection.bulk_write(chunk, ordered=False)

    async def delivery_counts(self, tenant: str, alert_id: str) -> list[tuple[str, int, int]]:
        """(channel, status code, tasks) for the tenant's alert."""
        pipeline: list[Document] = [
            {"$match": {"tenant": tenant, "alert_id": alert_id}},
            {"$group": {"_id": {"channel": "$channel", "code": "$code"}, "n": {"$sum": 1}}},
        ]
        cursor = await self.deliveries.aggregate(pipeline)
        return [(d["_id"]["channel"], int(d["_id"]["code"]), int(d["n"])) async for d in cursor]
