"""HTTP request and response bodies of the subscriptions API (validated at the edge)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

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


EmailIn = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=3, max_length=254),
    Field(description="E-mail address (at most 254 characters, RFC 5321)."),
]


class ContactsIn(BaseModel):
    """Contact points as entered; phone numbers are normalised to E.164."""

    model_config = ConfigDict(extra="forbid")

    sms: PhoneIn | None = Field(default=None, description="Mobile number for SMS.")
    voice: PhoneIn | None = Field(default=None, description="Phone number for voice calls.")
    push: list[PushDevice] = Field(default_factory=list, max_length=10, description="Devices.")
    email: EmailIn | None = Field(default=None, description="E-mail address.")


PhoneChannel = Literal["sms", "voice"]
TimeOfDay = Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]


class QuietHoursIn(BaseModel):
    """Local hours in which non-urgent posts wait (urgent alerts always go out)."""

    model_config = ConfigDict(extra="forbid")

    start: TimeOfDay = Field(description="Start, HH:MM local time.")
    end: TimeOfDay = Field(description="End, HH:MM local time.")


class LocationIn(BaseModel):
    """The address point (WGS 84) for area targeting."""

    model_config = ConfigDict(extra="forbid")

    lat: float = Field(ge=-90, le=90, allow_inf_nan=False, description="Latitude.")
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False, description="Longitude.")


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
    location: LocationIn | None = Field(default=None, description="Address point.")
    quiet_hours: QuietHoursIn | None = Field(default=None, description="Quiet hours.")
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
    location: LocationIn | None = Field(default=None, description="Address point.")
    quiet_hours: QuietHoursIn | None = Field(default=None, description="Quiet hours.")


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
    location: dict[str, float] | None = None
    quiet_hours: dict[str, str] | None = None
    origin: str = Field(description="'staff', 'self' or 'relative'.")
    registered_by: str | None = Field(default=None, description="Registrant of a relative.")
    consent: str | None = Field(default=None, description="Consent state of a relative.")
    version: int = Field(description="Profile version; grows with every change.")
    profile_state: str = Field(description="'pending' until citizen.profile has it, then 'sent'.")
    created_at: datetime
    updated_at: datetime


class CitizenPage(BaseModel):
    """One page of citizens, ordered by id."""

    items: list[CitizenOut]
    next_after: str | None = Field(description="Pass as `after` for the next page; null at end.")


# --- citizens themselves (portal API) -------------------------------------------------------


class RegistrationIn(BaseModel):
    """A citizen registers themself: a phone number verified by a code (SMS to a mobile, or a
    call speaking it to any phone), and the topics they want on that channel."""

    model_config = ConfigDict(extra="forbid")

    phone: PhoneIn
    channel: PhoneChannel = Field(default="sms", description="How the code and posts arrive.")
    name: str | None = Field(default=None, min_length=1, max_length=120, description="Name.")
    topics: list[TopicSlug] = Field(default_factory=list, max_length=50, description="Topic ids.")
    language: Language = Field(default=Language.DE, description="Preferred language.")
    district: str | None = Field(default=None, min_length=1, max_length=80, description="Ortsteil.")
    location: LocationIn | None = Field(default=None, description="Address point.")
    quiet_hours: QuietHoursIn | None = Field(default=None, description="Quiet hours.")


class LoginIn(BaseModel):
    """A registered citizen asks for a code to manage their registration."""

    model_config = ConfigDict(extra="forbid")

    phone: PhoneIn


class VerificationOut(BaseModel):
    """A code is on its way."""

    verification_id: str
    channel: PhoneChannel
    to: str = Field(description="The number, masked.")
    expires_in_s: int


class CodeIn(BaseModel):
    """The code the citizen received."""

    model_config = ConfigDict(extra="forbid")

    code: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\d{4,8}$")]


class SessionOut(BaseModel):
    """A verified citizen: their id and a bearer token for `/api/v1/me`."""

    citizen_id: str
    session_token: str
    expires_in_s: int


class MePatch(BaseModel):
    """What a citizen may change themself; left-out fields stay."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=120)
    language: Language | None = None
    district: str | None = Field(default=None, min_length=1, max_length=80)
    location: LocationIn | None = None
    quiet_hours: QuietHoursIn | None = None


class TopicChoiceIn(BaseModel):
    """The topics a citizen wants, each on the given channels of their verified contacts."""

    model_config = ConfigDict(extra="forbid")

    subscriptions: Subscriptions = Field(description="Topic id → chosen channels.")


class RelativeIn(BaseModel):
    """A citizen registers a relative or neighbour, who is asked for consent (call: press 1;
    SMS: reply JA) and is active only after agreeing."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=120, description="Name of the relative.")
    phone: PhoneIn
    channel: PhoneChannel = Field(default="voice", description="How they are asked and warned.")
    topics: list[TopicSlug] = Field(min_length=1, max_length=50, description="Topic ids.")
    language: Language = Field(default=Language.DE, description="Their language.")
    district: str | None = Field(default=None, min_length=1, max_length=80, description="Ortsteil.")


class RelativeOut(BaseModel):
    """A person the citizen registered, and where their consent stands."""

    id: str
    name: str | None
    channel: str
    phone: str = Field(description="Masked number.")
    consent: str = Field(description="pending, granted, refused, no_answer, withdrawn.")
    active: bool
    topics: list[str]
    requested_at: datetime


class PublicTopic(BaseModel):
    """A topic citizens may subscribe to."""

    id: str
    name: LocalizedText
    description: LocalizedText | None = None
    kind: str
    warnings: bool


class TopicPatch(BaseModel):
    """Changes to a topic (staff); left-out fields stay."""

    model_config = ConfigDict(extra="forbid")

    name: LocalizedText | None = None
    description: LocalizedText | None = None
    kind: TopicKind | None = None
    warnings: bool | None = None
    public: bool | None = None

    _name = field_validator("name", "description", mode="before")(_localized)


class ConsentOut(BaseModel):
    """One consent record: what, when, over which channel, by whom."""

    action: str = Field(description="requested, granted, refused, no_answer, withdrawn.")
    scope: str = Field(description="What it is about, e.g. 'registration' or 'channel:sms'.")
    channel: str
    by: str = Field(description="'self', 'relative:<citizen id>' or 'staff'.")
    topics: list[str]
    text: str = Field(description="The wording the person agreed to or was asked.")
    at: datetime


class EmailChangeIn(BaseModel):
    """A citizen adds or changes their e-mail address; it is used once they open the link
    mailed to it."""

    model_config = ConfigDict(extra="forbid")

    email: EmailIn
    topics: list[TopicSlug] | None = Field(
        default=None,
        max_length=50,
        description="Topics to receive by e-mail once confirmed (public topics); left out: "
        "the topics the citizen already follows.",
    )


class EmailVerificationOut(BaseModel):
    """A verification link is on its way (or the address was verified already)."""

    state: Literal["sent", "already_verified"]
    to: str = Field(description="The address, masked.")
    expires_in_s: int = Field(description="How long the link stays valid.")


class EmailConfirmIn(BaseModel):
    """The token of a verification link."""

    model_config = ConfigDict(extra="forbid")

    token: Annotated[
        str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9_-]{20,100}$")
    ]


class EmailConfirmedOut(BaseModel):
    """The e-mail address is verified and in use."""

    citizen_id: str
    email: str = Field(description="The address, masked.")
    subscriptions: dict[str, list[Channel]]
