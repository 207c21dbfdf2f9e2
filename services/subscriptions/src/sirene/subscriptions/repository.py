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
from sirene.runtime.mongo import serialized_writes
from sirene.runtime.outbox import pending_outbox


class Repository:
    """Topics and citizens of every tenant; methods take the tenant explicitly."""

    def __init__(self, db: AsyncDatabase[Document], *, serialize_writes: bool = True) -> None:
        self.topics: AsyncCollection[Document] = db["topics"]
        # the outbox relay marks these while the API changes them (see serialized_writes)
        self.citizens = serialized_writes(db["citizens"], enabled=serialize_writes)
        self.consents: AsyncCollection[Document] = db["consents"]
        self.erasures: AsyncCollection[Document] = db["erasures"]

    async def ensure_indexes(self) -> None:
        """Creates the indexes (idempotent; called at startup)."""
        await self.topics.create_index(
            [("tenant", ASCENDING), ("id", ASCENDING)], unique=True, name="tenant_id"
        )
        await self.citizens.create_index(
            [("tenant", ASCENDING), ("id", ASCENDING)], unique=True, name="tenant_id"
        )
        await self.citizens.create_index([("outbox.state", ASCENDING)], name="outbox_state")
        await self.citizens.create_index([("contacts.sms.address", ASCENDING)], name="sms_address")
        await self.citizens.create_index(
            [("contacts.voice.address", ASCENDING)], name="voice_address"
        )
        await self.citizens.create_index(
            [("tenant", ASCENDING), ("registered_by", ASCENDING)], name="registered_by"
        )
        await self.consents.create_index(
            [("tenant", ASCENDING), ("citizen_id", ASCENDING), ("at", ASCENDING)],
            name="citizen_at",
        )

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
        return await self.citizens.find_one(
            {"tenant": tenant, "id": citizen_id, "erased": {"$ne": True}}
        )

    async def list_citizens(self, tenant: str, *, after: str | None, limit: int) -> list[Document]:
        """Up to `limit` citizens of the tenant with an id greater than `after`."""
        query: dict[str, Any] = {"tenant": tenant, "erased": {"$ne": True}}
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
            {"tenant": tenant, "id": citizen_id, "version": version, "erased": {"$ne": True}},
            {
                "$set": {**changes, "updated_at": now, "outbox": pending_outbox(now)},
                "$inc": {"version": 1},
            },
            return_document=ReturnDocument.AFTER,
        )

    async def get_topic(self, tenant: str, topic_id: str) -> Document | None:
        """The tenant's topic."""
        return await self.topics.find_one({"tenant": tenant, "id": topic_id})

    async def update_topic(self, tenant: str, topic_id: str, changes: Document) -> Document | None:
        """Applies `changes` to the tenant's topic; the new document, or None."""
        return await self.topics.find_one_and_update(
            {"tenant": tenant, "id": topic_id},
            {"$set": changes},
            return_document=ReturnDocument.AFTER,
        )

    async def public_topics(self, tenant: str) -> list[Document]:
        """The topics citizens may choose themselves."""
        cursor = self.topics.find({"tenant": tenant, "public": True}).sort("id", ASCENDING)
        return [doc async for doc in cursor]

    async def citizen_by_phone(self, tenant: str, number: str) -> Document | None:
        """The tenant's citizen (not erased) with `number` as SMS or voice contact."""
        for channel in ("sms", "voice"):
            doc = await self.citizens.find_one(
                {"tenant": tenant, f"contacts.{channel}.address": number, "erased": {"$ne": True}}
            )
            if doc is not None:
                return doc
        return None

    async def citizens_with_sms(self, number: str) -> list[Document]:
        """Every citizen, of any tenant, whose SMS contact is `number` (an inbound SMS does
        not say which municipality it is meant for)."""
        cursor = self.citizens.find({"contacts.sms.address": number, "erased": {"$ne": True}})
        return [doc async for doc in cursor]

    async def relatives_of(self, tenant: str, citizen_id: str) -> list[Document]:
        """The people a citizen registered."""
        cursor = self.citizens.find(
            {"tenant": tenant, "registered_by": citizen_id, "erased": {"$ne": True}}
        ).sort("created_at", ASCENDING)
        return [doc async for doc in cursor]

    async def add_consent(self, record: Document) -> None:
        """Appends a consent record."""
        await self.consents.insert_one(record)

    async def consents_of(self, tenant: str, citizen_id: str) -> list[Document]:
        """The citizen's consent records, oldest first."""
        cursor = self.consents.find({"tenant": tenant, "citizen_id": citizen_id}).sort(
            "at", ASCENDING
        )
        return [doc async for doc in cursor]

    async def forget_consents(self, tenant: str, citizen_id: str) -> int:
        """Deletes the citizen's consent records (erasure)."""
        result = await self.consents.delete_many({"tenant": tenant, "citizen_id": citizen_id})
        return result.deleted_count

    async def unlink_relatives(self, tenant: str, citizen_id: str) -> None:
        """Relatives stay (they consented themselves) but no longer point to an erased
        registrant."""
        await self.citizens.update_many(
            {"tenant": tenant, "registered_by": citizen_id},
            {"$set": {"registered_by": None}},
        )

    async def add_erasure(self, stub: Document) -> None:
        """Stores the anonymous audit stub of an erasure."""
        await self.erasures.insert_one(stub)

    async def delete_erased(self, docs: list[Document]) -> None:
        """Deletes erased citizens once their tombstone is on citizen.profile (called by the
        outbox relay after it marked them sent). Also sweeps any erased citizen whose tombstone
        went out before a failure or restart interrupted its deletion."""
        if any(doc.get("erased") for doc in docs):
            await self.sweep_erased()

    async def sweep_erased(self) -> None:
        """Deletes every erased citizen whose tombstone Kafka has acknowledged."""
        await self.citizens.delete_many({"outbox.state": "sent", "erased": True})
