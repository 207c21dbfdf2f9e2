"""Inbound SMS: a simulated phone texts the platform's number, and the simulator delivers it to
the configured messaging webhook like Twilio does (form fields of Twilio's incoming message
request, signed with `X-Twilio-Signature` by the account's auth token)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from sirene.provider_sim.service import E164, SERVICE_SENDER, SimulatorService, new_sid
from sirene.provider_sim.state import API_VERSION


class InboundSmsIn(BaseModel):
    """What the simulated phone sends."""

    model_config = ConfigDict(extra="forbid")

    body: str = Field(max_length=1600, description="Text of the SMS.")
    to: str = Field(default=SERVICE_SENDER, pattern=E164.pattern, description="Platform number.")
    url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="Webhook to deliver to; default: the simulator's `sms_inbound_url`.",
    )


async def _service(request: Request) -> SimulatorService:
    service: SimulatorService = request.app.state.service
    return service


inbound_router = APIRouter(tags=["simulator"])


@inbound_router.post("/sim/phones/{number}/sms")
async def phone_sends_sms(
    number: str,
    body: InboundSmsIn,
    service: Annotated[SimulatorService, Depends(_service)],
) -> dict[str, Any]:
    """The phone `number` sends an SMS to the platform; answers how the webhook responded."""
    if not E164.match(number):
        raise HTTPException(status_code=422, detail="number must be E.164")
    url = body.url or service.settings.sms_inbound_url
    if url is None:
        raise HTTPException(status_code=409, detail="no sms_inbound_url configured")
    account_sid, token = next(iter(service.settings.accounts.items()))
    sid = new_sid("SM")
    params = {
        "MessageSid": sid,
        "SmsSid": sid,
        "SmsMessageSid": sid,
        "AccountSid": account_sid,
        "From": number,
        "To": body.to,
        "Body": body.body,
        "NumMedia": "0",
        "NumSegments": "1",
        "SmsStatus": "received",
        "ApiVersion": API_VERSION,
    }
    service.state.counters["messages.inbound"] += 1
    response = await service.webhooks.send(url=url, params=params, auth_token=token)
    return {
        "sid": sid,
        "webhook_status": response.status if response is not None else None,
        "webhook_body": response.text[:2000] if response is not None else None,
    }
