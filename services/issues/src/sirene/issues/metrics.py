"""Prometheus metrics of issues, declared once. Labels are bounded (no ids, no text)."""

from __future__ import annotations

from prometheus_client import Counter

REPORTS_RECEIVED = Counter(
    "sirene_issues_reports_received_total",
    "Citizen reports received, by category and whether contact data was given.",
    ["category", "with_contact"],
)
