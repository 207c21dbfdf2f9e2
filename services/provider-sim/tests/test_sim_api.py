"""Simulator control/inspection API, the phones page, FCM and bounded state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from twilio.rest import Client

from sirene.provider_sim.app import ProviderSimulator
from sirene.provider_sim.settings import SimSettings

TO = "+4915112345667"


@pytest.fixture
async def http(sim: ProviderSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sim.http_url) as client:
        yield client


async def test_healthz(http: httpx.AsyncClient) -> None:
    response = await http.get("/healthz")
    assert response.status_code == 200


async def test_phones_page_german_and_english(
    sim: ProviderSimulator, http: httpx.AsyncClient, twilio_client: Client
) -> None:
    await twilio_client.messages.create_async(
        to=TO, from_="+4930901820", body="Trinkwasser <abkochen> & Hinweise beachten"
    )
    await sim.service.drain()
    german = await http.get("/")
    assert german.status_code == 200
    assert "Simulierte Telefone" in german.text
    assert TO in german.text
    # Escaped, never interpreted as markup.
    assert "Trinkwasser &lt;abkochen&gt; &amp; Hinweise beachten" in german.text
    assert 'http-equiv="refresh"' in german.text
    english = await http.get("/", params={"lang": "en"})
    assert "Simulated phones" in english.text


async def test_phones_list_stats_and_reset(
    sim: ProviderSimulator, http: httpx.AsyncClient, twilio_client: Client
) -> None:
    for number in ("+4917011111111", "+4917022222222"):
        await twilio_client.messages.create_async(to=number, from_="+4930901820", body="Hallo")
    await sim.service.drain()
    phones = (await http.get("/sim/phones")).json()["phones"]
    assert [p["number"] for p in phones] == ["+4917022222222", "+4917011111111"]
    stats = (await http.get("/sim/stats")).json()
    assert stats["messages"] == 2
    assert stats["messages_by_status"] == {"delivered": 2}
    unknown = (await http.get("/sim/phones/%2B4900000")).json()
    assert unknown["known"] is False
    assert unknown["messages"] == []

    await http.put("/sim/phones/%2B4917011111111/behaviour", json={"digits": "2"})
    assert (await http.post("/sim/reset")).json()["messages"] == 0
    assert (await http.get("/sim/phones")).json()["phones"] == []
    behaviour = (await http.get("/sim/phones/%2B4917011111111")).json()["behaviour"]
    assert behaviour["digits"] == "1"


async def test_behaviour_is_validated(http: httpx.AsyncClient) -> None:
    response = await http.put("/sim/phones/%2B49170/behaviour", json={"sms_outcome": "lost"})
    assert response.status_code == 422
    response = await http.put("/sim/phones/%2B49170/behaviour", json={"digits": "12x"})
    assert response.status_code == 422


async def test_history_is_bounded(cert_dir: Path) -> None:
    settings = SimSettings(
        http_port=0,
        apns_port=0,
        smtp_port=0,
        cert_dir=cert_dir,
        status_callback_delay=0,
        history_per_item=3,
    )
    async with ProviderSimulator(settings) as sim:
        for i in range(5):
            sim.service.create_message(
                account_sid=next(iter(settings.accounts)),
                form={"To": [TO], "From": ["+4930901820"], "Body": [f"Nachricht {i}"]},
            )
        await sim.service.drain()
        view = sim.service.state.phone_view(TO)
    assert [m["body"] for m in view["messages"]] == ["Nachricht 4", "Nachricht 3", "Nachricht 2"]
    assert view["total_messages"] == 5


async def test_fcm_send_and_unregistered(sim: ProviderSimulator, http: httpx.AsyncClient) -> None:
    message = {
        "message": {
            "token": "fcm-token-1",
            "notification": {"title": "Stromausfall", "body": "Ortsteil Nord bis 18 Uhr"},
        }
    }
    headers = {"Authorization": "Bearer ya29.sim"}
    response = await http.post("/v1/projects/sirene/messages:send", json=message, headers=headers)
    assert response.status_code == 200
    assert response.json()["name"].startswith("projects/sirene/messages/")
    device = (await http.get("/sim/devices/fcm-token-1")).json()
    assert device["notifications"][0]["title"] == "Stromausfall"

    assert (await http.post("/v1/projects/sirene/messages:send", json=message)).status_code == 401
    await http.post("/sim/devices/fcm-token-1/unregister")
    response = await http.post("/v1/projects/sirene/messages:send", json=message, headers=headers)
    assert response.status_code == 404
    assert response.json()["error"]["details"][0]["errorCode"] == "UNREGISTERED"


async def test_ca_is_served(sim: ProviderSimulator, http: httpx.AsyncClient) -> None:
    response = await http.get("/sim/ca.pem")
    assert response.content == sim.cert_paths.ca.read_bytes()
