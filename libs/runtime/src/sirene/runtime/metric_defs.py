"""Metrics shared by every service, declared once (service-specific ones live in each
service's `metrics.py`). Labels are bounded: never a phone number, token or free text."""

from __future__ import annotations

from prometheus_client import Counter

DEAD_LETTERS = Counter(
    "sirene_dead_letters_total",
    "Messages parked on the dead-letter topic, by consuming service and source topic.",
    ["service", "topic"],
)
