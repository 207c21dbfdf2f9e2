"""Unit tests of task expansion (no network)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from redis.asyncio import Redis

from sirene.fanout.repository import AudienceIndex, Recipient
from sirene.fanout.service import TaskEncoder, channels_for, tasks_for
from sirene.schemas import (
    AlertPublished,
    Channel,
    DeliveryTask,
    Language,
    contact_key_for,
    task_id_for,
    utcnow,
)
from sirene.schemas.examples import EXAMPLES


def _alert(**changes: object) -> AlertPublished:
    now = utcnow()
    data = {
        **EXAMPLES["alert.published"][0],
        "effective": now,
        "published_at": now,
        "expires": now + timedelta(hours=1),
    }
    data.update(changes)
    return AlertPublished.model_validate(data)


def _recipient(**changes: object) -> Recipient:
    base: dict[str, object] = {
        "citizen_id": "c-1",
        "language": Language.DE,
        "district": None,
        "contacts": {
            "sms": "+4915112345678",
            "voice": "+4930123456",
            "email": None,
            "push": [["apns", "ab" * 32], ["fcm", "tok:" + "x" * 40]],
        },
        "subscriptions": {"gefahrenhinweise": ["sms", "push"], "verkehr": ["voice"]},
    }
    base.update(changes)
    return Recipient(**base)  # type: ignore[arg-type]


def test_only_channels_chosen_for_the_alerts_topics() -> None:
    alert = _alert()
    assert channels_for(alert, _recipient()) == {Channel.SMS, Channel.PUSH}
    everyone = _alert(audience={"everyone": True})
    assert channels_for(everyone, _recipient()) == {Channel.SMS, Channel.PUSH, Channel.VOICE}


def test_one_task_per_push_device_with_stable_ids() -> None:
    alert = _alert()
    tasks = list(tasks_for(alert, _recipient()))
    assert sorted(t.channel for t in tasks) == [Channel.PUSH, Channel.PUSH, Channel.SMS]
    assert len({t.task_id for t in tasks}) == 3
    sms = next(t for t in tasks if t.channel is Channel.SMS)
    assert sms.task_id == task_id_for(
        alert.alert_id, "c-1", Channel.SMS, contact_key_for("+4915112345678")
    )
    assert sms.body == alert.texts[Language.DE].sms
    assert [t.task_id for t in tasks_for(alert, _recipient())] == [t.task_id for t in tasks]
    # push tasks carry the mobile for the worker's SMS fallback; other channels do not
    assert {t.fallback_address for t in tasks if t.channel is Channel.PUSH} == {"+4915112345678"}
    assert sms.fallback_address is None


def test_missing_contact_point_yields_no_task_and_language_falls_back_to_german() -> None:
    alert = _alert()
    recipient = _recipient(
        language=Language.EN,
        contacts={"sms": None, "voice": None, "email": None, "push": [["apns", "cd" * 32]]},
    )
    tasks = list(tasks_for(alert, recipient))
    assert [t.channel for t in tasks] == [Channel.PUSH]
    assert tasks[0].language is Language.DE
    assert tasks[0].title == alert.texts[Language.DE].push_title


def test_encoder_emits_exactly_what_the_task_model_would() -> None:
    alert = _alert(
        texts={
            **_alert().texts,
            "en": _alert()
            .texts["de"]
            .model_copy(update={"sms": "Storm warning", "push_title": "Warning"}),
        }
    )
    alert = _alert(audience={"everyone": True}, texts=alert.texts)
    recipients = [
        _recipient(),
        _recipient(citizen_id="c-2", language=Language.EN),
        _recipient(
            citizen_id="c-3",
            contacts={"sms": None, "voice": None, "email": 'a"b@example.org', "push": []},
            subscriptions={"verkehr": ["email", "sms"]},
        ),
    ]
    encoder = TaskEncoder(alert)
    for recipient in recipients:
        encoded = [(ch, DeliveryTask.model_validate_json(v)) for ch, v in encoder.encode(recipient)]
        expected = list(tasks_for(alert, recipient))
        assert [ch for ch, _ in encoded] == [t.channel for t in expected]
        for (_, got), want in zip(encoded, expected, strict=True):
            assert got.model_dump(exclude={"event_id", "created_at"}) == want.model_dump(
                exclude={"event_id", "created_at"}
            )
    ids = [json.loads(v)["event_id"] for r in recipients for _, v in encoder.encode(r)]
    assert len(set(ids)) == len(ids), "every task record is its own event"


def test_shards_are_powers_of_two_up_to_one_per_bucket() -> None:
    index = AudienceIndex(Redis(), "x", buckets=64)
    assert index.shards_for(0, per_shard=1000) == 1
    assert index.shards_for(1000, per_shard=1000) == 1
    assert index.shards_for(1001, per_shard=1000) == 2
    assert index.shards_for(50_000, per_shard=25_000) == 2
    assert index.shards_for(10**9, per_shard=25_000) == 64
    # every bucket belongs to exactly one shard of any valid split
    for shards in (1, 2, 4, 64):
        owned = sorted(b for s in range(shards) for b in range(s, 64, shards))
        assert owned == list(range(64))
    with pytest.raises(ValueError, match="power of two"):
        AudienceIndex(Redis(), "x", buckets=48)
