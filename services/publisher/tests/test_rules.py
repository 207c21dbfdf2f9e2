"""Unit tests of the publisher (no network): lanes, exercise marking, status ranks,
scheduling, and the API's answers that need no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from sirene.publisher.accounts import API_PRINCIPAL, Principal
from sirene.publisher.api import staff_principal
from sirene.publisher.app import create_app
from sirene.publisher.roles import Role
from sirene.publisher.service import (
    FINAL_RANK,
    STATUS_CODE,
    STATUS_OF_CODE,
    _check_times,
    lane_for,
    mark_texts,
    schedule,
)
from sirene.publisher.settings import PublisherSettings
from sirene.runtime.errors import InvalidInputError
from sirene.schemas import (
    RECEIPT_RANK,
    AlertStatus,
    ChannelTexts,
    Lane,
    Language,
    ReceiptStatus,
    Severity,
    Urgency,
)


def _texts(**overrides: str) -> ChannelTexts:
    values = {
        "headline": "Hochwasser",
        "push_title": "Hochwasserwarnung",
        "push_body": "Pegel steigt.",
        "sms": "Hochwasser: Pegel steigt.",
        "voice": "Achtung, Hochwasser.",
    }
    return ChannelTexts.model_validate(values | overrides)


@pytest.mark.parametrize(
    ("severity", "urgency", "lane"),
    [
        (Severity.EXTREME, Urgency.UNKNOWN, Lane.URGENT),
        (Severity.SEVERE, Urgency.FUTURE, Lane.URGENT),
        (Severity.MINOR, Urgency.IMMEDIATE, Lane.URGENT),
        (Severity.MODERATE, Urgency.EXPECTED, Lane.BULK),
        (Severity.UNKNOWN, Urgency.UNKNOWN, Lane.BULK),
    ],
)
def test_lane(severity: Severity, urgency: Urgency, lane: Lane) -> None:
    assert lane_for(severity, urgency) is lane


def test_exercise_marks_every_channel_text_per_language() -> None:
    texts = {
        Language.DE: _texts(email_subject="Betreff"),
        Language.EN: _texts(headline="Flood"),
    }
    marked = mark_texts(texts, AlertStatus.EXERCISE)
    german = marked[Language.DE]
    for value in (german.headline, german.push_title, german.push_body, german.sms, german.voice):
        assert value.startswith("ÜBUNG: ")
    assert german.email_subject == "ÜBUNG: Betreff"
    assert german.email_body is None
    assert marked[Language.EN].headline == "EXERCISE: Flood"
    assert mark_texts(marked, AlertStatus.EXERCISE) == marked  # never marked twice


def test_test_alerts_are_marked_and_actual_ones_are_not() -> None:
    texts = {Language.DE: _texts(), Language.EN: _texts()}
    assert mark_texts(texts, AlertStatus.TEST)[Language.DE].sms == "TEST: Hochwasser: Pegel steigt."
    assert mark_texts(texts, AlertStatus.TEST)[Language.EN].voice.startswith("TEST: ")
    assert mark_texts(texts, AlertStatus.ACTUAL) == texts


def test_text_that_no_longer_fits_after_marking_is_refused() -> None:
    texts = {Language.DE: _texts(headline="x" * 160)}
    with pytest.raises(InvalidInputError) as caught:
        mark_texts(texts, AlertStatus.EXERCISE)
    assert caught.value.loc == ("body", "texts", "de", "headline")
    assert caught.value.params["limit"] == 160


def test_status_codes_order_like_the_receipt_rank() -> None:
    for a in ReceiptStatus:
        for b in ReceiptStatus:
            if RECEIPT_RANK[a] < RECEIPT_RANK[b]:
                assert STATUS_CODE[a] < STATUS_CODE[b]
    assert STATUS_OF_CODE[STATUS_CODE[ReceiptStatus.DELIVERED]] is ReceiptStatus.DELIVERED
    # A late 'sent' never hides 'delivered': $max keeps the higher code.
    assert (
        max(STATUS_CODE[ReceiptStatus.DELIVERED], STATUS_CODE[ReceiptStatus.SENT])
        == (STATUS_CODE[ReceiptStatus.DELIVERED])
    )
    assert RECEIPT_RANK[ReceiptStatus.SENT] < FINAL_RANK <= RECEIPT_RANK[ReceiptStatus.FAILED]


def test_schedule_uses_expires_then_duration_then_default() -> None:
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    later = now + timedelta(hours=2)
    assert schedule({"expires": later}, now=now, default_duration_s=60) == (now, later)
    assert schedule({"duration_minutes": 30}, now=now, default_duration_s=60) == (
        now,
        now + timedelta(minutes=30),
    )
    assert schedule({}, now=now, default_duration_s=60) == (now, now + timedelta(seconds=60))


AUTH = {"Authorization": "Bearer dev-token-musterstadt"}


API_CALLER = Principal(
    tenant="musterstadt",
    id=API_PRINCIPAL,
    name="API",
    roles=frozenset({Role.ADMIN, Role.ALERTER, Role.EDITOR}),
)


async def _call(method: str, path: str, **kwargs: Any) -> httpx.Response:
    app = create_app(PublisherSettings())  # no lifespan: nothing connects
    if "headers" in kwargs:  # a signed-in caller without looking up the tenant's policy
        app.dependency_overrides[staff_principal] = lambda: API_CALLER
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.request(method, path, **kwargs)


def _alert(**overrides: Any) -> dict[str, Any]:
    return {
        "severity": "Severe",
        "texts": {"de": _texts().model_dump(exclude_none=True)},
        "audience": {"topics": ["gefahrenhinweise"]},
    } | overrides


async def test_without_token_401() -> None:
    assert (await _call("POST", "/api/v1/alerts", json=_alert())).status_code == 401
    assert (await _call("GET", "/api/v1/alerts/x/progress")).status_code == 401


@pytest.mark.parametrize(
    ("overrides", "loc", "reason"),
    [
        ({"texts": {"en": _texts().model_dump(exclude_none=True)}}, ["body", "texts"], "Deutsch"),
        ({"msg_type": "Cancel"}, ["body", "msg_type"], "ursprünglichen Meldung"),
        (
            {"expires": "2030-01-01T00:00:00Z", "duration_minutes": 10},
            ["body", "expires"],
            "nicht beides",
        ),
        ({"expires": "2001-01-01T00:00:00Z"}, ["body", "expires"], "nach dem Beginn"),
    ],
)
async def test_business_rule_violations_get_422_with_reason(
    overrides: dict[str, Any], loc: list[str], reason: str
) -> None:
    response = await _call("POST", "/api/v1/alerts", json=_alert(**overrides), headers=AUTH)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"][0]
    assert detail["loc"] == loc
    assert reason in detail["msg"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"severity": "Terrible"},
        {"audience": {}},
        {"expires": "2030-01-01T00:00:00"},  # no time zone
        {"texts": {"de": {"headline": "x"}}},
        {"duration_minutes": 0},
        {"category": "Party"},
    ],
)
async def test_schema_violations_get_422(overrides: dict[str, Any]) -> None:
    response = await _call("POST", "/api/v1/alerts", json=_alert(**overrides), headers=AUTH)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["msg"]


def test_publication_can_be_scheduled_up_to_90_days_ahead() -> None:
    now = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
    with pytest.raises(InvalidInputError) as info:
        _check_times(effective=now + timedelta(days=91), expires=None, duration=60, now=now)
    assert info.value.code == "schedule_too_far"
    _check_times(effective=now + timedelta(days=89), expires=None, duration=60, now=now)
