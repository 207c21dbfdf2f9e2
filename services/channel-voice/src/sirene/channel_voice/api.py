"""Twilio voice webhooks: the call's TwiML, the key press, the final status. Every request is
signature-checked before anything else happens."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response

from sirene.runtime import BatchProducer
from sirene.runtime.delivery import DeliveryPipeline, emit_receipts
from sirene.runtime.twilio import TaskRef, callback_url, verified_form
from sirene.schemas import DeliveryReceipt

from .metrics import WEBHOOKS
from .repository import ScriptStore
from .service import (
    GATHER_PATH,
    LANGUAGE_PARAM,
    STATUS_PATH,
    TWIML_PATH,
    gather_language,
    gather_receipt,
    is_final,
    render_hangup,
    render_thanks,
    render_twiml,
    retry_unanswered,
)
from .settings import ChannelVoiceSettings

TWIML = "application/xml"


def twilio_router(
    settings: ChannelVoiceSettings,
    producer: BatchProducer,
    scripts: ScriptStore,
    pipeline: DeliveryPipeline,
) -> APIRouter:
    """`POST /twilio/voice/twiml`, `/twilio/voice/gather`, `/twilio/voice/status`."""
    router = APIRouter(tags=["twilio"])

    async def verified(kind: str, request: Request) -> tuple[TaskRef, dict[str, str]]:
        try:
            form = await verified_form(
                request, public_url=settings.base_url, auth_token=settings.twilio_auth_token
            )
        except HTTPException:
            WEBHOOKS.labels(kind, "rejected").inc()
            raise
        try:
            return TaskRef.from_query(request.query_params), form
        except HTTPException:
            WEBHOOKS.labels(kind, "invalid").inc()
            raise

    async def emit(kind: str, receipt: DeliveryReceipt | None) -> None:
        # Answered only after Kafka acknowledged; if Kafka fails Twilio gets a 5xx and retries.
        if receipt is None:
            WEBHOOKS.labels(kind, "ignored").inc()
            return
        await emit_receipts(producer, [receipt])
        WEBHOOKS.labels(kind, "receipt").inc()

    @router.post(TWIML_PATH)
    async def twiml(request: Request) -> Response:
        ref, _form = await verified("twiml", request)
        script = await scripts.get(ref.task_id)
        if script is None:  # expired (or never stored): say nothing rather than something wrong
            WEBHOOKS.labels("twiml", "missing_script").inc()
            return Response(render_hangup(), media_type=TWIML)
        WEBHOOKS.labels("twiml", "ok").inc()
        gather = callback_url(
            settings.base_url,
            GATHER_PATH,
            {**ref.query(), LANGUAGE_PARAM: script.language.value},
        )
        return Response(render_twiml(script, gather_url=gather), media_type=TWIML)

    @router.post(GATHER_PATH)
    async def gather(request: Request) -> Response:
        ref, form = await verified("gather", request)
        receipt = gather_receipt(ref, form)
        await emit("gather", receipt)
        if receipt is None:
            return Response(render_hangup(), media_type=TWIML)
        language = gather_language(request.query_params)
        if language is None:  # a call placed before the gather URL named its language
            script = await scripts.get(ref.task_id)
            language = script.language if script else None
        return Response(render_thanks(language) if language else render_hangup(), media_type=TWIML)

    @router.post(STATUS_PATH, status_code=204)
    async def status(request: Request) -> Response:
        ref, form = await verified("status", request)
        receipt = await retry_unanswered(ref, form, scripts=scripts, pipeline=pipeline)
        await emit("status", receipt)
        if is_final(form.get("CallStatus", "")):
            await scripts.drop(ref.task_id)
        return Response(status_code=204)

    return router
