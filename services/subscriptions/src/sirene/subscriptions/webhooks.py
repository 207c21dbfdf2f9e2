"""Twilio webhooks of subscriptions: the TwiML of verification and consent calls, the keypress
of a relative, and call status callbacks. Every request is signature-checked
(`verified_form`) before anything is read or changed; the ids travel in the signed query."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from sirene.runtime.errors import NotFoundError
from sirene.runtime.twilio import verified_form

from .api import ContextDep
from .selfservice import (
    CONSENT_ANSWER_PATH,
    CONSENT_ASK_PATH,
    CONSENT_STATUS_PATH,
    VERIFY_VOICE_PATH,
)

twilio_router = APIRouter(tags=["twilio"], include_in_schema=False)

_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


def _twiml(text: str) -> Response:
    return Response(text, media_type="application/xml")


async def _verified(request: Request, ctx: ContextDep) -> dict[str, str]:
    return await verified_form(
        request,
        public_url=ctx.settings.base_url,
        auth_token=ctx.settings.twilio_auth_token,
    )


def _query(request: Request, *names: str) -> list[str]:
    values = [request.query_params.get(name, "") for name in names]
    if not all(values) or any(len(v) > 64 for v in values):
        return []
    return values


@twilio_router.post(VERIFY_VOICE_PATH)
async def verification_call(request: Request, ctx: ContextDep) -> Response:
    """TwiML that speaks the verification code."""
    await _verified(request, ctx)
    params = _query(request, "v", "c")
    if not params:
        return _twiml(_EMPTY)
    language = request.query_params.get("l", "de")
    try:
        text = await ctx.selfservice.verification_twiml(
            verification_id=params[0], code=params[1], language=language
        )
    except NotFoundError:  # expired or already used: hang up without speaking anything
        return _twiml(_EMPTY)
    return _twiml(text)


@twilio_router.post(VERIFY_VOICE_PATH + "/status", status_code=204)
async def verification_call_status(request: Request, ctx: ContextDep) -> Response:
    """Status of a verification call (nothing to do: the citizen enters the code or not)."""
    await _verified(request, ctx)
    return Response(status_code=204)


@twilio_router.post(CONSENT_ASK_PATH)
async def consent_call(request: Request, ctx: ContextDep) -> Response:
    """TwiML of the consent call to a relative: press 1 to agree, 2 to refuse."""
    await _verified(request, ctx)
    params = _query(request, "t", "c")
    if not params:
        return _twiml(_EMPTY)
    return _twiml(await ctx.selfservice.consent_question(tenant=params[0], citizen_id=params[1]))


@twilio_router.post(CONSENT_ANSWER_PATH)
async def consent_answer(request: Request, ctx: ContextDep) -> Response:
    """The key the relative pressed (`Digits`)."""
    form = await _verified(request, ctx)
    params = _query(request, "t", "c")
    if not params:
        return _twiml(_EMPTY)
    text = await ctx.selfservice.consent_keypress(
        tenant=params[0], citizen_id=params[1], digits=form.get("Digits", "")
    )
    return _twiml(text)


@twilio_router.post(CONSENT_STATUS_PATH, status_code=204)
async def consent_call_status(request: Request, ctx: ContextDep) -> Response:
    """Final status of the consent call: unanswered calls leave the relative inactive."""
    form = await _verified(request, ctx)
    params = _query(request, "t", "c")
    if params:
        await ctx.selfservice.consent_call_ended(
            tenant=params[0], citizen_id=params[1], status=form.get("CallStatus", "")
        )
    return Response(status_code=204)
