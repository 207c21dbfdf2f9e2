"""GSM-7 / UCS-2 awareness: how many SMS segments a text costs, as carriers count them. The
rate limiter charges segments, because Twilio's throughput limits are per segment."""

from __future__ import annotations

import math
from dataclasses import dataclass

# GSM 03.38 basic character set and extension table (extension characters cost two septets).
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENDED = frozenset("^{}\\[~]|€\f")


@dataclass(frozen=True, slots=True)
class Segments:
    count: int
    encoding: str  # "GSM-7" or "UCS-2"


def segments(body: str) -> Segments:
    """Segments of `body`: GSM-7 160 septets (153 per part when concatenated), else UCS-2 70
    UTF-16 units (67 per part). One character outside GSM-7 (e.g. an emoji or 'ő') switches
    the whole text to UCS-2, which more than doubles the cost of a long warning."""
    if all(ch in GSM_BASIC or ch in GSM_EXTENDED for ch in body):
        septets = sum(2 if ch in GSM_EXTENDED else 1 for ch in body)
        return Segments(1 if septets <= 160 else math.ceil(septets / 153), "GSM-7")
    units = len(body.encode("utf-16-le")) // 2
    return Segments(1 if units <= 70 else math.ceil(units / 67), "UCS-2")
