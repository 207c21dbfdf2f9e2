"""MongoDB wiring through PyMongo's native async API (never Motor)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar, cast

from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection

from .settings import ServiceSettings

Document = dict[str, Any]
T = TypeVar("T")


def create_mongo_client(settings: ServiceSettings) -> AsyncMongoClient[Document]:
    """A client that works against MongoDB and FerretDB v1 alike (timezone-aware datetimes;
    retryable writes as configured — on for a MongoDB replica set, off for FerretDB v1, which
    does not implement them)."""
    return AsyncMongoClient(
        settings.mongodb_uri.get_secret_value(),
        tz_aware=True,
        appname=settings.service_name,
        serverSelectionTimeoutMS=5_000,
        retryWrites=settings.mongodb_retry_writes,
    )


BULK_CHUNK = 50
"""Most write operations sent in one bulk write. FerretDB v1 (SQLite backend) holds one pooled
SQLite connection per update while a bulk write runs and has 100 per database: a bulk write of
more than about 100 updates to existing documents deadlocks the whole database (seen with
v1.24.2; `tests` in libs/runtime reproduce it against the local stack). MongoDB is unaffected;
the chunking costs it little."""


def chunked(ops: Sequence[T], size: int = BULK_CHUNK) -> Iterator[list[T]]:
    """`ops` in consecutive chunks of at most `size`."""
    for start in range(0, len(ops), size):
        yield list(ops[start : start + size])


_WRITES = frozenset(
    {
        "insert_one",
        "insert_many",
        "update_one",
        "update_many",
        "replace_one",
        "delete_one",
        "delete_many",
        "find_one_and_update",
        "find_one_and_replace",
        "find_one_and_delete",
        "bulk_write",
    }
)


class _SerializedWrites:
    """See `serialized_writes`."""

    def __init__(self, collection: AsyncCollection[Document]) -> None:
        self._collection = collection
        self._lock = asyncio.Lock()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._collection, name)
        if name not in _WRITES:
            return attr

        async def locked(*args: Any, **kwargs: Any) -> Any:
            async with self._lock:
                return await attr(*args, **kwargs)

        return locked


def serialized_writes(
    collection: AsyncCollection[Document], *, enabled: bool = True
) -> AsyncCollection[Document]:
    """The collection with its writes from this process taken one at a time (reads are not
    held up); the collection itself when not `enabled` (`mongodb_serialize_writes`, false on
    MongoDB).

    FerretDB v1 (SQLite backend) applies an update as read-modify-write of the whole document
    outside a transaction (FerretDB issue #3040), so two concurrent updates of one document can
    lose one of them even when both filter on the document's version: the outbox relay marking
    an event sent while the API writes the citizen's next change undid the change (67–100 of
    300 raced pairs). An outbox collection is written by the API, the consumers and the relay
    of one process, so taking those writes one at a time removes the race for a single
    instance; several instances need MongoDB, whose single-document updates are atomic (as the
    production compose runs). SQLite takes writes one at a time anyway."""
    if not enabled:
        return collection
    return cast("AsyncCollection[Document]", _SerializedWrites(collection))
