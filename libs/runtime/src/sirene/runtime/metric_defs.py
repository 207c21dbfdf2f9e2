"""Metrics shared by several services, declared once (service-specific ones live in each
service's `metrics.py`). Labels are bounded: never a phone number, token or free text.

The channel workers (channel-sms, channel-voice, channel-push) share the delivery metrics below,
recorded by `sirene.runtime.delivery`; the `channel` label tells them apart."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

DEAD_LETTERS = Counter(
    "sirene_dead_letters_total",
    "Messages parked on the dead-letter topic, by consuming service and source topic.",
    ["service", "topic"],
)

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_END_TO_END_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)

DELIVERY_HANDOFFS = Counter(
    "sirene_delivery_handoffs_total",
    "Tasks handed to the provider, by channel, lane, resulting status and error class.",
    ["channel", "lane", "status", "error_class"],
)
DELIVERY_SKIPPED = Counter(
    "sirene_delivery_tasks_skipped_total",
    "Tasks not handed to the provider: reason 'duplicate' (already claimed) or 'expired'.",
    ["channel", "lane", "reason"],
)
DELIVERY_RECEIPTS = Counter(
    "sirene_delivery_receipts_total",
    "Receipts emitted to delivery.receipt (hand-offs and provider callbacks).",
    ["channel", "status", "error_class"],
)
PROVIDER_REQUEST_SECONDS = Histogram(
    "sirene_provider_request_seconds",
    "Duration of one provider hand-off request, by channel and outcome ('ok' or 'error').",
    ["channel", "outcome"],
    buckets=_LATENCY_BUCKETS,
)
PUBLISH_TO_HANDOFF_SECONDS = Histogram(
    "sirene_publish_to_handoff_seconds",
    "Time from the alert's publication to the provider accepting the task.",
    ["channel", "lane"],
    buckets=_END_TO_END_BUCKETS,
)
