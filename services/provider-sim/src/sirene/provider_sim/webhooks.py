"""Signed webhook delivery (status callbacks, TwiML fetches) like Twilio does it."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter
from dataclasses import dataclass
from urllib.parse import urlencode

import aiohttp
from twilio.request_validator import RequestValidator

from sirene.provider_sim.masking import url_for_log

logger = logging.getLogger(__name__)

_RETRY_BASE_DELAY = 0.1


@dataclass(frozen=True, slots=True)
class WebhookResponse:
    status: int
    content_type: str
    text: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def sign(auth_token: str, url: str, params: dict[str, str]) -> str:
    """The ``X-Twilio-Signature`` value for a request to ``url`` with form ``params``."""
    signature: str = RequestValidator(auth_token).compute_signature(url, params)
    return signature


class WebhookSender:
    """Shared HTTP client for webhooks: bounded concurrency, a few retries on transient errors.

    ``start()`` must be awaited inside the running loop before ``send()``; ``close()`` at the end.
    Requests go only to the URL the API client gave us, never anywhere else.
    """

    def __init__(
        self, *, timeout: float, retries: int, concurrency: int, counters: Counter[str]
    ) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._retries = retries
        self._semaphore = asyncio.Semaphore(concurrency)
        self._counters = counters
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                headers={"User-Agent": "TwilioProxy/1.1 (sirene-provider-sim)"},
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(
        self, *, url: str, params: dict[str, str], auth_token: str, method: str = "POST"
    ) -> WebhookResponse | None:
        """Deliver one signed request; the response, or None after all attempts failed."""
        if self._session is None:
            raise RuntimeError("WebhookSender.start() was not awaited")
        if not url.startswith(("http://", "https://")):
            logger.warning("webhook skipped, not an http(s) URL: %s", url_for_log(url))
            self._counters["webhooks.failed"] += 1
            return None
        if method == "GET":
            # Twilio appends the parameters to the URL and signs the full URL alone.
            url = f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"
            body: dict[str, str] | None = None
            signature = sign(auth_token, url, {})
        else:
            body = params
            signature = sign(auth_token, url, params)
        headers = {
            "X-Twilio-Signature": signature,
            "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
        }
        last_error = ""
        for attempt in range(self._retries + 1):
            if attempt:
                await asyncio.sleep(_RETRY_BASE_DELAY * 2 ** (attempt - 1))
            try:
                async with (
                    self._semaphore,
                    self._session.request(method, url, data=body, headers=headers) as response,
                ):
                    result = WebhookResponse(
                        status=response.status,
                        content_type=response.headers.get("Content-Type", ""),
                        text=await response.text(),
                    )
            except (aiohttp.ClientError, TimeoutError) as exc:
                last_error = type(exc).__name__
                continue
            if result.status >= 500 or result.status == 429:
                last_error = f"HTTP {result.status}"
                continue
            self._counters["webhooks.ok" if result.ok else "webhooks.failed"] += 1
            if not result.ok:
                logger.warning("webhook %s answered %s", url_for_log(url), result.status)
            return result
        self._counters["webhooks.failed"] += 1
        logger.warning(
            "webhook %s failed after %d attempts: %s",
            url_for_log(url),
            self._retries + 1,
            last_error,
        )
        return None
