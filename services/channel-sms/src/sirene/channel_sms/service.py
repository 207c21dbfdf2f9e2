"""SMS delivery through Twilio: hand a task to the Messages API, and turn status callbacks
into receipts."""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from typing import Any

from twilio.rest import Client

from sirene.runtime.delivery import Outcome
from sirene.runtime.twilio import TaskRef, callback_url, error_class_for_code, failed_hand_off
from sirene.schemas import Channel, DeliveryReceipt, DeliveryTask, ReceiptStatus

from .encoding import segments

log = logging.getLogger(__name__)

PROVIDER = "twilio"
STATUS_PATH = "/twilio/sms/status"

_FINAL_STATUSES: dict[str, ReceiptStatus] = {
    "sent": ReceiptStatus.SENT,
    "delivered": ReceiptStatus.DELIVERED,
    "undelivered": ReceiptStatus.UNDELIVERED,
    "failed": ReceiptStatus.FAILED,
    "canceled": ReceiptStatus.FAILED,
}
"""Twilio MessageStatus → receipt status. Interim states (queued, accepted, sending,
scheduled) produce no receipt: the hand-off receipt already says 'sent to the provider'."""


MESSAGING_SERVICE = re.compile(r"^MG[0-9a-fA-F]{32}$")
ALPHANUMERIC_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
PHONE_NUMBER = re.compile(r"^\+[1-9]\d{1,14}$")


def is_valid_sender(sender: str) -> bool:
    """An E.164 number, a Messaging Service sid (MG…) or an alphanumeric sender id (1–11
    letters, digits and spaces, at least one letter)."""
    return bool(
        PHONE_NUMBER.match(sender)
        or MESSAGING_SERVICE.match(sender)
        or ALPHANUMERIC_SENDER.match(sender)
    )


def sender_params(sender: str) -> dict[str, str]:
    """The Messages API parameters naming the sender: `messaging_service_sid` for a Messaging
    Service (Twilio picks the number), else `from_` (number or alphanumeric id)."""
    if MESSAGING_SERVICE.match(sender):
        return {"messaging_service_sid": sender}
    return {"from_": sender}


def sms_cost(task: DeliveryTask) -> float:
    """Rate-limit units of a task: its SMS segments (GSM-7 or UCS-2)."""
    return float(segments(task.body).count)


async def send_sms(task: DeliveryTask, *, client: Client, sender: str, public_url: str) -> Outcome:
    """Creates the Twilio message; SENT with the message sid, or FAILED with the error class."""
    status_callback = callback_url(public_url, STATUS_PATH, TaskRef.of(task).query())
    try:
        message = await client.messages.create_async(
            to=task.address,
            body=task.body,
            status_callback=status_callback,
            **sender_params(sender),
        )
    except Exception as exc:  # classified: TwilioException, timeouts, connection errors
        return failed_hand_off(task, exc, noun="message", logger=log)
    return Outcome(ReceiptStatus.SENT, provider_ref=str(message.sid))


async def find_sent(task: DeliveryTask, started: datetime, *, client: Client) -> Outcome | None:
    """Whether Twilio already has this task's message (a worker crashed between Twilio taking
    it and recording it): a message to the task's number with the task's text, created since
    its hand-off began. SENT with that sid, or None (then it is sent)."""
    since = started - timedelta(seconds=5)
    messages: list[Any] = await client.messages.list_async(
        to=task.address, date_sent_after=since, limit=50
    )
    for message in messages:
        created = message.date_created
        if message.body == task.body and (
            created is None or created >= since.replace(microsecond=0)
        ):
            return Outcome(
                ReceiptStatus.SENT,
                provider_ref=str(message.sid),
                detail="found at the provider after a crash (not sent again)",
            )
    return None


def status_receipt(ref: TaskRef, form: dict[str, str]) -> DeliveryReceipt | None:
    """The receipt for one (verified) SMS status callback; None for interim statuses."""
    message_status = form.get("MessageStatus") or form.get("SmsStatus") or ""
    status = _FINAL_STATUSES.get(message_status.lower())
    if status is None:
        return None
    failed = status in (ReceiptStatus.FAILED, ReceiptStatus.UNDELIVERED)
    error_code = form.get("ErrorCode") or None if failed else None
    return ref.receipt(
        channel=Channel.SMS,
        status=status,
        provider_ref=form.get("MessageSid") or form.get("SmsSid"),
        error_code=error_code,
        error_class=error_class_for_code(error_code) if failed else None,
        detail=f"twilio status {message_status.lower()}" if failed else None,
    )
