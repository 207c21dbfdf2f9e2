"""Simulator logic: accept Twilio/APNs/FCM requests, simulate delivery, send signed callbacks."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import re
import secrets
import uuid
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

from sirene.provider_sim import twiml
from sirene.provider_sim.faults import Faults, Rejection, Service
from sirene.provider_sim.masking import mask_number, mask_token, url_for_log
from sirene.provider_sim.settings import SimSettings
from sirene.provider_sim.smtp import Mailboxes
from sirene.provider_sim.state import (
    API_VERSION,
    CallRecord,
    MessageRecord,
    PushRecord,
    SimState,
    SpokenText,
    rfc2822,
    utcnow,
)
from sirene.provider_sim.webhooks import WebhookResponse, WebhookSender

logger = logging.getLogger(__name__)

E164 = re.compile(r"^\+[1-9]\d{1,14}$")
APNS_TOKEN = re.compile(r"^[0-9a-fA-F]{64}$")
MAX_BODY_CHARS = 1600
# Number a Messaging Service "picks" when the client gave no From.
SERVICE_SENDER = "+15005550006"
_MAX_TWIML_DOCUMENTS = 20
_WORDS_PER_SECOND = 2.5

# GSM 03.38 basic character set and extension table (extension characters cost two septets).
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED = frozenset("^{}\\[~]|€\f")


class TwilioApiError(Exception):
    """A request Twilio would reject; rendered as Twilio's JSON error document."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def document(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            "status": self.status,
        }


@dataclass(frozen=True, slots=True)
class Segments:
    count: int
    encoding: str  # "GSM-7" or "UCS-2"


def count_segments(body: str) -> Segments:
    """SMS segments like a carrier counts them: GSM-7 160/153, else UCS-2 70/67."""
    if all(ch in _GSM_BASIC or ch in _GSM_EXTENDED for ch in body):
        septets = sum(2 if ch in _GSM_EXTENDED else 1 for ch in body)
        return Segments(1 if septets <= 160 else math.ceil(septets / 153), "GSM-7")
    units = len(body.encode("utf-16-le")) // 2
    return Segments(1 if units <= 70 else math.ceil(units / 67), "UCS-2")


def new_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


Form = Mapping[str, Sequence[str]]


def _one(form: Form, name: str) -> str | None:
    values = form.get(name)
    if not values:
        return None
    value = values[0].strip()
    return value or None


@dataclass(frozen=True, slots=True)
class CallRequest:
    url: str | None
    method: str
    twiml: str | None
    status_callback: str | None
    status_callback_method: str
    status_callback_events: frozenset[str]
    machine_detection: str | None


