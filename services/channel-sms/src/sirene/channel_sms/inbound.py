"""Twilio inbound SMS webhook of channel-sms: SMS that citizens send to the platform number
(STOP, consent replies) go onto `sms.inbound` for subscriptions.

Why through Kafka instead of calling subscriptions: channel-sms already is the public endpoint
Twilio talks to (one webhook host, one signature key), services never call each other, and
the webhook is answered only after Kafka acknowledged the message — so a STOP is never lost
when subscriptions is down or being deployed (Twilio retries a failed webhook; the consumer
catches up later, in order per sender number)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, HTTPException, Request, Response
from prometheus_client import Counter
from pydantic import ValidationError

from sirene.runtime import BatchProducer
from sirene.runtime.twilio import verified_form
from sirene.schemas import SMS_INBOUND, InboundSms

from .settings import ChannelSmsSettings

log = logging.getLogger(__name__)

INBOUND_PATH = "/twilio/sms/inbound"
INBOUND_TOPICS = [SMS_INBOUND]
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'

INBOUND = Counter(
    "sirene_channel_sms_inbound_total",
    "Inbound SMS webhooks by outcome (queued, rejected signature, invalid).",
    ["outcome"],
)


def inbound_sms(form: dict[str, str]) -> InboundSms:
    """The event for one verified inbound-message webhook; `ValidationError` if it lacks what
    an incoming Twilio message always has."""
    return InboundSms(
        provider_ref=form.get("MessageSid") or form.get("SmsSid") or "",
        from_number=form.get("From", ""),
        to_number=form.get("To", ""),
        body=form.get("Body", ""),
    )


def inbound_router(settings: ChannelSmsSettings, producer: BatchProducer) -> APIRouter:
    """`POST /twilio/sms/inbound`: verified incoming SMS → `sms.inbound`, then an empty TwiML
    answer (no automatic reply; Twilio's own STOP handling confirms opt-outs)."""
    router = APIRouter(tags=["twilio"])

    @router.post(INBOUND_PATH)
    async def sms_inbound(request: Request) -> Response:
        try:
            form = await verified_form(
                request, public_url=settings.base_url, auth_token=settings.twilio_auth_token
            )
        except HTTPException:
            INBOUND.labels("rejected").inc()
            raise
        try:
            event = inbound_sms(form)
        except ValidationError:
            # Signed by Twilio but not an SMS from a phone number (e.g. a short code or an
            # alphanumeric sender): nothing to act on, and a retry would not change that.
            INBOUND.labels("invalid").inc()
            log.info("inbound sms ignored: not from a phone number")
            return Response(EMPTY_TWIML, media_type="application/xml")
        # Answered only after Kafka acknowledged; if Kafka fails Twilio gets a 5xx and retries.
        await producer.send_many(
            SMS_INBOUND, [(event.from_number.encode(), event.model_dump_json().encode())]
        )
        INBOUND.labels("queued").inc()
        return Response(EMPTY_TWIML, media_type="application/xml")

    return router
