"""Example payloads per topic, as producers would write them. A test validates each against the
topic's model, so the examples cannot drift from the contract."""

from __future__ import annotations

from typing import Any

_TENANT = "musterstadt"
_ALERT = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
_TASK = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
_TS = "2026-11-22T08:00:00Z"

_TEXTS_DE = {
    "headline": "Unwetterwarnung: Orkanböen",
    "push_title": "Unwetterwarnung Musterstadt",
    "push_body": "Orkanböen bis 120 km/h ab 14 Uhr. Bleiben Sie in Gebäuden.",
    "sms": "Unwetterwarnung Musterstadt: Orkanböen bis 120 km/h ab 14 Uhr. Bleiben Sie drinnen.",
    "voice": "Achtung, eine Unwetterwarnung der Stadt Musterstadt. Orkanböen ab 14 Uhr.",
}

EXAMPLES: dict[str, list[dict[str, Any]]] = {
    "alert.published": [
        {
            "tenant_id": _TENANT,
            "alert_id": _ALERT,
            "status": "Actual",
            "exercise": False,
            "severity": "Severe",
            "urgency": "Immediate",
            "certainty": "Likely",
            "category": "Met",
            "lane": "urgent",
            "texts": {"de": _TEXTS_DE},
            "audience": {"topics": ["gefahrenhinweise"]},
            "effective": _TS,
            "expires": "2026-11-22T20:00:00Z",
            "published_at": _TS,
        }
    ],
    "citizen.profile": [
        {
            "tenant_id": _TENANT,
            "citizen_id": "c-000042",
            "active": True,
            "language": "de",
            "district": "Altstadt",
            "contacts": {"sms": "+4915112345678", "voice": "+4930123456"},
            "subscriptions": {"gefahrenhinweise": ["sms", "voice"], "verkehr": ["sms"]},
            "version": 3,
            "updated_at": _TS,
        },
        {
            "tenant_id": _TENANT,
            "citizen_id": "c-000043",
            "active": True,
            "language": "en",
            "district": "Am See",
            "contacts": {"voice": "+4930123457"},
            "subscriptions": {"gefahrenhinweise": ["voice"], "abfall": ["voice"]},
            "quiet_hours": {"start": "22:00", "end": "07:00"},
            "location": {"lat": 51.3397, "lon": 12.3731},
            "version": 1,
            "updated_at": _TS,
        },
    ],
    "sms.inbound": [
        {
            "provider": "twilio",
            "provider_ref": "SM0123456789abcdef0123456789abcdef",
            "from_number": "+4915112345678",
            "to_number": "+15005550006",
            "body": "STOP",
            "created_at": _TS,
        }
    ],
    "alert.fanout": [
        {
            "tenant_id": _TENANT,
            "alert_id": _ALERT,
            "lane": "urgent",
            "expected": {"sms": 120, "voice": 40, "push": 310},
            "recipients": 400,
            "started_at": _TS,
            "completed_at": "2026-11-22T08:00:01Z",
        }
    ],
    "delivery.receipt": [
        {
            "tenant_id": _TENANT,
            "task_id": _TASK,
            "alert_id": _ALERT,
            "citizen_id": "c-000042",
            "channel": "sms",
            "status": "delivered",
            "provider": "twilio",
            "provider_ref": "SM0123456789abcdef0123456789abcdef",
        },
        {
            "tenant_id": _TENANT,
            "task_id": _TASK,
            "alert_id": _ALERT,
            "citizen_id": "c-000043",
            "channel": "push",
            "status": "failed",
            "provider": "apns",
            "error_code": "Unregistered",
            "error_class": "contact_dead",
        },
    ],
    "dead-letter": [
        {
            "tenant_id": "unknown",
            "service": "fanout",
            "source_topic": "alert.published",
            "partition": 0,
            "offset": 17,
            "payload": "{not json",
            "reason": "invalid JSON: Expecting property name enclosed in double quotes",
        }
    ],
}

_TASK_EXAMPLE: dict[str, Any] = {
    "tenant_id": _TENANT,
    "task_id": _TASK,
    "alert_id": _ALERT,
    "citizen_id": "c-000042",
    "channel": "sms",
    "lane": "urgent",
    "address": "+4915112345678",
    "language": "de",
    "body": _TEXTS_DE["sms"],
    "severity": "Severe",
    "exercise": False,
    "published_at": _TS,
    "expires": "2026-11-22T20:00:00Z",
}
for _channel in ("sms", "voice", "push", "email"):
    for _lane in ("urgent", "bulk"):
        _example = {**_TASK_EXAMPLE, "channel": _channel, "lane": _lane}
        if _channel == "push":
            _example |= {"address": "ab" * 32, "push_platform": "apns", "title": "Warnung"}
        elif _channel == "email":
            _example |= {"address": "erika@example.org", "title": "Unwetterwarnung"}
        EXAMPLES[f"delivery.{_channel}.{_lane}"] = [_example]
