"""The twilio HTTP client (`BaseUrlTwilioHttpClient`) against a local aiohttp server: what it
sends is what the library's own `AsyncTwilioHttpClient` sends (Basic auth, the form encoded as
aiohttp's `FormData` encodes it, the library's headers), over one kept-alive connection."""

from __future__ import annotations

import asyncio
import base64
import socket
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import pytest
from aiohttp import web
from twilio.rest import Client

from sirene.runtime.twilio import DEV_ACCOUNT_SID, DEV_AUTH_TOKEN, BaseUrlTwilioHttpClient


@pytest.fixture
async def recorder() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []

    async def handle(request: web.Request) -> web.Response:
        transport = request.transport
        seen.append(
            {
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                "headers": dict(request.headers),
                "body": await request.read(),
                "peer": transport.get_extra_info("peername") if transport else None,
            }
        )
        return web.json_response(
            {"sid": f"SM{len(seen):032x}", "status": "queued", "to": "+4917000000001"},
            status=201,
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    site = web.SockSite(runner, sock)
    await site.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", seen
    finally:
        await runner.cleanup()


async def test_requests_go_out_like_the_librarys_over_one_connection(
    recorder: tuple[str, list[dict[str, Any]]],
) -> None:
    base_url, seen = recorder
    http = BaseUrlTwilioHttpClient(base_url, timeout_s=5, max_connections=2)
    client = Client(DEV_ACCOUNT_SID, DEV_AUTH_TOKEN, http_client=http)
    try:
        for i in range(3):
            message = await client.messages.create_async(
                to="+4917000000001",
                from_="+15005550006",
                body=f"Straße gesperrt & Ufer {i}",
                status_callback="http://127.0.0.1:9/cb?k=1&t=a",
            )
            assert message.sid == f"SM{i + 1:032x}"
        await client.calls.create_async(
            to="+4917000000001",
            from_="+15005550006",
            twiml="<Response><Hangup/></Response>",
            status_callback_event=["initiated", "completed"],
        )
    finally:
        await http.close()
        await asyncio.sleep(0)

    first = seen[0]
    assert first["method"] == "POST"
    assert first["path"] == f"/2010-04-01/Accounts/{DEV_ACCOUNT_SID}/Messages.json"
    credentials = base64.b64decode(first["headers"]["Authorization"].removeprefix("Basic "))
    assert credentials.decode() == f"{DEV_ACCOUNT_SID}:{DEV_AUTH_TOKEN}"
    assert first["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert first["headers"]["User-Agent"].startswith("twilio-python/")
    expected = aiohttp.FormData(
        {
            "To": "+4917000000001",
            "From": "+15005550006",
            "Body": "Straße gesperrt & Ufer 0",
            "StatusCallback": "http://127.0.0.1:9/cb?k=1&t=a",
        }
    )()
    assert isinstance(expected, aiohttp.payload.BytesPayload)
    assert parse_qs(first["body"].decode()) == parse_qs(expected._value.decode())
    call = parse_qs(seen[3]["body"].decode())
    assert call["StatusCallbackEvent"] == ["initiated", "completed"]  # repeated keys kept
    assert call["Twiml"] == ["<Response><Hangup/></Response>"]
    assert len({r["peer"] for r in seen}) == 1  # kept alive: every request on one connection
