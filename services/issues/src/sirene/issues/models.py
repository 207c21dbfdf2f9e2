"""HTTP request and response bodies of the issues API (validated at the edge)."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from . import geo

_EMAIL = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$")
_PHONE = re.compile(r"^\+?[0-9][0-9 ()/-]{4,22}[0-9]$")
SLUG = r"^[a-z0-9][a-z0-9_-]{0,62}$"

Slug = Annotated[str, StringConstraints(pattern=SLUG)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]


class ReportStatus(StrEnum):
    """Where a report stands. received and in_progress are open; the rest are closed."""

    RECEIVED = "received"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"


OPEN_STATUSES = frozenset({ReportStatus.RECEIVED, ReportStatus.IN_PROGRESS})

STATUS_LABELS: dict[ReportStatus, tuple[str, str]] = {
    ReportStatus.RECEIVED: ("eingegangen", "received"),
    ReportStatus.IN_PROGRESS: ("in Bearbeitung", "in progress"),
    ReportStatus.RESOLVED: ("erledigt", "resolved"),
    ReportStatus.REJECTED: ("abgelehnt", "rejected"),
    ReportStatus.DUPLICATE: ("Duplikat", "duplicate"),
}
"""German and English names of the statuses (what citizens and staff read)."""


class Role(StrEnum):
    """What a staff member may do. admin: everything of the tenant (configuration, all
    departments); lead: their departments' reports incl. reassigning, merging, moderation and
    response templates; agent: their departments' reports (status, notes, comments,
    reassigning)."""

    ADMIN = "admin"
    LEAD = "lead"
    AGENT = "agent"


class ContactIn(BaseModel):
    """How the town hall may answer the reporter; never shown publicly."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=120)] | None = Field(
        default=None, description="Name (optional)."
    )
    email: Annotated[str, StringConstraints(strip_whitespace=True, max_length=254)] | None = Field(
        default=None, description="E-mail address."
    )
    phone: Annotated[str, StringConstraints(strip_whitespace=True, max_length=32)] | None = Field(
        default=None, description="Phone number (a mobile number gets status updates by SMS)."
    )

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and value != "" and not _EMAIL.match(value):
            raise ValueError("not a valid e-mail address")
        return value or None

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        if value is not None and value != "" and not _PHONE.match(value):
            raise ValueError("not a valid phone number")
        return value or None


class ReportIn(BaseModel):
    """A citizen's report of a problem in public space."""

    model_config = ConfigDict(extra="forbid")

    category: Slug = Field(description="Category code (see GET categories).")
    description: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=3, max_length=4000)
    ] = Field(description="What is wrong, and where exactly.")
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False, description="Latitude (WGS 84).")
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False, description="Longitude (WGS 84).")
    address: Annotated[str, StringConstraints(strip_whitespace=True, max_length=250)] | None = (
        Field(default=None, description="Address or place description, if known.")
    )
    attributes: dict[str, str | list[str]] = Field(
        default_factory=dict, description="Answers to the category's extra questions."
    )
    contact: ContactIn | None = Field(default=None, description="Optional, for replies.")


class Attribute(BaseModel):
    """An extra question of a category (Open311 service definition attribute)."""

    model_config = ConfigDict(extra="forbid")

    code: Slug
    description: Text = Field(description="The question, as shown on the form.")
    datatype: Literal[
        "string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"
    ] = "string"
    required: bool = False
    datatype_description: str | None = Field(default=None, max_length=200)
    order: int = Field(default=1, ge=0, le=1000)
    values: list[dict[Literal["key", "name"], str]] = Field(
        default_factory=list, description="Choices of a list: [{key, name}]."
    )


class CategoryIn(BaseModel):
    """A category ('service' in Open311) of a tenant."""

    model_config = ConfigDict(extra="forbid")

    code: Slug
    name_de: Text
    name_en: Text | None = None
    description: Annotated[str, StringConstraints(max_length=1000)] = ""
    group: Annotated[str, StringConstraints(max_length=100)] = ""
    keywords: list[Annotated[str, StringConstraints(max_length=50)]] = Field(
        default_factory=list, max_length=30
    )
    attributes: list[Attribute] = Field(default_factory=list, max_length=30)
    sla_hours: int | None = Field(
        default=None, ge=1, le=24 * 365, description="Promised handling time (expected_datetime)."
    )
    active: bool = True


