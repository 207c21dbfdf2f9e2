"""MongoDB access of the publisher: alerts (with the alert.published outbox on each alert
document) and one document per delivery task for progress. Every query filters by tenant.

The fanout summary and the first/last delivery times of an alert live in collections of
their own, each written by exactly one consumer, never on the alert document: FerretDB v1
applies an update as read-modify-write of the whole document, so two writers of one document
(the API changing its state, the receipts and the summary consumers) can lose each other's
update."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime
from typing import Any, cast

from gridfs import AsyncGridFSBucket
from pymongo import ASCENDING, DESCENDING, ReturnDocument, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from sirene.runtime import Document
from sirene.runtime.mongo import chunked, serialized_writes

_DUPLICATE_KEY = 11000
KNOWN_ALERTS_CACHED = 10_000


def pack_audience(audience: Document) -> Document:
    """The stored form of an audience: target area polygons as JSON text, since FerretDB v1
    refuses nested arrays."""
    areas = audience.get("areas")
    if not areas:
        return audience
    return {
        **audience,
        "areas": [
            {
                **a,
                "polygon": a["polygon"]
                if isinstance(a["polygon"], str)
                else json.dumps(a["polygon"]),
            }
            for a in areas
        ],
    }


def unpack_audience(audience: Document) -> Document:
    """The audience as the `Audience` model reads it (idempotent)."""
    areas = audience.get("areas")
    if not areas:
        return audience
    return {
        **audience,
        "areas": [
            {
                **a,
                "polygon": json.loads(a["polygon"])
                if isinstance(a["polygon"], str)
                else a["polygon"],
            }
            for a in areas
        ],
    }


def _packed(doc: Document) -> Document:
    return {**doc, "audience": pack_audience(doc["audience"])} if "audience" in doc else doc


def _unpacked(doc: Document | None) -> Document | None:
    if doc is None or "audience" not in doc:
        return doc
    return {**doc, "audience": unpack_audience(doc["audience"])}


class Repository:
    """Alerts and delivery states of every tenant; methods take the tenant explicitly."""

    def __init__(self, db: AsyncDatabase[Document], *, serialize_writes: bool = True) -> None:
        # the outbox relay marks these while the API changes them (see serialized_writes)
        self.alerts = serialized_writes(db["alerts"], enabled=serialize_writes)
        self.deliveries: AsyncCollection[Document] = db["deliveries"]
        self.fanouts: AsyncCollection[Document] = db["alert_fanouts"]
        self.delivery_times: AsyncCollection[Document] = db["alert_delivery_times"]
        self.staff: AsyncCollection[Document] = db["staff"]
        self.tenants: AsyncCollection[Document] = db["tenant_settings"]
        self.audit: AsyncCollection[Document] = db["audit"]
        self.files = AsyncGridFSBucket(db, bucket_name="attachments")
        # (tenant, alert id) of alerts known to exist: alerts are never deleted, so a hit
        # stays true; bounded, oldest first out
        self._known: OrderedDict[tuple[str, str], None] = OrderedDict()

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
        for per_alert in (self.fanouts, self.delivery_times):
            await per_alert.create_index(
                [("tenant", ASCENDING), ("alert_id", ASCENDING)], unique=True, name="tenant_alert"
            )
        await self.alerts.create_index(
            [("state", ASCENDING), ("effective", ASCENDING)], name="state_effective"
        )
        await self.staff.create_index(
            [("tenant", ASCENDING), ("username", ASCENDING)], unique=True, name="tenant_username"
        )
        await self.staff.create_index([("api_token_hashes", ASCENDING)], name="api_tokens")
        await self.alerts.create_index([("attachments.id", ASCENDING)], name="attachments")
        await self.audit.create_index([("tenant", ASCENDING), ("at", DESCENDING)], name="tenant_at")
        await self.audit.create_index(
            [("tenant", ASCENDING), ("alert_id", ASCENDING)], name="tenant_alert"
        )

    async def insert_alert(self, doc: Document) -> None:
        """Stores a new alert (if published, its outbox is already pending)."""
        await self.alerts.insert_one(_packed(doc))

    async def known_alerts(self, pairs: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which (tenant, alert id) pairs name an alert of this publisher: from the cache, the
        rest with one query per tenant."""
        pairs = set(pairs)
        known = {pair for pair in pairs if pair in self._known}
        asked: dict[str, set[str]] = {}
        for tenant, alert_id in pairs:
            if (tenant, alert_id) not in known:
                asked.setdefault(tenant, set()).add(alert_id)
        for tenant, ids in asked.items():
            async for doc in self.alerts.find(
                {"tenant": tenant, "id": {"$in": sorted(ids)}}, {"_id": 0, "id": 1}
            ):
                known.add((tenant, doc["id"]))
                self._known[(tenant, doc["id"])] = None
        while len(self._known) > KNOWN_ALERTS_CACHED:
            self._known.popitem(last=False)
        return known

    async def get_alert(self, tenant: str, alert_id: str) -> Document | None:
        """The alert, if it belongs to the tenant."""
        return _unpacked(await self.alerts.find_one({"tenant": tenant, "id": alert_id}))

    async def list_alerts(
        self, tenant: str, *, limit: int, before: datetime | None
    ) -> list[Document]:
        """The tenant's alerts, newest first, created before `before` if given."""
        query: dict[str, Any] = {"tenant": tenant}
        if before is not None:
            query["created_at"] = {"$lt": before}
        cursor = self.alerts.find(query).sort("created_at", DESCENDING).limit(limit)
        return [cast(Document, _unpacked(doc)) async for doc in cursor]

    async def transition(
        self, tenant: str, alert_id: str, *, state: str, version: int, changes: Document
    ) -> Document | None:
        """Applies `changes` to the tenant's alert if it is still in `state` at `version`, in one
        single-document update (a pending outbox goes with it). None when it has moved on."""
        return _unpacked(
            await self.alerts.find_one_and_update(
                {"tenant": tenant, "id": alert_id, "state": state, "version": version},
                {"$set": _packed(changes), "$inc": {"version": 1}},
                return_document=ReturnDocument.AFTER,
            )
        )

    async def due_scheduled(self, now: datetime, *, limit: int) -> list[Document]:
        """Scheduled alerts of every tenant whose effective time has come, oldest first."""
        cursor = (
            self.alerts.find({"state": "scheduled", "effective": {"$lte": now}})
            .sort("effective", ASCENDING)
            .limit(limit)
        )
        return [cast(Document, _unpacked(doc)) async for doc in cursor]

    async def mark(self, tenant: str, alert_id: str, changes: Document) -> None:
        """Sets fields on the tenant's alert (links such as `cancelled_by`)."""
        await self.alerts.update_one({"tenant": tenant, "id": alert_id}, {"$set": _packed(changes)})

    async def store_file(
        self, file_id: str, filename: str, data: bytes, metadata: Document
    ) -> None:
        """Stores an attachment's content in GridFS."""
        await self.files.upload_from_stream_with_id(file_id, filename, data, metadata=metadata)

    async def read_file(self, file_id: str) -> bytes:
        """An attachment's content."""
        stream = await self.files.open_download_stream(file_id)
        return await stream.read()

    async def delete_file(self, file_id: str) -> None:
        await self.files.delete(file_id)

    async def attach(
        self, tenant: str, alert_id: str, entry: Document, *, max_count: int
    ) -> Document | None:
        """Adds an attachment entry to a draft with fewer than `max_count` attachments."""
        return _unpacked(
            await self.alerts.find_one_and_update(
                {
                    "tenant": tenant,
                    "id": alert_id,
                    "state": "draft",
                    f"attachments.{max_count - 1}": {"$exists": False},
                },
                {"$push": {"attachments": entry}, "$inc": {"version": 1}},
                return_document=ReturnDocument.AFTER,
            )
        )

    async def alert_with_attachment(self, file_id: str) -> Document | None:
        """The alert an attachment belongs to."""
        return _unpacked(await self.alerts.find_one({"attachments.id": file_id}))

    # --- staff, tenant settings, audit ------------------------------------------------------

    async def insert_staff(self, doc: Document) -> bool:
        """Stores a new staff account; False when the user name is taken (unique index)."""
        try:
            await self.staff.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def staff_by_username(self, tenant: str, username: str) -> Document | None:
        return await self.staff.find_one({"tenant": tenant, "username": username})

    async def get_staff(self, tenant: str, staff_id: str) -> Document | None:
        return await self.staff.find_one({"tenant": tenant, "id": staff_id})

    async def list_staff(self, tenant: str) -> list[Document]:
        return [d async for d in self.staff.find({"tenant": tenant}).sort("username", 1)]

    async def staff_by_token_hash(self, digest: str) -> Document | None:
        return await self.staff.find_one({"api_token_hashes": digest})

    async def add_api_token(self, tenant: str, staff_id: str, digest: str) -> bool:
        result = await self.staff.update_one(
            {"tenant": tenant, "id": staff_id}, {"$push": {"api_token_hashes": digest}}
        )
        return result.matched_count > 0

    async def set_staff(self, tenant: str, staff_id: str, changes: Document) -> bool:
        result = await self.staff.update_one({"tenant": tenant, "id": staff_id}, {"$set": changes})
        return result.matched_count > 0

    async def tenant_settings(self, tenant: str) -> Document | None:
        return await self.tenants.find_one({"_id": tenant})

    async def put_tenant_settings(self, tenant: str, doc: Document) -> None:
        fields = {k: v for k, v in doc.items() if k != "_id"}
        await self.tenants.replace_one({"_id": tenant}, {"_id": tenant, **fields}, upsert=True)

    async def add_audit(self, entry: Document) -> None:
        await self.audit.insert_one(entry)

    async def list_audit(self, tenant: str, *, alert_id: str | None, limit: int) -> list[Document]:
        query: dict[str, Any] = {"tenant": tenant}
        if alert_id is not None:
            query["alert_id"] = alert_id
        cursor = self.audit.find(query).sort([("at", DESCENDING), ("seq", DESCENDING)]).limit(limit)
        return [doc async for doc in cursor]

    async def store_fanout(self, tenant: str, alert_id: str, fanout: Document) -> bool:
        """Stores the fanout summary of the tenant's alert; False when there is no such alert."""
        if await self.alerts.find_one({"tenant": tenant, "id": alert_id}, {"_id": 1}) is None:
            return False
        await self._upsert(
            self.fanouts, {"tenant": tenant, "alert_id": alert_id}, {"$set": {"fanout": fanout}}
        )
        return True

    async def fanouts_of(self, tenant: str, alert_ids: Sequence[str]) -> dict[str, Document]:
        """The stored fanout summaries of the tenant's alerts, by alert id."""
        cursor = self.fanouts.find({"tenant": tenant, "alert_id": {"$in": list(alert_ids)}})
        return {doc["alert_id"]: doc["fanout"] async for doc in cursor}

    async def with_progress(self, alert: Document) -> Document:
        """The alert document with its fanout summary (`fanout`, None before the summary
        arrived) and first/last delivery times (`progress`) merged in."""
        key = {"tenant": alert["tenant"], "alert_id": alert["id"]}
        fanout = await self.fanouts.find_one(key)
        times = await self.delivery_times.find_one(key)
        return {
            **alert,
            "fanout": fanout["fanout"] if fanout else None,
            "progress": {k: v for k, v in (times or {}).items() if k.endswith("_delivery_at")},
        }

    async def apply(
        self, deliveries: Sequence[UpdateOne], delivery_times: Sequence[UpdateOne]
    ) -> None:
        """Applies delivery upserts and first/last delivery time upserts in unordered bulk
        writes. The updates only use $max/$min/$setOnInsert, so repeating them is harmless: an
        upsert race (duplicate key) is simply retried once."""
        for collection, ops in (
            (self.deliveries, deliveries),
            (self.delivery_times, delivery_times),
        ):
            for chunk in chunked(ops):
                try:
                    await collection.bulk_write(chunk, ordered=False)
                except BulkWriteError as exc:
                    errors = exc.details.get("writeErrors", [])
                    if not errors or any(e.get("code") != _DUPLICATE_KEY for e in errors):
                        raise
                    await collection.bulk_write(chunk, ordered=False)

    @staticmethod
    async def _upsert(
        collection: AsyncCollection[Document], key: Document, update: Document
    ) -> None:
        """One upsert, retried once when a concurrent upsert of the same key won the insert."""
        try:
            await collection.update_one(key, update, upsert=True)
        except DuplicateKeyError:
            await collection.update_one(key, update, upsert=True)

    async def delivery_counts(self, tenant: str, alert_id: str) -> list[tuple[str, int, int]]:
        """(channel, status code, tasks) for the tenant's alert."""
        pipeline: list[Document] = [
            {"$match": {"tenant": tenant, "alert_id": alert_id}},
            {"$group": {"_id": {"channel": "$channel", "code": "$code"}, "n": {"$sum": 1}}},
        ]
        cursor = await self.deliveries.aggregate(pipeline)
        return [(d["_id"]["channel"], int(d["_id"]["code"]), int(d["n"])) async for d in cursor]

    async def report_rows(self, tenant: str, alert_id: str) -> AsyncIterator[Document]:
        """The tenant's delivery documents of an alert, streamed from a cursor with only the
        fields the delivery report folds (channel, status code, reach time, failure)."""
        projection = {
            "_id": 0,
            "channel": 1,
            "code": 1,
            "reached_at": 1,
            "last_receipt_at": 1,
            "failure": 1,
        }
        cursor = self.deliveries.find(
            {"tenant": tenant, "alert_id": alert_id}, projection, batch_size=2000
        )
        async for doc in cursor:
            yield doc
