"""sirene.runtime — what every Sirene service shares: settings, Kafka/MongoDB/Redis wiring,
ops endpoints, masked structured logging."""

from .consume import RawRecord, decode_records, records_of
from .http import infra_lifespan, ops_router
from .infra import Infra
from .kafka import (
    BatchProducer,
    PoisonMessageError,
    create_broker,
    dead_letter,
    decode,
    ensure_topics,
)
from .logging import configure_logging, mask, mask_phone
from .mongo import Document, create_mongo_client
from .redis import create_redis
from .serve import serve
from .settings import ServiceSettings

__all__ = [
    "BatchProducer",
    "Document",
    "Infra",
    "PoisonMessageError",
    "RawRecord",
    "ServiceSettings",
    "configure_logging",
    "create_broker",
    "create_mongo_client",
    "create_redis",
    "dead_letter",
    "decode",
    "decode_records",
    "ensure_topics",
    "infra_lifespan",
    "mask",
    "mask_phone",
    "ops_router",
    "records_of",
    "serve",
]
