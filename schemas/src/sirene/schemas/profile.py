"""`citizen.profile`: a citizen's routing profile (compacted topic; tombstone on erasure)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from .common import Channel, EntityId, Event, Language


class PushPlatform(StrEnum):
    """Push service a device token belongs to."""

    APNS = "apns"
    FCM = "fcm"


class PushDevice(BaseModel):
    """One registered push device."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    platform: PushPlatform = Field(description="APNs (iOS) or FCM (Android).")
    token: str = Field(min_length=8, max_length=4096, description="Device token.")


class Contacts(BaseModel):
    """Verified contact points. Only active ones are published."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sms: str | None = Field(default=None, description="Mobile number in E.164 for SMS.")
    voice: str | None = Field(default=None, description="Any phone number in E.164 for calls.")
    push: list[PushDevice] = Field(default_factory=list, description="Push devices.")
    email: str | None = Field(default=None, description="E-mail address.")


class QuietHours(BaseModel):
    """Local hours in which non-urgent posts are held back (urgent alerts ignore them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: str = Field(pattern=r"^\d{2}:\d{2}$", description="Start, HH:MM local time.")
    end: str = Field(pattern=r"^\d{2}:\d{2}$", description="End, HH:MM local time.")


class GeoPoint(BaseModel):
    """A WGS 84 point, e.g. the citizen's address point for area targeting."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lat: float = Field(ge=-90, le=90, allow_inf_nan=False, description="Latitude.")
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False, description="Longitude.")


class CitizenProfile(Event):
    """The routing view of a citizen. Produced by subscriptions, consumed by fanout.

    Key: `<tenant_id>:<citizen_id>`. A null value (tombstone) under that key erases the citizen
    from every audience."""

    citizen_id: EntityId = Field(description="Citizen id in subscriptions.")
    active: bool = Field(description="False until verified/consented, or when deactivated.")
    language: Language = Field(default=Language.DE, description="Preferred language.")
    district: str | None = Field(default=None, max_length=80, description="District (Ortsteil).")
    contacts: Contacts = Field(description="Active contact points.")
    subscriptions: dict[EntityId, list[Channel]] = Field(
        default_factory=dict, description="Topic id → channels chosen for that topic."
    )
    quiet_hours: QuietHours | None = Field(default=None, description="Quiet hours, if any.")
    location: GeoPoint | None = Field(
        default=None, description="Address point (for area targeting), if the citizen gave one."
    )
    version: int = Field(ge=0, description="Monotonic profile version; older ones are ignored.")
    updated_at: datetime = Field(description="When the profile last changed (UTC).")


def profile_key(tenant_id: str, citizen_id: str) -> str:
    """Kafka key of a citizen's profile record."""
    return f"{tenant_id}:{citizen_id}"
