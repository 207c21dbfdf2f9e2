"""Metrics specific to channel-email; the delivery metrics every channel worker shares are in
`sirene.runtime.metric_defs` (label `channel="email"`)."""

from __future__ import annotations

from prometheus_client import Counter

UNSUBSCRIBES = Counter(
    "sirene_email_unsubscribes_total",
    "One-click unsubscribe requests, by result: 'ok' or 'rejected' (bad signature).",
    ["result"],
)
