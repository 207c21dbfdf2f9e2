"""Unit tests (no network): Twilio helpers of sirene.runtime.twilio and the SMS status
mapping."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from fastapi import HTTPException
from pydantic import SecretStr
from starlette.requests import Request
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from yarl import URL

from sirene.channel_sms.service import status_receipt
from sirene.runtime.twilio import (
    BaseUrlTwilioHttpClient,
    TaskRef,
    callback_url,
    classify_exception,
    error_class_for_code,
    verified_form,
)
from sirene.schemas import (
    Channel,
    DeliveryTask,
    ErrorClass,
    Lane,
    Language,
    ReceiptStatus,
    Severity,
    task_id_for,
    utcnow,
)

TOKEN = SecretStr("unit-test-auth-token")
PUBLIC = "https://sirene.example.org/sms"


def _task(**fields: Any) -> DeliveryTask:
    now = utcnow()
    values: dict[str, Any] = {
        "tenant_id": "musterstadt",
        "task_id": task_id_for("a:1", "c-1", Channel.SMS),
        "alert_id": "a:1",
        "citizen_id": "c-1",
        "channel": Channel.SMS,
        "lane": Lane.URGENT,
        "address": "+4915112345678",
        "language": Language.DE,
        "body": "Warnung",
        "severity": Severity.EXTREME,
        "exercise": True,
        "published_at": now,
        "expires": now + timedelta(hours=1),
    }
    values.update(fields)
    return DeliveryTask.model_validate(values)


def _request(url: str, body: bytes, headers: dict[str, str]) -> Request:
    parsed = URL(url)
    scope = {
        "type": "http",
        "method": "POST",
        "path": parsed.path,
        "raw_path": parsed.raw_path.encode(),
        "query_string": parsed.raw_query_string.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "server": ("127.0.0.1", 8004),
        "scheme": "http",
    }
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(scope, receive)


def _signed_request(form: dict[str, str], *, key: str = TOKEN.get_secret_value()) -> Request:
    ref = TaskRef.of(_task())
    url = callback_url(PUBLIC, "/twilio/sms/status", ref.query())
    signature = RequestValidator(key).compute_signature(url, form)
    body = "&".join(f"{k}={v}" for k, v in form.items()).encode()
    # The request arrives at the service's own address; only path and query are the same.
    local = url.replace("https://sirene.example.org/sms", "http://127.0.0.1:8004")
    return _request(local, body, {"X-Twilio-Signature": signature})


async def test_verified_form_accepts_a_valid_signature_against_the_public_url() -> None:
    request = _signed_request({"MessageSid": "SM1", "MessageStatus": "delivered"})
    # The service is mounted under /sms at the public URL: path differs from the local one.
    request.scope["path"] = "/twilio/sms/status"
    form = await verified_form(request, public_url=PUBLIC, auth_token=TOKEN)
    assert form == {"MessageSid": "SM1", "MessageStatus": "delivered"}


@pytest.mark.parametrize("token", ["another-token", None])
async def test_verified_form_refuses_wrong_or_missing_signatures(token: str | None) -> None:
    request = _signed_request({"MessageStatus": "delivered"}, key=token or "x")
    if token is None:
        request = _request(str(request.url), b"MessageStatus=delivered", {})
    with pytest.raises(HTTPException) as info:
        await verified_form(request, public_url=PUBLIC, auth_token=TOKEN)
    assert info.value.status_code == 403


def test_task_ref_round_trips_through_a_canonical_callback_url() -> None:
    task = _task()
    url = callback_url("http://127.0.0.1:8004/", "/twilio/sms/status", TaskRef.of(task).query())
    assert str(URL(url)) == url  # aiohttp re-encodes to exactly this, so signatures survive
    parsed = TaskRef.from_query(dict(URL(url).query))
    assert parsed == TaskRef.of(task)
    assert parsed.exercise is True
    with pytest.raises(HTTPException):
        TaskRef.from_query({"t": "musterstadt"})


def test_error_classes() -> None:
    assert error_class_for_code(30003) is ErrorClass.CONTACT_DEAD
    assert error_class_for_code("21211") is ErrorClass.CONTACT_DEAD
    assert error_class_for_code("30001") is ErrorClass.TRANSIENT
    assert error_class_for_code("30007") is ErrorClass.PERMANENT
    assert error_class_for_code("n/a") is ErrorClass.PERMANENT

    def rest(status: int, code: int) -> TwilioRestException:
        return TwilioRestException(status, "uri", "msg", code, "POST")

    assert classify_exception(rest(400, 21211)) == (ErrorClass.CONTACT_DEAD, "21211")
    assert classify_exception(rest(400, 21602)) == (ErrorClass.PERMANENT, "21602")
    assert classify_exception(rest(429, 20429)) == (ErrorClass.TRANSIENT, "20429")
    assert classify_exception(rest(503, 503)) == (ErrorClass.TRANSIENT, "503")
    assert classify_exception(TimeoutError()) == (ErrorClass.TRANSIENT, "timeout")
    assert classify_exception(ConnectionResetError())[0] is ErrorClass.TRANSIENT


async def test_http_client_rewrites_only_twilio_urls() -> None:
    client = BaseUrlTwilioHttpClient("http://127.0.0.1:8010/", timeout_s=1, max_connections=2)
    try:
        assert (
            client.rewrite("https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json?x=1")
            == "http://127.0.0.1:8010/2010-04-01/Accounts/AC1/Messages.json?x=1"
        )
        assert client.rewrite("https://example.org/a") == "https://example.org/a"
    finally:
        await client.close()
        await asyncio.sleep(0)


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        ({"MessageStatus": "queued"}, None),
        ({"MessageStatus": "sending"}, None),
        ({"MessageStatus": "sent", "MessageSid": "SM1"}, (ReceiptStatus.SENT, None, None)),
        ({"MessageStatus": "delivered"}, (ReceiptStatus.DELIVERED, None, None)),
        (
            {"MessageStatus": "undelivered", "ErrorCode": "30005"},
            (ReceiptStatus.UNDELIVERED, "30005", ErrorClass.CONTACT_DEAD),
        ),
        (
            {"MessageStatus": "failed", "ErrorCode": "30008"},
            (ReceiptStatus.FAILED, "30008", ErrorClass.TRANSIENT),
        ),
        (
            {"MessageStatus": "failed", "ErrorCode": "30007"},
            (ReceiptStatus.FAILED, "30007", ErrorClass.PERMANENT),
        ),
    ],
)
def test_sms_status_mapping(form: dict[str, str], expected: tuple[Any, ...] | None) -> None:
    task = _task()
    receipt = status_receipt(TaskRef.of(task), form)
    if expected is None:
        assert receipt is None
        return
    assert receipt is not None
    assert (receipt.status, receipt.error_code, receipt.error_class) == expected
    assert (receipt.task_id, receipt.alert_id, receipt.channel) == (
        task.task_id,
        task.alert_id,
        Channel.SMS,
    )
    assert receipt.exercise is True
