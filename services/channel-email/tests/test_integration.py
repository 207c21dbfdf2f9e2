"""channel-email against real Kafka and Redis and the simulator's SMTP sink (aiosmtpd),
through aiosmtplib."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from sirene.devstack.channel_testing import (
    ledger_counts,
    receipt_from,
    receipts_of,
    send_tasks,
    sim_faults,
    sim_state,
)
from sirene.devstack.testing import InfraUrls, TopicReader
from sirene.provider_sim.app import ProviderSimulator
from sirene.schemas import (
    DEAD_LETTER,
    DELIVERY_RECEIPT,
    Channel,
    ErrorClass,
    Lane,
    ReceiptStatus,
    delivery_topic,
)

pytestmark = pytest.mark.integration

URGENT = delivery_topic(Channel.EMAIL, Lane.URGENT)


async def test_mail_has_html_text_and_a_working_one_click_unsubscribe(
    sirene_infra: InfraUrls,
    simulator: ProviderSimulator,
    worker: Any,
    task_factory: Any,
) -> None:
    address = f"buerger-{os_random()}@example.org"
    task = task_factory(
        "musterstadt", address, body="Hochwasser <Altstadt> & Ufer.\n\nBitte meiden."
    )
    async with TopicReader(sirene_infra.kafka, [DELIVERY_RECEIPT]) as reader:
        await send_tasks(sirene_infra.kafka, URGENT, task)
        sent = await reader.collect(receipts_of(task.task_id, "delivered"), count=1, timeout_s=30)
        box = await sim_state(simulator, f"/sim/mailboxes/{address}")
        mail = box["messages"][0]
        assert mail["from"] == "Stadt Musterstadt <warnung@musterstadt.example>"
        assert mail["subject"] == "Hochwasserwarnung"
        assert mail["task_id"] == task.task_id
        assert "Hochwasser <Altstadt> & Ufer." in mail["text"]
        assert "Hochwasser &lt;Altstadt&gt; &amp; Ufer." in mail["html"]  # escaped
        assert mail["list_unsubscribe_post"] == "List-Unsubscribe=One-Click"
        link = mail["list_unsubscribe"].strip("<>")
        assert link.startswith(f"{worker.settings.base_url}/email/unsubscribe?")
        assert receipt_from(sent[0]).provider_ref == mail["message_id"][:128]
        async with httpx.AsyncClient() as http:
            page = await http.get(link)
            forged = await http.post(link.replace("&s=", "&s=0"))
            tampered = await http.post(link.replace("c=", "c=x"))
            assert page.status_code == 200
            assert "Abmelden" in page.text
            assert (forged.status_code, tampered.status_code) == (403, 403)
            done = await http.post(link, data={"List-Unsubscribe": "One-Click"})
        assert done.status_code == 200
        records = await reader.collect(receipts_of(task.task_id, "failed"), count=1, timeout_s=30)
    unsubscribed = receipt_from(records[0])
    assert (unsubscribed.error_code, unsubscribed.error_class) == (
        "unsubscribed",
        ErrorClass.CONTACT_DEAD,  # subscriptions deactivates the e-mail contact
    )
    assert unsubscribed.channel is Channel.EMAIL
    assert (await ledger_counts(simulator, [task.task_id]))[task.task_id] == 1


async def test_unknown_mailbox_is_contact_dead_and_a_relay_outage_is_retried(
    sirene_infra: InfraUrls,
    simulator: ProviderSimulator,
    worker: Any,
    task_factory: Any,
    tenant: str,
) -> None:
    dead = task_factory(tenant, f"gibtsnicht-{os_random()}@example.org")
    later = task_factory(tenant, f"buerger-{os_random()}@example.org")
    async with (
        sim_faults(
            simulator,
            number_errors=[{"pattern": "^gibtsnicht-", "code": 550, "services": ["email"]}],
            outage_s=3,
            outage_services=["email"],
        ),
        TopicReader(sirene_infra.kafka, [DELIVERY_RECEIPT, DEAD_LETTER]) as reader,
    ):
        await send_tasks(sirene_infra.kafka, URGENT, later)
        await reader.collect(receipts_of(later.task_id, "delivered"), count=1, timeout_s=60)
        await send_tasks(sirene_infra.kafka, URGENT, dead)
        failed = await reader.collect(receipts_of(dead.task_id), count=1, timeout_s=30)
        letters = await reader.collect(
            lambda r: r.topic == DEAD_LETTER and dead.task_id in json.loads(r.value)["payload"],
            count=1,
            timeout_s=30,
        )
    attempts = [receipt_from(r) for r in reader.seen if receipts_of(later.task_id)(r)]
    assert attempts[0].status is ReceiptStatus.FAILED  # the relay was down (421)
    assert attempts[0].error_class is ErrorClass.TRANSIENT
    assert (attempts[-1].status, attempts[-1].attempt) == (ReceiptStatus.DELIVERED, 2)
    receipt = receipt_from(failed[0])
    assert (receipt.status, receipt.error_code, receipt.error_class) == (
        ReceiptStatus.FAILED,
        "550",
        ErrorClass.CONTACT_DEAD,
    )
    assert "550" in json.loads(letters[0].value)["reason"]


def os_random() -> str:
    import uuid

    return uuid.uuid4().hex[:10]
