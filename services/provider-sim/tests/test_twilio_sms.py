"""SMS through the real twilio async client, with signed status callbacks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from sirene.provider_sim.app import ProviderSimulator
from sirene.provider_sim.settings import DEV_ACCOUNT_SID, DEV_AUTH_TOKEN

TwilioFactory = Callable[[str, str], Awaitable[Client]]

TO = "+4915112345667"
FROM = "+4930901820"


def _statuses(receiver: Any, path: str) -> list[str]:
    return [r.form["MessageStatus"] for r in receiver.at(path)]


async def test_sms_is_accepted_and_signed_callbacks_follow(
    sim: ProviderSimulator, twilio_client: Client, receiver: Any
) -> None:
    message = await twilio_client.messages.create_async(
        to=TO,
        from_=FROM,
        body="ÜBUNG: Hochwasserwarnung für Musterstadt. Bitte meiden Sie das Flussufer.",
        status_callback=receiver.url("/sms-status"),
    )
    assert message.sid.startswith("SM")
    assert len(message.sid) == 34
    assert message.status == "queued"
    assert message.to == TO
    assert message.from_ == FROM
    assert message.num_segments == "1"
    assert message.account_sid == DEV_ACCOUNT_SID

    await receiver.wait_for(lambda r: len(r.at("/sms-status")) >= 2)
    assert _statuses(receiver, "/sms-status") == ["sent", "delivered"]
    validator = RequestValidator(DEV_AUTH_TOKEN)
    for callback in receiver.at("/sms-status"):
        assert callback.signature
        assert validator.validate(callback.url, callback.form, callback.signature)
        assert callback.form["MessageSid"] == message.sid
        assert callback.form["SmsSid"] == message.sid
        assert callback.form["SmsStatus"] == callback.form["MessageStatus"]
        assert callback.form["To"] == TO
        assert callback.form["From"] == FROM
        assert callback.form["AccountSid"] == DEV_ACCOUNT_SID
        assert callback.form["ApiVersion"] == "2010-04-01"
        assert "ErrorCode" not in callback.form
    # A forged signature must not validate, or the check above proves nothing.
    first = receiver.at("/sms-status")[0]
    assert not RequestValidator("wrong-token").validate(first.url, first.form, first.signature)

    fetched = await twilio_client.messages(message.sid).fetch_async()
    assert fetched.status == "delivered"

    async with httpx.AsyncClient(base_url=sim.http_url) as http:
        phone = (await http.get(f"/sim/phones/{TO.replace('+', '%2B')}")).json()
    assert phone["messages"][0]["body"].startswith("ÜBUNG: Hochwasserwarnung")
    assert phone["messages"][0]["status"] == "delivered"


async def test_undelivered_behaviour_reports_error_code(
    sim: ProviderSimulator, twilio_client: Client, receiver: Any
) -> None:
    async with httpx.AsyncClient(base_url=sim.http_url) as http:
        response = await http.put(
            "/sim/phones/%2B4917000000001/behaviour",
            json={"sms_outcome": "undelivered", "sms_error_code": 30005},
        )
        assert response.status_code == 200
    await twilio_client.messages.create_async(
        to="+4917000000001",
        from_=FROM,
        body="Test",
        status_callback=receiver.url("/s"),
    )
    await receiver.wait_for(lambda r: len(r.at("/s")) >= 2)
    final = receiver.at("/s")[-1]
    assert final.form["MessageStatus"] == "undelivered"
    assert final.form["ErrorCode"] == "30005"


async def test_failed_behaviour_skips_sent(
    sim: ProviderSimulator, twilio_client: Client, receiver: Any
) -> None:
    async with httpx.AsyncClient(base_url=sim.http_url) as http:
        await http.put("/sim/phones/%2B4917000000002/behaviour", json={"sms_outcome": "failed"})
    message = await twilio_client.messages.create_async(
        to="+4917000000002",
        from_=FROM,
        body="Test",
        status_callback=receiver.url("/f"),
    )
    await receiver.wait_for(lambda r: len(r.at("/f")) >= 1)
    await sim.service.drain()
    assert _statuses(receiver, "/f") == ["failed"]
    assert receiver.at("/f")[0].form["ErrorCode"] == "30006"
    fetched = await twilio_client.messages(message.sid).fetch_async()
    assert fetched.error_code == 30006


async def test_messaging_service_and_ucs2_segments(twilio_client: Client) -> None:
    message = await twilio_client.messages.create_async(
        to=TO, messaging_service_sid="MG" + "0" * 32, body="„Warnung“ " + "x" * 70
    )
    assert message.status == "accepted"
    assert message.num_segments == "2"


async def test_missing_body_is_a_twilio_400(twilio_client: Client) -> None:
    with pytest.raises(TwilioRestException) as info:
        await twilio_client.messages.create_async(to=TO, from_=FROM)
    assert info.value.status == 400
    assert info.value.code == 21602


async def test_missing_to_is_a_twilio_400(sim: ProviderSimulator) -> None:
    async with httpx.AsyncClient(base_url=sim.http_url) as http:
        response = await http.post(
            f"/2010-04-01/Accounts/{DEV_ACCOUNT_SID}/Messages.json",
            data={"From": FROM, "Body": "x"},
            auth=(DEV_ACCOUNT_SID, DEV_AUTH_TOKEN),
        )
    assert response.status_code == 400
    assert response.json()["code"] == 21604
    assert response.json()["more_info"].endswith("/21604")


async def test_wrong_token_is_a_twilio_401(make_twilio_client: TwilioFactory) -> None:
    client = await make_twilio_client(DEV_ACCOUNT_SID, "not-the-token")
    with pytest.raises(TwilioRestException) as info:
        await client.messages.create_async(to=TO, from_=FROM, body="x")
    assert info.value.status == 401
    assert info.value.code == 20003


async def test_unknown_message_is_404(twilio_client: Client) -> None:
    with pytest.raises(TwilioRestException) as info:
        await twilio_client.messages("SM" + "0" * 32).fetch_async()
    assert info.value.status == 404
    assert info.value.code == 20404
