"""HTTP request and response bodies of the issues API (validated at the edge)."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

_EMAIL = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$")
_PHONE = re.compile(r"^\+?[0-9][0-9 ()/-]{4,22}[0-9]$")


class IssueCategory(StrEnum):
    """What a report is about."""

    ILLEGAL_DUMPING = "illegal_dumping"
    VANDALISM = "vandalism"
    GRAFFITI = "graffiti"
    STREETLIGHT = "streetlight"
    ROAD_DAMAGE = "road_damage"
    OTHER = "other"


CATEGORY_LABELS: dict[IssueCategory, tuple[str, str]] = {
    IssueCategory.ILLEGAL_DUMPING: ("Illegale Müllablagerung", "Illegal dumping"),
    IssueCategory.VANDALISM: ("Vandalismus", "Vandalism"),
    IssueCategory.GRAFFITI: ("Graffiti", "Graffiti"),
    IssueCategory.STREETLIGHT: ("Defekte Straßenbeleuchtung", "Broken street light"),
    IssueCategory.ROAD_DAMAGE: ("Straßenschaden", "Road damage"),
    IssueCategory.OTHER: ("Sonstiges", "Other"),
}
"""German and English names of the categories, for forms."""


class IssueStatus(StrEnum):
    """Where a report stands (the workflow beyond 'received' comes with routing)."""

    RECEIVED = "received"


class ContactIn(BaseModel):
    """How the town hall may answer the reporter; never shown publicly."""

    model_config = ConfigDict(extra="forbid")

    email: Annotated[str, StringConstraints(strip_whitespace=True, max_length=254)] | None = Field(
        default=None, description="E-mail address."
    )
    phone: Annotated[str, StringConstraints(strip_whitespace=True, max_length=32)] | None = Field(
        default=None, description="Phone number."
    )

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not _EMAIL.match(value):
            raise ValueError("not a valid e-mail address")
        return value

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        if value is not None and not _PHONE.match(value):
            raise ValueError("not a valid phone number")
        return value


class ReportIn(BaseModel):
    """A citizen's report of a problem in public space."""

    model_config = ConfigDict(extra="forbid")

    category: IssueCategory = Field(description="What it is about.")
    description: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=3, max_length=4000)
    ] = Field(description="What is wrong, and where exactly.")
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False, description="Latitude (WGS 84).")
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False, description="Longitude (WGS 84).")
    contact: ContactIn | None = Field(default=None, description="Optional, for replies.")


class ReportPublic(BaseModel):
    """A report as anyone with its id may see it (no contact data)."""

    id: str
    category: IssueCategory
    category_label: str
    description: str
    lat: float
    lon: float
    status: IssueStatus
    created_at: datetime
    updated_at: datetime


class ReportReceipt(ReportPublic):
    """The answer to a new report: its public view and a thank-you note."""

    message: str


class ReportStaff(ReportPublic):
    """A report as staff of its tenant see it."""

    contact: ContactIn | None


class ReportPage(BaseModel):
    """Reports of a tenant, newest first."""

    items: list[ReportStaff]


class CategoryOut(BaseModel):
    """A category with its name in the caller's language."""

    id: IssueCategory
    label: str
