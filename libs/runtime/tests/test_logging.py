"""Masking keeps personal data and secrets out of logs."""

from __future__ import annotations

import json
import logging

import pytest

from sirene.runtime.logging import JsonFormatter, mask, mask_phone


@pytest.mark.parametrize(
    ("raw", "leak"),
    [
        ("sending to +4915112345678 now", "15112345678"),
        ("call 030 1234567 failed", "1234567"),
        ("mail erika.mustermann@example.org", "erika.mustermann"),
        ("token " + "ab" * 32, "ab" * 32),
        ("fcm dGhpc2lzYWZjbXRva2Vu:APA91bHPRgkF3JUikC4ENAHEeMrd41Zxv3hVZjC9KtT8OvPVGJ", "APA91b"),
        ("Authorization: Bearer dev-token-musterstadt", "dev-token-musterstadt"),
        ("redis://user:s3cret@host:6379/0", "s3cret"),
    ],
)
def test_mask_removes_personal_data_and_secrets(raw: str, leak: str) -> None:
    assert leak not in mask(raw)


def test_mask_keeps_ids_and_ordinary_numbers() -> None:
    task_id = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
    text = f"task {task_id} attempt 3 took 120 ms"
    assert mask(text) == text


def test_mask_phone_keeps_enough_to_tell_numbers_apart() -> None:
    assert mask_phone("+4915112345678") == "+491****78"
    assert mask_phone("12") == "***"


def test_json_formatter_masks_message_and_extra_fields() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "to %s", ("+4915112345678",), None)
    record.to = "+4915112345678"
    record.auth_token = "very-secret"
    line = json.loads(JsonFormatter("svc").format(record))
    assert "15112345678" not in json.dumps(line)
    assert line["auth_token"] == "***"
    assert line["service"] == "svc"


def test_text_formatter_masks_the_message_but_not_the_timestamp() -> None:
    from sirene.runtime.logging import MaskingTextFormatter

    formatter = MaskingTextFormatter("%(asctime)s %(message)s", datefmt="%Y-%m-%d %H:%M:%S")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "to %s", ("+4915112345678",), None)
    record.created = 1_795_000_000.0
    line = formatter.format(record)
    assert "15112345678" not in line
    assert line.startswith(formatter.formatTime(record, "%Y-%m-%d %H:%M:%S"))
    assert "****" not in line.split(" to ")[0]
