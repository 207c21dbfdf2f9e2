"""Metrics of channel-sms, declared once. Labels are bounded (never a number or a text)."""

from __future__ import annotations

from prometheus_client import Counter

from sirene.schemas import Channel

from .pipeline import ChannelMetrics

METRICS = ChannelMetrics.declare(Channel.SMS)
"""Hand-offs, skipped tasks, receipts, provider latency, publish→hand-off latency."""

CALLBACKS = Counter(
    "sirene_sms_status_callbacks_total",
    "Twilio SMS status callbacks, by result: 'receipt', 'ignored' (interim status), "
    "'rejected' (bad signature) or 'invalid' (no task in the query).",
    ["result"],
)
