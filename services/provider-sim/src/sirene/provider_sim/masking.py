"""Masking of personal data for log lines (phone numbers and device tokens never go in full)."""

from __future__ import annotations

from urllib.parse import urlsplit


def mask_number(number: str | None) -> str:
    """``+4915112345667`` -> ``+49151****67``."""
    if not number:
        return "-"
    if len(number) <= 8:
        return number[:2] + "****"
    return number[:6] + "****" + number[-2:]


def mask_token(token: str | None) -> str:
    """Device token -> first 6 characters and a star run."""
    if not token:
        return "-"
    return token[:6] + "****"


def url_for_log(url: str) -> str:
    """Scheme, host and path only; query strings may carry anything."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"
