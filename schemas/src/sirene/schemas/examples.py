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
            "audience": {
                "topics": ["gefahrenhinweise"],
                "areas": [
                    {
                        "description": "Mainufer Altstadt",
                        "polygon": [
                            [[8.671, 50.108], [8.689, 50.108], [8.689, 50.113], [8.671, 50.108]]
                        ],
                    }
                ],
            },
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
    "fanout.shard.urgent": [
        {
            "tenant_id": _TENANT,
            "alert": {
                "tenant_id": _TENANT,
                "alert_id": _ALERT,
                "exercise": False,
                "severity": "Severe",
                "lane": "urgent",
                "texts": {"de": _TEXTS_DE},
                "audience": {"topics": ["gefahrenhinweise"]},
                "effective": _TS,
                "expires": "2026-11-22T20:00:00Z",
                "published_at": _TS,
            },
            "shard": 3,
            "shards": 48,
        }
    ],
    "fanout.shard.bulk": [
        {
            "tenant_id": _TENANT,
            "alert": {
                "tenant_id": _TENANT,
                "alert_id": _ALERT,
                "exercise": False,
                "severity": "Minor",
                "lane": "bulk",
                "texts": {"de": _TEXTS_DE},
                "audience": {"everyone": True},
                "effective": _TS,
                "expires": "2026-11-23T08:00:00Z",
                "published_at": _TS,
            },
            "shard": 0,
            "shards": 48,
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
    "notification.requested": [
        {
            "tenant_id": _TENANT,
            "notification_id": "5e0c1d2b3a4f5e6d7c8b9a0f1e2d3c4b",
            "source": "issues",
            "reference": "9f8e7d6c5b4a39281706f5e4d3c2b1a0",
            "recipient_id": "report-9f8e7d6c5b4a39281706f5e4d3c2b1a0",
            "channel": "sms",
            "address": "+4915112345678",
            "language": "de",
            "body": "Musterstadt: Ihre Meldung 9f8e7d6c ist jetzt in Bearbeitung.",
            "requested_at": _TS,
            "expires": "2026-11-29T08:00:00Z",
        },
        {
            "tenant_id": _TENANT,
            "notification_id": "6f1d2e3c4b5a6f7e8d9cab1f2e3d4c5b",
            "source": "issues",
            "reference": "9f8e7d6c5b4a39281706f5e4d3c2b1a0",
            "recipient_id": "department-bauhof",
            "channel": "email",
            "address": "bauhof@musterstadt.example",
            "subject": "Neue Meldung: Illegale Müllablagerung",
            "body": "Eine neue Meldung ist für den Bauhof eingegangen.",
            "requested_at": _TS,
            "expires": "2026-11-29T08:00:00Z",
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
    # a task waiting on a retry tier: the same task, on its next attempt
    for _tier in ("10s", "1m", "2m", "10m"):
        _retry = {**EXAMPLES[f"delivery.{_channel}.urgent"][0], "attempt": 2}
        if _channel == "push":
            _retry["fallback_address"] = "+4915112345678"
        EXAMPLES[f"delivery.{_channel}.retry.{_tier}"] = [_retry]
