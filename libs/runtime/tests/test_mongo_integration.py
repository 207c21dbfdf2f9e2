"""MongoDB wiring against the real server of the test infrastructure (FerretDB locally)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from pymongo import ReturnDocument, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection

from sirene.devstack.testing import InfraUrls
from sirene.runtime import ServiceSettings, create_mongo_client
from sirene.runtime.mongo import BULK_CHUNK, Document, chunked, serialized_writes

pytestmark = pytest.mark.integration


def test_chunked_splits_in_order() -> None:
    assert list(chunked(list(range(7)), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(chunked([], 3)) == []


async def test_large_update_batches_complete_when_chunked(sirene_infra: InfraUrls) -> None:
    """300 updates of existing documents: unchunked, FerretDB v1 deadlocks above ~100."""
    settings = ServiceSettings(**sirene_infra.settings_kwargs())  # type: ignore[arg-type]
    client = create_mongo_client(settings)
    collection = client[settings.mongodb_db][f"bulk_{uuid.uuid4().hex[:6]}"]
    try:
        ops = [UpdateOne({"_id": i}, {"$max": {"n": 1}}, upsert=True) for i in range(300)]
        for _ in range(2):  # the second round updates existing documents
            for chunk in chunked(ops):
                assert len(chunk) <= BULK_CHUNK
                await asyncio.wait_for(collection.bulk_write(chunk, ordered=False), 20)
        assert await collection.count_documents({"n": 1}) == 300
    finally:
        await client.drop_database(settings.mongodb_db)
        await client.close()


async def _race_mark_and_change(collection: AsyncCollection[Document], rounds: int) -> int:
    """The outbox relay's mark and the API's next change of one document, at the same moment,
    `rounds` times; returns how many acknowledged changes the stored documents lack."""
    await collection.insert_many(
        [
            {"_id": i, "version": 1, "language": "de", "outbox": {"state": "pending"}}
            for i in range(rounds)
        ]
    )

    async def mark(i: int) -> None:
        await collection.bulk_write(
            [
                UpdateOne(
                    {"_id": i, "version": 1, "outbox.state": "pending"},
                    {"$set": {"outbox.state": "sent"}},
                )
            ]
        )

    async def change(i: int) -> bool:
        after = await collection.find_one_and_update(
            {"_id": i, "version": 1},
            {"$set": {"language": "en", "outbox": {"state": "pending"}}, "$inc": {"version": 1}},
            return_document=ReturnDocument.AFTER,
        )
        return after is not None

    changed = await asyncio.gather(
        *(change(i) for i in range(rounds)), *(mark(i) for i in range(rounds))
    )
    acknowledged = {i for i, ok in enumerate(changed[:rounds]) if ok}
    stored = {d["_id"] async for d in collection.find({"language": "en", "version": 2})}
    return len(acknowledged - stored)


async def test_serialized_writes_lose_no_change_to_a_concurrent_outbox_mark(
    sirene_infra: InfraUrls,
) -> None:
    """FerretDB v1 loses one of two concurrent updates of a document (FerretDB #3040); with the
    writes of the process taken one at a time, every acknowledged change is kept."""
    settings = ServiceSettings(**sirene_infra.settings_kwargs())  # type: ignore[arg-type]
    client = create_mongo_client(settings)
    collection = serialized_writes(client[settings.mongodb_db][f"race_{uuid.uuid4().hex[:6]}"])
    try:
        assert await _race_mark_and_change(collection, 300) == 0
        assert collection.name.startswith("race_")  # reads and attributes pass through
        assert await collection.count_documents({}) == 300
    finally:
        await client.drop_database(settings.mongodb_db)
        await client.close()
