"""Structured (JSON) logging that masks personal data and secrets before anything is written.

Phone numbers, e-mail addresses, device tokens, bearer tokens and URL credentials are masked in
the message and in every extra field, so a careless log call cannot leak them."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

_PHONE = re.compile(r"(?<![\w/=.-])\+?\d[\d ()/-]{6,}\d(?![\w-])")
_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
_HEX_TOKEN = re.compile(r"\b([0-9a-fA-F]{4})[0-9a-fA-F]{60,}\b")
_FCM_TOKEN = re.compile(r"\b([A-Za-z0-9_-]{4})[A-Za-z0-9_-]{10,}:[A-Za-z0-9_-]{30,}")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")
_URL_CREDENTIALS = re.compile(r"(\w+://)[^/@\s:]+:[^/@\s]+@")
_SECRET_FIELD = re.compile(r"(?i)(token|secret|password|authorization|auth|signature|key)\b")


def mask_phone(number: str) -> str:
    """`+4915112345678` → `+491****78`: enough to tell numbers apart in a support case."""
    digits = re.sub(r"\D", "", number)
    if len(digits) < 6:
        return "***"
    prefix = "+" if number.strip().startswith("+") else ""
    return f"{prefix}{digits[:3]}****{digits[-2:]}"


def mask(text: str) -> str:
    """Masks phone numbers, e-mail addresses, tokens and credentials in free text."""
    text = _URL_CREDENTIALS.sub(r"\1***:***@", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} ***", text)
    text = _HEX_TOKEN.sub(r"\1…", text)
    text = _FCM_TOKEN.sub(r"\1…", text)
    text = _EMAIL.sub(r"\1***@\2", text)
    return _PHONE.sub(lambda m: mask_phone(m.group(0)), text)


def _mask_value(key: str, value: Any) -> Any:
    if _SECRET_FIELD.search(key) and isinstance(value, str):
        return "***"
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {k: _mask_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_value(key, v) for v in value]
    return value


_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's ANSI-coloured duplicate of the message
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, service, message, masked extras."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "service": self.service,
            "msg": mask(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = _mask_value(key, value)
        if record.exc_info:
            entry["exc"] = mask(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


class MaskingTextFormatter(logging.Formatter):
    """Human-readable lines for a terminal, masked like the JSON ones. Only the message and the
    traceback are masked: the timestamp would otherwise look like a phone number."""

    def format(self, record: logging.LogRecord) -> str:
        masked = logging.makeLogRecord(record.__dict__)
        masked.msg, masked.args = mask(record.getMessage()), None
        return super().format(masked)

    def formatException(self, ei: Any) -> str:
        return mask(super().formatException(ei))


def configure_logging(service: str, *, level: str = "INFO", json_lines: bool = True) -> None:
    """Routes all logging (ours, uvicorn's, FastStream's, aiokafka's) through one masked handler."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter(service)
        if json_lines
        else MaskingTextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "pymongo", "httpx", "twilio.http_client"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
