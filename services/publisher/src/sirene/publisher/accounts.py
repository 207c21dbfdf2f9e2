"""Staff accounts of a tenant: roles, argon2 passwords, personal API tokens, TOTP second factor,
console sessions (in Redis, with expiry) and the per-tenant settings (four-eyes, TOTP policy).

Who may do what is decided here (`require`), so the API and the console apply the same rules."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from redis.asyncio import Redis

from sirene.runtime import Document
from sirene.runtime.errors import ConflictError, NotFoundError
from sirene.schemas import Severity, new_id, utcnow

from .errors import ForbiddenError
from .repository import Repository
from .roles import Role

TOTP_ROLES = frozenset({Role.ALERTER, Role.APPROVER})
"""Roles that need a second factor in the console when the tenant requires one."""

API_PRINCIPAL = "api"
"""Staff id of the tenant's integration token from the settings (never an approver)."""

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("no such account")


@dataclass(frozen=True, slots=True)
class TenantPolicy:
    """A tenant's rules: which severities need four eyes, whether TOTP is required."""

    four_eyes: frozenset[Severity] = frozenset({Severity.EXTREME, Severity.SEVERE})
    require_totp: bool = False

    @classmethod
    def from_doc(cls, doc: Document | None) -> TenantPolicy:
        if doc is None:
            return cls()
        return cls(
            four_eyes=frozenset(Severity(s) for s in doc.get("four_eyes", [])),
            require_totp=bool(doc.get("require_totp", False)),
        )


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller: a staff member of one tenant (or the tenant's API token)."""

    tenant: str
    id: str
    name: str
    roles: frozenset[Role]
    via: str = "token"  # "token" (API) or "session" (console)
    mfa: bool = False  # the console session was opened with a valid TOTP code
    csrf: str = ""
    policy: TenantPolicy = field(default_factory=TenantPolicy)

    def has(self, role: Role) -> bool:
        return role in self.roles


def require(principal: Principal, *roles: Role) -> Role:
    """The first of `roles` the principal holds, or `ForbiddenError`. In the console, alerter
    and approver actions need a TOTP-verified session when the tenant requires it."""
    held = next((r for r in roles if principal.has(r)), None)
    if held is None:
        raise ForbiddenError("role_required", role=roles[0].value)
    if (
        held in TOTP_ROLES
        and principal.via == "session"
        and principal.policy.require_totp
        and not principal.mfa
    ):
        raise ForbiddenError("totp_required")
    return held


def token_hash(token: str) -> str:
    """What is stored of a bearer token (never the token itself)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh bearer or session token (256 bits)."""
    return secrets.token_urlsafe(32)


def staff_view(doc: Document) -> dict[str, Any]:
    """A staff account as admins see it (no secrets)."""
    return {
        "id": doc["id"],
        "username": doc["username"],
        "display_name": doc["display_name"],
        "roles": doc["roles"],
        "active": doc["active"],
        "totp_enabled": bool(doc.get("totp_secret")),
        "created_at": doc["created_at"],
    }


async def create_staff(
    *,
    repo: Repository,
    tenant: str,
    username: str,
    display_name: str,
    password: str,
    roles: list[Role],
    totp_secret: str | None = None,
) -> Document:
    """Creates a staff account (409 when the user name is taken in the tenant)."""
    if await repo.staff_by_username(tenant, username) is not None:
        raise ConflictError("username_taken")
    staff_id = new_id()
    doc: Document = {
        "_id": f"{tenant}:{staff_id}",
        "tenant": tenant,
        "id": staff_id,
        "username": username,
        "display_name": display_name,
        "password_hash": _hasher.hash(password),
        "roles": sorted({r.value for r in roles}),
        "active": True,
        "totp_secret": totp_secret,
        "totp_pending": None,
        "api_token_hashes": [],
        "created_at": utcnow(),
    }
    if not await repo.insert_staff(doc):
        raise ConflictError("username_taken")
    return doc


async def issue_api_token(*, repo: Repository, tenant: str, staff_id: str) -> str:
    """A new personal API token for a staff member (shown once; only its hash is kept)."""
    token = new_token()
    if not await repo.add_api_token(tenant, staff_id, token_hash(token)):
        raise NotFoundError("staff_not_found")
    return token


def _principal(doc: Document, policy: TenantPolicy, **extra: Any) -> Principal:
    return Principal(
        tenant=doc["tenant"],
        id=doc["id"],
        name=doc["display_name"],
        roles=frozenset(Role(r) for r in doc["roles"]),
        policy=policy,
        **extra,
    )


async def principal_for_token(
    *, repo: Repository, token: str, tenant_tokens: dict[str, str]
) -> Principal | None:
    """The caller behind a bearer token: a tenant's integration token from the settings (roles
    admin, alerter, editor — never approver, so it cannot satisfy the four-eyes rule), or a
    staff member's personal token."""
    presented = token.encode()
    tenant: str | None = None
    for candidate, secret in tenant_tokens.items():  # constant time per candidate
        if hmac.compare_digest(presented, secret.encode()):
            tenant = candidate
    if tenant is not None:
        policy = TenantPolicy.from_doc(await repo.tenant_settings(tenant))
        return Principal(
            tenant=tenant,
            id=API_PRINCIPAL,
            name="API",
            roles=frozenset({Role.ADMIN, Role.ALERTER, Role.EDITOR}),
            policy=policy,
        )
    doc = await repo.staff_by_token_hash(token_hash(token))
    if doc is None or not doc["active"]:
        return None
    policy = TenantPolicy.from_doc(await repo.tenant_settings(doc["tenant"]))
    return _principal(doc, policy)


def verify_totp(secret: str, code: str) -> bool:
    """Whether `code` is the current TOTP code of `secret` (one step of clock skew allowed)."""
    code = code.strip().replace(" ", "")
    return code.isdigit() and pyotp.TOTP(secret).verify(code, valid_window=1)


async def check_login(
    *, repo: Repository, tenant: str, username: str, password: str, code: str | None
) -> tuple[Document, bool] | None:
    """(staff document, TOTP verified) when the credentials are right; None otherwise. A staff
    member with TOTP enrolled must always give a valid code. Takes about the same time whether
    or not the account exists."""
    doc = await repo.staff_by_username(tenant, username)
    try:
        _hasher.verify(doc["password_hash"] if doc else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if doc is None or not doc["active"]:
        return None
    secret = doc.get("totp_secret")
    if secret:
        if not code or not verify_totp(secret, code):
            return None
        return doc, True
    return doc, False


class LoginGuard:
    """Slows down password guessing: at most `limit` failed sign-ins per account (tenant and
    user name) within `window_s`; then sign-in is refused until the window has passed, even
    with the right password. Counters live in Redis with expiry."""

    def __init__(
        self, redis: Redis, *, limit: int, window_s: int, prefix: str = "sirene:pub:login"
    ) -> None:
        self._redis = redis
        self._limit = limit
        self._window_s = window_s
        self._prefix = prefix

    def _key(self, tenant: str, username: str) -> str:
        account = "\x1f".join((tenant, username))
        return f"{self._prefix}:{token_hash(account)}"

    async def blocked(self, tenant: str, username: str) -> bool:
        raw = await self._redis.get(self._key(tenant, username))
        return raw is not None and int(raw) >= self._limit

    async def failed(self, tenant: str, username: str) -> None:
        key = self._key(tenant, username)
        pipe = self._redis.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, self._window_s, nx=True)
        await pipe.execute()

    async def succeeded(self, tenant: str, username: str) -> None:
        await self._redis.delete(self._key(tenant, username))


class Sessions:
    """Console sessions in Redis: an opaque cookie value → who, with an idle expiry. Only the
    hash of the cookie value is a Redis key, so a Redis dump holds no usable session."""

    def __init__(self, redis: Redis, *, ttl_s: int, prefix: str = "sirene:pub:sess") -> None:
        self._redis = redis
        self._ttl_s = ttl_s
        self._prefix = prefix

    def _key(self, token: str) -> str:
        return f"{self._prefix}:{token_hash(token)}"

    async def open(self, *, tenant: str, staff_id: str, mfa: bool) -> str:
        """A new session; returns the cookie value."""
        token = new_token()
        data = {"tenant": tenant, "staff": staff_id, "mfa": mfa, "csrf": new_token()}
        await self._redis.set(self._key(token), orjson.dumps(data), ex=self._ttl_s)
        return token

    async def set_mfa(self, token: str) -> None:
        """Marks a session as verified by a second factor (after enrolling TOTP)."""
        raw = await self._redis.get(self._key(token))
        if raw is not None:
            data = orjson.loads(raw)
            data["mfa"] = True
            await self._redis.set(self._key(token), orjson.dumps(data), ex=self._ttl_s)

    async def close(self, token: str) -> None:
        await self._redis.delete(self._key(token))

    async def principal(self, *, repo: Repository, token: str) -> Principal | None:
        """The staff member of a live session (its expiry is renewed), or None."""
        key = self._key(token)
        raw = await self._redis.get(key)
        if raw is None:
            return None
        data = orjson.loads(raw)
        doc = await repo.get_staff(data["tenant"], data["staff"])
        if doc is None or not doc["active"]:
            await self._redis.delete(key)
            return None
        await self._redis.expire(key, self._ttl_s)
        policy = TenantPolicy.from_doc(await repo.tenant_settings(data["tenant"]))
        return _principal(doc, policy, via="session", mfa=bool(data["mfa"]), csrf=data["csrf"])


def start_totp(doc: Document) -> tuple[str, str]:
    """A fresh TOTP secret for a staff member and its otpauth:// URI (for authenticator apps)."""
    secret = pyotp.random_base32()
    uri = pyotp.TOTP(secret).provisioning_uri(
        name=f"{doc['username']}@{doc['tenant']}", issuer_name="Sirene"
    )
    return secret, uri


_last_seq = 0


def _next_seq() -> int:
    """Nanoseconds since the epoch, strictly increasing within this process: MongoDB keeps
    times in milliseconds, so two actions in one millisecond (created, then submitted) need
    this to stay in order."""
    global _last_seq
    _last_seq = max(_last_seq + 1, time.time_ns())
    return _last_seq


def audit_entry(
    principal: Principal, action: str, *, alert_id: str | None = None, **detail: Any
) -> Document:
    """One audit log record: who did what to which alert, when."""
    at: datetime = utcnow()
    return {
        "_id": new_id(),
        "tenant": principal.tenant,
        "at": at,
        "seq": _next_seq(),
        "actor": principal.id,
        "actor_name": principal.name,
        "action": action,
        "alert_id": alert_id,
        "detail": detail,
    }
