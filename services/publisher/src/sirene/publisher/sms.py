"""SMS length: GSM 03.38 (GSM-7) or UCS-2 encoding and the number of concatenated segments, as
a phone network counts them (GSM-7: 160 septets alone, 153 per part; UCS-2: 70 / 67)."""

from __future__ import annotations

from dataclasses import dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")
"""Characters of the extension table: each takes two septets (escape + character)."""

WARN_ABOVE_SEGMENTS = 3
"""More segments than this cost noticeably more and may arrive out of order: warn staff."""


@dataclass(frozen=True, slots=True)
class SmsLength:
    """How an SMS text is encoded and how many segments it needs."""

    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int
    per_segment: int
    non_gsm: str  # characters that force UCS-2 (first few, for the hint)

    @property
    def warn(self) -> bool:
        return self.segments > WARN_ABOVE_SEGMENTS


def sms_length(text: str) -> SmsLength:
    """Encoding and segment count of `text`."""
    non_gsm = [c for c in text if c not in GSM7_BASIC and c not in GSM7_EXTENSION]
    if not non_gsm:
        units = sum(2 if c in GSM7_EXTENSION else 1 for c in text)
        single, multi, encoding = 160, 153, "GSM-7"
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, multi, encoding = 70, 67, "UCS-2"
    if units <= single:
        segments, per = (1 if units else 0), single
    else:
        segments, per = -(-units // multi), multi
    unique = "".join(dict.fromkeys(non_gsm))[:10]
    return SmsLength(encoding, units, segments, per, unique)
