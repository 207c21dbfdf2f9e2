"""Kafka subscribers of channel-voice: one per lane, so urgent tasks never wait behind bulk ones."""

from __future__ import annotations

from faststream import AckPolicy
from faststream.kafka import KafkaMessage

from sirene.runtime import Infra
from sirene.schemas import Channel, Lane, delivery_topic

from .pipeline import DeliveryPipeline


def register_task_handlers(infra: Infra, pipeline: DeliveryPipeline, *, max_records: int) -> None:
    """Subscribes `delivery.voice.urgent` and `delivery.voice.bulk` (separate consumer groups)."""
    for lane in Lane:
        _subscribe(infra, pipeline, lane, max_records=max_records)


def _subscribe(infra: Infra, pipeline: DeliveryPipeline, lane: Lane, *, max_records: int) -> None:
    @infra.broker.subscriber(
        delivery_topic(Channel.VOICE, lane),
        group_id=infra.settings.group_id(lane.value),
        auto_offset_reset=infra.settings.kafka_offset_reset,
        batch=True,
        max_records=max_records,
        ack_policy=AckPolicy.NACK_ON_ERROR,
    )
    async def on_tasks(msg: KafkaMessage) -> None:
        await pipeline.handle(msg, lane=lane)
