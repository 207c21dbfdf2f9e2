"""Consuming: turn a FastStream Kafka message (single or batch) into validated events, parking
poison messages on the dead-letter topic so they never block a partition.

Usage in a handler (subscriber declared with `batch=True` and `AckPolicy.NACK_ON_ERROR`):

    async def on_tasks(msg: KafkaMessage) -> None:
        for record, task in await decode_records(msg, DeliveryTask, infra=..., service=...):
            ...

Offsets are committed only after the handler returns; a handler that raises (e.g. MongoDB is
down) gets the batch again, while poison messages are already dead-lettered and skipped."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias, TypeVar

from aiokafka.structs import ConsumerRecord
from faststream.kafka import KafkaMessage
from pydantic import BaseModel

from .kafka import BatchProducer, PoisonMessageError, dead_letter, decode

M = TypeVar("M", bound=BaseModel)
RawRecord: TypeAlias = ConsumerRecord  # aiokafka ships no type information


def records_of(msg: KafkaMessage) -> Sequence[RawRecord]:
    """The aiokafka records behind a FastStream message (one, or a batch)."""
    raw = msg.raw_message
    if isinstance(raw, tuple | list):
        return raw
    return (raw,)


async def decode_records(
    msg: KafkaMessage, model: type[M], *, producer: BatchProducer, service: str
) -> list[tuple[RawRecord, M]]:
    """Validates every record of `msg` against `model`; invalid ones go to the dead-letter topic
    with the reason and are left out of the result."""
    good: list[tuple[RawRecord, M]] = []
    for record in records_of(msg):
        try:
            good.append((record, decode(model, record.value)))
        except PoisonMessageError as exc:
            await dead_letter(
                producer,
                service=service,
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                key=record.key,
                value=record.value,
                reason=str(exc),
            )
    return good
