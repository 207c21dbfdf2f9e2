"""Staff roles (shared by the account logic and the API models)."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """What a staff member may do."""

    EDITOR = "editor"  # everyday posts (bulk lane, no four-eyes severities)
    ALERTER = "alerter"  # warnings of any severity, update and cancel them
    APPROVER = "approver"  # second pair of eyes for Extreme/Severe alerts
    ADMIN = "admin"  # staff accounts and tenant settings
