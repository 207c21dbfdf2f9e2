"""Unit tests of subscriptions (no network): phone/e-mail rules, profiles, dead contacts,
settings, and the API's answers that need no database."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from sirene.runtime.errors import InvalidInputError
from sirene.schemas import (
    Channel,
    DeliveryReceipt,
    ErrorClass,
    ReceiptStatus,
    contact_key_for,
    task_id_for,
    utcnow,
)
from sirene.subscriptions.app import create_app
from sirene.subscriptions.service import (
    dead_contact_changes,
    normalize_email,
    normalize_phone,
    profile_of,
)
from sirene.subscriptions.settings import SubscriptionsSettings

ALLOWED = ["DE", "AT", "CH", "CZ", "PL"]


def _phone(raw: str, channel: Channel = Channel.SMS) -> str:
    return normalize_phone(
        raw, channel=channel, default_region="DE", allowed_countries=ALLOWED, loc=("x",)
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0151 12345678", "+4915112345678"),
        ("+49 (151) 123-456-78", "+4915112345678"),
        ("0043 664 1234567", "+436641234567"),
        ("+41 79 123 45 67", "+41791234567"),
        ("+420 601 123 456", "+420601123456"),
        ("+48 512 345 678", "+48512345678"),
    ],
)
def test_mobile_numbers_are_normalised_to_e164(raw: str, expected: str) -> None:
    assert _phone(raw) == expected


@pytest.mark.parametrize(
    ("raw", "channel", "code"),
    [
        ("hallo", Channel.SMS, "phone_invalid"),
        ("0151", Channel.SMS, "phone_invalid"),
        ("+1 202 555 0100", Channel.VOICE, "phone_country"),
        ("0900 1234567", Channel.VOICE, "phone_premium"),
        ("0137 1234567", Channel.SMS, "phone_premium"),
        ("030 123456", Channel.SMS, "phone_not_mobile"),
    ],
)
def test_unusable_numbers_are_refused_with_a_reason(raw: str, channel: Channel, code: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        _phone(raw, channel)
    assert caught.value.code == code
    assert caught.value.loc == ("x",)


def test_landline_is_fine_for_voice() -> None:
    assert _phone("030 123456", Channel.VOICE) == "+4930123456"


def test_email_domain_is_lower_cased_and_garbage_refused() -> None:
    assert normalize_email("Erika.M@Example.ORG", loc=()) == "Erika.M@example.org"
    for bad in ("erika", "erika@", "@example.org", "er ika@example.org", "erika@example"):
        with pytest.raises(InvalidInputError):
            normalize_email(bad, loc=())


def _citizen(**contacts: Any) -> dict[str, Any]:
    now = utcnow()
    base: dict[str, Any] = {"sms": None, "voice": None, "email": None, "push": []}
    return {
        "tenant": "musterstadt",
        "id": "c1",
        "active": True,
        "language": "de",
        "district": "Altstadt",
        "contacts": base | contacts,
        "subscriptions": {"gefahr": ["sms", "push"]},
        "version": 3,
        "updated_at": now,
        "outbox": {"state": "pending", "since": now},
    }


TOKEN_A = "a" * 64
TOKEN_B = "b" * 64


def test_profile_carries_only_active_contact_points() -> None:
    doc = _citizen(
        sms={"address": "+4915112345678", "active": False},
        voice={"address": "+4930123456", "active": True},
        push=[
            {"platform": "apns", "token": TOKEN_A, "active": True},
            {"platform": "fcm", "token": TOKEN_B, "active": False},
        ],
    )
    key, profile = profile_of(doc)
    assert key == "musterstadt:c1"
    assert profile.version == 3
    assert profile.contacts.sms is None
    assert profile.contacts.voice == "+4930123456"
    assert [d.token for d in profile.contacts.push] == [TOKEN_A]
    assert profile.subscriptions == {"gefahr": [Channel.SMS, Channel.PUSH]}


def _dead(channel: Channel, contact_key: str = "") -> DeliveryReceipt:
    return DeliveryReceipt(
        tenant_id="musterstadt",
        task_id=task_id_for("a1", "c1", channel, contact_key),
        alert_id="a1",
        citizen_id="c1",
        channel=channel,
        status=ReceiptStatus.FAILED,
        provider="test",
        error_class=ErrorClass.CONTACT_DEAD,
    )


def test_dead_sms_contact_is_deactivated() -> None:
    doc = _citizen(sms={"address": "+4915112345678", "active": True})
    dead = _dead(Channel.SMS, contact_key_for("+4915112345678"))
    assert dead_contact_changes(doc, dead) == {
        "contacts.sms.active": False,
        "contacts.sms.deactivated_reason": "contact_dead",
    }


def test_late_receipt_about_a_replaced_number_deactivates_nothing() -> None:
    doc = _citizen(sms={"address": "+4915199999999", "active": True})
    assert dead_contact_changes(doc, _dead(Channel.SMS, contact_key_for("+4915112345678"))) is None


def test_dead_push_device_is_matched_by_its_task_id() -> None:
    doc = _citizen(
        push=[
            {"platform": "apns", "token": TOKEN_A, "active": True},
            {"platform": "apns", "token": TOKEN_B, "active": True},
        ]
    )
    changes = dead_contact_changes(doc, _dead(Channel.PUSH, contact_key_for(TOKEN_B)))
    assert changes is not None
    devices = changes["contacts.push"]
    assert [d["active"] for d in devices] == [True, False]


def test_receipt_for_another_number_deactivates_nothing() -> None:
    doc = _citizen(push=[{"platform": "apns", "token": TOKEN_A, "active": True}])
    assert dead_contact_changes(doc, _dead(Channel.PUSH, contact_key_for(TOKEN_B))) is None
    assert dead_contact_changes(doc, _dead(Channel.SMS)) is None


def test_settings_refuse_placeholder_tokens_in_production() -> None:
    with pytest.raises(ValidationError, match="placeholder"):
        SubscriptionsSettings(environment="production")
    with pytest.raises(ValidationError, match="shorter"):
        SubscriptionsSettings(api_tokens={"musterstadt": SecretStr("short")})
    with pytest.raises(ValidationError, match="link_secret"):
        SubscriptionsSettings(
            environment="production", api_tokens={"musterstadt": SecretStr("x" * 40)}
        )
    ok = SubscriptionsSettings(
        environment="production",
        api_tokens={"musterstadt": SecretStr("x" * 40)},
        twilio_api_url="https://api.twilio.com",
        twilio_account_sid="AC" + "1" * 32,
        twilio_auth_token=SecretStr("t" * 32),
        link_secret=SecretStr("s" * 40),
        public_url="https://buerger.musterstadt.de",
        smtp_host="mail.musterstadt.de",
        smtp_port=587,
        mail_from="Stadt Musterstadt <buergerinfo@musterstadt.de>",
    )
    assert ok.http_port == 8002


async def _call(method: str, path: str, **kwargs: Any) -> httpx.Response:
    app = create_app(SubscriptionsSettings())  # no lifespan: nothing connects
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.request(method, path, **kwargs)


AUTH = {"Authorization": "Bearer dev-token-musterstadt"}


async def test_requests_without_a_valid_token_get_401() -> None:
    response = await _call("GET", "/api/v1/topics")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    wrong = await _call("GET", "/api/v1/topics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401


async def test_bad_phone_number_gets_422_with_a_german_or_english_reason() -> None:
    body = {"contacts": {"sms": "030 123456"}}
    german = await _call("POST", "/api/v1/citizens", json=body, headers=AUTH)
    assert german.status_code == 422
    detail = german.json()["detail"][0]
    assert detail["loc"] == ["body", "contacts", "sms"]
    assert detail["type"] == "phone_not_mobile"
    assert "Mobilfunknummern" in detail["msg"]
    english = await _call(
        "POST", "/api/v1/citizens", json=body, headers=AUTH | {"Accept-Language": "en-GB"}
    )
    assert "mobile numbers" in english.json()["detail"][0]["msg"]


async def test_schema_violations_get_422() -> None:
    bad = {"contacts": {"push": [{"platform": "blackberry", "token": "x" * 20}]}}
    response = await _call("POST", "/api/v1/citizens", json=bad, headers=AUTH)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][:3] == ["body", "contacts", "push"]
    topic = await _call(
        "POST", "/api/v1/topics", json={"id": "Bad Slug", "name": "x"}, headers=AUTH
    )
    assert topic.status_code == 422
