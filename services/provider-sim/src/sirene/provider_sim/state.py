"""In-memory, bounded state of the simulated phones, devices and provider resources.

Everything is capped (entries per phone/device, number of phones/devices, resources kept for
GET by sid), so a load test with millions of messages keeps memory flat; totals are counters.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass, field
from email.utils import format_datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

API_VERSION = "2010-04-01"

SmsOutcome = Literal["delivered", "undelivered", "failed"]
CallOutcome = Literal["completed", "busy", "no-answer", "failed"]
AnsweredBy = Literal["human", "machine_start"]

DEFAULT_SMS_ERROR = {"undelivered": 30003, "failed": 30006}


class PhoneBehaviour(BaseModel):
    """How a simulated phone reacts; set per number through ``PUT /sim/phones/{number}``."""

    model_config = ConfigDict(extra="forbid")

    sms_outcome: SmsOutcome = Field(default="delivered", description="Final SMS status.")
    sms_error_code: int | None = Field(
        default=None,
        ge=30001,
        le=30999,
        description="ErrorCode for undelivered/failed (default 30003 resp. 30006).",
    )
    call_outcome: CallOutcome = Field(default="completed", description="Final call status.")
    digits: str = Field(
        default="1", pattern=r"^[0-9*#]*$", description="Keys pressed at a <Gather>; '' = none."
    )
    answered_by: AnsweredBy = Field(
        default="human", description="Answering-machine detection result."
    )

    def error_code(self) -> int | None:
        """ErrorCode reported with the final SMS status (None when delivered)."""
        if self.sms_outcome == "delivered":
            return None
        return self.sms_error_code or DEFAULT_SMS_ERROR[self.sms_outcome]


class BehaviourPatch(BaseModel):
    """Partial update of a :class:`PhoneBehaviour`."""

    model_config = ConfigDict(extra="forbid")

    sms_outcome: SmsOutcome | None = None
    sms_error_code: int | None = Field(default=None, ge=30001, le=30999)
    call_outcome: CallOutcome | None = None
    digits: str | None = Field(default=None, pattern=r"^[0-9*#]*$")
    answered_by: AnsweredBy | None = None


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def rfc2822(value: dt.datetime | None) -> str | None:
    """Twilio's date format, e.g. ``Thu, 24 Aug 2023 05:01:45 +0000``."""
    return None if value is None else format_datetime(value)


@dataclass(slots=True)
class MessageRecord:
    sid: str
    account_sid: str
    to: str
    from_: str | None
    messaging_service_sid: str | None
    body: str
    num_segments: int
    encoding: str
    status_callback: str | None
    status: str = "queued"
    error_code: int | None = None
    date_created: dt.datetime = field(default_factory=utcnow)
    date_updated: dt.datetime = field(default_factory=utcnow)
    date_sent: dt.datetime | None = None

    def resource(self) -> dict[str, Any]:
        """The Twilio ``Message`` resource JSON."""
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}"
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": self.body,
            "date_created": rfc2822(self.date_created),
            "date_sent": rfc2822(self.date_sent),
            "date_updated": rfc2822(self.date_updated),
            "direction": "outbound-api",
            "error_code": self.error_code,
            "error_message": None,
            "from": self.from_,
            "messaging_service_sid": self.messaging_service_sid,
            "num_media": "0",
            "num_segments": str(self.num_segments),
            "price": None,
            "price_unit": "USD",
            "sid": self.sid,
            "status": self.status,
            "subresource_uris": {"media": f"{uri}/Media.json", "feedback": f"{uri}/Feedback.json"},
            "uri": f"{uri}.json",
            "to": self.to,
        }

    def view(self) -> dict[str, Any]:
        """What the phone shows (simulator JSON API)."""
        return {
            "sid": self.sid,
            "from": self.from_ or self.messaging_service_sid,
            "body": self.body,
            "segments": self.num_segments,
            "encoding": self.encoding,
            "status": self.status,
            "error_code": self.error_code,
            "received_at": self.date_created.isoformat(),
        }


@dataclass(slots=True)
class SpokenText:
    text: str
    language: str | None
    voice: str | None
    loop: int

    def view(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "language": self.language,
            "voice": self.voice,
            "loop": self.loop,
        }


