"""The topic registry: every Kafka topic, its key, its model, who writes and who reads it."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel

from .alert import AlertPublished
from .common import Channel, Lane
from .delivery import DeadLetter, DeliveryReceipt, DeliveryTask, FanoutSummary
from .fanout import FanoutShard
from .inbound import InboundSms
from .notification import NotificationRequested
from .profile import CitizenProfile


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic's contract. `model` validates every value; `key` says what the key holds."""

    name: str
    model: type[BaseModel]
    key: str
    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    description: str
    partitions: int = 6
    compacted: bool = False
    config: dict[str, str] = field(default_factory=dict)


ALERT_PUBLISHED = "alert.published"
ALERT_FANOUT = "alert.fanout"
CITIZEN_PROFILE = "citizen.profile"
DELIVERY_RECEIPT = "delivery.receipt"
DEAD_LETTER = "dead-letter"
NOTIFICATION_REQUESTED = "notification.requested"
SMS_INBOUND = "sms.inbound"

WORKERS: dict[Channel, str] = {
    Channel.SMS: "channel-sms",
    Channel.VOICE: "channel-voice",
    Channel.PUSH: "channel-push",
    Channel.EMAIL: "channel-email",
}


def fanout_shard_topic(lane: Lane) -> str:
    """Topic of the audience shards of a lane's alerts, e.g. `fanout.shard.urgent`."""
    return f"fanout.shard.{lane.value}"


def delivery_topic(channel: Channel, lane: Lane) -> str:
    """Topic of a channel's tasks on a lane, e.g. `delivery.sms.urgent`."""
    return f"delivery.{channel.value}.{lane.value}"


RETRY_TIERS: dict[str, int] = {"10s": 10, "1m": 60, "2m": 120, "10m": 600}
"""Retry delay tiers: tier name → seconds a parked task waits before its next attempt."""


def retry_topic(channel: Channel, tier: str) -> str:
    """Topic of a channel's tasks waiting on a retry tier, e.g. `delivery.sms.retry.1m`."""
    if tier not in RETRY_TIERS:
        raise ValueError(f"unknown retry tier {tier!r}")
    return f"delivery.{channel.value}.retry.{tier}"


_ALL = [
    TopicSpec(
        ALERT_PUBLISHED,
        AlertPublished,
        key="alert_id",
        producers=("publisher",),
        consumers=("fanout",),
        description="Published posts and alerts (relayed from the publisher's outbox).",
        partitions=3,
    ),
    TopicSpec(
        CITIZEN_PROFILE,
        CitizenProfile,
        key="<tenant_id>:<citizen_id>",
        producers=("subscriptions",),
        consumers=("fanout",),
        description="Citizen routing profiles; compacted, null value = erased.",
        compacted=True,
        config={"cleanup.policy": "compact", "min.compaction.lag.ms": "0"},
    ),
    TopicSpec(
        ALERT_FANOUT,
        FanoutSummary,
        key="alert_id",
        producers=("fanout",),
        consumers=("publisher",),
        description="Per-alert task counts per channel, once an alert is fully expanded.",
        partitions=3,
    ),
    TopicSpec(
        DELIVERY_RECEIPT,
        DeliveryReceipt,
        key="task_id",
        producers=("channel-sms", "channel-voice", "channel-push", "channel-email"),
        consumers=("publisher", "subscriptions"),
        description="Delivery state changes, including provider status callbacks.",
    ),
    TopicSpec(
        SMS_INBOUND,
        InboundSms,
        key="from_number",
        producers=("channel-sms",),
        consumers=("subscriptions",),
        description="SMS citizens sent to the platform number (STOP, consent replies).",
        partitions=3,
        config={"retention.ms": str(7 * 24 * 3600 * 1000)},
    ),
    TopicSpec(
        DEAD_LETTER,
        DeadLetter,
        key="source topic",
        producers=(
            "fanout",
            "publisher",
            "subscriptions",
            "channel-sms",
            "channel-voice",
            "channel-push",
            "channel-email",
        ),
        consumers=(),
        description="Messages a consumer could not process, with the reason; inspected by ops.",
        partitions=1,
        config={"retention.ms": str(14 * 24 * 3600 * 1000)},
    ),
    TopicSpec(
        NOTIFICATION_REQUESTED,
        NotificationRequested,
        key="recipient_id",
        producers=("issues",),
        consumers=("fanout",),
        description="Messages to one person (issue reporters, departments); fanout emits the "
        "delivery task on the channel's bulk lane.",
        partitions=3,
    ),
    *[
        TopicSpec(
            fanout_shard_topic(lane),
            FanoutShard,
            key="<alert_id>:<shard>",
            producers=("fanout",),
            consumers=("fanout",),
            description=f"Audience shards of {lane.value} alerts; any fanout instance expands "
            "a shard, so instances expand one alert in parallel.",
            partitions=12,
        )
        for lane in Lane
    ],
    *[
        TopicSpec(
            delivery_topic(channel, lane),
            DeliveryTask,
            key="citizen_id",
            producers=("fanout",),
            consumers=(WORKERS[channel],),
            description=f"{channel.value} delivery tasks on the {lane.value} lane.",
        )
        for channel in Channel
        for lane in Lane
    ],
    *[
        TopicSpec(
            retry_topic(channel, tier),
            DeliveryTask,
            key="task_id",
            producers=(WORKERS[channel],),
            consumers=(WORKERS[channel],),
            description=f"{channel.value} tasks waiting {delay} s before their next attempt "
            "(the record timestamp plus the delay is when they are due).",
            partitions=3,
        )
        for channel in Channel
        for tier, delay in RETRY_TIERS.items()
    ],
]

TOPICS: dict[str, TopicSpec] = {spec.name: spec for spec in _ALL}
"""Every topic by name."""
