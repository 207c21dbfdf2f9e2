"""Push token gone → SMS, against real Kafka and Redis and the provider simulator, with the
SMS worker running too: APNs answers 410, the token is reported dead, the citizen gets the
warning by SMS where the tenant enabled fallback, and the next alert goes to SMS without
asking APNs again."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest

from sirene.channel_push.app import create_app
from sirene.channel_push.settings import ChannelPushSettings
from sirene.channel_sms.app import create_app as create_sms_app
from sirene.channel_sms.settings import ChannelSmsSettings
from sirene.devstack.channel_testing import (
    new_number,
    receipt_from,
    receipts_of,
    send_tasks,
    serve_twilio_worker,
    serve_worker,
    sim_state,
)
from sirene.devstack.testing import InfraUrls, TopicReader
from sirene.provider_sim.app import ProviderSimulator
from sirene.schemas import (
    DELIVERY_RECEIPT,
    Channel,
    ErrorClass,
    Lane,
    ReceiptStatus,
    delivery_topic,
)

pytestmark = pytest.mark.integration

PUSH = delivery_topic(Channel.PUSH, Lane.URGENT)
SMS = delivery_topic(Channel.SMS, Lane.URGENT)


async def _rejected_410(sim: ProviderSimulator) -> int:
    stats = await sim_state(sim, "/sim/stats")
    return int(stats["pushes_rejected"].get("apns.Unregistered", 0))


async def test_gone_token_falls_back_to_sms_now_and_for_the_next_alert(
    sirene_infra: InfraUrls,
    simulator: ProviderSimulator,
    tenant: str,
    task_factory: Any,
    token: str,
) -> None:
    other_tenant = f"t-{uuid.uuid4().hex[:12]}"
    other_token = token[::-1]
    mobile, other_mobile = new_number(), new_number()

    def settings(port: int) -> ChannelPushSettings:
        return ChannelPushSettings(
            **sirene_infra.settings_kwargs(),  # type: ignore[arg-type]
            http_port=port,
            apns_host="127.0.0.1",
            apns_port=simulator.apns_port,
            apns_cert_dir=simulator.settings.cert_dir,
            fcm_api_url=simulator.http_url,
            fallback_tenants=tenant,  # the other tenant has not enabled fallback
        )

    async with httpx.AsyncClient(base_url=simulator.http_url) as http:
        for dead in (token, other_token):
            (await http.post(f"/sim/devices/{dead}/unregister")).raise_for_status()
    first = task_factory(tenant, token, fallback_address=mobile, citizen_id="c-fallback")
    citizen_without = task_factory(other_tenant, other_token, fallback_address=other_mobile)
    async with (
        serve_worker(settings, create_app),
        serve_twilio_worker(ChannelSmsSettings, create_sms_app, sirene_infra, simulator),
        TopicReader(sirene_infra.kafka, [DELIVERY_RECEIPT, SMS]) as reader,
    ):
        before = await _rejected_410(simulator)
        await send_tasks(sirene_infra.kafka, PUSH, first, citizen_without)
        dead_receipts = await reader.collect(
            lambda r: (
                r.topic == DELIVERY_RECEIPT
                and json.loads(r.value)["task_id"] in (first.task_id, citizen_without.task_id)
            ),
            count=2,
            timeout_s=30,
        )
        fallback_tasks = await reader.collect(
            lambda r: r.topic == SMS and json.loads(r.value)["citizen_id"] == "c-fallback",
            count=1,
            timeout_s=30,
        )
        sms_task = json.loads(fallback_tasks[0].value)
        await reader.collect(
            lambda r: (
                r.topic == DELIVERY_RECEIPT and receipts_of(sms_task["task_id"], "delivered")(r)
            ),
            count=1,
            timeout_s=30,
        )
        assert await _rejected_410(simulator) == before + 2

        # The citizen's next alert: the token is known to be gone, APNs is not asked again.
        second = task_factory(tenant, token, fallback_address=mobile, citizen_id="c-fallback")
        await send_tasks(sirene_infra.kafka, PUSH, second)
        again = await reader.collect(receipts_of(second.task_id), count=1, timeout_s=30)
        await reader.collect(
            lambda r: r.topic == SMS and json.loads(r.value)["alert_id"] == second.alert_id,
            count=1,
            timeout_s=30,
        )
        deadline = asyncio.get_running_loop().time() + 30
        while (await sim_state(simulator, f"/sim/phones/{mobile}"))["total_messages"] < 2:
            assert asyncio.get_running_loop().time() < deadline, "second SMS not delivered"
            await asyncio.sleep(0.2)
        assert await _rejected_410(simulator) == before + 2
    for receipt in [*map(receipt_from, dead_receipts), receipt_from(again[0])]:
        assert receipt.status is ReceiptStatus.FAILED
        assert receipt.error_class is ErrorClass.CONTACT_DEAD  # subscriptions deactivates it
    assert receipt_from(dead_receipts[0]).error_code == "Unregistered"
    assert (sms_task["channel"], sms_task["address"], sms_task["alert_id"]) == (
        "sms",
        mobile,
        first.alert_id,
    )
    phone = await sim_state(simulator, f"/sim/phones/{mobile}")
    assert {m["body"] for m in phone["messages"]} == {f"Hochwasser: {first.body}"}
    # no fallback where the tenant did not enable it
    assert (await sim_state(simulator, f"/sim/phones/{other_mobile}"))["total_messages"] == 0
    assert not [
        r
        for r in reader.seen
        if r.topic == SMS and json.loads(r.value)["tenant_id"] == other_tenant
    ]