@dataclass(slots=True)
class CallRecord:
    sid: str
    account_sid: str
    to: str
    from_: str
    url: str | None
    status_callback: str | None
    machine_detection: str | None
    status: str = "queued"
    answered_by: str | None = None
    duration: int | None = None
    spoken: list[SpokenText] = field(default_factory=list)
    played: list[str] = field(default_factory=list)
    digits: list[str] = field(default_factory=list)
    error: str | None = None
    date_created: dt.datetime = field(default_factory=utcnow)
    date_updated: dt.datetime = field(default_factory=utcnow)
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None

    def resource(self) -> dict[str, Any]:
        """The Twilio ``Call`` resource JSON."""
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{self.sid}"
        return {
            "account_sid": self.account_sid,
            "annotation": None,
            "answered_by": self.answered_by,
            "api_version": API_VERSION,
            "caller_name": None,
            "date_created": rfc2822(self.date_created),
            "date_updated": rfc2822(self.date_updated),
            "direction": "outbound-api",
            "duration": None if self.duration is None else str(self.duration),
            "end_time": rfc2822(self.end_time),
            "forwarded_from": None,
            "from": self.from_,
            "from_formatted": self.from_,
            "group_sid": None,
            "parent_call_sid": None,
            "phone_number_sid": None,
            "price": None,
            "price_unit": "USD",
            "queue_time": "0",
            "sid": self.sid,
            "start_time": rfc2822(self.start_time),
            "status": self.status,
            "subresource_uris": {
                "notifications": f"{uri}/Notifications.json",
                "recordings": f"{uri}/Recordings.json",
                "events": f"{uri}/Events.json",
            },
            "to": self.to,
            "to_formatted": self.to,
            "trunk_sid": None,
            "uri": f"{uri}.json",
        }

    def view(self) -> dict[str, Any]:
        return {
            "sid": self.sid,
            "from": self.from_,
            "status": self.status,
            "answered_by": self.answered_by,
            "duration": self.duration,
            "spoken": [s.view() for s in self.spoken],
            "played": list(self.played),
            "digits": list(self.digits),
            "error": self.error,
            "received_at": self.date_created.isoformat(),
        }


@dataclass(slots=True)
class PushRecord:
    id: str
    platform: Literal["apns", "fcm"]
    topic: str | None
    push_type: str | None
    priority: str | None
    collapse_id: str | None
    expiration: str | None
    title: str | None
    body: str | None
    interruption_level: str | None
    payload: dict[str, Any]
    received_at: dt.datetime = field(default_factory=utcnow)

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "platform": self.platform,
            "topic": self.topic,
            "push_type": self.push_type,
            "priority": self.priority,
            "collapse_id": self.collapse_id,
            "expiration": self.expiration,
            "title": self.title,
            "body": self.body,
            "interruption_level": self.interruption_level,
            "payload": self.payload,
            "received_at": self.received_at.isoformat(),
        }


@dataclass(slots=True)
class Phone:
    number: str
    messages: deque[MessageRecord]
    calls: deque[CallRecord]
    total_messages: int = 0
    total_calls: int = 0
    last_activity: dt.datetime = field(default_factory=utcnow)


@dataclass(slots=True)
class Device:
    token: str
    pushes: deque[PushRecord]
    total_pushes: int = 0
    last_activity: dt.datetime = field(default_factory=utcnow)


