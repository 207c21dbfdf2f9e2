"""SMS delivery through Twilio: hand a task to the Messages API, and turn status callbacks
into receipts."""

from __future__ import annotations

import logging

from twilio.rest import Client

from sirene.runtime.delivery import Outcome
from sirene.runtime.twilio import TaskRef, callback_url, error_class_for_code, failed_hand_off
from sirene.schemas import Channel, DeliveryReceipt, DeliveryTask, ReceiptStatus

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


async def send_sms(task: DeliveryTask, *, client: Client, sender: str, public_url: str) -> Outcome:
    """Creates the Twilio message; SENT with the message sid, or FAILED with the error class."""
    status_callback = callback_url(public_url, STATUS_PATH, TaskRef.of(task).query())
    try:
        message = await client.messages.create_async(
            to=task.address, from_=sender, body=task.body, status_callback=status_callback
        )
    except Exception as exc:  # classified: TwilioException, timeouts, connection errors
        return failed_hand_off(task, exc, noun="message", logger=log)
    return Outcome(ReceiptStatus.SENT, provider_ref=str(message.sid))


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
