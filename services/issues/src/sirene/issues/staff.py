"""Who is calling the staff API: the tenant's administrator (the tenant token from the
settings) or a staff account — by its bearer token (issued by the administrator, stored only
as a hash) or by an inbox session opened with its password (`signin.py`) — with a role and the
departments they work for."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from .models import Role

TOKEN_PREFIX = "sis_"  # noqa: S105 - a prefix, not a secret


def new_token() -> str:
    """A fresh staff token (shown once; only its hash is stored)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """The stored form of a token (tokens are 256-bit random, so a plain hash suffices)."""
    return hashlib.sha256(token.encode()).hexdigest()


def same_secret(presented: str, expected: str) -> bool:
    """Constant-time comparison."""
    return hmac.compare_digest(presented.encode(), expected.encode())


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated staff member of one tenant."""

    tenant: str
    staff_id: str
    name: str
    role: Role
    departments: frozenset[str]

    @property
    def all_departments(self) -> bool:
        """Administrators see every department's reports (and unassigned ones)."""
        return self.role is Role.ADMIN

    def may_see(self, department: str | None) -> bool:
        """Whether a report of `department` is in this member's reach."""
        return self.all_departments or (department is not None and department in self.departments)

    def at_least(self, role: Role) -> bool:
        """Whether the member's role includes `role` (admin ⊃ lead ⊃ agent)."""
        rank = {Role.AGENT: 0, Role.LEAD: 1, Role.ADMIN: 2}
        return rank[self.role] >= rank[role]
