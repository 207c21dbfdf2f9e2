"""Metrics of channel-voice, declared once. Labels are bounded (never a number or a text)."""

from __future__ import annotations

from prometheus_client import Counter

from sirene.schemas import Channel

from .pipeline import ChannelMetrics

METRICS = ChannelMetrics.declare(Channel.VOICE)
"""Hand-offs, skipped tasks, receipts, provider latency, publish→hand-off latency."""

WEBHOOKS = Counter(
    "sirene_voice_webhooks_total",
    "Twilio voice webhooks, by kind ('twiml', 'gather', 'status') and result ('ok', "
    "'receipt', 'ignored', 'missing_script', 'rejected' (bad signature), 'invalid').",
    ["kind", "result"],
)
