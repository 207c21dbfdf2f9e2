"""Metrics specific to channel-voice, declared once; labels are bounded (never a number or a text).
The delivery metrics every channel worker shares are in `sirene.runtime.metric_defs`."""

from __future__ import annotations

from prometheus_client import Counter

WEBHOOKS = Counter(
    "sirene_voice_webhooks_total",
    "Twilio voice webhooks, by kind ('twiml', 'gather', 'status') and result ('ok', "
    "'receipt', 'ignored', 'missing_script', 'rejected' (bad signature), 'invalid').",
    ["kind", "result"],
)
