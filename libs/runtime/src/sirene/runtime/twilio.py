"""Twilio wiring shared by channel-sms and channel-voice: settings, an async HTTP client that
can point the official `twilio` library at another base URL (the provider simulator) and the
worker's client holder (`TwilioClients`), error classification (`failed_hand_off` for a call
that raised), callback URLs, and verification of `X-Twilio-Signature` on webhooks.

Contract of the webhook helper: `verified_form(request, ...)` returns the form parameters only
when the signature matches the URL as Twilio called it (`public_url` + path + query); anything
else raises `HTTPException(403)` before a handler can change state. Because the query string is
covered by the signature, ids put into callback URLs (`callback_url`) cannot be forged."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit

import aiohttp
from fastapi import HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from starlette.datastructures import ImmutableMultiDict
from twilio.base.exceptions import TwilioException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response as TwilioResponse
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from yarl import URL

from sirene.schemas import Channel, DeliveryReceipt, DeliveryTask, ErrorClass, ReceiptStatus
from sirene.schemas.common import EntityId, TenantId

from .delivery import ChannelSettings, Outcome
from .logging import mask_phone
from .settings import is_local_url

log = logging.getLogger(__name__)
_http_log = logging.getLogger(f"{__name__}.http")
# The twilio client logs every request and response at INFO; keep that out of service logs.
_http_log.setLevel(logging.WARNING)

TWILIO_API = "https://api.twilio.com"
SIGNATURE_HEADER = "X-Twilio-Signature"

# The provider simulator's development account (services/provider-sim settings.py).
DEV_ACCOUNT_SID = "AC5e1f2a3b4c5d6e7f8091a2b3c4d5e6f7"
DEV_AUTH_TOKEN = "sirene-sim-dev-auth-token-0000001"  # noqa: S105 -- simulator-only credential

CONTACT_DEAD_CODES = frozenset(
    {
        21211,  # invalid 'To' number
        21214,  # 'To' number cannot be reached (voice)
        21217,  # invalid 'To' number (voice)
        21614,  # 'To' is not a mobile number
        30003,  # unreachable destination handset
        30005,  # unknown destination handset
        30006,  # landline or unreachable carrier
        21610,  # recipient replied STOP at Twilio: sending again is refused
    }
)
"""Twilio error codes that mean the phone number itself is dead: stop using it."""

TRANSIENT_CODES = frozenset(
    {
        20429,  # too many requests
        30001,  # queue overflow
        30008,  # unknown error (carrier)
        30009,  # missing segment
        30017,  # carrier network congestion
        30500,  # unknown error (voice)
    }
)
"""Twilio error codes worth trying again later."""


class TwilioServiceSettings(ChannelSettings):
    """Settings of a channel worker that talks to Twilio (plus `provider_concurrency`,
    `batch_size`, `dedup_ttl_s` of `ChannelSettings`). Subclasses set their own `env_prefix`.

    Defaults point at the provider simulator's development account on 127.0.0.1:8010."""

    twilio_api_url: str = Field(
        default="http://127.0.0.1:8010",
        description="Base URL of the Twilio REST API ('https://api.twilio.com' in production).",
    )
    twilio_account_sid: str = Field(
        default=DEV_ACCOUNT_SID, pattern=r"^AC[0-9a-fA-F]{32}$", description="Account SID."
    )
    twilio_auth_token: SecretStr = Field(
        default=SecretStr(DEV_AUTH_TOKEN),
        description="Auth token: API credential and the key webhook signatures are checked with.",
    )
    twilio_from: str = Field(
        default="+15005550006", pattern=r"^\+[1-9]\d{1,14}$", description="Sender number (E.164)."
    )
    twilio_timeout_s: float = Field(default=10.0, gt=0, description="Per API request.")

    def production_problems(self) -> list[str]:
        problems = super().production_problems()
        if is_local_url(self.twilio_api_url):
            problems.append("twilio_api_url must be Twilio's https API, not a simulator")
        if self.twilio_account_sid == DEV_ACCOUNT_SID:
            problems.append("twilio_account_sid is the simulator's development account")
        token = self.twilio_auth_token.get_secret_value()
        if token == DEV_AUTH_TOKEN or len(token) < 32:
            problems.append("twilio_auth_token must be the account's real auth token")
        if not self.public_url or is_local_url(self.public_url):
            problems.append("public_url must be the https address Twilio calls back")
        return problems


class BaseUrlTwilioHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    """The twilio library's HTTP client interface on aiohttp, sending every request to
    `base_url` instead of https://api.twilio.com (path and query kept), over a bounded pool of
    kept-alive connections.

    `request` does what the library's `AsyncTwilioHttpClient.request` does on the wire (Basic
    auth, the form url-encoded like aiohttp's `FormData`, the library's headers), minus its
    per-request overhead on the hand-off path: the auth header is encoded once per credential,
    the form goes out as one pre-encoded body, and the request/response log lines are only
    built when the logger would print them.

    Create it inside the running event loop (it owns an aiohttp session); `close()` at the end."""

    def __init__(self, base_url: str, *, timeout_s: float, max_connections: int) -> None:
        super().__init__(pool_connections=False, timeout=timeout_s, logger=_http_log)
        self.base_url = base_url.rstrip("/")
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=max_connections),
            timeout=aiohttp.ClientTimeout(total=timeout_s),
        )
        self._auth_headers: dict[tuple[str, str], str] = {}

    def rewrite(self, url: str) -> str:
        """`https://api.twilio.com/2010-04-01/...` → `<base_url>/2010-04-01/...`."""
        parts = urlsplit(url)
        if not parts.hostname or not parts.hostname.endswith("twilio.com"):
            return url
        query = f"?{parts.query}" if parts.query else ""
        return f"{self.base_url}{parts.path}{query}"

    def _authorization(self, auth: tuple[str, str]) -> str:
        header = self._auth_headers.get(auth)
        if header is None:
            # what aiohttp's (deprecated) BasicAuth encodes: latin-1 "login:password", base64
            credentials = base64.b64encode(f"{auth[0]}:{auth[1]}".encode("latin-1")).decode()
            header = f"Basic {credentials}"
            self._auth_headers = {auth: header}  # one credential per worker: keep only the last
        return header

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 -- the twilio library's signature
        allow_redirects: bool = False,
    ) -> TwilioResponse:
        if timeout is not None and timeout <= 0:
            raise ValueError(timeout)
        target = self.rewrite(url)
        sent_headers = dict(headers or {})
        if auth is not None:
            sent_headers["Authorization"] = self._authorization(auth)
        body: bytes | None = None
        if data:
            body = urlencode(data, doseq=True).encode()
            sent_headers["Content-Type"] = "application/x-www-form-urlencoded"
        if self.logger.isEnabledFor(logging.INFO):
            self.log_request(
                {"method": method.upper(), "url": target, "params": params, "headers": headers}
            )
        async with self.session.request(
            method.upper(),
            target,
            params=cast(Any, params),  # the twilio library's query values, as it passes them
            data=body,
            headers=sent_headers,
            allow_redirects=allow_redirects,
            timeout=aiohttp.ClientTimeout(total=timeout if timeout is not None else self.timeout),
        ) as response:
            text = await response.text()
            if self.logger.isEnabledFor(logging.INFO):
                self.log_response(response.status, response)
            return TwilioResponse(response.status, text, response.headers)


def create_twilio_client(settings: TwilioServiceSettings) -> tuple[Client, BaseUrlTwilioHttpClient]:
    """The twilio `Client` and its HTTP client (close the latter at shutdown). Call inside the
    running event loop."""
    http = BaseUrlTwilioHttpClient(
        settings.twilio_api_url,
        timeout_s=settings.twilio_timeout_s,
        max_connections=settings.provider_concurrency,
    )
    client = Client(
        settings.twilio_account_sid,
        settings.twilio_auth_token.get_secret_value(),
        http_client=http,
    )
    return client, http


class TwilioClients:
    """The twilio `Client` of a worker. Contract: `start()` inside the running event loop (the
    HTTP client owns an aiohttp session, which belongs to that loop) before `client` is used;
    `stop()` at shutdown."""

    def __init__(self, settings: TwilioServiceSettings) -> None:
        self.settings = settings
        self._client: Client | None = None
        self._http: BaseUrlTwilioHttpClient | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            raise RuntimeError("TwilioClients.start() was not awaited")
        return self._client

    async def start(self) -> None:
        self._client, self._http = create_twilio_client(self.settings)

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.close()
        self._client = self._http = None


def error_class_for_code(code: int | str | None) -> ErrorClass:
    """How a Twilio error code (API error or ErrorCode of a status callback) is handled."""
    try:
        number = int(code) if code is not None else None
    except ValueError:
        return ErrorClass.PERMANENT
    if number in CONTACT_DEAD_CODES:
        return ErrorClass.CONTACT_DEAD
    if number in TRANSIENT_CODES:
        return ErrorClass.TRANSIENT
    return ErrorClass.PERMANENT


def classify_exception(exc: BaseException) -> tuple[ErrorClass, str]:
    """Error class and a short error code for an exception raised by a twilio API call."""
    if isinstance(exc, TwilioException):
        status: int | None = getattr(exc, "status", None)
        code: Any = getattr(exc, "code", None)
        label = str(code if code is not None else status)[:40]
        if status is not None and (status == 429 or status >= 500):
            return ErrorClass.TRANSIENT, label
        return error_class_for_code(code), label
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return ErrorClass.TRANSIENT, "timeout"
    if isinstance(exc, aiohttp.ClientError | OSError):
        return ErrorClass.TRANSIENT, type(exc).__name__[:40]
    return ErrorClass.TRANSIENT, type(exc).__name__[:40]


