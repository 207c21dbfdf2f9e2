"""Shared vocabulary of every Sirene event: enums, the event envelope, deterministic ids."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

TenantId = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$"),
    Field(description="Municipality (tenant) slug, e.g. 'musterstadt'. Scopes every record."),
]
ENTITY_ID_PATTERN = r"^[A-Za-z0-9_.:-]+$"
"""What an id of an alert, citizen, topic or report may contain (at most 64 characters)."""

EntityId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=ENTITY_ID_PATTERN),
]


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC (every timestamp in Sirene is)."""
    return datetime.now(UTC)


def new_id() -> str:
    """A random 32-hex-digit id for events and documents."""
    return uuid.uuid4().hex


class Channel(StrEnum):
    """A delivery channel a citizen can choose per topic."""

    SMS = "sms"
    VOICE = "voice"
    PUSH = "push"
    EMAIL = "email"


class Lane(StrEnum):
    """Priority lane: urgent alerts never queue behind bulk posts."""

    URGENT = "urgent"
    BULK = "bulk"


class Severity(StrEnum):
    """CAP 1.2 severity."""

    EXTREME = "Extreme"
    SEVERE = "Severe"
    MODERATE = "Moderate"
    MINOR = "Minor"
    UNKNOWN = "Unknown"


class Urgency(StrEnum):
    """CAP 1.2 urgency."""

    IMMEDIATE = "Immediate"
    EXPECTED = "Expected"
    FUTURE = "Future"
    PAST = "Past"
    UNKNOWN = "Unknown"


class Certainty(StrEnum):
    """CAP 1.2 certainty."""

    OBSERVED = "Observed"
    LIKELY = "Likely"
    POSSIBLE = "Possible"
    UNLIKELY = "Unlikely"
    UNKNOWN = "Unknown"


class AlertStatus(StrEnum):
    """CAP 1.2 status. Exercise and Test messages are always marked as such to recipients."""

    ACTUAL = "Actual"
    EXERCISE = "Exercise"
    TEST = "Test"


class MsgType(StrEnum):
    """CAP 1.2 msgType."""

    ALERT = "Alert"
    UPDATE = "Update"
    CANCEL = "Cancel"


class Language(StrEnum):
    """Languages the platform speaks to citizens in."""

    DE = "de"
    EN = "en"


class Event(BaseModel):
    """Envelope fields every event carries."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str = Field(default_factory=new_id, description="Unique id of this event.")
    tenant_id: TenantId
    created_at: datetime = Field(
        default_factory=utcnow, description="When the producer created the event (UTC)."
    )


def task_id_for(alert_id: str, citizen_id: str, channel: Channel, contact_key: str = "") -> str:
    """Deterministic delivery task id: the same alert, citizen, channel and contact always
    give the same id, so a re-run of the fanout cannot create a second delivery."""
    raw = f"{alert_id}\x1f{citizen_id}\x1f{channel.value}\x1f{contact_key}".encode()
    return hashlib.sha256(raw).hexdigest()[:32]


def contact_key_for(address: str) -> str:
    """A short, non-reversible key for a contact address (used in task ids, never logged raw)."""
    return hashlib.sha256(address.encode()).hexdigest()[:16]
