"""MongoDB wiring through PyMongo's native async API (never Motor)."""

from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient

from .settings import ServiceSettings

Document = dict[str, Any]


def create_mongo_client(settings: ServiceSettings) -> AsyncMongoClient[Document]:
    """A client that works against MongoDB and FerretDB v1 alike (timezone-aware datetimes,
    no retryable writes, which FerretDB v1 does not implement)."""
    return AsyncMongoClient(
        settings.mongodb_uri.get_secret_value(),
        tz_aware=True,
        appname=settings.service_name,
        serverSelectionTimeoutMS=5_000,
        retryWrites=False,
    )
