"""Metrics specific to channel-sms, declared once; labels are bounded (never a number or a text).
The delivery metrics every channel worker shares are in `sirene.runtime.metric_defs`."""

from __future__ import annotations

from prometheus_client import Counter

CALLBACKS = Counter(
    "sirene_sms_status_callbacks_total",
    "Twilio SMS status callbacks, by result: 'receipt', 'ignored' (interim status), "
    "'rejected' (bad signature) or 'invalid' (no task in the query).",
    ["result"],
)
