"""Staff, four-eyes approval, tenant isolation, scheduling, Update/Cancel and CAP against real
Kafka and MongoDB (FerretDB locally)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from sirene.devstack.testing import InfraUrls, TopicReader, serve_app
from sirene.publisher import cap
from sirene.publisher.app import create_app
from sirene.publisher.settings import PublisherSettings
from sirene.schemas import ALERT_PUBLISHED, AlertPublished, MsgType

pytestmark = pytest.mark.integration

TEXTS = {
    "headline": "Hochwasser an der Mulde",
    "push_title": "Hochwasserwarnung",
    "push_body": "Der Pegel steigt. Meiden Sie das Ufer.",
    "sms": "Hochwasserwarnung Musterstadt: Pegel steigt, Ufer meiden.",
    "voice": "Achtung, Hochwasserwarnung. Meiden Sie das Ufer.",
}
PASSWORD = "ein-langes-testpasswort"


def _settings(sirene_infra: InfraUrls, tokens: dict[str, str], **extra: Any) -> PublisherSettings:
    return PublisherSettings(
        **sirene_infra.settings_kwargs(),  # type: ignore[arg-type]
        api_tokens={t: SecretStr(v) for t, v in tokens.items()},
        **extra,
    )


def running(
    settings: PublisherSettings,
) -> contextlib.AbstractAsyncContextManager[tuple[FastAPI, httpx.AsyncClient]]:
    return serve_app(create_app(settings))


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _alert(**overrides: Any) -> dict[str, Any]:
    return {
        "status": "Exercise",
        "severity": "Severe",
        "urgency": "Immediate",
        "certainty": "Likely",
        "category": "Met",
        "texts": {"de": TEXTS},
        "audience": {"topics": ["gefahrenhinweise"]},
        "duration_minutes": 120,
        "publish": True,
    } | overrides


class Tenant:
    """A fresh tenant with its integration token and personal tokens of its staff."""

    def __init__(self) -> None:
        self.id = f"t-{uuid.uuid4().hex[:10]}"
        self.token = f"token-{uuid.uuid4().hex}"
        self.staff: dict[str, str] = {}  # username → personal token
        self.ids: dict[str, str] = {}  # username → staff id

    async def add(self, client: httpx.AsyncClient, username: str, *roles: str) -> str:
        created = await client.post(
            "/api/v1/staff",
            json={
                "username": username,
                "display_name": username.title(),
                "password": PASSWORD,
                "roles": list(roles),
            },
            headers=_auth(self.token),
        )
        assert created.status_code == 201, created.text
        staff_id = created.json()["id"]
        issued = await client.post(f"/api/v1/staff/{staff_id}/tokens", headers=_auth(self.token))
        assert issued.status_code == 201, issued.text
        self.staff[username] = issued.json()["token"]
        self.ids[username] = staff_id
        return self.staff[username]


def _published(reader: TopicReader, alert_id: str) -> list[AlertPublished]:
    return [
        AlertPublished.model_validate_json(r.value)
        for r in reader.seen
        if r.key == alert_id.encode()
    ]


async def test_four_eyes_and_no_self_approval(sirene_infra: InfraUrls) -> None:
    a = Tenant()
    settings = _settings(sirene_infra, {a.id: a.token}, relay_poll_interval_s=60.0)
    async with (
        TopicReader(sirene_infra.kafka, [ALERT_PUBLISHED]) as reader,
        running(settings) as (_, client),
    ):
        anna = await a.add(client, "anna", "alerter")
        carla = await a.add(client, "carla", "alerter", "approver")
        bernd = await a.add(client, "bernd", "approver")
        editor = await a.add(client, "eddi", "editor")

        # Severe: waits for a second person, nothing is emitted yet
        sent = await client.post("/api/v1/alerts", json=_alert(), headers=_auth(anna))
        assert sent.status_code == 201, sent.text
        alert = sent.json()
        assert alert["state"] == "awaiting_approval"
        assert alert["relay_state"] is None
        # the author cannot approve (no approver role), nor the tenant's integration token
        for token in (anna, a.token):
            refused = await client.post(
                f"/api/v1/alerts/{alert['id']}/approve", headers=_auth(token)
            )
            assert refused.status_code == 403, refused.text
            assert refused.json()["code"] == "role_required"

        # an approver who wrote (or sent) the alert cannot approve it either
        own = (await client.post("/api/v1/alerts", json=_alert(), headers=_auth(carla))).json()
        self_approval = await client.post(
            f"/api/v1/alerts/{own['id']}/approve", headers=_auth(carla)
        )
        assert self_approval.status_code == 403
        assert self_approval.json()["code"] == "self_approval"
        assert "eigene" in self_approval.json()["detail"]
        draft = (
            await client.post("/api/v1/alerts", json=_alert(publish=False), headers=_auth(anna))
        ).json()
        submitted = await client.post(f"/api/v1/alerts/{draft['id']}/publish", headers=_auth(carla))
        assert submitted.json()["state"] == "awaiting_approval"
        by_sender = await client.post(f"/api/v1/alerts/{draft['id']}/approve", headers=_auth(carla))
        assert by_sender.status_code == 403
        assert by_sender.json()["code"] == "self_approval"

        # an approver may send it back to draft with a reason; the author sends it again
        rejected = await client.post(
            f"/api/v1/alerts/{draft['id']}/reject",
            json={"reason": "Pegelstand fehlt"},
            headers=_auth(bernd),
        )
        assert rejected.status_code == 200, rejected.text
        assert (rejected.json()["state"], rejected.json()["rejection_reason"]) == (
            "draft",
            "Pegelstand fehlt",
        )
        not_approver = await client.post(
            f"/api/v1/alerts/{alert['id']}/reject", json={"reason": "nein"}, headers=_auth(anna)
        )
        assert not_approver.status_code == 403
        resent = await client.post(f"/api/v1/alerts/{draft['id']}/publish", headers=_auth(anna))
        assert resent.json()["state"] == "awaiting_approval"

        # a second person approves: published, exactly one event
        approved = await client.post(f"/api/v1/alerts/{alert['id']}/approve", headers=_auth(bernd))
        assert approved.status_code == 200, approved.text
        assert approved.json()["state"] == "published"
        assert approved.json()["approved_by"] == a.ids["bernd"]
        again = await client.post(f"/api/v1/alerts/{alert['id']}/approve", headers=_auth(carla))
        assert again.status_code == 409
        await reader.collect(lambda r: r.key == alert["id"].encode(), count=1, timeout_s=20)
        assert _published(reader, own["id"]) == []

        # editors send everyday posts, never warnings
        warning = await client.post("/api/v1/alerts", json=_alert(), headers=_auth(editor))
        assert warning.status_code == 403
        assert warning.json()["code"] == "editor_alert_only"
        post = await client.post(
            "/api/v1/alerts",
            json=_alert(severity="Minor", urgency="Expected", status="Actual"),
            headers=_auth(editor),
        )
        assert post.status_code == 201
        assert post.json()["state"] == "published"

        # the tenant can switch four-eyes off for Severe: then anna publishes at once
        policy = await client.put(
            "/api/v1/settings", json={"four_eyes": ["Extreme"]}, headers=_auth(a.token)
        )
        assert policy.status_code == 200
        direct = await client.post("/api/v1/alerts", json=_alert(), headers=_auth(anna))
        assert direct.json()["state"] == "published"

        audit = (
            await client.get(f"/api/v1/audit?alert_id={alert['id']}", headers=_auth(a.token))
        ).json()
        actions = [(e["action"], e["actor"]) for e in reversed(audit)]
        assert actions == [
            ("created", a.ids["anna"]),
            ("submitted", a.ids["anna"]),
            ("approved", a.ids["bernd"]),
            ("published", a.ids["bernd"]),
        ]
        await asyncio.sleep(1.0)
        assert len(_published(reader, alert["id"])) == 1


async def test_another_tenants_staff_can_neither_read_nor_act_on_any_endpoint(
    sirene_infra: InfraUrls,
) -> None:
    a, b = Tenant(), Tenant()
    settings = _settings(sirene_infra, {a.id: a.token, b.id: b.token})
    async with running(settings) as (_, client):
        anna = await a.add(client, "anna", "alerter", "editor")
        await a.add(client, "bernd", "approver")
        intruders = {
            "integration token": b.token,
            "admin": await b.add(client, "admin", "admin", "alerter", "approver", "editor"),
            "approver": await b.add(client, "bert", "approver"),
        }
        waiting = (await client.post("/api/v1/alerts", json=_alert(), headers=_auth(anna))).json()
        draft = (
            await client.post("/api/v1/alerts", json=_alert(publish=False), headers=_auth(anna))
        ).json()
        live = (
            await client.post(
                "/api/v1/alerts", json=_alert(severity="Moderate"), headers=_auth(anna)
            )
        ).json()
        assert (waiting["state"], draft["state"], live["state"]) == (
            "awaiting_approval",
            "draft",
            "published",
        )
        update = {"texts": {"de": TEXTS}}
        for who, token in intruders.items():
            for alert in (waiting, draft, live):
                path = f"/api/v1/alerts/{alert['id']}"
                calls = [
                    ("GET", path, None),
                    ("GET", f"{path}/progress", None),
                    ("GET", f"{path}/cap.xml", None),
                    ("GET", f"{path}/report.csv", None),
                    ("POST", f"{path}/publish", None),
                    ("POST", f"{path}/approve", None),
                    ("POST", f"{path}/cancel", None),
                    ("POST", f"{path}/update", update),
                ]
                for method, url, body in calls:
                    response = await client.request(method, url, json=body, headers=_auth(token))
                    assert response.status_code == 404, (who, method, url, response.text)
            listed = (await client.get("/api/v1/alerts", headers=_auth(token))).json()["items"]
            assert all(x["id"] not in {waiting["id"], draft["id"], live["id"]} for x in listed)
            audit = await client.get(f"/api/v1/audit?alert_id={live['id']}", headers=_auth(token))
            assert audit.json() == []
        # staff accounts and tokens of tenant A are out of reach for B's admin
        token_for_anna = await client.post(
            f"/api/v1/staff/{a.ids['anna']}/tokens", headers=_auth(intruders["admin"])
        )
        assert token_for_anna.status_code == 404
        b_staff = (await client.get("/api/v1/staff", headers=_auth(intruders["admin"]))).json()
        assert {s["username"] for s in b_staff} == {"admin", "bert"}
        # nothing changed for tenant A
        for alert, state in ((waiting, "awaiting_approval"), (draft, "draft"), (live, "published")):
            shown = (await client.get(f"/api/v1/alerts/{alert['id']}", headers=_auth(anna))).json()
            assert shown["state"] == state
            assert shown.get("cancelled_by") is None
        # without or with a wrong token: 401
        assert (await client.get(f"/api/v1/alerts/{live['id']}")).status_code == 401
        wrong = await client.get(f"/api/v1/alerts/{live['id']}", headers=_auth("x" * 40))
        assert wrong.status_code == 401


async def test_scheduled_alert_goes_out_once_within_5_s_across_a_restart(
    sirene_infra: InfraUrls,
) -> None:
    a = Tenant()
    settings = _settings(sirene_infra, {a.id: a.token})
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=12)
    async with TopicReader(sirene_infra.kafka, [ALERT_PUBLISHED]) as reader:
        async with running(settings) as (_, client):
            created = await client.post(
                "/api/v1/alerts",
                json=_alert(severity="Moderate", effective=due.isoformat()),
                headers=_auth(a.token),
            )
            assert created.status_code == 201, created.text
            alert = created.json()
            assert alert["state"] == "scheduled"
            assert alert["relay_state"] is None
        # the publisher is down for a moment; then two instances run at the due time, and both
        # look for due alerts every second
        await asyncio.sleep(1.0)
        assert _published(reader, alert["id"]) == []
        async with running(settings) as (_, client), running(settings):
            records = await reader.collect(
                lambda r: r.key == alert["id"].encode(), count=1, timeout_s=60
            )
            arrived = datetime.fromtimestamp(records[0].timestamp / 1000, UTC)
            assert arrived - due < timedelta(seconds=5), arrived - due
            assert arrived >= due
            await asyncio.sleep(3.0)  # time for a duplicate to show up
            shown = await client.get(f"/api/v1/alerts/{alert['id']}", headers=_auth(a.token))
            assert shown.json()["state"] == "published"
        events = _published(reader, alert["id"])
        assert len(events) == 1
        assert events[0].effective == due


async def test_cancel_and_update_reference_the_original_and_keep_its_status(
    sirene_infra: InfraUrls,
) -> None:
    a = Tenant()
    settings = _settings(sirene_infra, {a.id: a.token})
    async with (
        TopicReader(sirene_infra.kafka, [ALERT_PUBLISHED]) as reader,
        running(settings) as (_, client),
    ):
        anna = await a.add(client, "anna", "alerter")
        await a.add(client, "bernd", "approver")
        original = (
            await client.post(
                "/api/v1/alerts",
                json=_alert(
                    severity="Moderate", audience={"topics": ["t1"], "districts": ["Nord"]}
                ),
                headers=_auth(anna),
            )
        ).json()
        update = await client.post(
            f"/api/v1/alerts/{original['id']}/update",
            json={"texts": {"de": TEXTS | {"sms": "Korrektur: Pegel sinkt."}}},
            headers=_auth(anna),
        )
        assert update.status_code == 201, update.text
        assert update.json()["msg_type"] == "Update"
        assert update.json()["references"] == [original["id"]]
        assert update.json()["texts"]["de"]["sms"] == "ÜBUNG: Korrektur: Pegel sinkt."
        # a Severe alert's Cancel goes at once: no four-eyes wait for withdrawing a warning
        cancel = await client.post(f"/api/v1/alerts/{original['id']}/cancel", headers=_auth(anna))
        assert cancel.status_code == 201, cancel.text
        c = cancel.json()
        assert (c["msg_type"], c["state"], c["status"]) == ("Cancel", "published", "Exercise")
        assert c["references"] == [original["id"]]
        assert c["audience"] == original["audience"]
        assert c["texts"]["de"]["sms"].startswith("ÜBUNG: Entwarnung")
        assert (
            await client.post(f"/api/v1/alerts/{original['id']}/cancel", headers=_auth(anna))
        ).status_code == 409
        shown = (await client.get(f"/api/v1/alerts/{original['id']}", headers=_auth(anna))).json()
        assert shown["cancelled_by"] == c["id"]

        await reader.collect(lambda r: r.key == c["id"].encode(), count=1, timeout_s=20)
        event = _published(reader, c["id"])[0]
        assert event.msg_type is MsgType.CANCEL
        assert event.references == [original["id"]]
        assert event.exercise

        # a draft is withdrawn instead (it never went out)
        draft = (
            await client.post("/api/v1/alerts", json=_alert(publish=False), headers=_auth(anna))
        ).json()
        withdrawn = await client.post(f"/api/v1/alerts/{draft['id']}/cancel", headers=_auth(anna))
        assert withdrawn.json()["state"] == "withdrawn"
        resend = await client.post(f"/api/v1/alerts/{draft['id']}/publish", headers=_auth(anna))
        assert resend.json()["state"] == "withdrawn"

        # every alert of every kind exports as schema-valid CAP 1.2
        for alert_id in (original["id"], update.json()["id"], c["id"], draft["id"]):
            xml = await client.get(f"/api/v1/alerts/{alert_id}/cap.xml", headers=_auth(anna))
            assert xml.status_code == 200
            assert xml.headers["content-type"].startswith("application/cap+xml")
            root = cap.validate(xml.content)
            assert root.findtext(f"{{{cap.NS}}}identifier") == f"sirene.{a.id}.{alert_id}"
        cancel_xml = cap.validate(
            (await client.get(f"/api/v1/alerts/{c['id']}/cap.xml", headers=_auth(anna))).content
        )
        references = cancel_xml.findtext(f"{{{cap.NS}}}references")
        assert references is not None
        assert f"sirene.{a.id}.{original['id']}" in references
        assert cancel_xml.findtext(f"{{{cap.NS}}}msgType") == "Cancel"


async def test_import_of_a_dwd_cap_file_creates_a_correct_draft(sirene_infra: InfraUrls) -> None:
    a = Tenant()
    settings = _settings(sirene_infra, {a.id: a.token})
    xml = (cap.SCHEMA_PATH.parent / "examples" / "dwd-unwetter-gewitter.xml").read_bytes()
    async with running(settings) as (_, client):
        anna = await a.add(client, "anna", "alerter")
        imported = await client.post(
            "/api/v1/alerts/import-cap",
            content=xml,
            headers=_auth(anna) | {"Content-Type": "application/cap+xml"},
        )
        assert imported.status_code == 201, imported.text
        draft = imported.json()
        assert draft["state"] == "draft"
        assert draft["relay_state"] is None
        assert (draft["status"], draft["msg_type"]) == ("Actual", "Alert")
        assert (draft["severity"], draft["urgency"], draft["certainty"]) == (
            "Severe",
            "Immediate",
            "Likely",
        )
        assert draft["category"] == "Met"
        de, en = draft["texts"]["de"], draft["texts"]["en"]
        assert de["headline"] == "Amtliche UNWETTERWARNUNG vor SCHWEREM GEWITTER mit HAGEL"
        assert de["push_body"].startswith("Es tritt ein schweres Gewitter mit Sturmböen")
        assert "Blitzschlag" in de["email_body"]  # the instruction
        assert en["headline"] == "Official SEVERE WEATHER WARNING of SEVERE THUNDERSTORMS with HAIL"
        assert draft["audience"]["everyone"] is True
        assert [a["description"] for a in draft["audience"]["areas"]] == ["Kreis Nordsachsen"]
        assert draft["expires"] is None  # the file's validity lies in the past
        # invalid CAP: a clear 422 with the schema's reason
        broken = xml.replace(b"<status>Actual</status>", b"<status>Wichtig</status>")
        refused = await client.post(
            "/api/v1/alerts/import-cap", content=broken, headers=_auth(anna)
        )
        assert refused.status_code == 422
        assert "status" in refused.json()["detail"][0]["msg"]
        entity = b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        hostile = await client.post(
            "/api/v1/alerts/import-cap", content=entity + b"<a>&x;</a>", headers=_auth(anna)
        )
        assert hostile.status_code == 422
