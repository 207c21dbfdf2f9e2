"""Unit tests of task expansion (no network)."""

from __future__ import annotations

from datetime import timedelta

from sirene.fanout.repository import Recipient
from sirene.fanout.service import channels_for, tasks_for
from sirene.schemas import (
    AlertPublished,
    Channel,
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
