"""Voice calls through the real twilio async client: TwiML fetch, Gather, signed callbacks."""

from __future__ import annotations

from typing import Any

import httpx
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from sirene.provider_sim.app import ProviderSimulator
from sirene.provider_sim.settings import DEV_ACCOUNT_SID, DEV_AUTH_TOKEN

TO = "+4915198765432"
FROM = "+4930901820"

ALERT_TWIML = """<?xml version="1.0" encoding="UTF-8"?>
<Response>
  <Say language="de-DE" voice="Polly.Marlene" loop="2">
    Achtung! Hochwasserwarnung für Musterstadt.
  </Say>
  <Gather numDigits="1" action="/voice/confirm" method="POST" timeout="10">
    <Say language="de-DE">Bitte drücken Sie die 1, um den Empfang zu bestätigen.</Say>
  </Gather>
  <Say language="de-DE">Wir haben keine Eingabe erhalten.</Say>
</Response>"""

CONFIRM_TWIML = """<Response><Say language="de-DE">Danke für Ihre Bestätigung.</Say></Response>"""


async def _phone(sim: ProviderSimulator, number: str) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=sim.http_url) as http:
        response = await http.get(f"/sim/phones/{number.replace('+', '%2B')}")
    response.raise_for_status()
    result: dict[str, object] = response.json()
    return result


async def test_call_fetches_twiml_gathers_digit_and_completes(
    sim: ProviderSimulator, twilio_client: Client, receiver: Any
) -> None:
    receiver.twiml["/voice/alert"] = ALERT_TWIML
    receiver.twiml["/voice/confirm"] = CONFIRM_TWIML
    call = await twilio_client.calls.create_async(
        to=TO,
        from_=FROM,
        url=receiver.url("/voice/alert"),
        status_callback=receiver.url("/voice/status"),
        status_callback_event=["initiated", "ringing", "answered", "completed"],
        machine_detection="Enable",
    )
    assert call.sid.startswith("CA")
    assert call.status == "queued"

    await receiver.wait_for(
        lambda r: any(c.form["CallStatus"] == "completed" for c in r.at("/voice/status"))
    )
    validator = RequestValidator(DEV_AUTH_TOKEN)
    for request in receiver.requests:
        assert validator.validate(request.url, request.form, request.signature), request.path

    (fetch,) = receiver.at("/voice/alert")
    assert fetch.form["CallSid"] == call.sid
    assert fetch.form["AccountSid"] == DEV_ACCOUNT_SID
    assert fetch.form["CallStatus"] == "in-progress"
    assert fetch.form["Direction"] == "outbound-api"
    assert fetch.form["AnsweredBy"] == "human"
    assert fetch.form["To"] == TO

    (confirm,) = receiver.at("/voice/confirm")
    assert confirm.form["Digits"] == "1"
    assert confirm.form["CallSid"] == call.sid

    statuses = [c.form["CallStatus"] for c in receiver.at("/voice/status")]
    assert statuses == ["initiated", "ringing", "in-progress", "completed"]
    final = receiver.at("/voice/status")[-1]
    assert int(final.form["CallDuration"]) > 0
    assert final.form["AnsweredBy"] == "human"

    phone = await _phone(sim, TO)
    (seen,) = phone["calls"]
    spoken = [s["text"] for s in seen["spoken"]]
    assert spoken == [
        "Achtung! Hochwasserwarnung für Musterstadt.",
        "Bitte drücken Sie die 1, um den Empfang zu bestätigen.",
        "Danke für Ihre Bestätigung.",
    ]
    assert seen["spoken"][0]["loop"] == 2
    assert seen["spoken"][0]["language"] == "de-DE"
    assert seen["digits"] == ["1"]
    assert seen["status"] == "completed"

    fetched = await twilio_client.calls(call.sid).fetch_async()
    assert fetched.status == "completed"


async def test_no_digits_falls_through_to_next_verb(
    sim: ProviderSimulator, twilio_client: Client, receiver: Any
) -> None:
    async with httpx.AsyncClient(base_url=sim.http_url) as http:
        await http.put(f"/sim/phones/{TO.replace('+', '%2B')}/behaviour", json={"digits": ""})
    receiver.twiml["/voice/alert"] = ALERT_TWIML
    await twilio_client.calls.create_async(
        to=TO,
        from_=FROM,
        url=receiver.url("/voice/alert"),
        status_callback=receiver.url("/voice/status"),
    )
    await receiver.wait_for(lambda r: len(r.at("/voice/status")) == 1)
    assert receiver.at("/voice/confirm") == []
    assert "AnsweredBy" not in receiver.at("/voice/status")[0].form
    phone = await _phone(sim, TO)
    spoken = [s["text"] for s in phone["calls"][0]["spoken"]]
    assert spoken[-1] == "Wir haben keine Eingabe erhalten."


async def test_busy_number_never_fetches_twiml(
    sim: ProviderSimulator, twilio_client: Client, receiver: Any
) -> None:
    async with httpx.AsyncClient(base_url=sim.http_url) as http:
        await http.put(
            f"/sim/phones/{TO.replace('+', '%2B')}/behaviour", json={"call_outcome": "busy"}
        )
    await twilio_client.calls.create_async(
        to=TO,
        from_=FROM,
        url=receiver.url("/voice/alert"),
        status_callback=receiver.url("/voice/status"),
    )
    await receiver.wait_for(lambda r: len(r.at("/voice/status")) == 1)
    assert receiver.at("/voice/status")[0].form["CallStatus"] == "busy"
    assert receiver.at("/voice/alert") == []


async def test_inline_twiml_and_answering_machine(
    sim: ProviderSimulator, twilio_client: Client, receiver: Any
) -> None:
    async with httpx.AsyncClient(base_url=sim.http_url) as http:
        await http.put(
            f"/sim/phones/{TO.replace('+', '%2B')}/behaviour",
            json={"answered_by": "machine_start"},
        )
    await twilio_client.calls.create_async(
        to=TO,
        from_=FROM,
        twiml='<Response><Say language="de-DE">Probealarm</Say>'
        '<Gather numDigits="1" action="https://example.invalid/x"><Say>1</Say></Gather></Response>',
        status_callback=receiver.url("/voice/status"),
        machine_detection="Enable",
    )
    await receiver.wait_for(lambda r: len(r.at("/voice/status")) == 1)
    final = receiver.at("/voice/status")[0]
    assert final.form["CallStatus"] == "completed"
    assert final.form["AnsweredBy"] == "machine_start"
    phone = await _phone(sim, TO)
    assert phone["calls"][0]["digits"] == []
    assert phone["calls"][0]["spoken"][0]["text"] == "Probealarm"
