"""Short-lived secrets in Redis (nothing here is stored in MongoDB, and everything expires):
verification codes with a limited number of attempts, and citizen portal sessions.

A code is stored only as an HMAC (keyed with `link_secret`), so a Redis dump reveals no
usable code; a session token only as its SHA-256."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr
from redis.asyncio import Redis

from sirene.schemas import new_id

VERIFY_PREFIX = "sub:verif:"
SESSION_PREFIX = "sub:sess:"
SESSIONS_OF_PREFIX = "sub:sessions:"
CODE_DIGITS = 6


def new_code() -> str:
    """A random six-digit code."""
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


@dataclass(frozen=True, slots=True)
class Pending:
    """A verification waiting for its code: who asked, what it will do once verified."""

    id: str
    tenant: str
    data: dict[str, Any]


class CheckResult:
    """Outcome of entering a code."""

    OK = "ok"
    WRONG = "wrong"
    EXHAUSTED = "exhausted"
    EXPIRED = "expired"


class Codes:
    """Verification codes and sessions. Contract: a code verifies at most once
    (`check` deletes it on success), at most `attempts` wrong entries are allowed (then the
    verification is gone), and everything expires after its TTL."""

    def __init__(self, redis: Redis, *, secret: SecretStr, attempts: int) -> None:
        self.redis = redis
        self._secret = secret.get_secret_value().encode()
        self.attempts = attempts

    def _hash(self, verification_id: str, code: str) -> str:
        return hmac.new(self._secret, f"{verification_id}:{code}".encode(), "sha256").hexdigest()

    async def create(self, *, tenant: str, data: dict[str, Any], ttl_s: int) -> tuple[str, str]:
        """Stores a new verification; returns (verification id, code)."""
        verification_id = new_id()
        code = new_code()
        record = {"tenant": tenant, "code": self._hash(verification_id, code), "data": data}
        await self.redis.set(VERIFY_PREFIX + verification_id, json.dumps(record), ex=ttl_s)
        return verification_id, code

    async def peek(self, verification_id: str) -> Pending | None:
        """The pending verification (for pages and the TwiML that speaks the code)."""
        raw = await self.redis.get(VERIFY_PREFIX + verification_id)
        if raw is None:
            return None
        record = json.loads(raw)
        return Pending(verification_id, record["tenant"], record["data"])

    async def code_for_call(self, verification_id: str, code: str) -> bool:
        """Whether `code` belongs to the verification (the voice TwiML carries it signed)."""
        raw = await self.redis.get(VERIFY_PREFIX + verification_id)
        if raw is None:
            return False
        return hmac.compare_digest(json.loads(raw)["code"], self._hash(verification_id, code))

    async def check(self, verification_id: str, code: str) -> tuple[str, Pending | None]:
        """Enters a code: (`CheckResult`, the verification when OK)."""
        key = VERIFY_PREFIX + verification_id
        tries_key = key + ":tries"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.get(key)
            pipe.incr(tries_key)
            pipe.ttl(key)
            raw, tries, ttl = await pipe.execute()
        if raw is None:
            await self.redis.delete(tries_key)
            return CheckResult.EXPIRED, None
        if ttl and int(ttl) > 0:
            await self.redis.expire(tries_key, int(ttl))
        record = json.loads(raw)
        if int(tries) > self.attempts:
            await self.redis.delete(key, tries_key)
            return CheckResult.EXHAUSTED, None
        if not hmac.compare_digest(record["code"], self._hash(verification_id, code.strip())):
            if int(tries) >= self.attempts:
                await self.redis.delete(key, tries_key)
                return CheckResult.EXHAUSTED, None
            return CheckResult.WRONG, None
        # Only the request that deletes the key wins; a parallel duplicate gets EXPIRED.
        if not await self.redis.delete(key):
            return CheckResult.EXPIRED, None
        await self.redis.delete(tries_key)
        return CheckResult.OK, Pending(verification_id, record["tenant"], record["data"])

    # sessions

    @staticmethod
    def _session_key(token: str) -> str:
        return SESSION_PREFIX + hashlib.sha256(token.encode()).hexdigest()

    async def open_session(self, *, tenant: str, citizen_id: str, ttl_s: int) -> str:
        """A new session token for the citizen."""
        token = secrets.token_urlsafe(32)
        key = self._session_key(token)
        index = f"{SESSIONS_OF_PREFIX}{tenant}:{citizen_id}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(key, json.dumps({"tenant": tenant, "citizen": citizen_id}), ex=ttl_s)
            pipe.sadd(index, key)
            pipe.expire(index, ttl_s)
            await pipe.execute()
        return token

    async def session(self, token: str) -> tuple[str, str] | None:
        """(tenant, citizen id) of a valid session token."""
        if not token or len(token) > 100:
            return None
        raw = await self.redis.get(self._session_key(token))
        if raw is None:
            return None
        record = json.loads(raw)
        return record["tenant"], record["citizen"]

    async def close_session(self, token: str) -> None:
        await self.redis.delete(self._session_key(token))

    async def forget_citizen(self, *, tenant: str, citizen_id: str) -> int:
        """Ends every session of the citizen (erasure); returns how many keys went."""
        index = f"{SESSIONS_OF_PREFIX}{tenant}:{citizen_id}"
        keys = list(await self.redis.smembers(index))
        return int(await self.redis.delete(index, *keys))


EMAIL_LINK_PREFIX = "sub:emaillink:"
EMAIL_LINK_OF_PREFIX = "sub:emaillink-of:"


@dataclass(frozen=True, slots=True)
class EmailLink:
    """A pending e-mail verification: whose address (as a hash) and what it will enable."""

    tenant: str
    citizen_id: str
    email_hash: str
    topics: list[str]
    language: str


_DELETE_IF_EQUAL = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _link_record(link: EmailLink) -> str:
    return json.dumps(
        {
            "tenant": link.tenant,
            "citizen": link.citizen_id,
            "email": link.email_hash,
            "topics": link.topics,
            "language": link.language,
        }
    )


class EmailLinks:
    """Single-use links that verify an e-mail address. Contract: the token itself is never
    stored (Redis holds its HMAC, keyed with `link_secret`); a citizen has at most one valid
    link (`create` deletes the one before); `take` hands a link out at most once; every link
    expires after its TTL."""

    def __init__(self, redis: Redis, *, secret: SecretStr) -> None:
        self.redis = redis
        self._secret = secret.get_secret_value().encode()

    def _key(self, token: str) -> str:
        digest = hmac.new(self._secret, b"email-link:" + token.encode(), "sha256").hexdigest()
        return EMAIL_LINK_PREFIX + digest

    @staticmethod
    def _index(tenant: str, citizen_id: str) -> str:
        return f"{EMAIL_LINK_OF_PREFIX}{tenant}:{citizen_id}"

    async def create(self, link: EmailLink, *, ttl_s: int) -> str:
        """Stores a new link for the citizen, replacing any earlier one; returns its token."""
        token = secrets.token_urlsafe(32)
        key = self._key(token)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(key, _link_record(link), ex=ttl_s)
            # SET … GET swaps atomically: of two parallel requests, each deletes the link the
            # other replaced, so only the last one stays valid
            pipe.set(self._index(link.tenant, link.citizen_id), key, ex=ttl_s, get=True)
            _, earlier = await pipe.execute()
        if earlier is not None and _text(earlier) != key:
            await self.redis.delete(_text(earlier))
        return token

    async def drop(self, token: str, link: EmailLink) -> None:
        """Forgets a link that never went out (the e-mail could not be sent)."""
        key = self._key(token)
        await self.redis.delete(key)
        await self.redis.eval(_DELETE_IF_EQUAL, 1, self._index(link.tenant, link.citizen_id), key)

    @staticmethod
    def _link(raw: bytes | str) -> EmailLink:
        record = json.loads(raw)
        return EmailLink(
            tenant=record["tenant"],
            citizen_id=record["citizen"],
            email_hash=record["email"],
            topics=list(record["topics"]),
            language=record["language"],
        )

    async def peek(self, token: str) -> EmailLink | None:
        """The pending link (for the confirm page); None when expired, used or replaced."""
        if not token or len(token) > 100:
            return None
        raw = await self.redis.get(self._key(token))
        return None if raw is None else self._link(raw)

    async def take(self, token: str) -> tuple[EmailLink, int] | None:
        """Removes the link and returns it with its remaining seconds, or None when expired,
        used or replaced. Of two parallel requests only one gets it."""
        if not token or len(token) > 100:
            return None
        key = self._key(token)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.ttl(key)
            pipe.getdel(key)
            ttl, raw = await pipe.execute()
        if raw is None:
            return None
        link = self._link(raw)
        await self.redis.eval(_DELETE_IF_EQUAL, 1, self._index(link.tenant, link.citizen_id), key)
        return link, max(1, int(ttl))

    async def restore(self, token: str, link: EmailLink, *, ttl_s: int) -> None:
        """Puts a taken link back (its confirmation failed for a reason not the citizen's)."""
        key = self._key(token)
        # only while no newer link was asked for: that one replaced this one
        if await self.redis.set(self._index(link.tenant, link.citizen_id), key, ex=ttl_s, nx=True):
            await self.redis.set(key, _link_record(link), ex=ttl_s)

    async def forget_citizen(self, *, tenant: str, citizen_id: str) -> int:
        """Deletes the citizen's pending link (erasure); returns how many keys went."""
        index = self._index(tenant, citizen_id)
        current = await self.redis.get(index)
        keys = [index]
        if current is not None:
            keys.append(_text(current))
        return int(await self.redis.delete(*keys))
