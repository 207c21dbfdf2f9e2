"""The simulator on uvloop, the loop `python -m sirene.provider_sim` runs it on: APNs (TLS,
HTTP/2; uvloop's TLS transport is no `asyncio.Transport` subclass), the Twilio API and the SMTP
sink each take a hand-off from the real client library."""

from __future__ import annotations

import asyncio
import secrets
import ssl
from email.message import EmailMessage

import aiosmtplib
import uvloop
from aioapns import APNs, NotificationRequest, PushType
from twilio.rest import Client

from sirene.provider_sim.app import ProviderSimulator
from sirene.provider_sim.settings import DEV_ACCOUNT_SID, DEV_AUTH_TOKEN, SimSettings

from .conftest import SimulatorTwilioHttpClient, point_apns_at


async def _hand_offs(settings: SimSettings) -> None:
    async with ProviderSimulator(settings) as sim:
        apns = APNs(
            key=sim.cert_paths.apns_key.read_text(),
            key_id="SIMKEY0001",
            team_id="SIMTEAM001",
            topic="de.sirene.app",
            use_sandbox=True,
            ssl_context=ssl.create_default_context(cafile=str(sim.cert_paths.ca)),
        )
        point_apns_at(apns, "127.0.0.1", sim.apns_port)
        try:
            results = await asyncio.gather(
                *(
                    apns.send_notification(
                        NotificationRequest(
                            device_token=secrets.token_hex(32),
                            message={"aps": {"alert": {"title": "T", "body": f"B{i}"}}},
                            push_type=PushType.ALERT,
                        )
                    )
                    for i in range(20)
                )
            )
        finally:
            apns.pool.close()
        assert all(r.is_successful for r in results), [r.description for r in results]

        http = SimulatorTwilioHttpClient(sim.http_url)
        try:
            client = Client(DEV_ACCOUNT_SID, DEV_AUTH_TOKEN, http_client=http)
            message = await client.messages.create_async(
                to="+4917012345678", from_="+15005550006", body="Hochwasser"
            )
        finally:
            await http.close()
        assert str(message.sid).startswith("SM")

        mail = EmailMessage()
        mail["From"], mail["To"], mail["Subject"] = "a@x.de", "b@x.de", "Warnung"
        mail.set_content("Hochwasser")
        await aiosmtplib.send(mail, hostname="127.0.0.1", port=sim.smtp_port)

        assert sim.service.state.counters["pushes.apns"] == 20
        assert sim.service.mailboxes.view("b@x.de")["messages"][0]["subject"] == "Warnung"


def test_hand_offs_on_uvloop(sim_settings: SimSettings) -> None:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_hand_offs(sim_settings))