def failed_hand_off(
    task: DeliveryTask, exc: BaseException, *, noun: str, logger: logging.Logger
) -> Outcome:
    """The FAILED outcome of a twilio API call that raised (classified by
    `classify_exception`), logged on `logger` with the number masked."""
    error_class, code = classify_exception(exc)
    logger.warning(
        f"{task.channel.value} hand-off failed",
        extra={
            "task_id": task.task_id,
            "to": mask_phone(task.address),
            "error_code": code,
            "error_class": error_class.value,
        },
    )
    return Outcome(
        ReceiptStatus.FAILED,
        error_code=code,
        error_class=error_class,
        detail=f"twilio rejected the {noun} ({code})",
    )


class TaskRef(BaseModel):
    """Identifies the task a provider callback is about; travels in the (signed) query string
    of callback URLs, so callbacks need no lookup and no per-message state in Redis."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    tenant_id: TenantId = Field(alias="t")
    alert_id: EntityId = Field(alias="a")
    task_id: str = Field(alias="k", min_length=32, max_length=32, pattern=r"^[0-9a-f]{32}$")
    citizen_id: EntityId = Field(alias="c")
    attempt: int = Field(alias="n", ge=1)
    exercise: bool = Field(alias="x")
    published_at: datetime = Field(alias="p")

    @classmethod
    def of(cls, task: DeliveryTask) -> TaskRef:
        return cls(
            tenant_id=task.tenant_id,
            alert_id=task.alert_id,
            task_id=task.task_id,
            citizen_id=task.citizen_id,
            attempt=task.attempt,
            exercise=task.exercise,
            published_at=task.published_at,
        )

    def query(self) -> dict[str, str]:
        """The query parameters (short names keep the URLs short)."""
        return {
            "t": self.tenant_id,
            "a": self.alert_id,
            "k": self.task_id,
            "c": self.citizen_id,
            "n": str(self.attempt),
            "x": "1" if self.exercise else "0",
            "p": self.published_at.isoformat(),
        }

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> TaskRef:
        """Parses the query of a callback; raises `HTTPException(400)` if it is not ours."""
        try:
            return cls.model_validate(dict(query))
        except ValidationError:
            raise HTTPException(status_code=400, detail="callback does not name a task") from None

    def receipt(
        self,
        *,
        channel: Channel,
        status: ReceiptStatus,
        provider_ref: str | None,
        error_code: str | None = None,
        error_class: ErrorClass | None = None,
        detail: str | None = None,
    ) -> DeliveryReceipt:
        """A receipt for this task (from a provider callback)."""
        return DeliveryReceipt(
            tenant_id=self.tenant_id,
            task_id=self.task_id,
            alert_id=self.alert_id,
            citizen_id=self.citizen_id,
            channel=channel,
            status=status,
            exercise=self.exercise,
            provider="twilio",
            provider_ref=provider_ref[:128] if provider_ref else None,
            error_code=error_code[:40] if error_code else None,
            error_class=error_class,
            detail=detail[:500] if detail else None,
            attempt=self.attempt,
            published_at=self.published_at,
        )


def callback_url(base_url: str, path: str, params: Mapping[str, str]) -> str:
    """`<base_url><path>?<params>`: a webhook URL whose query Twilio signs along with the body.

    Encoded in the canonical form of yarl (which aiohttp-based callers re-encode URLs to), so
    the URL that arrives is byte for byte the URL that was signed."""
    return str(URL(f"{base_url.rstrip('/')}{path}").with_query(dict(params)))


def signed_url(public_url: str, request: Request) -> str:
    """The URL Twilio called, as it signed it: the public base URL, the path and the query."""
    query = request.url.query
    return f"{public_url.rstrip('/')}{request.url.path}{'?' + query if query else ''}"


async def verified_form(
    request: Request, *, public_url: str, auth_token: SecretStr
) -> dict[str, str]:
    """The form parameters of a Twilio webhook whose `X-Twilio-Signature` is valid; raises
    `HTTPException(403)` otherwise (nothing else has been read or changed by then). The query
    parameters (`request.query_params`) are covered by the same signature."""
    signature = request.headers.get(SIGNATURE_HEADER)
    if not signature:
        raise HTTPException(status_code=403, detail="missing Twilio signature")
    body = (await request.body()).decode("utf-8", errors="replace")
    if request.method == "GET":
        form: ImmutableMultiDict[str, str] = ImmutableMultiDict()
    else:
        form = ImmutableMultiDict(parse_qsl(body, keep_blank_values=True))
    validator = RequestValidator(auth_token.get_secret_value())
    if not validator.validate(signed_url(public_url, request), form, signature):
        log.warning("twilio webhook with an invalid signature", extra={"path": request.url.path})
        raise HTTPException(status_code=403, detail="invalid Twilio signature")
    return dict(form)


__all__ = [
    "CONTACT_DEAD_CODES",
    "DEV_ACCOUNT_SID",
    "DEV_AUTH_TOKEN",
    "SIGNATURE_HEADER",
    "TRANSIENT_CODES",
    "TWILIO_API",
    "BaseUrlTwilioHttpClient",
    "TaskRef",
    "TwilioClients",
    "TwilioServiceSettings",
    "callback_url",
    "classify_exception",
    "create_twilio_client",
    "error_class_for_code",
    "failed_hand_off",
    "signed_url",
    "verified_form",
]
