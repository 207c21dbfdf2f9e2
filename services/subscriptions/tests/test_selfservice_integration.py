"""Self-service against real servers (Kafka, FerretDB, Redis) and the provider simulator over
HTTP: registration with an SMS code and with a spoken code, relatives' consent by keypress,
STOP through channel-sms's signed inbound webhook, export and erasure, SMS-pumping limits, bad
input, and tenant isolation on every staff endpoint."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from sirene.channel_sms.app import create_app as create_sms_app
from sirene.channel_sms.settings import ChannelSmsSettings
from sirene.devstack.channel_testing import serve_twilio_worker
from sirene.devstack.testing import InfraUrls, TopicReader
from sirene.provider_sim.app import ProviderSimulator
from sirene.schemas import CITIZEN_PROFILE, CitizenProfile, profile_key

from .conftest import (
    ServeSubs,
    Subs,
    eventually,
    new_landline,
    new_mobile,
    phone,
    sms_code,
    voice_code,
)

pytestmark = pytest.mark.integration


async def _register(
    subs: Subs, client: httpx.AsyncClient, number: str, *, channel: str = "sms", **extra: Any
) -> httpx.Response:
    body = {"phone": number, "channel": channel, "topics": ["gefahrenhinweise"], **extra}
    return await client.post(f"/api/v1/portal/{subs.tenant}/registrations", json=body)


async def _self_registered(
    subs: Subs, client: httpx.AsyncClient, sim: ProviderSimulator, number: str
) -> tuple[str, dict[str, str]]:
    """Registers `number` by SMS code; (citizen id, session headers)."""
    response = await _register(subs, client, number, name="Erika Muster")
    assert response.status_code == 202, response.text
    vid = response.json()["verification_id"]
    code = await sms_code(sim, number)
    verified = await client.post(f"/api/v1/portal/verifications/{vid}", json={"code": code})
    assert verified.status_code == 200, verified.text
    body = verified.json()
    return body["citizen_id"], {"Authorization": f"Bearer {body['session_token']}"}


def _profiles(reader: TopicReader, tenant: str, citizen: str) -> list[CitizenProfile | None]:
    key = profile_key(tenant, citizen).encode()
    return [
        CitizenProfile.model_validate_json(r.value) if r.value is not None else None
        for r in reader.seen
        if r.key == key
    ]


async def test_self_registration_with_an_sms_code(
    serve_subs: ServeSubs, simulator: ProviderSimulator, sirene_infra: InfraUrls
) -> None:
    number = new_mobile()
    async with (
        TopicReader(sirene_infra.kafka, [CITIZEN_PROFILE]) as reader,
        serve_subs() as subs,
        subs.client() as client,
    ):
        response = await _register(subs, client, number)
        assert response.status_code == 202, response.text
        started = response.json()
        assert started["channel"] == "sms"
        assert number not in json.dumps(started), "the answer masks the number"
        vid = started["verification_id"]
        code = await sms_code(simulator, number)
        assert await subs.db["citizens"].count_documents({}) == 0, "nothing before the code"

        wrong = "000000" if code != "000000" else "111111"
        refused = await client.post(f"/api/v1/portal/verifications/{vid}", json={"code": wrong})
        assert refused.status_code == 422
        assert "Code" in refused.text

        verified = await client.post(f"/api/v1/portal/verifications/{vid}", json={"code": code})
        assert verified.status_code == 200, verified.text
        session = {"Authorization": f"Bearer {verified.json()['session_token']}"}
        again = await client.post(f"/api/v1/portal/verifications/{vid}", json={"code": code})
        assert again.status_code == 410, "a code verifies once"

        me = (await client.get("/api/v1/portal/me", headers=session)).json()
        assert me["active"] is True
        assert me["origin"] == "self"
        assert me["contacts"]["sms"] == {
            "address": number,
            "active": True,
            "deactivated_reason": None,
        }
        assert me["subscriptions"] == {"gefahrenhinweise": ["sms"]}

        citizen = me["id"]
        profiles = await reader.collect(
            lambda r: r.key == profile_key(subs.tenant, citizen).encode(), count=1, timeout_s=30
        )
        profile = CitizenProfile.model_validate_json(profiles[0].value)
        assert profile.active
        assert profile.contacts.sms == number

        consents = await client.get(f"/api/v1/citizens/{citizen}/consents", headers=subs.staff)
        assert [(c["action"], c["by"], c["channel"]) for c in consents.json()] == [
            ("granted", "self", "sms")
        ]


async def test_self_registration_with_a_spoken_code_on_a_landline(
    serve_subs: ServeSubs, simulator: ProviderSimulator
) -> None:
    number = new_landline()
    async with serve_subs() as subs, subs.client() as client:
        sms_refused = await _register(subs, client, number, channel="sms")
        assert sms_refused.status_code == 422, "no SMS codes to a landline"
        response = await _register(subs, client, number, channel="voice", language="en")
        assert response.status_code == 202, response.text
        code = await voice_code(simulator, number)
        call = (await phone(simulator, number))["calls"][0]
        assert call["spoken"][0]["language"] == "en-US"
        vid = response.json()["verification_id"]
        verified = await client.post(f"/api/v1/portal/verifications/{vid}", json={"code": code})
        assert verified.status_code == 200, verified.text
        session = {"Authorization": f"Bearer {verified.json()['session_token']}"}
        me = (await client.get("/api/v1/portal/me", headers=session)).json()
        assert me["active"] is True
        assert me["contacts"]["voice"]["address"] == number
        assert me["subscriptions"] == {"gefahrenhinweise": ["voice"]}
        assert me["language"] == "en"


async def _set_phone(sim: ProviderSimulator, number: str, **behaviour: Any) -> None:
    async with httpx.AsyncClient(base_url=sim.http_url, timeout=10) as http:
        response = await http.put(f"/sim/phones/{quote(number, safe='')}/behaviour", json=behaviour)
        response.raise_for_status()


@pytest.mark.parametrize(
    ("behaviour", "outcome"),
    [
        ({"digits": "1"}, "granted"),
        ({"digits": "2"}, "refused"),
        ({"call_outcome": "no-answer"}, "no_answer"),
        ({"digits": ""}, "no_answer"),  # answers but presses nothing
    ],
    ids=["press-1", "press-2", "no-answer", "silent"],
)
async def test_a_relative_is_active_only_after_pressing_1(
    serve_subs: ServeSubs,
    simulator: ProviderSimulator,
    sirene_infra: InfraUrls,
    behaviour: dict[str, Any],
    outcome: str,
) -> None:
    relative_number = new_landline()
    await _set_phone(simulator, relative_number, **behaviour)
    async with (
        TopicReader(sirene_infra.kafka, [CITIZEN_PROFILE]) as reader,
        serve_subs() as subs,
        subs.client() as client,
    ):
        _, session = await _self_registered(subs, client, simulator, new_mobile())
        response = await client.post(
            "/api/v1/portal/me/relatives",
            json={
                "name": "Oma Hilde",
                "phone": relative_number,
                "channel": "voice",
                "topics": ["gefahrenhinweise"],
            },
            headers=session,
        )
        assert response.status_code == 201, response.text
        relative = response.json()
        assert relative["consent"] == "pending"
        assert relative["active"] is False

        async def settled() -> dict[str, Any] | None:
            listed = (await client.get("/api/v1/portal/me/relatives", headers=session)).json()
            return listed[0] if listed[0]["consent"] != "pending" else None

        final = await eventually(settled, what="the consent call to end")
        assert final["consent"] == outcome
        assert final["active"] is (outcome == "granted")

        call = (await phone(simulator, relative_number))["calls"][0]
        spoken = " ".join(s["text"] for s in call["spoken"])
        if behaviour.get("call_outcome") != "no-answer":
            assert "drücken Sie 1" in spoken
            assert "Oma" not in spoken, "the relative hears who registered them, not their name"
            assert "Erika Muster" in spoken

        citizen = relative["id"]
        await eventually(
            lambda: _sent(client, subs, citizen), what="the last profile to be published"
        )
        staff_view = await client.get(f"/api/v1/citizens/{citizen}", headers=subs.staff)
        version = staff_view.json()["version"]
        key = profile_key(subs.tenant, citizen).encode()
        await reader.collect(
            lambda r: (
                r.key == key and CitizenProfile.model_validate_json(r.value).version == version
            ),
            count=1,
        )
        profiles = _profiles(reader, subs.tenant, citizen)
        assert profiles, "the relative's profile is published"
        assert any(p is not None and p.active for p in profiles) is (outcome == "granted")
        assert staff_view.json()["consent"] == outcome

        records = await client.get(f"/api/v1/citizens/{citizen}/consents", headers=subs.staff)
        actions = [r["action"] for r in records.json()]
        assert actions == ["requested", outcome]
        assert records.json()[0]["by"].startswith("relative:")


async def _sent(client: httpx.AsyncClient, subs: Subs, citizen: str) -> bool:
    doc = (await client.get(f"/api/v1/citizens/{citizen}", headers=subs.staff)).json()
    return bool(doc["profile_state"] == "sent")


async def test_stop_through_the_signed_inbound_webhook_deactivates_sms(
    serve_subs: ServeSubs, simulator: ProviderSimulator, sirene_infra: InfraUrls
) -> None:
    number = new_mobile()
    async with (
        serve_subs() as subs,
        serve_twilio_worker(
            ChannelSmsSettings, create_sms_app, sirene_infra, simulator
        ) as sms_worker,
        subs.client() as client,
    ):
        created = await client.post(
            "/api/v1/citizens",
            json={
                "contacts": {"sms": number},
                "subscriptions": {"gefahrenhinweise": ["sms"], "verkehr": ["sms"]},
            },
            headers=subs.staff,
        )
        assert created.status_code == 201, created.text
        citizen = created.json()["id"]
        inbound_url = f"{sms_worker.settings.base_url}/twilio/sms/inbound"

        # a forged request (no valid signature) changes nothing
        async with httpx.AsyncClient(timeout=10) as http:
            forged = await http.post(
                inbound_url,
                data={"From": number, "To": "+15005550006", "Body": "STOP", "MessageSid": "SMx"},
                headers={"X-Twilio-Signature": "bm9wZQ=="},
            )
            assert forged.status_code == 403
            sent = await http.post(
                f"{simulator.http_url}/sim/phones/{quote(number, safe='')}/sms",
                json={"body": "Stopp", "url": inbound_url},
            )
        assert sent.json()["webhook_status"] == 200, sent.text

        async def stopped() -> dict[str, Any] | None:
            doc = (await client.get(f"/api/v1/citizens/{citizen}", headers=subs.staff)).json()
            sms = doc["contacts"]["sms"]
            return doc if not sms["active"] and doc["profile_state"] == "sent" else None

        doc = await eventually(stopped, what="STOP to deactivate the SMS contact")
        assert doc["contacts"]["sms"]["deactivated_reason"] == "stop"
        records = await client.get(f"/api/v1/citizens/{citizen}/consents", headers=subs.staff)
        assert [(r["action"], r["scope"], r["by"]) for r in records.json()] == [
            ("granted", "registration", "staff"),
            ("withdrawn", "channel:sms", "self"),
        ]


async def test_relative_consent_by_sms_reply(
    serve_subs: ServeSubs, simulator: ProviderSimulator, sirene_infra: InfraUrls
) -> None:
    yes_number, no_number = new_mobile(), new_mobile()
    async with (
        serve_subs() as subs,
        serve_twilio_worker(
            ChannelSmsSettings, create_sms_app, sirene_infra, simulator
        ) as sms_worker,
        subs.client() as client,
    ):
        _, session = await _self_registered(subs, client, simulator, new_mobile())
        ids = {}
        for number in (yes_number, no_number):
            response = await client.post(
                "/api/v1/portal/me/relatives",
                json={"name": "Nachbar", "phone": number, "channel": "sms", "topics": ["verkehr"]},
                headers=session,
            )
            assert response.status_code == 201, response.text
            ids[number] = response.json()["id"]
            question = (await phone(simulator, number))["messages"][0]["body"]
            assert "JA" in question
        inbound_url = f"{sms_worker.settings.base_url}/twilio/sms/inbound"
        async with httpx.AsyncClient(timeout=10) as http:
            for number, reply in ((yes_number, "Ja"), (no_number, "NEIN")):
                sent = await http.post(
                    f"{simulator.http_url}/sim/phones/{quote(number, safe='')}/sms",
                    json={"body": reply, "url": inbound_url},
                )
                assert sent.json()["webhook_status"] == 200

        async def both_settled() -> list[dict[str, Any]] | None:
            listed = (await client.get("/api/v1/portal/me/relatives", headers=session)).json()
            return listed if all(r["consent"] != "pending" for r in listed) else None

        listed = {r["id"]: r for r in await eventually(both_settled, what="SMS consent")}
        assert listed[ids[yes_number]]["consent"] == "granted"
        assert listed[ids[yes_number]]["active"] is True
        assert listed[ids[no_number]]["consent"] == "refused"
        assert listed[ids[no_number]]["active"] is False


async def test_an_unanswered_sms_consent_expires_and_a_late_yes_changes_nothing(
    serve_subs: ServeSubs, simulator: ProviderSimulator, sirene_infra: InfraUrls
) -> None:
    from datetime import UTC, datetime, timedelta

    number = new_mobile()
    async with (
        serve_subs() as subs,
        serve_twilio_worker(
            ChannelSmsSettings, create_sms_app, sirene_infra, simulator
        ) as sms_worker,
        subs.client() as client,
    ):
        _, session = await _self_registered(subs, client, simulator, new_mobile())
        response = await client.post(
            "/api/v1/portal/me/relatives",
            json={"name": "Onkel", "phone": number, "channel": "sms", "topics": ["verkehr"]},
            headers=session,
        )
        relative = response.json()["id"]
        # the consent window passes without an answer
        past = datetime.now(UTC) - timedelta(minutes=1)
        await subs.db["citizens"].update_one(
            {"id": relative}, {"$set": {"consent.expires_at": past}}
        )
        listed = (await client.get("/api/v1/portal/me/relatives", headers=session)).json()
        assert listed[0]["consent"] == "expired"
        inbound = f"{sms_worker.settings.base_url}/twilio/sms/inbound"
        async with httpx.AsyncClient(timeout=10) as http:
            # a late JA, then a STOP: both keyed by the number, so once the STOP shows, the JA
            # before it has been handled
            for body in ("JA", "STOP"):
                sent = await http.post(
                    f"{simulator.http_url}/sim/phones/{quote(number, safe='')}/sms",
                    json={"body": body, "url": inbound},
                )
                assert sent.json()["webhook_status"] == 200

        async def stopped() -> dict[str, Any] | None:
            doc = (await client.get(f"/api/v1/citizens/{relative}", headers=subs.staff)).json()
            return doc if doc["contacts"]["sms"]["deactivated_reason"] == "stop" else None

        doc = await eventually(stopped, what="the STOP after the late JA")
        assert doc["active"] is False
        assert doc["consent"] == "expired"
        records = await client.get(f"/api/v1/citizens/{relative}/consents", headers=subs.staff)
        assert [r["action"] for r in records.json()] == ["requested", "expired", "withdrawn"]


async def test_export_holds_the_consent_records_and_erasure_leaves_nothing(
    serve_subs: ServeSubs, simulator: ProviderSimulator, sirene_infra: InfraUrls
) -> None:
    number = new_mobile()
    async with (
        TopicReader(sirene_infra.kafka, [CITIZEN_PROFILE]) as reader,
        serve_subs() as subs,
        subs.client() as client,
    ):
        citizen, session = await _self_registered(subs, client, simulator, number)
        patched = await client.patch(
            "/api/v1/portal/me",
            json={
                "quiet_hours": {"start": "22:00", "end": "07:00"},
                "district": "Altstadt",
                "location": {"lat": 51.34, "lon": 12.37},
            },
            headers=session,
        )
        assert patched.status_code == 200, patched.text
        export = await client.get("/api/v1/portal/me/export", headers=session)
        assert export.status_code == 200
        data = export.json()
        assert data["citizen"]["id"] == citizen
        assert data["citizen"]["contacts"]["sms"]["address"] == number
        assert data["citizen"]["quiet_hours"] == {"start": "22:00", "end": "07:00"}
        assert [(c["action"], c["by"], c["scope"]) for c in data["consent_records"]] == [
            ("granted", "self", "registration")
        ]
        assert data["consent_records"][0]["at"]

        erased = await client.delete("/api/v1/portal/me", headers=session)
        assert erased.status_code == 204, erased.text

        # MongoDB: no citizen, no consent record; only an anonymous stub
        assert await subs.db["citizens"].count_documents({"id": citizen}) == 0
        assert await subs.db["consents"].count_documents({"citizen_id": citizen}) == 0
        stubs = [doc async for doc in subs.db["erasures"].find({"tenant": subs.tenant})]
        assert len(stubs) == 1
        assert citizen not in json.dumps(stubs, default=str)
        assert number not in json.dumps(stubs, default=str)
        # Redis: the session is gone, and no counter is keyed by the number
        assert (await client.get("/api/v1/portal/me", headers=session)).status_code == 401
        namespace = subs.settings.mongodb_db
        leftover = [k async for k in subs.redis.scan_iter(match=f"sub:rl:{namespace}:number:*")]
        assert leftover == []
        # audience: a tombstone on the compacted profile topic
        await reader.collect(
            lambda r: r.key == profile_key(subs.tenant, citizen).encode() and r.value is None,
            count=1,
            timeout_s=30,
        )
        assert _profiles(reader, subs.tenant, citizen)[-1] is None
        # staff see nothing either
        gone = await client.get(f"/api/v1/citizens/{citizen}", headers=subs.staff)
        assert gone.status_code == 404


async def test_sms_pumping_is_capped_by_the_prefix_limit(
    serve_subs: ServeSubs, simulator: ProviderSimulator
) -> None:
    from sirene.subscriptions.settings import Limit, RateLimits

    limits = RateLimits(
        ip=Limit(count=500, window_s=3600),
        number=Limit(count=3, window_s=3600),
        prefix=Limit(count=5, window_s=3600),
        tenant=Limit(count=1000, window_s=3600),
    )
    base = f"+491512{uuid.uuid4().int % 10**3:03d}"  # one range: +491512xxx0000 … 0099
    numbers = [f"{base}{i:04d}" for i in range(100)]
    async with serve_subs(limits=limits) as subs, subs.client() as client:
        statuses: list[int] = []
        retry_after: set[str] = set()
        for number in numbers:
            response = await _register(subs, client, number)
            statuses.append(response.status_code)
            if response.status_code == 429:
                retry_after.add(response.headers["retry-after"])
                assert response.json()["code"] == "rate_limited_prefix"
        assert statuses.count(202) == 5
        assert statuses.count(429) == 95
        assert retry_after
        assert all(int(v) > 0 for v in retry_after)

        async def all_sent() -> int:
            total = 0
            for n in numbers:
                total += len((await phone(simulator, n))["messages"])
            return total

        await eventually(lambda: _at_least(all_sent, 5), what="five codes at the simulator")
        await asyncio.sleep(0.5)  # nothing further arrives late
        assert await all_sent() == 5


async def _at_least(count: Any, n: int) -> bool:
    return bool(await count() >= n)


async def test_the_ip_limit_applies_across_prefixes(serve_subs: ServeSubs) -> None:
    from sirene.subscriptions.settings import Limit, RateLimits

    limits = RateLimits(ip=Limit(count=3, window_s=3600))
    async with serve_subs(limits=limits) as subs, subs.client() as client:
        statuses = [(await _register(subs, client, new_mobile())).status_code for _ in range(5)]
        assert statuses == [202, 202, 202, 429, 429]
        english = await client.post(
            f"/api/v1/portal/{subs.tenant}/registrations",
            json={"phone": new_mobile(), "topics": []},
            headers={"Accept-Language": "en"},
        )
        assert english.status_code == 429
        assert "Too many requests" in english.json()["detail"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"phone": "kein Telefon"}, "phone_invalid"),
        ({"phone": "+49 123"}, "phone_invalid"),
        ({"phone": "+1 202 555 0143"}, "phone_country"),
        ({"phone": "+44 7911 123456"}, "phone_country"),
        ({"phone": "+49 900 1234567"}, "phone_premium"),
        ({"phone": "+43 664 1234567"}, "phone_country"),  # AT not allowed for this tenant
        ({"phone": "030 12345678"}, "phone_not_mobile"),
        ({"topics": ["gibt-es-nicht"]}, "topic_unknown"),
        ({"topics": ["vereine"]}, "topic_unknown"),  # invite-only topic
        ({"name": "x" * 121}, "string_too_long"),
        ({"phone": "1" * 40}, "string_too_long"),
        ({"district": "y" * 81}, "string_too_long"),
        ({"topics": ["a"] * 51}, "too_long"),
        ({"channel": "fax"}, "literal_error"),
        ({"surprise": 1}, "extra_forbidden"),
    ],
)
async def test_bad_registrations_are_refused_with_a_reason_and_store_nothing(
    serve_subs: ServeSubs, simulator: ProviderSimulator, body: dict[str, Any], reason: str
) -> None:
    number = new_mobile()
    payload = {"phone": number, "channel": "sms", "topics": ["gefahrenhinweise"], **body}
    async with (
        serve_subs(tenant_allowed_countries={}) as subs,
        subs.client() as client,
    ):
        subs.settings.tenant_allowed_countries[subs.tenant] = ["DE", "CH"]
        response = await client.post(f"/api/v1/portal/{subs.tenant}/registrations", json=payload)
        assert response.status_code == 422, response.text
        detail = response.json()["detail"]
        assert any(reason == d["type"] for d in detail), detail
        assert all(d["msg"] for d in detail)
        assert await subs.db["citizens"].count_documents({}) == 0
        assert await subs.db["consents"].count_documents({}) == 0
        assert [
            k async for k in subs.redis.scan_iter(match=f"sub:rl:{subs.settings.mongodb_db}:*")
        ] == []
    assert (await phone(simulator, number))["messages"] == []


async def test_unknown_tenant_and_oversized_bodies(serve_subs: ServeSubs) -> None:
    async with serve_subs() as subs, subs.client() as client:
        unknown = await client.post(
            "/api/v1/portal/nirgendwo/registrations", json={"phone": new_mobile()}
        )
        assert unknown.status_code == 404
        assert unknown.json()["code"] == "tenant_unknown"
        relative = await client.post("/api/v1/portal/me/relatives", json={})
        assert relative.status_code == 401, "relatives need a verified citizen"


async def test_login_with_a_code_and_no_enumeration(
    serve_subs: ServeSubs, simulator: ProviderSimulator
) -> None:
    number = new_mobile()
    stranger = new_mobile()
    async with serve_subs() as subs, subs.client() as client:
        citizen, _ = await _self_registered(subs, client, simulator, number)
        known = await client.post(f"/api/v1/portal/{subs.tenant}/logins", json={"phone": number})
        unknown = await client.post(
            f"/api/v1/portal/{subs.tenant}/logins", json={"phone": stranger}
        )
        assert known.status_code == unknown.status_code == 202
        assert known.json().keys() == unknown.json().keys()
        assert (await phone(simulator, stranger))["messages"] == []

        async def second_code() -> str | None:
            messages = (await phone(simulator, number))["messages"]
            return messages[0]["body"][:6] if len(messages) >= 2 else None

        await eventually(second_code, what="the login code")
        codes = [m["body"][:6] for m in (await phone(simulator, number))["messages"]]
        vid = known.json()["verification_id"]
        for code in codes:
            response = await client.post(f"/api/v1/portal/verifications/{vid}", json={"code": code})
            if response.status_code == 200:
                assert response.json()["citizen_id"] == citizen
                break
        else:
            raise AssertionError("no received code logged in")


async def test_email_unsubscribe_link(serve_subs: ServeSubs) -> None:
    async with serve_subs() as subs, subs.client() as client:
        created = await client.post(
            "/api/v1/citizens",
            json={
                "contacts": {"email": "erika@example.org"},
                "subscriptions": {"verkehr": ["email"]},
            },
            headers=subs.staff,
        )
        citizen = created.json()["id"]
        export = (await client.get(f"/api/v1/citizens/{citizen}/export", headers=subs.staff)).json()
        link = export["email_unsubscribe_url"]
        token = link.split("token=", 1)[1]
        tampered = await client.post(f"/abmelden/email?token={token[:-2]}xx")
        assert tampered.status_code == 404
        page = await client.get(link)
        assert page.status_code == 200
        assert "Keine E-Mails mehr" in page.text
        unchanged = (await client.get(f"/api/v1/citizens/{citizen}", headers=subs.staff)).json()
        assert unchanged["contacts"]["email"]["active"] is True, "a GET never unsubscribes"
        done = await client.post(link, data={"List-Unsubscribe": "One-Click"})
        assert done.status_code == 200
        after = (await client.get(f"/api/v1/citizens/{citizen}", headers=subs.staff)).json()
        assert after["contacts"]["email"]["active"] is False
        assert after["contacts"]["email"]["deactivated_reason"] == "unsubscribed"


async def test_staff_of_one_tenant_cannot_reach_another_tenants_data(
    serve_subs: ServeSubs,
) -> None:
    async with serve_subs(tenants=2) as subs, subs.client() as client:
        (other_token,) = subs.others.values()
        theirs = {"Authorization": f"Bearer {other_token}"}
        created = await client.post(
            "/api/v1/citizens",
            json={"contacts": {"sms": new_mobile()}, "subscriptions": {"verkehr": ["sms"]}},
            headers=theirs,
        )
        assert created.status_code == 201
        citizen = created.json()["id"]
        before = created.json()
        mine = subs.staff
        attempts = [
            ("GET", f"/api/v1/citizens/{citizen}", None),
            ("PATCH", f"/api/v1/citizens/{citizen}", {"language": "en"}),
            ("PUT", f"/api/v1/citizens/{citizen}/subscriptions", {"subscriptions": {}}),
            ("GET", f"/api/v1/citizens/{citizen}/consents", None),
            ("GET", f"/api/v1/citizens/{citizen}/export", None),
            ("DELETE", f"/api/v1/citizens/{citizen}", None),
        ]
        for method, path, body in attempts:
            response = await client.request(method, path, json=body, headers=mine)
            assert response.status_code == 404, (method, path, response.text)
        # topics: same ids exist in both tenants; changing mine leaves theirs alone
        patched = await client.patch(
            "/api/v1/topics/verkehr", json={"name": "Nur bei uns"}, headers=mine
        )
        assert patched.status_code == 200
        theirs_topic = (await client.get("/api/v1/topics/verkehr", headers=theirs)).json()
        assert theirs_topic["name"]["de"] == "Verkehr"
        listed = (await client.get("/api/v1/citizens", headers=mine)).json()
        assert citizen not in {c["id"] for c in listed["items"]}
        after = (await client.get(f"/api/v1/citizens/{citizen}", headers=theirs)).json()
        assert after["version"] == before["version"]
        assert after["language"] == before["language"]
        for method, path, body in attempts:
            response = await client.request(method, path, json=body)
            assert response.status_code == 401, (method, path)
