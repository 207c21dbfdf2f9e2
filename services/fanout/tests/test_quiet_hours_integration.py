"""Quiet hours against real Kafka and Redis: a bulk post is held back for a citizen inside
their quiet hours and sent when they end; an urgent alert is not held; a cancellation
withdraws what is still held and corrects the post's expected counts; an update reaches the
held-back citizen instead of the post it supersedes."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from typing import Any

import pytest

from sirene.devstack.channel_testing import produce
from sirene.devstack.testing import InfraUrls, TopicReader
from sirene.fanout.app import create_app
from sirene.fanout.service import release_due
from sirene.fanout.settings import FanoutSettings
from sirene.runtime import Infra
from sirene.schemas import (
    ALERT_FANOUT,
    ALERT_PUBLISHED,
    CITIZEN_PROFILE,
    AlertPublished,
    Channel,
    CitizenProfile,
    Lane,
    MsgType,
    contact_key_for,
    delivery_topic,
    profile_key,
    task_id_for,
    utcnow,
)
from sirene.schemas.examples import EXAMPLES

pytestmark = pytest.mark.integration

ZONE = "Europe/Berlin"
DELIVERY_TOPICS = [delivery_topic(c, lane) for c in Channel for lane in Lane]


def _window_around_now(settings: FanoutSettings) -> dict[str, str]:
    """Quiet hours from an hour ago to an hour from now, local time."""
    local = utcnow().astimezone(settings.zone)
    minute = local.hour * 60 + local.minute
    start, end = (minute - 60) % 1440, (minute + 60) % 1440
    return {
        "start": f"{start // 60:02d}:{start % 60:02d}",
        "end": f"{end // 60:02d}:{end % 60:02d}",
    }


def _profile(tenant: str, i: int, quiet: dict[str, str] | None) -> CitizenProfile:
    return CitizenProfile(
        tenant_id=tenant,
        citizen_id=f"c-{i}",
        active=True,
        contacts={"sms": f"+49151{i:08d}"},
        subscriptions={"news": ["sms"]},
        quiet_hours=quiet,
        version=1,
        updated_at=utcnow(),
    )


def _alert(tenant: str, lane: Lane, **changes: Any) -> AlertPublished:
    now = utcnow()
    return AlertPublished.model_validate(
        {
            **EXAMPLES["alert.published"][0],
            "tenant_id": tenant,
            "alert_id": uuid.uuid4().hex,
            "audience": {"topics": ["news"]},
            "lane": lane,
            "effective": now,
            "published_at": now,
            "expires": now + timedelta(hours=6),
            **changes,
        }
    )


async def _publish(bootstrap: str, alert: AlertPublished) -> None:
    await produce(bootstrap, ALERT_PUBLISHED, [(alert.alert_id, alert.model_dump_json().encode())])


def _of(reader: TopicReader, alert_id: str, topic_filter: Any) -> list[dict[str, Any]]:
    return [
        value
        for value in (json.loads(r.value) for r in reader.seen if topic_filter(r.topic))
        if value["alert_id"] == alert_id
    ]


async def test_quiet_hours_hold_bulk_posts_until_they_end_and_cancel_withdraws(
    sirene_infra: InfraUrls,
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:12]}"
    settings = FanoutSettings(
        **sirene_infra.settings_kwargs(),  # type: ignore[arg-type]
        index_prefix=f"test:{uuid.uuid4().hex[:8]}",
        timezone=ZONE,
        release_interval_s=300,  # the test releases by hand, with a clock two hours ahead
    )
    quiet = _window_around_now(settings)
    await produce(
        sirene_infra.kafka,
        CITIZEN_PROFILE,
        [
            (profile_key(tenant, p.citizen_id), p.model_dump_json().encode())
            for p in (_profile(tenant, 1, quiet), _profile(tenant, 2, None))
        ],
    )
    app = create_app(settings)
    infra: Infra = app.state.infra
    async with (
        app.router.lifespan_context(app),
        TopicReader(sirene_infra.kafka, [*DELIVERY_TOPICS, ALERT_FANOUT]) as reader,
    ):
        await infra.wait_until_assigned()
        follower = app.state.follower
        for _ in range(300):
            if await follower.lag() == 0:
                break
            await asyncio.sleep(0.1)
        assert await follower.lag() == 0

        def summaries(alert_id: str) -> list[dict[str, Any]]:
            return _of(reader, alert_id, lambda t: t == ALERT_FANOUT)

        def tasks(alert_id: str) -> list[dict[str, Any]]:
            return _of(reader, alert_id, lambda t: t != ALERT_FANOUT)

        # a bulk post: c-2 at once; c-1 is held back but counted
        post = _alert(tenant, Lane.BULK)
        await _publish(sirene_infra.kafka, post)
        await reader.collect(
            lambda r: r.topic == ALERT_FANOUT and json.loads(r.value)["alert_id"] == post.alert_id,
            count=1,
        )
        assert [t["citizen_id"] for t in tasks(post.alert_id)] == ["c-2"]
        assert summaries(post.alert_id)[0]["expected"]["sms"] == 2
        assert summaries(post.alert_id)[0]["recipients"] == 2
        assert summaries(post.alert_id)[0]["held"] == 1  # c-1, shown in the post's progress

        # an urgent alert ignores quiet hours
        warning = _alert(tenant, Lane.URGENT)
        await _publish(sirene_infra.kafka, warning)
        await reader.collect(
            lambda r: (
                r.topic != ALERT_FANOUT and json.loads(r.value)["alert_id"] == warning.alert_id
            ),
            count=2,
        )
        assert sorted(t["citizen_id"] for t in tasks(warning.alert_id)) == ["c-1", "c-2"]

        # a second bulk post, held for c-1, then cancelled before the quiet hours end
        cancelled = _alert(tenant, Lane.BULK)
        await _publish(sirene_infra.kafka, cancelled)
        await reader.collect(
            lambda r: (
                r.topic == ALERT_FANOUT and json.loads(r.value)["alert_id"] == cancelled.alert_id
            ),
            count=1,
        )
        cancel = _alert(tenant, Lane.BULK, msg_type=MsgType.CANCEL, references=[cancelled.alert_id])
        await _publish(sirene_infra.kafka, cancel)
        # the corrected summary of the cancelled post: only c-2's task is still expected
        corrected = await reader.collect(
            lambda r: (
                r.topic == ALERT_FANOUT and json.loads(r.value)["alert_id"] == cancelled.alert_id
            ),
            count=2,
        )
        assert json.loads(corrected[-1].value)["expected"]["sms"] == 1
        assert json.loads(corrected[-1].value)["recipients"] == 1
        assert json.loads(corrected[-1].value)["held"] == 0
        # the Cancel reaches who the post reached (c-2), and now, at night, it is held for
        # nobody: c-1 never got the post
        await reader.collect(
            lambda r: (
                r.topic == ALERT_FANOUT and json.loads(r.value)["alert_id"] == cancel.alert_id
            ),
            count=1,
        )
        assert [t["citizen_id"] for t in tasks(cancel.alert_id)] == ["c-2"]

        # a third bulk post, held for c-1, then corrected by an Update: c-1 is to get the
        # correction (after the quiet hours), not the superseded post
        superseded = _alert(tenant, Lane.BULK)
        await _publish(sirene_infra.kafka, superseded)
        await reader.collect(
            lambda r: (
                r.topic == ALERT_FANOUT and json.loads(r.value)["alert_id"] == superseded.alert_id
            ),
            count=1,
        )
        update = _alert(
            tenant, Lane.BULK, msg_type=MsgType.UPDATE, references=[superseded.alert_id]
        )
        await _publish(sirene_infra.kafka, update)
        await reader.collect(
            lambda r: (
                r.topic == ALERT_FANOUT and json.loads(r.value)["alert_id"] == update.alert_id
            ),
            count=1,
        )
        assert summaries(update.alert_id)[0]["expected"]["sms"] == 2  # c-2 now, c-1 held
        assert [t["citizen_id"] for t in tasks(update.alert_id)] == ["c-2"]
        assert summaries(superseded.alert_id)[-1]["expected"]["sms"] == 1

        # two hours later the quiet hours are over: the first post and the update reach c-1,
        # the cancelled and the superseded post do not
        released = await release_due(
            index=app.state.index,
            producer=infra.producer,
            instance="test",
            now=utcnow() + timedelta(hours=2),
        )
        assert released == 2
        late = await reader.collect(
            lambda r: (
                r.topic != ALERT_FANOUT
                and json.loads(r.value)["alert_id"] == post.alert_id
                and json.loads(r.value)["citizen_id"] == "c-1"
            ),
            count=1,
        )
        await reader.collect(
            lambda r: (
                r.topic != ALERT_FANOUT
                and json.loads(r.value)["alert_id"] == update.alert_id
                and json.loads(r.value)["citizen_id"] == "c-1"
            ),
            count=1,
        )
        task = json.loads(late[0].value)
        assert task["lane"] == "bulk"
        assert task["task_id"] == task_id_for(
            post.alert_id, "c-1", Channel.SMS, contact_key_for("+4915100000001")
        )
        assert len(summaries(post.alert_id)) == 1, "a release does not count the post again"
        # released once: a second pass finds nothing due
        assert (
            await release_due(
                index=app.state.index,
                producer=infra.producer,
                instance="test",
                now=utcnow() + timedelta(hours=2),
            )
            == 0
        )
        for gone in (cancelled, superseded):
            assert not [t for t in tasks(gone.alert_id) if t["citizen_id"] == "c-1"]
