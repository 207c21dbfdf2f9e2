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
