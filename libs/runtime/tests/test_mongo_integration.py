"""MongoDB wiring against the real server of the test infrastructure (FerretDB locally)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from pymongo import UpdateOne

from sirene.devstack.testing import InfraUrls
from sirene.runtime import ServiceSettings, create_mongo_client
from sirene.runtime.mongo import BULK_CHUNK, chunked

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
