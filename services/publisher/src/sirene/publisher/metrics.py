"""Prometheus metrics of the publisher, declared once. Labels are bounded (no ids, no text)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

ALERTS_PUBLISHED = Counter(
    "sirene_publisher_alerts_published_total",
    "Alerts released by staff, by lane and CAP status.",
    ["lane", "status"],
)
ALERTS_RELAYED = Counter(
    "sirene_publisher_alerts_relayed_total",
    "alert.published events acknowledged by Kafka (outbox relay).",
)
ALERT_RELAY_LAG = Histogram(
    "sirene_publisher_alert_relay_lag_seconds",
    "Time from an alert's release to its alert.published being acknowledged by Kafka.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
RECEIPTS_IGNORED = Counter(
    "sirene_publisher_receipts_ignored_total",
    "Delivery receipts of tasks of no alert of this publisher (e.g. notifications of citizen "
    "reports), not stored, by channel.",
    ["channel"],
)
RECEIPTS_APPLIED = Counter(
    "sirene_publisher_receipts_applied_total",
    "Delivery receipts folded into the progress view, by channel and status.",
    ["channel", "status"],
)
FANOUT_SUMMARIES = Counter(
    "sirene_publisher_fanout_summaries_total",
    "alert.fanout summaries stored on their alert (or ignored when the alert is unknown).",
    ["result"],
)
REJECTED_INPUT = Counter(
    "sirene_publisher_rejected_input_total",
    "Requests refused by a business rule, by reason code.",
    ["reason"],
)
PUBLISH_TO_DELIVERED = Histogram(
    "sirene_publish_to_delivered_seconds",
    "Time from an alert's publication to a task's first delivered/confirmed receipt (counted "
    "once per task and receipt batch), by channel.",
    ["channel"],
    buckets=(0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 30, 60, 120, 300, 900),
)
