"""Prometheus metrics of issues, declared once. Labels are bounded (no ids, no text)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

REPORTS_RECEIVED = Counter(
    "sirene_issues_reports_received_total",
    "Citizen reports received, by way in, whether contact data was given and how routed.",
    ["via", "with_contact", "routed"],
)
REJECTED = Counter(
    "sirene_issues_rejected_total",
    "Requests refused, by reason code.",
    ["reason"],
)
STATUS_CHANGES = Counter(
    "sirene_issues_status_changes_total",
    "Status changes by staff, by new status.",
    ["status"],
)
REASSIGNMENTS = Counter(
    "sirene_issues_reassignments_total",
    "Reports moved to another department by staff.",
)
NOTIFICATIONS_RELAYED = Counter(
    "sirene_issues_notifications_relayed_total",
    "Notifications handed to Kafka (notification.requested).",
)
NOTIFICATION_LAG = Histogram(
    "sirene_issues_notification_lag_seconds",
    "Time from a change to its notification being acknowledged by Kafka.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
SIGN_INS = Counter(
    "sirene_issues_staff_sign_ins_total",
    "Staff sign-ins to the inbox, by outcome (ok, failed, blocked by the lockout).",
    ["outcome"],
)
