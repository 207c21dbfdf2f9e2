"""Subscriptions' own Twilio calls: verification codes (SMS, or a call that speaks the code),
a relative's consent request (SMS asking for "JA", or a call asking to press 1), and the TwiML
those calls fetch. Twilio is reached with the official client (the provider simulator in
development), and its webhooks are signature-checked (`sirene.runtime.twilio.verified_form`)."""

from __future__ import annotations

import logging

from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse

from sirene.runtime.logging import mask_phone
from sirene.runtime.twilio import BaseUrlTwilioHttpClient, callback_url

from . import metrics
from .settings import SubscriptionsSettings

log = logging.getLogger(__name__)

VOICE_LANGUAGE = {"de": "de-DE", "en": "en-US"}


class TelephonyError(Exception):
    """Twilio refused the message or call (or could not be reached)."""


class Telephony:
    """The twilio client of subscriptions. Contract: `start()` inside the running event loop
    before `send_sms`/`call`; `stop()` at shutdown."""

    def __init__(self, settings: SubscriptionsSettings) -> None:
        self.settings = settings
        self._client: Client | None = None
        self._http: BaseUrlTwilioHttpClient | None = None

    async def start(self) -> None:
        self._http = BaseUrlTwilioHttpClient(
            self.settings.twilio_api_url,
            timeout_s=self.settings.twilio_timeout_s,
            max_connections=16,
        )
        self._client = Client(
            self.settings.twilio_account_sid,
            self.settings.twilio_auth_token.get_secret_value(),
            http_client=self._http,
        )

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.close()
        self._client = self._http = None

    @property
    def client(self) -> Client:
        if self._client is None:
            raise RuntimeError("Telephony.start() was not awaited")
        return self._client

    def url(self, path: str, **params: str) -> str:
        """A webhook URL of this service (Twilio signs path and query)."""
        return callback_url(self.settings.base_url, path, params)

    async def send_sms(self, *, to: str, body: str, kind: str) -> str:
        """Sends an SMS; its sid, or `TelephonyError`."""
        try:
            message = await self.client.messages.create_async(
                to=to, from_=self.settings.twilio_from, body=body
            )
        except Exception as exc:  # TwilioException, timeouts, connection errors
            metrics.TWILIO_FAILURES.labels(kind=kind).inc()
            log.warning(
                "twilio refused an sms",
                extra={"to": mask_phone(to), "kind": kind, "error": type(exc).__name__},
            )
            raise TelephonyError(kind) from exc
        return str(message.sid)

    async def call(self, *, to: str, twiml_url: str, status_url: str, kind: str) -> str:
        """Places a call whose TwiML comes from `twiml_url`; its sid, or `TelephonyError`."""
        try:
            call = await self.client.calls.create_async(
                to=to,
                from_=self.settings.twilio_from,
                url=twiml_url,
                status_callback=status_url,
                status_callback_event=["completed"],
            )
        except Exception as exc:
            metrics.TWILIO_FAILURES.labels(kind=kind).inc()
            log.warning(
                "twilio refused a call",
                extra={"to": mask_phone(to), "kind": kind, "error": type(exc).__name__},
            )
            raise TelephonyError(kind) from exc
        return str(call.sid)


def spoken_digits(code: str) -> str:
    """A code as separate digits, so text-to-speech reads "4, 7, 1" and not "four hundred…"."""
    return ", ".join(code)


def code_twiml(code: str, *, language: str, tenant_name: str) -> str:
    """TwiML that speaks a verification code twice."""
    response = VoiceResponse()
    voice_language = VOICE_LANGUAGE.get(language, "de-DE")
    if language == "en":
        intro = f"This is {tenant_name}. Your confirmation code is:"
        again = "Once more, your code is:"
    else:
        intro = f"Hier ist {tenant_name}. Ihr Bestätigungscode lautet:"
        again = "Noch einmal, Ihr Code lautet:"
    response.say(f"{intro} {spoken_digits(code)}.", language=voice_language)
    response.pause(length=1)
    response.say(f"{again} {spoken_digits(code)}.", language=voice_language)
    return str(response)


def consent_question_twiml(
    *, language: str, tenant_name: str, registrant: str, topics: str, action_url: str
) -> str:
    """TwiML asking the called person to press 1 (agree) or 2 (refuse)."""
    response = VoiceResponse()
    voice_language = VOICE_LANGUAGE.get(language, "de-DE")
    if language == "en":
        text = (
            f"Hello, this is {tenant_name}. {registrant} would like you to receive warnings and "
            f"information by phone: {topics}. If you agree, press 1. If you do not agree, press 2."
        )
        no_input = "We did not receive an answer. You will not be called again about this. Goodbye."
    else:
        text = (
            f"Guten Tag, hier ist {tenant_name}. {registrant} möchte, dass Sie Warnungen und "
            f"Informationen per Telefon erhalten: {topics}. Wenn Sie einverstanden sind, "
            "drücken Sie 1. Wenn nicht, drücken Sie 2."
        )
        no_input = (
            "Wir haben keine Antwort erhalten. Sie werden dazu nicht erneut angerufen. "
            "Auf Wiederhören."
        )
    gather = response.gather(num_digits=1, action=action_url, method="POST", timeout=8)
    gather.say(text, language=voice_language)
    response.say(no_input, language=voice_language)
    return str(response)


def consent_answer_twiml(*, language: str, granted: bool | None) -> str:
    """TwiML confirming what the called person pressed."""
    response = VoiceResponse()
    voice_language = VOICE_LANGUAGE.get(language, "de-DE")
    if granted is None:
        text = (
            "Invalid input. Goodbye." if language == "en" else "Ungültige Eingabe. Auf Wiederhören."
        )
    elif granted:
        text = (
            "Thank you. You are now registered. Goodbye."
            if language == "en"
            else "Vielen Dank. Sie sind jetzt angemeldet. Auf Wiederhören."
        )
    else:
        text = (
            "You will not be registered. Goodbye."
            if language == "en"
            else "Sie werden nicht angemeldet. Auf Wiederhören."
        )
    response.say(text, language=voice_language)
    response.hangup()
    return str(response)
