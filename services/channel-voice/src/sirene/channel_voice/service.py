"""Voice delivery through Twilio: place the call, speak the warning twice, ask for "1" to
confirm, and turn call status callbacks and key presses into receipts."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime

from twilio.rest import Client
from twilio.twiml.voice_response import Gather, VoiceResponse

from sirene.runtime.delivery import DeliveryPipeline, Outcome
from sirene.runtime.retry import Parked
from sirene.runtime.twilio import TaskRef, callback_url, failed_hand_off
from sirene.schemas import (
    Channel,
    DeliveryReceipt,
    DeliveryTask,
    ErrorClass,
    Language,
    ReceiptStatus,
    new_id,
    utcnow,
)

from .repository import Script, ScriptStore

log = logging.getLogger(__name__)

PROVIDER = "twilio"
TWIML_PATH = "/twilio/voice/twiml"
GATHER_PATH = "/twilio/voice/gather"
STATUS_PATH = "/twilio/voice/status"
CONFIRM_DIGIT = "1"
LANGUAGE_PARAM = "l"
"""Query parameter of the gather URL naming the call's language (signed with the rest)."""
TWIML_INLINE_MAX = 4000
"""Twilio's limit for the `Twiml` parameter of a new call (characters)."""

TTS_LANGUAGE: dict[Language, str] = {Language.DE: "de-DE", Language.EN: "en-GB"}
PROMPT: dict[Language, str] = {
    Language.DE: "Drücken Sie 1, um den Empfang zu bestätigen.",
    Language.EN: "Press 1 to confirm that you received this message.",
}
THANKS: dict[Language, str] = {
    Language.DE: "Vielen Dank. Ihre Bestätigung wurde gespeichert.",
    Language.EN: "Thank you. Your confirmation has been recorded.",
}

_FAILED_CALL_STATUSES = frozenset({"busy", "no-answer", "failed", "canceled"})


def script_ttl_s(expires: datetime, *, grace_s: int) -> int:
    """Seconds the spoken text is kept: until the task expires, plus a grace period."""
    return max(60, int((expires - utcnow()).total_seconds()) + grace_s)


async def store_scripts(
    tasks: Sequence[DeliveryTask], *, scripts: ScriptStore, script_grace_s: int
) -> list[Outcome | None]:
    """Stores what each call of a batch says (and the task, for a retry from its status
    callback) in one Redis round trip, before any of the calls is placed. The pipeline's
    `precheck` hook: it holds no task back (all None)."""
    await scripts.put_many(
        [
            (
                task.task_id,
                Script(text=task.body, language=task.language, task=task),
                script_ttl_s(task.expires, grace_s=script_grace_s),
            )
            for task in tasks
        ]
    )
    return [None] * len(tasks)


def gather_url(public_url: str, task: DeliveryTask) -> str:
    """Where the key press of a task's call is posted: the signed task reference plus the
    call's language (`l`), so the answer to it needs no lookup."""
    query = {**TaskRef.of(task).query(), LANGUAGE_PARAM: task.language.value}
    return callback_url(public_url, GATHER_PATH, query)


def call_document(task: DeliveryTask, *, public_url: str) -> dict[str, str]:
    """What the call does when answered: the TwiML itself (`twiml`), so Twilio need not fetch
    it from us — one webhook round trip less per call — or, for a text too long for Twilio's
    `Twiml` parameter, the URL of our TwiML webhook (`url`), which reads the stored script."""
    document = render_twiml(
        Script(text=task.body, language=task.language),
        gather_url=gather_url(public_url, task),
    )
    if len(document) <= TWIML_INLINE_MAX:
        return {"twiml": document}
    return {"url": callback_url(public_url, TWIML_PATH, TaskRef.of(task).query())}


async def place_call(
    task: DeliveryTask,
    *,
    client: Client,
    sender: str,
    public_url: str,
    machine_detection: str,
) -> Outcome:
    """Creates the Twilio call (its script was stored by `store_scripts`); SENT with the call
    sid, or FAILED with the error class."""
    try:
        call = await client.calls.create_async(
            to=task.address,
            from_=sender,
            status_callback=callback_url(public_url, STATUS_PATH, TaskRef.of(task).query()),
            status_callback_event=["completed"],
            machine_detection=machine_detection,
            **call_document(task, public_url=public_url),
        )
    except Exception as exc:  # classified: TwilioException, timeouts, connection errors
        return failed_hand_off(task, exc, noun="call", logger=log)
    return Outcome(ReceiptStatus.SENT, provider_ref=str(call.sid))


