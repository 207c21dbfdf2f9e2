"""MongoDB access of issues. Every query filters by tenant; ids are unique per tenant.

Collections: `config` (one document per tenant), `categories`, `departments`, `areas`,
`rules`, `staff`, `templates`, `reports`, `photos`. Reports carry their own notification
outbox (`pending_notifications`), written in the same single-document update as the change
that causes it (see `notify.py`)."""

from __future__ import annotations

import asyncio
import json
import zlib
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from sirene.runtime import Document

GEOMETRY_FIELDS = ("geometry", "boundary")
"""Fields holding GeoJSON: stored as JSON text, since FerretDB v1 refuses nested arrays."""


def _pack(doc: Document) -> Document:
    return {
        k: (json.dumps(v) if k in GEOMETRY_FIELDS and v is not None else v) for k, v in doc.items()
    }


def _unpack(doc: Document | None) -> Document | None:
    if doc is None:
        return None
    return {
        k: (json.loads(v) if k in GEOMETRY_FIELDS and isinstance(v, str) else v)
        for k, v in doc.items()
    }


CONFIG_KINDS = ("categories", "departments", "areas", "rules", "templates", "staff")
"""Per-tenant configuration collections, each keyed by (tenant, id)."""


LOCK_STRIPES = 256


class Repository:
    """Data of every tenant; methods take the tenant explicitly.

    Every write to a report goes through `patch_report`, which holds a per-report lock of
    this process. MongoDB applies each single-document update atomically; FerretDB v1 does
    not (two concurrent updates of one document can lose one — measured), so the notification
    relay clearing a report's outbox while staff change its status could undo the change. The
    lock keeps one process's writers apart; replicas on FerretDB are not supported."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.db = db
        self._locks = [asyncio.Lock() for _ in range(LOCK_STRIPES)]
        self.config: AsyncCollection[Document] = db["config"]
        self.reports: AsyncCollection[Document] = db["reports"]
        self.photos: AsyncCollection[Document] = db["photos"]

    def kind(self, name: str) -> AsyncCollection[Document]:
        """One of the configuration collections (`CONFIG_KINDS`)."""
        if name not in CONFIG_KINDS:
            raise KeyError(name)
        return self.db[name]

    async def ensure_indexes(self) -> None:
        """Creates the indexes (idempotent; called at startup)."""
        for name in CONFIG_KINDS:
            await self.db[name].create_index(
                [("tenant", ASCENDING), ("id", ASCENDING)], unique=True, name="tenant_id"
            )
        await self.db["staff"].create_index("token_hash", unique=True, name="token_hash")
        await self.reports.create_index(
            [("tenant", ASCENDING), ("id", ASCENDING)], unique=True, name="tenant_id"
        )
        await self.reports.create_index("token", unique=True, name="token")
        await self.reports.create_index(
            [("tenant", ASCENDING), ("created_at", DESCENDING)], name="tenant_created"
        )
        await self.reports.create_index(
            [("tenant", ASCENDING), ("department", ASCENDING), ("created_at", DESCENDING)],
            name="tenant_department_created",
        )
        await self.reports.create_index(
            [("tenant", ASCENDING), ("category", ASCENDING), ("location.lat", ASCENDING)],
            name="tenant_category_lat",
        )
        await self.reports.create_index("notify_pending", name="notify_pending")
        await self.photos.create_index(
            [("tenant", ASCENDING), ("id", ASCENDING)], unique=True, name="tenant_id"
        )

    # --- tenant configuration ----------------------------------------------------------------

    async def get_config(self, tenant: str) -> Document | None:
        return _unpack(await self.config.find_one({"_id": tenant}))

    async def put_config(self, tenant: str, values: Document) -> None:
        await self.config.replace_one(
            {"_id": tenant}, {"_id": tenant, **_pack(values)}, upsert=True
        )

    async def list_kind(self, kind: str, tenant: str) -> list[Document]:
        """Every item of a configuration kind of the tenant, by id."""
        cursor = self.kind(kind).find({"tenant": tenant}).sort("id", ASCENDING)
        return [_unpack(doc) async for doc in cursor]  # type: ignore[misc]

    async def get_kind(self, kind: str, tenant: str, item_id: str) -> Document | None:
        return _unpack(await self.kind(kind).find_one({"tenant": tenant, "id": item_id}))

    async def put_kind(self, kind: str, tenant: str, item: Document) -> bool:
        """Creates or replaces an item; True if it was new."""
        result = await self.kind(kind).replace_one(
            {"tenant": tenant, "id": item["id"]},
            {"_id": f"{tenant}:{item['id']}", "tenant": tenant, **_pack(item)},
            upsert=True,
        )
        return result.upserted_id is not None

    async def insert_kind(self, kind: str, tenant: str, item: Document) -> bool:
        """Creates an item; False if the id is taken."""
        try:
            await self.kind(kind).insert_one(
                {"_id": f"{tenant}:{item['id']}", "tenant": tenant, **item}
            )
        except DuplicateKeyError:
            return False
        return True

    async def delete_kind(self, kind: str, tenant: str, item_id: str) -> bool:
        result = await self.kind(kind).delete_one({"tenant": tenant, "id": item_id})
        return result.deleted_count == 1

    async def staff_by_token_hash(self, token_hash: str) -> Document | None:
        return await self.kind("staff").find_one({"token_hash": token_hash, "active": True})

    async def staff_by_setup_hash(self, tenant: str, setup_hash: str) -> Document | None:
        """The active staff member holding this password set-up code (hash)."""
        return await self.kind("staff").find_one(
            {"tenant": tenant, "setup_hash": setup_hash, "active": True}
        )

    async def set_setup_code(
        self, tenant: str, staff_id: str, setup_hash: str, expires_at: datetime
    ) -> bool:
        """Gives a staff member a new set-up code (the previous one stops working)."""
        result = await self.kind("staff").update_one(
            {"tenant": tenant, "id": staff_id},
            {"$set": {"setup_hash": setup_hash, "setup_expires_at": expires_at}},
        )
        return result.matched_count == 1

    async def use_setup_code(
        self, tenant: str, staff_id: str, setup_hash: str, password_hash: str, at: datetime
    ) -> bool:
        """Sets the password and spends the code, in one update; False if the code was spent
        (or replaced) meanwhile."""
        result = await self.kind("staff").update_one(
            {"tenant": tenant, "id": staff_id, "setup_hash": setup_hash},
            {
                "$set": {"password_hash": password_hash, "password_set_at": at},
                "$unset": {"setup_hash": "", "setup_expires_at": ""},
            },
        )
        return result.modified_count == 1

    async def change_password(
        self, tenant: str, staff_id: str, old_hash: str | None, new_hash: str, at: datetime
    ) -> bool:
        """Replaces the password hash if it is still `old_hash` (False if it changed
        meanwhile)."""
        result = await self.kind("staff").update_one(
            {"tenant": tenant, "id": staff_id, "password_hash": old_hash},
            {"$set": {"password_hash": new_hash, "password_set_at": at}},
        )
        return result.modified_count == 1

    # --- reports -----------------------------------------------------------------------------

    async def insert_report(self, doc: Document) -> None:
        """Stores a new report."""
        await self.reports.insert_one(doc)

    async def get_report(self, tenant: str, report_id: str) -> Document | None:
        """The report, if it belongs to the tenant."""
        return await self.reports.find_one({"tenant": tenant, "id": report_id})

    async def get_by_token(self, tenant: str, token: str) -> Document | None:
        return await self.reports.find_one({"tenant": tenant, "token": token})

    def _lock(self, doc_id: str) -> asyncio.Lock:
        return self._locks[zlib.crc32(doc_id.encode()) % LOCK_STRIPES]

    async def patch_report(
        self, query: Document, update: Document, *, return_after: bool = False
    ) -> Document | None:
        """One update of one report (by `query`, which names its `_id` or tenant and id),
        serialised with this process's other writes to it; the new document if asked."""
        doc_id = query.get("_id") or f"{query['tenant']}:{query['id']}"
        async with self._lock(str(doc_id)):
            if return_after:
                return await self.reports.find_one_and_update(
                    query, update, return_document=ReturnDocument.AFTER
                )
            await self.reports.update_one(query, update)
            return None

    async def update_report(
        self, tenant: str, report_id: str, version: int, update: Document
    ) -> Document | None:
        """Applies `update` if the report is still at `version` (optimistic concurrency) and
        bumps the version; returns the new document, or None if it changed meanwhile."""
        update = {**update}
        update.setdefault("$inc", {})["version"] = 1
        return await self.patch_report(
            {"tenant": tenant, "id": report_id, "version": version}, update, return_after=True
        )

    async def find_reports(
        self,
        query: Document,
        *,
        limit: int,
        sort: list[tuple[str, int]] | None = None,
    ) -> list[Document]:
        """Reports matching `query` (which must name the tenant), newest first by default."""
        if "tenant" not in query:
            raise ValueError("report queries are always tenant-scoped")
        cursor = self.reports.find(query, {"pending_notifications": 0})
        cursor = cursor.sort(sort or [("created_at", DESCENDING), ("id", DESCENDING)])
        return [doc async for doc in cursor.limit(limit)]

    async def open_reports_near(
        self,
        tenant: str,
        category: str,
        box: tuple[float, float, float, float],
        open_statuses: list[str],
    ) -> list[Document]:
        """Open, publicly visible reports of a category inside a lat/lon box."""
        min_lat, max_lat, min_lon, max_lon = box
        query: dict[str, Any] = {
            "tenant": tenant,
            "category": category,
            "location.lat": {"$gte": min_lat, "$lte": max_lat},
            "location.lon": {"$gte": min_lon, "$lte": max_lon},
            "status": {"$in": open_statuses},
            "moderation": "public",
        }
        cursor = self.reports.find(query, {"pending_notifications": 0}).limit(50)
        return [doc async for doc in cursor]

    async def pending_notifications(self, limit: int) -> list[Document]:
        cursor = self.reports.find(
            {"notify_pending": True}, {"_id": 1, "pending_notifications": 1, "tenant": 1}
        ).limit(limit)
        return [doc async for doc in cursor]

    async def clear_notifications(self, doc_id: str, ids: list[str]) -> None:
        """Removes relayed notifications from the report's outbox; clears the flag when none
        is left (a notification added meanwhile keeps it set)."""
        await self.patch_report(
            {"_id": doc_id}, {"$unset": {f"pending_notifications.{i}": "" for i in ids}}
        )
        await self.patch_report(
            {"_id": doc_id, "pending_notifications": {}}, {"$set": {"notify_pending": False}}
        )

    async def count_reports(self, query: Document) -> int:
        if "tenant" not in query:
            raise ValueError("report queries are always tenant-scoped")
        return await self.reports.count_documents(query)

    # --- photos ------------------------------------------------------------------------------

    async def insert_photo(self, doc: Document) -> None:
        await self.photos.insert_one(doc)

    async def get_photo(self, tenant: str, photo_id: str) -> Document | None:
        return await self.photos.find_one({"tenant": tenant, "id": photo_id})

    async def reports_since(self, tenant: str, since: datetime) -> int:
        return await self.reports.count_documents({"tenant": tenant, "created_at": {"$gte": since}})
