"""Prometheus metrics of subscriptions, declared once. Labels are bounded (no ids, no numbers)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

PROFILES_RELAYED = Counter(
    "sirene_subscriptions_profiles_relayed_total",
    "Citizen profiles published to citizen.profile by the outbox relay.",
)
PROFILE_RELAY_LAG = Histogram(
    "sirene_subscriptions_profile_relay_lag_seconds",
    "Time from a citizen change to its profile being acknowledged by Kafka.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
CITIZEN_CHANGES = Counter(
    "sirene_subscriptions_citizen_changes_total",
    "Citizen changes by kind of change.",
    ["change"],
)
CONTACTS_DEACTIVATED = Counter(
    "sirene_subscriptions_contacts_deactivated_total",
    "Contact points deactivated after a contact_dead receipt, by channel.",
    ["channel"],
)
REJECTED_INPUT = Counter(
    "sirene_subscriptions_rejected_input_total",
    "Requests refused by a business rule, by reason code.",
    ["reason"],
)
