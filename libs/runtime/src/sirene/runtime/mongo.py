"""MongoDB wiring through PyMongo's native async API (never Motor)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from pymongo import AsyncMongoClient

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