def render_twiml(script: Script, *, gather_url: str) -> str:
    """The call: the warning twice, then a prompt to press 1 (posted to `gather_url`)."""
    language = TTS_LANGUAGE[script.language]
    response = VoiceResponse()
    response.say(script.text, language=language, loop=2)
    gather = Gather(num_digits=1, action=gather_url, method="POST")
    gather.say(PROMPT[script.language], language=language)
    response.append(gather)
    return str(response)


def gather_language(query: Mapping[str, str]) -> Language | None:
    """The call's language named by a gather URL (None for URLs without it)."""
    try:
        return Language(query.get(LANGUAGE_PARAM, ""))
    except ValueError:
        return None


def render_thanks(language: Language) -> str:
    """Answer to a confirming key press."""
    response = VoiceResponse()
    response.say(THANKS[language], language=TTS_LANGUAGE[language])
    response.hangup()
    return str(response)


def render_hangup() -> str:
    """Answer when there is nothing (more) to say."""
    response = VoiceResponse()
    response.hangup()
    return str(response)


def gather_receipt(ref: TaskRef, form: dict[str, str]) -> DeliveryReceipt | None:
    """CONFIRMED when the callee pressed 1; None for anything else."""
    if form.get("Digits", "").strip() != CONFIRM_DIGIT:
        return None
    return ref.receipt(
        channel=Channel.VOICE,
        status=ReceiptStatus.CONFIRMED,
        provider_ref=form.get("CallSid"),
        detail="callee pressed 1",
    )


def status_receipt(ref: TaskRef, form: dict[str, str]) -> DeliveryReceipt | None:
    """The receipt of a final call status; None for progress events."""
    call_status = form.get("CallStatus", "").lower()
    sid = form.get("CallSid")
    if call_status == "completed":
        answered_by = form.get("AnsweredBy", "unknown")[:40]
        return ref.receipt(
            channel=Channel.VOICE,
            status=ReceiptStatus.DELIVERED,
            provider_ref=sid,
            detail=f"answered_by={answered_by}",
        )
    if call_status in _FAILED_CALL_STATUSES:
        return ref.receipt(
            channel=Channel.VOICE,
            status=ReceiptStatus.FAILED,
            provider_ref=sid,
            error_code=call_status,
            error_class=ErrorClass.TRANSIENT,
            detail=f"call ended: {call_status}",
        )
    return None


async def retry_unanswered(
    ref: TaskRef,
    form: dict[str, str],
    *,
    scripts: ScriptStore,
    pipeline: DeliveryPipeline,
) -> DeliveryReceipt | None:
    """The receipt of a final call status. A busy, unanswered or failed call is tried again on
    the voice retry tier (attempt + 1) while attempts and the alert's validity allow; after the
    last attempt the receipt says why it failed and the task is dead-lettered with the reason."""
    receipt = status_receipt(ref, form)
    call_status = form.get("CallStatus", "").lower()
    if receipt is None or call_status not in _FAILED_CALL_STATUSES or pipeline.retry is None:
        return receipt
    script = await scripts.get(ref.task_id)
    task = script.task if script else None
    if task is None or task.attempt != ref.attempt:
        return receipt  # text expired (or a stale callback): nothing to retry with
    parked = Parked(Channel.VOICE, pipeline.service)
    decision = pipeline.retry_decision(task, now=utcnow())
    if decision is None:
        tier = pipeline.retry.tier_after(task.attempt)
        parked.retry(
            task.model_copy(update={"attempt": task.attempt + 1, "event_id": new_id()}),
            tier,
            reason="call_unanswered",
        )
        await parked.flush(pipeline.producer)
        return receipt.model_copy(
            update={"detail": f"call ended: {call_status}; attempt {task.attempt + 1} follows"}
        )
    status, reason_class, reason = decision
    detail = f"call ended: {call_status}; {reason}"
    parked.give_up(task, reason_class=reason_class, reason=detail, record=None)
    await parked.flush(pipeline.producer)
    return receipt.model_copy(
        update={"status": status, "error_class": ErrorClass.PERMANENT, "detail": detail}
    )


def is_final(call_status: str) -> bool:
    return call_status.lower() == "completed" or call_status.lower() in _FAILED_CALL_STATUSES
