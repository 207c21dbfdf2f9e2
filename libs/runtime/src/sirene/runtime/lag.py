"""Kafka consumer lag of this process's consumer groups, as Prometheus gauges.

Every few seconds, for each subscriber of the service's FastStream broker: lag = the
partition's end offset (asked of the broker) minus the group's committed offset (what a
restarted or rebalanced consumer would start from, so records fetched but not yet processed
count as lag), summed per group and topic over the partitions this instance holds. Summing the
series of all instances in PromQL gives a group's total lag; that is what the Grafana panels,
the alert rule on growing lag and the Kubernetes autoscaling of fanout and channel workers read.

Labels are bounded: group and topic names come from the code, never from input."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from typing import Any

from faststream.kafka import KafkaBroker
from prometheus_client import Gauge

log = logging.getLogger(__name__)

CONSUMER_LAG = Gauge(
    "sirene_kafka_consumer_lag",
    "Records not yet committed by a consumer group (high watermark minus committed offset), "
    "summed over the partitions this instance holds.",
    ["service", "group", "topic"],
)
ASSIGNED_PARTITIONS = Gauge(
    "sirene_kafka_assigned_partitions",
    "Partitions assigned to this instance, by consumer group and topic.",
    ["service", "group", "topic"],
)


async def measure(consumer: Any) -> dict[str, tuple[int, int]]:
    """Lag and assigned partition count per topic for one aiokafka consumer."""
    per_topic: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    assigned = list(consumer.assignment())
    # asked of the brokers (one request): the highwater a consumer learns from its own fetches
    # goes stale exactly when it matters, while a slow handler keeps it from fetching
    end_offsets = await consumer.end_offsets(assigned) if assigned else {}
    for tp in assigned:
        highwater = end_offsets[tp]
        totals = per_topic[tp.topic]
        totals[1] += 1
        start = await consumer.committed(tp)
        if start is None:  # the group never committed here: it starts where the reset says
            if getattr(consumer, "_auto_offset_reset", "latest") == "earliest":
                start = (await consumer.beginning_offsets([tp]))[tp]
            else:
                start = await consumer.position(tp)
        totals[0] += max(0, highwater - start)
    return {topic: (lag, count) for topic, (lag, count) in per_topic.items()}


class ConsumerLagMonitor:
    """Updates the lag gauges for every grouped subscriber of a broker while running."""

    def __init__(self, broker: KafkaBroker, service: str, *, interval_s: float = 5.0) -> None:
        self._broker = broker
        self._service = service
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None
        self._seen: set[tuple[str, str]] = set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="consumer-lag-monitor")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for group, topic in self._seen:  # a stopped instance holds nothing
            CONSUMER_LAG.labels(self._service, group, topic).set(0)
            ASSIGNED_PARTITIONS.labels(self._service, group, topic).set(0)

    async def update(self) -> None:
        """One measurement of every grouped subscriber."""
        current: set[tuple[str, str]] = set()
        for subscriber in self._broker.subscribers:
            consumer = getattr(subscriber, "consumer", None)
            group = getattr(consumer, "_group_id", None) if consumer is not None else None
            if consumer is None or not group:
                continue  # not started yet, or a reader without a group (nothing to lag)
            for topic, (lag, count) in (await measure(consumer)).items():
                CONSUMER_LAG.labels(self._service, group, topic).set(lag)
                ASSIGNED_PARTITIONS.labels(self._service, group, topic).set(count)
                current.add((group, topic))
        for group, topic in self._seen - current:  # partitions moved to another instance
            CONSUMER_LAG.labels(self._service, group, topic).set(0)
            ASSIGNED_PARTITIONS.labels(self._service, group, topic).set(0)
        self._seen |= current

    async def _run(self) -> None:
        while True:
            try:
                await self.update()
            except asyncio.CancelledError:
                raise
            except Exception:  # monitoring must never take the service down
                log.warning("consumer lag measurement failed", exc_info=True)
            await asyncio.sleep(self._interval_s)
