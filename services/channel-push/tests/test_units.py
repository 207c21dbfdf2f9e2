"""Unit tests (no network): APNs payloads and the mapping of APNs/FCM answers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from aioapns.common import NotificationResult

from sirene.channel_push.service import apns_outcome, apns_payload, fcm_message, fcm_outcome
from sirene.schemas import (
    Channel,
    DeliveryTask,
    ErrorClass,
    Lane,
    Language,
    PushPlatform,
    ReceiptStatus,
    Severity,
    task_id_for,
    utcnow,
)


def _task(**fields: Any) -> DeliveryTask:
    now = utcnow()
    values: dict[str, Any] = {
        "tenant_id": "musterstadt",
        "task_id": task_id_for("a-1", "c-1", Channel.PUSH),
        "alert_id": "a-1",
        "citizen_id": "c-1",
        "channel": Channel.PUSH,
        "lane": Lane.URGENT,
        "address": "ab" * 32,
        "push_platform": PushPlatform.APNS,
        "language": Language.DE,
        "title": None,
        "body": "Warnung",
        "severity": Severity.EXTREME,
        "exercise": False,
        "published_at": now,
        "expires": now + timedelta(hours=1),
    }
    values.update(fields)
    return DeliveryTask.model_validate(values)


@pytest.mark.parametrize(
    ("severity", "level"),
    [
        (Severity.EXTREME, "critical"),
        (Severity.SEVERE, "time-sensitive"),
        (Severity.MODERATE, "active"),
        (Severity.MINOR, "active"),
    ],
)
def test_interruption_level_follows_severity(severity: Severity, level: str) -> None:
    aps = apns_payload(_task(severity=severity))["aps"]
    assert aps["interruption-level"] == level
    assert aps["alert"] == {"title": "Warnung", "body": "Warnung"}
    assert (aps["sound"] != "default") is (level == "critical")


def test_fcm_message() -> None:
    message = fcm_message(_task(title="Hochwasser", severity=Severity.MINOR))
    assert message["notification"] == {"title": "Hochwasser", "body": "Warnung"}
    assert message["android"]["priority"] == "normal"
    assert message["android"]["collapse_key"] == "a-1"


@pytest.mark.parametrize(
    ("status", "reason", "expected"),
    [
        ("200", None, (ReceiptStatus.DELIVERED, None, None)),
        ("410", "Unregistered", (ReceiptStatus.FAILED, "Unregistered", ErrorClass.CONTACT_DEAD)),
        (
            "400",
            "BadDeviceToken",
            (ReceiptStatus.FAILED, "BadDeviceToken", ErrorClass.CONTACT_DEAD),
        ),
        (
            "429",
            "TooManyRequests",
            (ReceiptStatus.FAILED, "TooManyRequests", ErrorClass.TRANSIENT),
        ),
        (
            "503",
            "ServiceUnavailable",
            (ReceiptStatus.FAILED, "ServiceUnavailable", ErrorClass.TRANSIENT),
        ),
        (
            "403",
            "InvalidProviderToken",
            (ReceiptStatus.FAILED, "InvalidProviderToken", ErrorClass.PERMANENT),
        ),
    ],
)
def test_apns_outcome(status: str, reason: str | None, expected: tuple[object, ...]) -> None:
    outcome = apns_outcome(NotificationResult("id-1", status, description=reason))
    assert (outcome.status, outcome.error_code, outcome.error_class) == expected
    assert outcome.provider_ref == "id-1"


def test_fcm_outcome() -> None:
    ok = fcm_outcome(200, {"name": "projects/p/messages/1"})
    assert (ok.status, ok.provider_ref) == (ReceiptStatus.DELIVERED, "projects/p/messages/1")
    gone = fcm_outcome(
        404,
        {"error": {"status": "NOT_FOUND", "details": [{"errorCode": "UNREGISTERED"}]}},
    )
    assert (gone.error_code, gone.error_class) == ("UNREGISTERED", ErrorClass.CONTACT_DEAD)
    assert fcm_outcome(503, None).error_class is ErrorClass.TRANSIENT
    assert fcm_outcome(401, {"error": {"status": "UNAUTHENTICATED"}}).error_class is (
        ErrorClass.PERMANENT
    )


def test_simulator_defaults_are_refused_in_production() -> None:
    import pytest
    from pydantic import ValidationError

    from sirene.channel_push.settings import ChannelPushSettings

    with pytest.raises(ValidationError) as info:
        ChannelPushSettings(environment="production")
    assert "apns_host" in str(info.value)
    assert "fcm_api_url" in str(info.value)
