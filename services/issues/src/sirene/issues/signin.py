"""Staff sign-in for the inbox: argon2 passwords, one-time password set-up codes, a lockout
after repeated failures, and sessions in Redis (the cookie holds an opaque random value; only
its hash is a Redis key, so a Redis dump holds no usable session).

The approach is the publisher console's (`sirene.publisher.accounts`); services do not import
each other, so the few lines live here too. How an account gets its password: the tenant
administrator creates the account and hands the member a one-time set-up link (valid
`setup_link_ttl_h`, used once); the member chooses the password there, so nobody else ever
knows it. A forgotten password: the administrator issues a new link; setting a new password
ends every open session of that member."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from redis.asyncio import Redis

from sirene.runtime import Document
from sirene.runtime.errors import InvalidInputError
from sirene.schemas import utcnow

from .staff import token_hash

COOKIE = "sirene_issues_session"
"""Name of the session cookie (distinct from the publisher console's: cookies are per host,
not per port)."""

CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"
MAX_PASSWORD = 256

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("no such account")


async def hash_password(password: str) -> str:
    """The argon2id hash of a password (computed off the event loop: it takes tens of ms)."""
    return await asyncio.to_thread(_hasher.hash, password)


async def password_matches(stored: str | None, password: str) -> bool:
    """Whether `password` matches `stored`; without a stored hash it checks a dummy one, so the
    answer takes about as long whether or not the account (or its password) exists."""

    def verify() -> bool:
        try:
            return _hasher.verify(stored or _DUMMY_HASH, password) and stored is not None
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(verify)


def check_password_rules(password: str, *, repeated: str, staff_id: str, min_length: int) -> None:
    """A new password: long enough, typed twice alike, not the account id (422 otherwise)."""
    loc = ("body", "password")
    if password != repeated:
        raise InvalidInputError(("body", "repeat"), "password_mismatch")
    if len(password) < min_length:
        raise InvalidInputError(loc, "password_short", min=min_length)
    if len(password) > MAX_PASSWORD:
        raise InvalidInputError(loc, "password_long", max=MAX_PASSWORD)
    contains_id = len(staff_id) >= 3 and staff_id.lower() in password.lower()
    if contains_id or len(set(password)) < 4:
        raise InvalidInputError(loc, "password_weak")


@dataclass(frozen=True, slots=True)
class SetupCode:
    """A one-time password set-up code: the code (given out once) and what is stored."""

    code: str
    hash: str
    expires_at: datetime


def new_setup_code(ttl_h: int) -> SetupCode:
    """A fresh 256-bit set-up code, valid `ttl_h` hours."""
    code = secrets.token_urlsafe(32)
    return SetupCode(code, token_hash(code), utcnow() + timedelta(hours=ttl_h))


def password_fingerprint(doc: Document) -> str:
    """A short value that changes whenever the member's password changes: sessions carry it,
    so a new password ends the sessions opened with the old one."""
    return hashlib.sha256((doc.get("password_hash") or "").encode()).hexdigest()[:16]


class LoginGuard:
    """Slows down password guessing: at most `limit` failed sign-ins per account (tenant and
    staff id) within `window_s`; then sign-in is refused until the window has passed, even
    with the right password. Counters live in Redis with expiry."""

    def __init__(
        self, redis: Redis, *, limit: int, window_s: int, prefix: str = "sirene:issues:login"
    ) -> None:
        self._redis = redis
        self._limit = limit
        self._window_s = window_s
        self._prefix = prefix

    def _key(self, tenant: str, staff_id: str) -> str:
        return f"{self._prefix}:{token_hash(tenant + chr(31) + staff_id)}"

    async def blocked(self, tenant: str, staff_id: str) -> bool:
        raw = await self._redis.get(self._key(tenant, staff_id))
        return raw is not None and int(raw) >= self._limit

    async def failed(self, tenant: str, staff_id: str) -> None:
        key = self._key(tenant, staff_id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, self._window_s, nx=True)
        await pipe.execute()

    async def succeeded(self, tenant: str, staff_id: str) -> None:
        await self._redis.delete(self._key(tenant, staff_id))


@dataclass(frozen=True, slots=True)
class Session:
    """What a live session says: whose it is and its CSRF token."""

    tenant: str
    staff_id: str
    csrf: str
    fingerprint: str


class Sessions:
    """Inbox sessions in Redis: an opaque cookie value → who, with an idle expiry."""

    def __init__(self, redis: Redis, *, ttl_s: int, prefix: str = "sirene:issues:sess") -> None:
        self._redis = redis
        self._ttl_s = ttl_s
        self._prefix = prefix

    def _key(self, token: str) -> str:
        return f"{self._prefix}:{token_hash(token)}"

    async def open(self, doc: Document) -> str:
        """A new session for the staff member `doc`; returns the cookie value."""
        token = secrets.token_urlsafe(32)
        data = {
            "tenant": doc["tenant"],
            "staff": doc["id"],
            "csrf": secrets.token_urlsafe(32),
            "fp": password_fingerprint(doc),
        }
        await self._redis.set(self._key(token), orjson.dumps(data), ex=self._ttl_s)
        return token

    async def get(self, token: str) -> Session | None:
        """The live session of a cookie value (its idle expiry renewed), or None."""
        key = self._key(token)
        raw = await self._redis.get(key)
        if raw is None:
            return None
        await self._redis.expire(key, self._ttl_s)
        data = orjson.loads(raw)
        return Session(data["tenant"], data["staff"], data["csrf"], data["fp"])

    async def close(self, token: str) -> None:
        await self._redis.delete(self._key(token))
