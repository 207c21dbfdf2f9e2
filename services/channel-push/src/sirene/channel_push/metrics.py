"""Metrics specific to channel-push, declared once; labels are bounded (never a token or a text).
The delivery metrics every channel worker shares are in `sirene.runtime.metric_defs`."""

from __future__ import annotations

from prometheus_client import Counter

PROVIDER_ANSWERS = Counter(
    "sirene_push_provider_answers_total",
    "Answers of APNs and FCM, by platform and HTTP status.",
    ["platform", "status"],
)
