"""HTTP request and response bodies of the subscriptions API (validated at the edge)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from sirene.schemas import Channel, Language, PushDevice
from sirene.schemas.common import EntityId

TopicSlug = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$"),
    Field(description="Topic id: lower-case slug, e.g. 'gefahrenhinweise'."),
]
PhoneIn = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=3, max_length=32),
    Field(description="Phone number, national (default region) or international."),
]


TopicKind = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=40),
    Field(description="Free label of what a topic is about, e.g. 'Gefahrenhinweise'."),
]


class LocalizedText(BaseModel):
    """A text in German, optionally also in English."""

    model_config = ConfigDict(extra="forbid")

    de: str = Field(min_length=1, max_length=500, description="German text.")
    en: str | None = Field(default=None, min_length=1, max_length=500, description="English.")


def _localized(value: Any) -> Any:
    return {"de": value} if isinstance(value, str) else value


class TopicIn(BaseModel):
    """A topic citizens can subscribe to."""

    model_config = ConfigDict(extra="forbid")

    id: TopicSlug
    name: LocalizedText = Field(description="Name; a plain string is taken as German.")
    description: LocalizedText | None = Field(default=None, description="Description.")
    kind: TopicKind = "information"
    warnings: bool = Field(default=False, description="Carries warnings (may use the urgent lane).")
    public: bool = Field(default=True, description="Offered to citizens for self-subscription.")

    _name = field_validator("name", "description", mode="before")(_localized)


class TopicOut(TopicIn):
    """A stored topic."""

    model_config = ConfigDict(extra="ignore")

    created_at: datetime


class ContactsIn(BaseModel):
    """Contact points as entered; phone numbers are normalised to E.164."""

    model_config = ConfigDict(extra="forbid")

    sms: PhoneIn | None = Field(default=None, description="Mobile number for SMS.")
    voice: PhoneIn | None = Field(default=None, description="Phone number for voice calls.")
    push: list[PushDevice] = Field(default_factory=list, max_length=10, description="Devices.")
    email: Annotated[str, StringConstraints(strip_whitespace=True, max_length=254)] | None = Field(
        default=None, description="E-mail address."
    )


Subscriptions = dict[EntityId, list[Channel]]


class CitizenIn(BaseModel):
    """A citizen registered by staff (self-registration with verification comes later)."""

    model_config = ConfigDict(extra="forbid")

    id: EntityId | None = Field(
        default=None, description="Id chosen by the caller (e.g. from an import); else random."
    )
    name: str | None = Field(default=None, min_length=1, max_length=120, description="Name.")
    contacts: ContactsIn = Field(default_factory=ContactsIn, description="Contact points.")
    language: Language = Field(default=Language.DE, description="Preferred language.")
    district: str | None = Field(default=None, min_length=1, max_length=80, description="Ortsteil.")
    subscriptions: Subscriptions = Field(
        default_factory=dict, description="Topic id → chosen channels."
    )


class CitizenPatch(BaseModel):
    """Changes to a citizen; fields left out stay as they are. `contacts` replaces all
    contact points (a re-entered number counts as active again)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=120, description="Name.")
    contacts: ContactsIn | None = Field(default=None, description="New contact points.")
    language: Language | None = Field(default=None, description="Preferred language.")
    district: str | None = Field(default=None, min_length=1, max_length=80, description="Ortsteil.")


class SubscriptionsIn(BaseModel):
    """The full channel choice per topic (replaces the previous one)."""

    model_config = ConfigDict(extra="forbid")

    subscriptions: Subscriptions = Field(description="Topic id → chosen channels.")


class ContactPointOut(BaseModel):
    """A stored phone number or e-mail address and whether deliveries still use it."""

    address: str
    active: bool
    deactivated_reason: str | None = None


class PushDeviceOut(BaseModel):
    """A stored push device."""

    platform: str
    token: str
    active: bool
    deactivated_reason: str | None = None


class ContactsOut(BaseModel):
    """Stored contact points."""

    sms: ContactPointOut | None = None
    voice: ContactPointOut | None = None
    push: list[PushDeviceOut] = Field(default_factory=list)
    email: ContactPointOut | None = None


class CitizenOut(BaseModel):
    """A citizen as staff see it."""

    id: str
    name: str | None
    active: bool
    language: Language
    district: str | None
    contacts: ContactsOut
    subscriptions: dict[str, list[Channel]]
    version: int = Field(description="Profile version; grows with every change.")
    profile_state: str = Field(description="'pending' until citizen.profile has it, then 'sent'.")
    created_at: datetime
    updated_at: datetime


class CitizenPage(BaseModel):
    """One page of citizens, ordered by id."""

    items: list[CitizenOut]
    next_after: str | None = Field(description="Pass as `after` for the next page; null at end.")
