"""Metrics shared by several services, declared once (service-specific ones live in each
service's `metrics.py`). Labels are bounded: never a phone number, token or free text.

The channel workers (channel-sms, channel-voice, channel-push) share the delivery metrics below,
recorded by `sirene.runtime.delivery`; the `channel` label tells them apart."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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

# Resilience of the channel workers (`sirene.runtime.retry`, `.breaker`, `.ratelimit`).
DELIVERY_RETRIES = Counter(
    "sirene_delivery_retries_total",
    "Tasks parked on a retry tier, by channel, tier and why ('transient', 'circuit_open', "
    "'call_unanswered').",
    ["channel", "tier", "reason"],
)
DELIVERY_GIVEN_UP = Counter(
    "sirene_delivery_dead_lettered_total",
    "Tasks given up and dead-lettered, by channel and reason class ('permanent', "
    "'contact_dead', 'attempts_exhausted', 'expires_before_retry').",
    ["channel", "reason"],
)
DELIVERY_FALLBACKS = Counter(
    "sirene_delivery_fallbacks_total",
    "Tasks re-routed to another channel (e.g. push token gone → SMS), by from and to channel.",
    ["from_channel", "to_channel"],
)
CIRCUIT_STATE = Gauge(
    "sirene_provider_circuit_state",
    "Circuit breaker per provider: 0 closed, 1 half-open, 2 open.",
    ["channel", "provider"],
)
CIRCUIT_TRANSITIONS = Counter(
    "sirene_provider_circuit_transitions_total",
    "Circuit breaker state changes, by channel, provider and new state.",
    ["channel", "provider", "state"],
)
RATE_LIMIT_WAIT_SECONDS = Histogram(
    "sirene_rate_limit_wait_seconds",
    "Time a hand-off waited for a provider-account rate-limit token, by bucket.",
    ["bucket"],
    buckets=_LATENCY_BUCKETS,
)