class Geometry(BaseModel):
    """A GeoJSON Polygon or MultiPolygon ([lon, lat] positions)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["Polygon", "MultiPolygon"]
    coordinates: list[Any]

    def polygons(self) -> list[geo.PolygonCoords]:
        """The geometry as a list of polygons."""
        return [self.coordinates] if self.type == "Polygon" else list(self.coordinates)

    def check(self) -> None:
        """Raises ValueError if a ring is not usable."""
        for polygon in self.polygons():
            geo.validate_polygon(polygon)


class AreaIn(BaseModel):
    """A district (or any area) used by routing rules."""

    model_config = ConfigDict(extra="forbid")

    id: Slug
    name: Text
    geometry: Geometry


class DepartmentIn(BaseModel):
    """A desk that handles reports."""

    model_config = ConfigDict(extra="forbid")

    id: Slug
    name: Text
    email: Annotated[str, StringConstraints(max_length=254)] | None = Field(
        default=None, description="Where new reports are announced by e-mail."
    )

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not _EMAIL.match(value):
            raise ValueError("not a valid e-mail address")
        return value


class RuleIn(BaseModel):
    """Reports of `category` (any if empty) in `area` (anywhere if empty) go to `department`."""

    model_config = ConfigDict(extra="forbid")

    id: Slug
    department: Slug
    category: Slug | None = None
    area: Slug | None = None
    priority: int = Field(default=100, ge=0, le=10_000)


class TenantConfigIn(BaseModel):
    """How a municipality runs its report desk."""

    model_config = ConfigDict(extra="forbid")

    name: Text = Field(description="Name of the municipality, as shown to citizens.")
    allow_anonymous: bool = Field(default=True, description="Reports without contact allowed.")
    moderation: bool = Field(
        default=False, description="New reports are hidden from the public until approved."
    )
    default_department: Slug | None = Field(default=None, description="Desk when no rule fits.")
    boundary: Geometry | None = Field(
        default=None, description="The municipality; reports outside it are refused."
    )
    center: tuple[float, float] | None = Field(
        default=None, description="[lat, lon] where the map opens."
    )


class StaffIn(BaseModel):
    """A staff account (the token is returned once, on creation)."""

    model_config = ConfigDict(extra="forbid")

    id: Slug
    name: Text
    email: Annotated[str, StringConstraints(max_length=254)] | None = None
    role: Role = Role.AGENT
    departments: list[Slug] = Field(default_factory=list, max_length=50)


class StatusChangeIn(BaseModel):
    """A new status with the note the reporter and the public read."""

    model_config = ConfigDict(extra="forbid")

    status: ReportStatus
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None = None
    template: Slug | None = Field(default=None, description="Response template for the note.")


class CommentIn(BaseModel):
    """An internal comment (staff only, never public)."""

    model_config = ConfigDict(extra="forbid")

    text: LongText


class ReassignIn(BaseModel):
    """Moves a report to another department."""

    model_config = ConfigDict(extra="forbid")

    department: Slug
    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] | None = None


class MergeIn(BaseModel):
    """Closes this report as a duplicate of `into` (its supporters move there)."""

    model_config = ConfigDict(extra="forbid")

    into: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]


class TemplateIn(BaseModel):
    """A response template for status notes."""

    model_config = ConfigDict(extra="forbid")

    id: Slug
    title: Text
    text: LongText
    status: ReportStatus | None = Field(default=None, description="Status it is meant for.")


class ModerationIn(BaseModel):
    """A moderator's decision on a report waiting for public display."""

    model_config = ConfigDict(extra="forbid")

    approve: bool
    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] | None = None


class ReportPublic(BaseModel):
    """A report as anyone may see it (never contact data, never internal comments)."""

    id: str
    category: str
    category_label: str
    description: str | None
    lat: float | None
    lon: float | None
    address: str | None = None
    status: ReportStatus
    status_label: str
    status_notes: str | None = None
    agency_responsible: str | None = None
    expected_datetime: datetime | None = None
    photos: list[str] = Field(default_factory=list)
    supporters: int = 0
    duplicate_of: str | None = None
    moderation: str
    history: list[dict[str, Any]] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime


class ReportReceipt(ReportPublic):
    """The answer to a new report: its public view and a thank-you note."""

    message: str


class ReportStaff(ReportPublic):
    """A report as staff of its tenant see it."""

    contact: dict[str, Any] | None
    department: str | None
    attributes: dict[str, Any] = Field(default_factory=dict)
    overdue: bool
    assignments: list[dict[str, Any]] = Field(default_factory=list)
    comments: list[dict[str, Any]] = Field(default_factory=list)
    merged: list[str] = Field(default_factory=list)


class ReportPage(BaseModel):
    """Reports, newest first; `next_before` continues the list."""

    items: list[ReportStaff]
    next_before: datetime | None = None


class CategoryOut(BaseModel):
    """A category with its name in the caller's language."""

    id: str
    label: str
    description: str = ""
    group: str = ""
    attributes: list[Attribute] = Field(default_factory=list)
    sla_hours: int | None = None


class NearbyReport(BaseModel):
    """An open report close to a planned one ('support this instead')."""

    id: str
    category_label: str
    description: str
    status_label: str
    distance_m: float
    supporters: int