class SimState:
    """All simulator state. Single event loop, so no locking is needed."""

    def __init__(self, *, history: int, max_phones: int, max_resources: int) -> None:
        self._history = history
        self._max_phones = max_phones
        self._max_resources = max_resources
        self.phones: OrderedDict[str, Phone] = OrderedDict()
        self.devices: OrderedDict[str, Device] = OrderedDict()
        self.behaviours: dict[str, PhoneBehaviour] = {}
        self.unregistered: set[str] = set()
        self.messages: OrderedDict[str, MessageRecord] = OrderedDict()
        self.calls: OrderedDict[str, CallRecord] = OrderedDict()
        self.counters: Counter[str] = Counter()

    def reset(self) -> None:
        """Forget everything: phones, devices, behaviours, resources and counters.

        Containers are cleared in place, so holders of a reference (e.g. ``counters``) stay valid.
        """
        for container in (
            self.phones,
            self.devices,
            self.behaviours,
            self.unregistered,
            self.messages,
            self.calls,
            self.counters,
        ):
            container.clear()

    # --- behaviour -------------------------------------------------------------------------

    def behaviour(self, number: str) -> PhoneBehaviour:
        return self.behaviours.get(number) or PhoneBehaviour()

    def patch_behaviour(self, number: str, patch: BehaviourPatch) -> PhoneBehaviour:
        current = self.behaviour(number)
        updated = current.model_copy(update=patch.model_dump(exclude_unset=True))
        self.behaviours[number] = PhoneBehaviour.model_validate(updated.model_dump())
        return self.behaviours[number]

    # --- phones and devices ----------------------------------------------------------------

    def phone(self, number: str) -> Phone:
        """The phone of ``number``, created (and the least recently used one dropped) if new."""
        phone = self.phones.get(number)
        if phone is None:
            phone = Phone(
                number=number,
                messages=deque(maxlen=self._history),
                calls=deque(maxlen=self._history),
            )
            self.phones[number] = phone
            if len(self.phones) > self._max_phones:
                self.phones.popitem(last=False)
        else:
            self.phones.move_to_end(number)
        phone.last_activity = utcnow()
        return phone

    def device(self, token: str) -> Device:
        device = self.devices.get(token)
        if device is None:
            device = Device(token=token, pushes=deque(maxlen=self._history))
            self.devices[token] = device
            if len(self.devices) > self._max_phones:
                self.devices.popitem(last=False)
        else:
            self.devices.move_to_end(token)
        device.last_activity = utcnow()
        return device

    # --- resources -------------------------------------------------------------------------

    def add_message(self, message: MessageRecord) -> None:
        self.messages[message.sid] = message
        if len(self.messages) > self._max_resources:
            self.messages.popitem(last=False)
        phone = self.phone(message.to)
        phone.messages.appendleft(message)
        phone.total_messages += 1
        self.counters["messages"] += 1

    def add_call(self, call: CallRecord) -> None:
        self.calls[call.sid] = call
        if len(self.calls) > self._max_resources:
            self.calls.popitem(last=False)
        phone = self.phone(call.to)
        phone.calls.appendleft(call)
        phone.total_calls += 1
        self.counters["calls"] += 1

    def add_push(self, token: str, push: PushRecord) -> None:
        device = self.device(token)
        device.pushes.appendleft(push)
        device.total_pushes += 1
        self.counters["pushes"] += 1
        self.counters[f"pushes.{push.platform}"] += 1

    # --- views -----------------------------------------------------------------------------

    def phone_view(self, number: str) -> dict[str, Any]:
        phone = self.phones.get(number)
        return {
            "number": number,
            "known": phone is not None,
            "behaviour": self.behaviour(number).model_dump(),
            "total_messages": phone.total_messages if phone else 0,
            "total_calls": phone.total_calls if phone else 0,
            "last_activity": phone.last_activity.isoformat() if phone else None,
            "messages": [m.view() for m in phone.messages] if phone else [],
            "calls": [c.view() for c in phone.calls] if phone else [],
        }

    def device_view(self, token: str) -> dict[str, Any]:
        device = self.devices.get(token)
        return {
            "token": token,
            "known": device is not None,
            "registered": token not in self.unregistered,
            "total_pushes": device.total_pushes if device else 0,
            "last_activity": device.last_activity.isoformat() if device else None,
            "notifications": [p.view() for p in device.pushes] if device else [],
        }

    def stats(self) -> dict[str, Any]:
        c = self.counters
        return {
            "messages": c["messages"],
            "messages_by_status": _prefixed(c, "messages.status."),
            "calls": c["calls"],
            "calls_by_status": _prefixed(c, "calls.status."),
            "pushes": c["pushes"],
            "pushes_by_platform": {"apns": c["pushes.apns"], "fcm": c["pushes.fcm"]},
            "pushes_rejected": _prefixed(c, "pushes.rejected."),
            "webhooks": {"delivered": c["webhooks.ok"], "failed": c["webhooks.failed"]},
            "requests_rejected": _prefixed(c, "rejected."),
            "phones": len(self.phones),
            "devices": len(self.devices),
        }


def _prefixed(counter: Counter[str], prefix: str) -> dict[str, int]:
    return {k.removeprefix(prefix): v for k, v in sorted(counter.items()) if k.startswith(prefix)}
