"""Twilio webhooks of channel-sms. Every request is signature-checked before anything else."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response

from sirene.runtime import BatchProducer
from sirene.runtime.delivery import emit_receipts
from sirene.runtime.twilio import TaskRef, verified_form

from .metrics import CALLBACKS
from .service import STATUS_PATH, status_receipt
from .settings import ChannelSmsSettings


def twilio_router(settings: ChannelSmsSettings, producer: BatchProducer) -> APIRouter:
    """`POST /twilio/sms/status`: Twilio message status callbacks → receipts."""
    router = APIRouter(tags=["twilio"])

    @router.post(STATUS_PATH, status_code=204)
    async def sms_status(request: Request) -> Response:
        try:
            form = await verified_form(
                request, public_url=settings.base_url, auth_token=settings.twilio_auth_token
            )
        except HTTPException:
            CALLBACKS.labels("rejected").inc()
            raise
        try:
            ref = TaskRef.from_query(request.query_params)
        except HTTPException:
            CALLBACKS.labels("invalid").inc()
            raise
        receipt = status_receipt(ref, form)
        if receipt is None:
            CALLBACKS.labels("ignored").inc()
        else:
            # Answered only after Kafka acknowledged; if Kafka fails Twilio gets a 5xx and retries.
            await emit_receipts(producer, [receipt])
            CALLBACKS.labels("receipt").inc()
        return Response(status_code=204)

    return router
