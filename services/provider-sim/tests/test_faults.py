"""Fault injection through `/sim/faults`, seen by the real twilio client and FCM over HTTP."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from sirene.provider_sim.app import ProviderSimulator
from sirene.provider_sim.faults import FaultConfig, Faults, task_id_of

FROM = "+4930901820"


async def _faults(sim: ProviderSimulator, **config: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=sim.http_url) as http:
        response = await http.put("/sim/faults", json=config)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


async def _get(sim: ProviderSimulator, path: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=sim.http_url) as http:
        response = await http.get(path)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


async def test_outage_answers_503_for_its_period_then_recovers(
    sim: ProviderSimulator, twilio_client: Client
) -> None:
    await _faults(sim, outage_s=4.0, outage_services=["sms"])
    with pytest.raises(TwilioRestException) as info:
        await twilio_client.messages.create_async(to="+4915112340001", from_=FROM, body="x")
    assert info.value.status == 503
    deadline = time.monotonic() + 30
    while True:  # the outage ends by itself
        try:
            message = await twilio_client.messages.create_async(
                to="+4915112340001", from_=FROM, body="x"
            )
            break
        except TwilioRestException:
            assert time.monotonic() < deadline, "outage did not end"
            await asyncio.sleep(0.1)
    assert message.sid.startswith("SM")
    view = await _get(sim, "/sim/faults")
    assert view["rejections"]["sms.outage"] >= 1


async def test_rate_limit_answers_429_with_error_20429(
    sim: ProviderSimulator, twilio_client: Client
) -> None:
    await _faults(sim, rate_limit={"sms": {"per_s": 1, "burst": 2}})
    results = await asyncio.gather(
        *(
            twilio_client.messages.create_async(to="+4915112340002", from_=FROM, body="x")
            for _ in range(5)
        ),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, TwilioRestException)]
    assert len(refused) == 3  # a burst of 2 went through
    assert {(r.status, r.code) for r in refused} == {(429, 20429)}


async def test_number_patterns_give_permanent_errors(
    sim: ProviderSimulator, twilio_client: Client
) -> None:
    await _faults(
        sim,
        number_errors=[
            {"pattern": r"^\+4917000", "code": 21211},
            {"pattern": r"^\+4917001", "code": 21610},
            {"pattern": r"^\+4917003", "code": 30003},
        ],
    )
    for number, code in (("+491700012345", 21211), ("+491700112345", 21610)):
        with pytest.raises(TwilioRestException) as info:
            await twilio_client.messages.create_async(to=number, from_=FROM, body="x")
        assert (info.value.status, info.value.code) == (400, code)
    accepted = await twilio_client.messages.create_async(to="+491700312345", from_=FROM, body="x")
    await sim.service.drain()
    phone = await _get(sim, "/sim/phones/+491700312345")
    assert phone["messages"][0]["sid"] == accepted.sid
    assert (phone["messages"][0]["status"], phone["messages"][0]["error_code"]) == (
        "undelivered",
        30003,
    )


async def test_ledger_counts_hand_offs_per_task_id_and_lists_messages(
    sim: ProviderSimulator, twilio_client: Client
) -> None:
    await _faults(sim, callbacks={"drop": True})
    task_id = "ab" * 16
    callback = f"http://127.0.0.1:9/cb?k={task_id}&t=musterstadt"
    for _ in range(2):
        await twilio_client.messages.create_async(
            to="+4915112340003", from_=FROM, body="Warnung", status_callback=callback
        )
    ledger = await _get(sim, "/sim/ledger")
    assert (ledger["tasks"], ledger["handoffs"], ledger["duplicated_tasks"]) == (1, 2, 1)
    assert (await _get(sim, f"/sim/ledger/{task_id}"))["handoffs"] == 2
    listed = await twilio_client.messages.list_async(to="+4915112340003", limit=10)
    assert [m.body for m in listed] == ["Warnung", "Warnung"]
    await sim.service.drain()
    assert (await _get(sim, "/sim/faults"))["rejections"]["callbacks.dropped"] >= 2


async def test_fcm_outage_and_latency(sim: ProviderSimulator) -> None:
    await _faults(sim, outage_s=30, outage_services=["push"])
    async with httpx.AsyncClient(base_url=sim.http_url) as http:
        message = {"message": {"token": "t" * 40, "notification": {"body": "x"}}}
        headers = {"Authorization": "Bearer x"}
        down = await http.post("/v1/projects/p/messages:send", json=message, headers=headers)
        assert down.status_code == 503
        assert down.json()["error"]["status"] == "UNAVAILABLE"
        await http.put("/sim/faults", json={"latency": {"distribution": "fixed", "mean_ms": 200}})
        started = time.monotonic()
        up = await http.post("/v1/projects/p/messages:send", json=message, headers=headers)
        assert up.status_code == 200
        assert time.monotonic() - started >= 0.2


def test_call_sequences_are_consumed_in_order() -> None:
    from sirene.provider_sim.state import PhoneBehaviour

    faults = Faults()
    faults.configure(FaultConfig(call_sequences={"+4915112340004": ["busy", "no-answer"]}))
    base = PhoneBehaviour()
    outcomes = [faults.call_behaviour("+4915112340004", base).call_outcome for _ in range(3)]
    assert outcomes == ["busy", "no-answer", "completed"]
    assert task_id_of("http://x/cb?k=abc&t=y") == "abc"
    assert task_id_of(None) is None
