"""MongoDB access of subscriptions: topics and citizens (with the profile outbox on each
citizen document). Every query filters by tenant."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from sirene.runtime import Document
from sirene.runtime.outbox import pending_outbox


class Repository:
    """Topics and citizens of every tenant; methods take the tenant explicitly."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.topics: AsyncCollection[Document] = db["topics"]
        self.citizens: AsyncCollection[Document] = db["citizens"]

    async def ensure_indexes(self) -> None:
        """Creates the indexes (idempotent; called at startup)."""
        await self.topics.create_index(
            [("tenant", ASCENDING), ("id", ASCENDING)], unique=True, name="tenant_id"
        )
        await self.citizens.create_index(
            [("tenant", ASCENDING), ("id", ASCENDING)], unique=True, name="tenant_id"
        )
        await self.citizens.create_index([("outbox.state", ASCENDING)], name="outbox_state")

    # topics

    async def insert_topic(self, doc: Document) -> bool:
        """Stores a topic; False when the tenant already has one with that id."""
        try:
            await self.topics.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def list_topics(self, tenant: str) -> list[Document]:
        """Every topic of the tenant, by id."""
        return [doc async for doc in self.topics.find({"tenant": tenant}).sort("id", ASCENDING)]

    async def existing_topic_ids(self, tenant: str, ids: Iterable[str]) -> set[str]:
        """Which of `ids` are topics of the tenant."""
        wanted = sorted(set(ids))
        if not wanted:
            return set()
        cursor = self.topics.find({"tenant": tenant, "id": {"$in": wanted}}, {"id": 1})
        return {doc["id"] async for doc in cursor}

    # citizens

    async def insert_citizen(self, doc: Document) -> bool:
        """Stores a new citizen (its outbox already pending); False when the tenant already
        has a citizen with that id."""
        try:
            await self.citizens.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def get_citizen(self, tenant: str, citizen_id: str) -> Document | None:
        """The citizen, if it belongs to the tenant."""
        return await self.citizens.find_one({"tenant": tenant, "id": citizen_id})

    async def list_citizens(self, tenant: str, *, after: str | None, limit: int) -> list[Document]:
        """Up to `limit` citizens of the tenant with an id greater than `after`."""
        query: dict[str, Any] = {"tenant": tenant}
        if after is not None:
            query["id"] = {"$gt": after}
        cursor = self.citizens.find(query).sort("id", ASCENDING).limit(limit)
        return [doc async for doc in cursor]

    async def update_citizen(
        self, tenant: str, citizen_id: str, *, version: int, changes: Document, now: datetime
    ) -> Document | None:
        """Applies `changes` if the citizen is still at `version`, bumping the version and
        marking the profile pending in the same single-document update. Returns the new
        document, or None when the citizen changed meanwhile (or is gone)."""
        return await self.citizens.find_one_and_update(
            {"tenant": tenant, "id": citizen_id, "version": version},
            {
                "$set": {**changes, "updated_at": now, "outbox": pending_outbox(now)},
                "$inc": {"version": 1},
            },
            return_document=ReturnDocument.AFTER,
        )
