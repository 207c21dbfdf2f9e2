"""Metrics of channel-push, declared once. Labels are bounded (never a token or a text)."""

from __future__ import annotations

from prometheus_client import Counter

from sirene.schemas import Channel

from .pipeline import ChannelMetrics

METRICS = ChannelMetrics.declare(Channel.PUSH)
"""Hand-offs, skipped tasks, receipts, provider latency, publish→hand-off latency."""

PROVIDER_ANSWERS = Counter(
    "sirene_push_provider_answers_total",
    "Answers of APNs and FCM, by platform and HTTP status.",
    ["platform", "status"],
)
