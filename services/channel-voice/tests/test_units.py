"""Unit tests (no network): TwiML rendering and the mapping of voice webhooks to receipts."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest

from sirene.channel_voice.repository import Script
from sirene.channel_voice.service import (
    gather_receipt,
    render_hangup,
    render_thanks,
    render_twiml,
    script_ttl_s,
    status_receipt,
)
from sirene.runtime.twilio import TaskRef
from sirene.schemas import ErrorClass, Language, ReceiptStatus, utcnow

REF = TaskRef.model_validate(
    {
        "t": "musterstadt",
        "a": "alert-1",
        "k": "0123456789abcdef0123456789abcdef",
        "c": "c-1",
        "n": "1",
        "x": "0",
        "p": "2026-01-01T10:00:00+00:00",
    }
)
GATHER = "https://sirene.example.org/twilio/voice/gather?t=musterstadt&k=0123"


def test_twiml_says_the_warning_twice_and_gathers_one_digit() -> None:
    xml = render_twiml(Script("Achtung & Hochwasser <Altstadt>", Language.DE), gather_url=GATHER)
    root = ET.fromstring(xml)  # noqa: S314 -- our own output
    say, gather = list(root)
    assert (say.tag, say.text, say.get("language"), say.get("loop")) == (
        "Say",
        "Achtung & Hochwasser <Altstadt>",
        "de-DE",
        "2",
    )
    assert (gather.tag, gather.get("numDigits"), gather.get("action")) == ("Gather", "1", GATHER)
    prompt = gather.find("Say")
    assert prompt is not None
    assert prompt.text == "Drücken Sie 1, um den Empfang zu bestätigen."
    assert prompt.get("language") == "de-DE"


def test_english_twiml_and_closing_documents() -> None:
    root = ET.fromstring(render_twiml(Script("Flood", Language.EN), gather_url=GATHER))  # noqa: S314
    assert {e.get("language") for e in root.iter("Say")} == {"en-GB"}
    thanks = ET.fromstring(render_thanks(Language.EN))  # noqa: S314
    assert [e.tag for e in thanks] == ["Say", "Hangup"]
    assert [e.tag for e in ET.fromstring(render_hangup())] == ["Hangup"]  # noqa: S314


def test_pressing_1_confirms_anything_else_does_not() -> None:
    receipt = gather_receipt(REF, {"Digits": "1", "CallSid": "CA1"})
    assert receipt is not None
    assert (receipt.status, receipt.provider_ref) == (ReceiptStatus.CONFIRMED, "CA1")
    assert gather_receipt(REF, {"Digits": "2"}) is None
    assert gather_receipt(REF, {}) is None


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        (
            {"CallStatus": "completed", "AnsweredBy": "machine_start"},
            (ReceiptStatus.DELIVERED, None, None, "answered_by=machine_start"),
        ),
        (
            {"CallStatus": "completed"},
            (ReceiptStatus.DELIVERED, None, None, "answered_by=unknown"),
        ),
        (
            {"CallStatus": "no-answer"},
            (ReceiptStatus.FAILED, "no-answer", ErrorClass.TRANSIENT, "call ended: no-answer"),
        ),
        (
            {"CallStatus": "busy"},
            (ReceiptStatus.FAILED, "busy", ErrorClass.TRANSIENT, "call ended: busy"),
        ),
        ({"CallStatus": "ringing"}, None),
        ({"CallStatus": "in-progress"}, None),
    ],
)
def test_call_status_mapping(form: dict[str, str], expected: tuple[object, ...] | None) -> None:
    receipt = status_receipt(REF, {"CallSid": "CA1", **form})
    if expected is None:
        assert receipt is None
        return
    assert receipt is not None
    assert (receipt.status, receipt.error_code, receipt.error_class, receipt.detail) == expected
    assert (receipt.task_id, receipt.provider, receipt.provider_ref) == (
        REF.task_id,
        "twilio",
        "CA1",
    )


def test_script_ttl_follows_expiry() -> None:
    assert 3600 + 290 <= script_ttl_s(utcnow() + timedelta(hours=1), grace_s=300) <= 3600 + 300
    assert script_ttl_s(utcnow() - timedelta(hours=1), grace_s=300) == 60