class SimulatorService:
    """Owns the state and the webhook client; everything runs on one event loop.

    Call ``start()`` inside the running loop before serving and ``stop()`` when done; in
    between, the ``create_*``/``record_*`` methods may be called from request handlers.
    """

    def __init__(self, settings: SimSettings) -> None:
        self.settings = settings
        self.state = SimState(
            history=settings.history_per_item,
            max_phones=settings.max_phones,
            max_resources=settings.max_resources,
        )
        self.webhooks = WebhookSender(
            timeout=settings.webhook_timeout,
            retries=settings.webhook_retries,
            concurrency=settings.webhook_concurrency,
            counters=self.state.counters,
        )
        self._tasks: set[asyncio.Task[None]] = set()
        self.faults = Faults()
        self.mailboxes = Mailboxes(history=settings.history_per_item, max_boxes=settings.max_phones)

    async def start(self) -> None:
        await self.webhooks.start()

    async def stop(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.webhooks.close()

    async def drain(self) -> None:
        """Wait until every simulation running now has finished (for tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def reset(self) -> None:
        self.state.reset()
        self.faults.reset()
        self.mailboxes.reset()

    def inject(self, service: Service, number: str | None = None) -> None:
        """Applies the injected faults to a provider request (outage, rate limit, and for
        Twilio the permanent errors of number patterns); raises `TwilioApiError`."""
        try:
            self.faults.check(service)
            if number is not None and (service == "sms" or service == "voice"):
                self.faults.refuse_number(service, number)
        except Rejection as exc:
            raise TwilioApiError(exc.status, exc.code, exc.message) from None

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("simulation crashed", exc_info=task.exception())

    # --- accounts --------------------------------------------------------------------------

    def auth_token(self, account_sid: str) -> str | None:
        return self.settings.accounts.get(account_sid)

    # --- SMS -------------------------------------------------------------------------------

    def create_message(self, *, account_sid: str, form: Form) -> MessageRecord:
        """Validate a Messages.json request, store it, and start its delivery simulation."""
        to = _one(form, "To")
        body = form.get("Body", [""])[0] if form.get("Body") else None
        from_ = _one(form, "From")
        service_sid = _one(form, "MessagingServiceSid")
        if to is None:
            raise TwilioApiError(400, 21604, "A 'To' phone number is required.")
        if not E164.match(to):
            raise TwilioApiError(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if from_ is None and service_sid is None:
            raise TwilioApiError(400, 21603, "A 'From' phone number is required.")
        if body is None or body == "":
            raise TwilioApiError(400, 21602, "Message body is required.")
        if len(body) > MAX_BODY_CHARS:
            raise TwilioApiError(
                400, 21617, "The concatenated message body exceeds the 1600 character limit."
            )
        self.inject("sms", to)
        segments = count_segments(body)
        message = MessageRecord(
            sid=new_sid("SM"),
            account_sid=account_sid,
            to=to,
            from_=from_,
            messaging_service_sid=service_sid,
            body=body,
            num_segments=segments.count,
            encoding=segments.encoding,
            status_callback=_one(form, "StatusCallback"),
            # Twilio answers "accepted" when a Messaging Service will choose the sender.
            status="queued" if from_ else "accepted",
        )
        self.state.add_message(message)
        self.faults.record("sms", message.status_callback)
        logger.debug(
            "sms %s to %s accepted (%d segment(s), %s)",
            message.sid,
            mask_number(to),
            segments.count,
            segments.encoding,
        )
        self._spawn(self._simulate_sms(message))
        return message

    async def _simulate_sms(self, message: MessageRecord) -> None:
        behaviour = self.faults.sms_behaviour(message.to, self.state.behaviour(message.to))
        await asyncio.sleep(self.settings.status_callback_delay)
        if message.from_ is None:
            message.from_ = SERVICE_SENDER
        if behaviour.sms_outcome != "failed":
            message.date_sent = utcnow()
            await self._set_message_status(message, "sent", None)
            await asyncio.sleep(self.settings.status_callback_delay)
        await self._set_message_status(message, behaviour.sms_outcome, behaviour.error_code())
        self.state.counters[f"messages.status.{message.status}"] += 1

    async def _set_message_status(
        self, message: MessageRecord, status: str, error_code: int | None
    ) -> None:
        message.status = status
        message.error_code = error_code
        message.date_updated = utcnow()
        if message.status_callback is None or not await self.faults.callback_allowed():
            return
        params = {
            "MessageSid": message.sid,
            "SmsSid": message.sid,
            "SmsMessageSid": message.sid,
            "AccountSid": message.account_sid,
            "From": message.from_ or SERVICE_SENDER,
            "To": message.to,
            "MessageStatus": status,
            "SmsStatus": status,
            "ApiVersion": API_VERSION,
        }
        if message.messaging_service_sid:
            params["MessagingServiceSid"] = message.messaging_service_sid
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        await self._webhook(message.account_sid, message.status_callback, params)

    # --- voice -----------------------------------------------------------------------------

    def create_call(self, *, account_sid: str, form: Form) -> CallRecord:
        """Validate a Calls.json request, store it, and start the call simulation."""
        to = _one(form, "To")
        from_ = _one(form, "From")
        url = _one(form, "Url")
        twiml_doc = _one(form, "Twiml")
        if to is None:
            raise TwilioApiError(400, 21201, "No 'To' number is specified")
        if not E164.match(to):
            raise TwilioApiError(400, 21217, f"Phone number {to} is not a valid phone number.")
        if from_ is None:
            raise TwilioApiError(400, 21213, "No 'From' number is specified")
        if url is None and twiml_doc is None:
            raise TwilioApiError(400, 21205, "A 'Url' or 'Twiml' parameter is required.")
        if url is not None and not url.startswith(("http://", "https://")):
            raise TwilioApiError(400, 21205, f"Url is not a valid URL: {url}")
        self.inject("voice", to)
        events: set[str] = set()
        for raw in form.get("StatusCallbackEvent", []):
            events.update(raw.replace(",", " ").split())
        request = CallRequest(
            url=url,
            method=(_one(form, "Method") or "POST").upper(),
            twiml=twiml_doc,
            status_callback=_one(form, "StatusCallback"),
            status_callback_method=(_one(form, "StatusCallbackMethod") or "POST").upper(),
            status_callback_events=frozenset(events or {"completed"}),
            machine_detection=_one(form, "MachineDetection"),
        )
        call = CallRecord(
            sid=new_sid("CA"),
            account_sid=account_sid,
            to=to,
            from_=from_,
            url=url,
            status_callback=request.status_callback,
            machine_detection=request.machine_detection,
        )
        self.state.add_call(call)
        self.faults.record("voice", request.status_callback or url)
        logger.debug("call %s to %s queued", call.sid, mask_number(to))
        self._spawn(self._simulate_call(call, request))
        return call

    def _call_params(self, call: CallRecord, status: str) -> dict[str, str]:
        params = {
            "CallSid": call.sid,
            "AccountSid": call.account_sid,
            "From": call.from_,
            "To": call.to,
            "CallStatus": status,
            "Direction": "outbound-api",
            "ApiVersion": API_VERSION,
        }
        if call.machine_detection and call.answered_by:
            params["AnsweredBy"] = call.answered_by
        return params

    async def _simulate_call(self, call: CallRecord, request: CallRequest) -> None:
        behaviour = self.faults.call_behaviour(call.to, self.state.behaviour(call.to))
        sequence = 0

        async def progress(event: str, status: str, extra: dict[str, str] | None = None) -> None:
            nonlocal sequence
            call.status = status
            call.date_updated = utcnow()
            if request.status_callback is None or event not in request.status_callback_events:
                return
            if not await self.faults.callback_allowed():
                return
            params = self._call_params(call, status)
            params.update(
                CallbackSource="call-progress-events",
                SequenceNumber=str(sequence),
                Timestamp=rfc2822(call.date_updated) or "",
            )
            params.update(extra or {})
            sequence += 1
            await self._webhook(
                call.account_sid,
                request.status_callback,
                params,
                method=request.status_callback_method,
            )

        await asyncio.sleep(self.settings.status_callback_delay)
        await progress("initiated", "initiated")
        await progress("ringing", "ringing")
        if behaviour.call_outcome != "completed":
            call.duration = 0
            call.end_time = utcnow()
            await progress("completed", behaviour.call_outcome, {"CallDuration": "0"})
            self.state.counters[f"calls.status.{call.status}"] += 1
            logger.debug("call %s ended: %s", call.sid, call.status)
            return

        call.start_time = utcnow()
        if request.machine_detection:
            machine = behaviour.answered_by == "machine_start"
            end_beep = request.machine_detection.lower() == "detectmessageend"
            call.answered_by = (
                ("machine_end_beep" if end_beep else "machine_start") if machine else "human"
            )
        await progress("answered", "in-progress")
        pressed = behaviour.digits if behaviour.answered_by == "human" else ""
        await self._run_twiml(call, request, pressed)

        call.duration = self._estimate_duration(call)
        call.end_time = call.start_time + dt.timedelta(seconds=call.duration)
        await progress(
            "completed",
            "completed",
            {"CallDuration": str(call.duration), "Duration": str(math.ceil(call.duration / 60))},
        )
        self.state.counters["calls.status.completed"] += 1
        logger.debug("call %s completed after %ss", call.sid, call.duration)

    async def _run_twiml(self, call: CallRecord, request: CallRequest, pressed: str) -> None:
        """Fetch and execute TwiML documents until the call hangs up or runs out of verbs."""
        document_url = request.url
        document = request.twiml
        if document is None and document_url is not None:
            document = await self._fetch_twiml(
                call, document_url, request.method, self._call_params(call, "in-progress")
            )
        for _ in range(_MAX_TWIML_DOCUMENTS):
            if document is None:
                return
            try:
                verbs = twiml.parse(document)
            except twiml.TwimlError as exc:
                self._application_error(call, str(exc))
                return
            follow: tuple[str | None, str, dict[str, str]] | None = None
            for verb in verbs:
                match verb:
                    case twiml.Say() | twiml.Play() | twiml.Pause():
                        self._perform(call, verb)
                    case twiml.Hangup():
                        return
                    case twiml.Redirect(url=url, method=method):
                        follow = (url, method, {})
                    case twiml.Gather():
                        for prompt in verb.prompts:
                            self._perform(call, prompt)
                        digits = pressed[: verb.num_digits] if verb.num_digits else pressed
                        if not digits:
                            continue  # timeout without input: Twilio goes on with the next verb
                        call.digits.append(digits)
                        follow = (verb.action, verb.method, {"Digits": digits, "FinishedOnKey": ""})
                if follow is not None:
                    break
            if follow is None:
                return
            target, method, extra = follow
            next_url = self._resolve(document_url, target)
            if next_url is None:
                self._application_error(call, "relative action URL without a document URL")
                return
            params = self._call_params(call, "in-progress")
            params.update(extra)
            document_url = next_url
            document = await self._fetch_twiml(call, next_url, method, params)
        self._application_error(call, "too many TwiML documents (redirect loop?)")

    @staticmethod
    def _resolve(base: str | None, target: str | None) -> str | None:
        if not target:
            return base  # Gather without action posts back to the current document
        if target.startswith(("http://", "https://")):
            return target
        return urljoin(base, target) if base else None

    async def _fetch_twiml(
        self, call: CallRecord, url: str, method: str, params: dict[str, str]
    ) -> str | None:
        response = await self._webhook(call.account_sid, url, params, method=method)
        if response is None or not response.ok:
            self._application_error(call, f"TwiML request to {url_for_log(url)} failed")
            return None
        if not response.text.strip():
            return None  # empty answer: nothing more to do, the call ends
        return response.text

    def _perform(self, call: CallRecord, verb: twiml.Say | twiml.Play | twiml.Pause) -> None:
        match verb:
            case twiml.Say():
                call.spoken.append(SpokenText(verb.text, verb.language, verb.voice, verb.loop))
            case twiml.Play():
                call.played.append(verb.url)
            case twiml.Pause():
                return  # a simulated callee does not wait

    def _application_error(self, call: CallRecord, reason: str) -> None:
        call.error = reason
        call.spoken.append(
            SpokenText("An application error has occurred. Goodbye.", "en-US", None, 1)
        )
        logger.warning("call %s: %s", call.sid, reason)

    @staticmethod
    def _estimate_duration(call: CallRecord) -> int:
        words = sum(len(s.text.split()) * max(s.loop, 1) for s in call.spoken)
        return max(1, math.ceil(words / _WORDS_PER_SECOND) + 2 * len(call.digits))

    async def _webhook(
        self, account_sid: str, url: str, params: dict[str, str], *, method: str = "POST"
    ) -> WebhookResponse | None:
        token = self.auth_token(account_sid)
        if token is None:  # account removed while the simulation ran
            return None
        return await self.webhooks.send(url=url, params=params, auth_token=token, method=method)

    # --- push ------------------------------------------------------------------------------

    def record_push(
        self,
        *,
        platform: str,
        token: str,
        payload: dict[str, Any],
        headers: Mapping[str, str],
        notification_id: str | None = None,
    ) -> PushRecord:
        """Store a push on its device (APNs headers use the ``apns-*`` names)."""
        title, body, level = _alert_fields(platform, payload)
        push = PushRecord(
            id=notification_id or str(uuid.uuid4()),
            platform="apns" if platform == "apns" else "fcm",
            topic=headers.get("apns-topic"),
            push_type=headers.get("apns-push-type"),
            priority=headers.get("apns-priority"),
            collapse_id=headers.get("apns-collapse-id"),
            expiration=headers.get("apns-expiration"),
            title=title,
            body=body,
            interruption_level=level,
            payload=payload,
        )
        self.state.add_push(token, push)
        self.faults.record("push", None)
        logger.debug("%s push %s to %s", platform, push.id, mask_token(token))
        return push

    def is_unregistered(self, token: str) -> bool:
        return token in self.state.unregistered

    def reject_push(self, platform: str, reason: str) -> None:
        self.state.counters[f"pushes.rejected.{platform}.{reason}"] += 1


def _alert_fields(
    platform: str, payload: Mapping[str, Any]
) -> tuple[str | None, str | None, str | None]:
    """Title, body and interruption level of an APNs or FCM payload."""
    if platform == "apns":
        aps = payload.get("aps")
        if not isinstance(aps, dict):
            return None, None, None
        alert = aps.get("alert")
        level = aps.get("interruption-level")
        level_str = level if isinstance(level, str) else None
        if isinstance(alert, str):
            return None, alert, level_str
        if isinstance(alert, dict):
            title, body = alert.get("title"), alert.get("body")
            return (
                title if isinstance(title, str) else None,
                body if isinstance(body, str) else None,
                level_str,
            )
        return None, None, level_str
    message = payload.get("message", payload)
    notification = message.get("notification") if isinstance(message, dict) else None
    if not isinstance(notification, dict):
        return None, None, None
    android = message.get("android") if isinstance(message, dict) else None
    priority = android.get("priority") if isinstance(android, dict) else None
    return (
        notification.get("title") if isinstance(notification.get("title"), str) else None,
        notification.get("body") if isinstance(notification.get("body"), str) else None,
        priority if isinstance(priority, str) else None,
    )
