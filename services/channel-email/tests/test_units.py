"""Unit tests (no network): the e-mail message and its signed unsubscribe link."""

from __future__ import annotations

from email import message_from_bytes, policy
from urllib.parse import parse_qsl, urlsplit

import aiosmtplib
import pytest
from pydantic import SecretStr, ValidationError

from sirene.channel_email.service import build_message, classify, verify
from sirene.channel_email.settings import ChannelEmailSettings
from sirene.devstack.channel_testing import make_task
from sirene.schemas import Channel, ErrorClass, Language, Severity

SECRET = SecretStr("unit-test-secret-unit-test-secret-0001")


def _task(**fields: object) -> object:
    return make_task("musterstadt", "anna@example.org", channel=Channel.EMAIL, **fields)


def test_message_parts_headers_and_umlauts_survive_the_wire() -> None:
    task = make_task(
        "musterstadt",
        "anna@example.org",
        channel=Channel.EMAIL,
        title="Unwetterwarnung Stufe 3",
        body="Schwere Sturmböen über 100 km/h.",
        severity=Severity.EXTREME,
        language=Language.DE,
    )
    message = build_message(
        task,
        sender="Stadt Musterstadt <warnung@musterstadt.de>",
        public_url="https://x.de/",
        secret=SECRET,
    )
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    assert parsed["Subject"] == "Unwetterwarnung Stufe 3"
    assert parsed["X-Sirene-Task"] == task.task_id
    assert parsed["Importance"] == "high"
    assert "musterstadt.de" in parsed["Message-ID"]
    text = parsed.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    html = parsed.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    assert "Sturmböen" in text
    assert "Sturmböen" in html
    assert 'lang="de"' in html
    link = parsed["List-Unsubscribe"].strip().strip("<>")  # folding whitespace is insignificant
    assert link.startswith("https://x.de/email/unsubscribe?")
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    query = dict(parse_qsl(urlsplit(link).query))
    assert verify(query, SECRET)
    assert not verify({**query, "c": "someone-else"}, SECRET)
    assert not verify(query, SecretStr("another-secret-another-secret-00001"))


def test_smtp_errors_are_classified() -> None:
    refused = aiosmtplib.SMTPRecipientsRefused(
        [aiosmtplib.SMTPRecipientRefused(550, "User unknown", "x@example.org")]
    )
    assert classify(refused) == (ErrorClass.CONTACT_DEAD, "550")
    assert classify(aiosmtplib.SMTPResponseException(421, "later")) == (ErrorClass.TRANSIENT, "421")
    assert classify(aiosmtplib.SMTPResponseException(554, "policy")) == (
        ErrorClass.PERMANENT,
        "554",
    )
    assert classify(ConnectionRefusedError())[0] is ErrorClass.TRANSIENT


def test_senders_are_validated() -> None:
    settings = ChannelEmailSettings(tenant_senders='{"a-town": "A-Town <warnung@a-town.de>"}')
    assert settings.sender_for("a-town") == "A-Town <warnung@a-town.de>"
    assert settings.sender_for("other") == settings.mail_from
    with pytest.raises(ValidationError):
        ChannelEmailSettings(tenant_senders={"x": "not a mailbox"})
    assert any("unsubscribe_secret" in p for p in ChannelEmailSettings().production_problems())


def test_unsubscribe_link_goes_out_verbatim_not_as_encoded_words() -> None:
    """RFC 2369/8058: mail clients read the URL in List-Unsubscribe as it stands; an RFC 2047
    encoded word there (what folding a long header with the EmailMessage API produced) would
    hide the one-click link from them."""
    task = make_task("musterstadt", "anna@example.org", channel=Channel.EMAIL, title="Überflutung")
    message = build_message(
        task,
        sender="Stadt Müllheim <warnung@muellheim.de>",
        public_url="https://x.de/",
        secret=SECRET,
    )
    wire = message.as_bytes()
    header = wire.split(b"List-Unsubscribe:", 1)[1].split(b"List-Unsubscribe-Post", 1)[0]
    assert b"=?" not in header
    link = header.decode().replace("\n", "").replace("\r", "").strip().strip("<>")
    assert link.startswith("https://x.de/email/unsubscribe?")
    assert verify(dict(parse_qsl(urlsplit(link).query)), SECRET)
    parsed = message_from_bytes(wire, policy=policy.default)
    assert parsed["Subject"] == "Überflutung"
    assert parsed["From"].addresses[0].display_name == "Stadt Müllheim"


def test_non_ascii_address_keeps_it_raw_for_smtputf8() -> None:
    task = make_task("musterstadt", "jörg@bücher.example", channel=Channel.EMAIL)
    message = build_message(task, sender="warnung@x.de", public_url="https://x.de/", secret=SECRET)
    flat = aiosmtplib.email.flatten_message(message, utf8=True)
    assert "To: jörg@bücher.example".encode() in flat
