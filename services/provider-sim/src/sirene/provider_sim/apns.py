"""APNs provider API (HTTP/2 over TLS) as aioapns and Apple's documentation expect it.

Built directly on ``h2`` because aioapns is a strict client: it parses every DATA frame as
JSON (so a 200 must be a single HEADERS frame with END_STREAM and no empty DATA frame, which
generic ASGI servers send) and it matches answers by the ``apns-id`` response header.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    RequestReceived,
    StreamEnded,
    StreamReset,
)
from h2.exceptions import ProtocolError
from h2.settings import SettingCodes

from sirene.provider_sim.certs import CertPaths
from sirene.provider_sim.faults import Rejection
from sirene.provider_sim.service import APNS_TOKEN, SimulatorService
from sirene.provider_sim.settings import SimSettings

logger = logging.getLogger(__name__)

PUSH_TYPES = frozenset(
    {
        "alert",
        "background",
        "voip",
        "complication",
        "fileprovider",
        "mdm",
        "liveactivity",
        "location",
        "pushtotalk",
        "widgets",
        "controls",
    }
)
MAX_PAYLOAD = 4096
MAX_VOIP_PAYLOAD = 5120
TOKEN_MAX_AGE = 3600  # Apple rejects provider tokens older than one hour
_TOKEN_CACHE_SIZE = 256


@dataclass(frozen=True, slots=True)
class ApnsResponse:
    status: int
    apns_id: str
    reason: str | None = None
    timestamp: int | None = None

    def body(self) -> bytes | None:
        if self.reason is None:
            return None
        document: dict[str, Any] = {"reason": self.reason}
        if self.timestamp is not None:
            document["timestamp"] = self.timestamp
        return json.dumps(document).encode()


class ProviderTokenVerifier:
    """Checks ``authorization: bearer <JWT>`` like APNs: ES256, kid and iss, age under an hour.

    Verified tokens are cached (clients reuse one token for up to an hour), so the ECDSA check
    runs once per token, not once per push.
    """

    def __init__(
        self,
        *,
        public_key: ec.EllipticCurvePublicKey | None,
        team_id: str | None,
        key_id: str | None,
    ) -> None:
        self._public_key = public_key
        self._team_id = team_id
        self._key_id = key_id
        self._verified: OrderedDict[str, int] = OrderedDict()

    @classmethod
    def from_settings(cls, settings: SimSettings) -> ProviderTokenVerifier:
        key = (
            _load_public_key(settings.resolved_apns_key_file)
            if settings.apns_verify_signature
            else None
        )
        return cls(public_key=key, team_id=settings.apns_team_id, key_id=settings.apns_key_id)

    def check(self, authorization: str | None, now: float) -> str | None:
        """None when the token is acceptable, else the APNs reason for a 403."""
        if not authorization:
            return "MissingProviderToken"
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return "InvalidProviderToken"
        issued_at = self._verified.get(token)
        if issued_at is None:
            issued = self._verify(token)
            if isinstance(issued, str):
                return issued
            issued_at = issued
            self._verified[token] = issued_at
            if len(self._verified) > _TOKEN_CACHE_SIZE:
                self._verified.popitem(last=False)
        if issued_at < now - TOKEN_MAX_AGE:
            return "ExpiredProviderToken"
        return None

    def _verify(self, token: str) -> int | str:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return "InvalidProviderToken"
        if header.get("alg") != "ES256" or not header.get("kid"):
            return "InvalidProviderToken"
        if self._key_id is not None and header["kid"] != self._key_id:
            return "InvalidProviderToken"
        try:
            if self._public_key is None:
                claims = jwt.decode(token, options={"verify_signature": False})
            else:
                claims = jwt.decode(
                    token,
                    self._public_key,
                    algorithms=["ES256"],
                    options={"require": ["iss", "iat"], "verify_iat": False},
                )
        except jwt.PyJWTError:
            return "InvalidProviderToken"
        iss, iat = claims.get("iss"), claims.get("iat")
        if not isinstance(iss, str) or not iss or not isinstance(iat, int):
            return "InvalidProviderToken"
        if self._team_id is not None and iss != self._team_id:
            return "InvalidProviderToken"
        return iat


def _load_public_key(path: Path) -> ec.EllipticCurvePublicKey:
    data = path.read_bytes()
    key: Any
    if b"PRIVATE KEY" in data:
        key = serialization.load_pem_private_key(data, password=None).public_key()
    else:
        key = serialization.load_pem_public_key(data)
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise TypeError(f"{path} is not an EC (P-256) key")
    return key


class ApnsHandler:
    """Turns one complete HTTP/2 request into an :class:`ApnsResponse`."""

    def __init__(self, service: SimulatorService, verifier: ProviderTokenVerifier) -> None:
        self._service = service
        self._verifier = verifier

    def handle(self, headers: dict[str, str], body: bytes) -> ApnsResponse:
        apns_id = headers.get("apns-id") or str(uuid.uuid4())
        response = self._handle(headers, body, apns_id)
        if response.status != 200:
            self._service.reject_push("apns", response.reason or str(response.status))
        return response

    def _handle(self, headers: dict[str, str], body: bytes, apns_id: str) -> ApnsResponse:
        def error(status: int, reason: str, timestamp: int | None = None) -> ApnsResponse:
            return ApnsResponse(status, apns_id, reason, timestamp)

        path = headers.get(":path", "")
        if not path.startswith("/3/device/"):
            return error(404, "BadPath")
        if headers.get(":method") != "POST":
            return error(405, "MethodNotAllowed")
        if "apns-id" in headers and not _is_uuid(headers["apns-id"]):
            return error(400, "BadMessageId")
        now = time.time()
        auth_problem = self._verifier.check(headers.get("authorization"), now)
        if auth_problem is not None:
            return error(403, auth_problem)
        token = path.removeprefix("/3/device/")
        if not APNS_TOKEN.match(token):
            return error(400, "BadDeviceToken")
        if not headers.get("apns-topic"):
            return error(400, "MissingTopic")
        push_type = headers.get("apns-push-type")
        if push_type is not None and push_type not in PUSH_TYPES:
            return error(400, "InvalidPushType")
        if headers.get("apns-priority", "10") not in {"1", "5", "10"}:
            return error(400, "BadPriority")
        expiration = headers.get("apns-expiration")
        if expiration is not None and not expiration.isdigit():
            return error(400, "BadExpirationDate")
        if len(headers.get("apns-collapse-id", "").encode()) > 64:
            return error(400, "BadCollapseId")
        if not body:
            return error(400, "PayloadEmpty")
        if len(body) > (MAX_VOIP_PAYLOAD if push_type == "voip" else MAX_PAYLOAD):
            return error(413, "PayloadTooLarge")
        try:
            payload = json.loads(body)
        except ValueError:
            return error(400, "PayloadEmpty")
        if not isinstance(payload, dict):
            return error(400, "PayloadEmpty")
        token = token.lower()
        try:
            self._service.faults.check("push")
        except Rejection as exc:
            return error(exc.status, exc.reason)
        if self._service.is_unregistered(token):
            return error(410, "Unregistered", int(now * 1000))
        self._service.record_push(
            platform="apns",
            token=token,
            payload=payload,
            headers=headers,
            notification_id=apns_id,
        )
        return ApnsResponse(200, apns_id)


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return len(value) == 36


@dataclass
class _Stream:
    headers: dict[str, str]
    body: bytearray = field(default_factory=bytearray)


class ApnsProtocol(asyncio.Protocol):
    """One client connection: h2 server state machine, requests answered synchronously."""

    def __init__(self, handler: ApnsHandler, connections: set[ApnsProtocol]) -> None:
        self._handler = handler
        self._connections = connections
        # No inbound header validation by h2: the client's h2 (aioapns builds on the same
        # library) validates the very same rules on its outbound headers, and checking them
        # twice was a fifth of the simulator's CPU per push. What APNs itself checks (path,
        # method, token, topic, push type, priority, payload) is checked in `ApnsHandler`.
        self._conn = H2Connection(
            H2Configuration(
                client_side=False, header_encoding="utf-8", validate_inbound_headers=False
            )
        )
        self._streams: dict[int, _Stream] = {}
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TLS transport is no `asyncio.Transport` subclass: check what is used
        if not all(hasattr(transport, name) for name in ("write", "is_closing", "close")):
            raise TypeError("APNs server needs a stream transport")
        self._transport = cast(asyncio.Transport, transport)
        self._connections.add(self)
        self._conn.initiate_connection()
        # Apple allows 1000 concurrent streams per connection; aioapns sizes its pool from this.
        self._conn.update_settings({SettingCodes.MAX_CONCURRENT_STREAMS: 1000})
        self._flush()

    def data_received(self, data: bytes) -> None:
        try:
            events = self._conn.receive_data(data)
        except ProtocolError:
            logger.warning("apns: HTTP/2 protocol error, closing connection")
            self._flush()
            if self._transport is not None:
                self._transport.close()
            return
        for event in events:
            if isinstance(event, RequestReceived) and event.stream_id is not None:
                headers = {str(k): str(v) for k, v in (event.headers or [])}
                self._streams[event.stream_id] = _Stream(headers)
            elif isinstance(event, DataReceived) and event.stream_id is not None:
                stream = self._streams.get(event.stream_id)
                if stream is not None and event.data is not None:
                    stream.body.extend(event.data)
                self._conn.acknowledge_received_data(
                    event.flow_controlled_length or 0, event.stream_id
                )
            elif isinstance(event, StreamEnded) and event.stream_id is not None:
                stream = self._streams.pop(event.stream_id, None)
                if stream is not None:
                    self._respond(event.stream_id, stream)
            elif isinstance(event, StreamReset) and event.stream_id is not None:
                self._streams.pop(event.stream_id, None)
            elif isinstance(event, ConnectionTerminated):
                self._flush()
                if self._transport is not None:
                    self._transport.close()
                return
        self._flush()

    def _respond(self, stream_id: int, stream: _Stream) -> None:
        try:
            response = self._handler.handle(stream.headers, bytes(stream.body))
        except Exception:
            logger.exception("apns: handler failed")
            response = ApnsResponse(500, str(uuid.uuid4()), "InternalServerError")
        body = response.body()
        headers = [(":status", str(response.status)), ("apns-id", response.apns_id)]
        if response.status == 200:
            headers.append(("apns-unique-id", str(uuid.uuid4())))
        if body is None:
            self._conn.send_headers(stream_id, headers, end_stream=True)
            return
        headers += [("content-type", "application/json"), ("content-length", str(len(body)))]
        self._conn.send_headers(stream_id, headers)
        self._conn.send_data(stream_id, body, end_stream=True)

    def _flush(self) -> None:
        data = self._conn.data_to_send()
        if data and self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            logger.debug("apns: connection lost: %s", type(exc).__name__)
        self._streams.clear()
        self._connections.discard(self)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


def server_ssl_context(paths: CertPaths) -> ssl.SSLContext:
    """TLS 1.2+ with the simulator's server certificate, offering ALPN ``h2``.

    Apple serves HTTP/2 whether or not the client negotiates ALPN (aioapns does not), so the
    server speaks HTTP/2 in both cases.
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(paths.server_cert, paths.server_key)
    context.set_alpn_protocols(["h2"])
    return context


class ApnsServer:
    """The listening APNs endpoint; ``start()`` binds, ``stop()`` closes it and all connections."""

    def __init__(
        self, *, service: SimulatorService, settings: SimSettings, paths: CertPaths
    ) -> None:
        self._handler = ApnsHandler(service, ProviderTokenVerifier.from_settings(settings))
        self._settings = settings
        self._paths = paths
        self._server: asyncio.Server | None = None
        self._connections: set[ApnsProtocol] = set()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("APNs server not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: ApnsProtocol(self._handler, self._connections),
            host=self._settings.host,
            port=self._settings.apns_port,
            ssl=server_ssl_context(self._paths),
        )

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        # Server.close_clients() only exists from Python 3.13 on.
        for connection in list(self._connections):
            connection.close()
        await self._server.wait_closed()
        self._server = None
