"""`alert.published`: a post or warning released by town-hall staff."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .common import (
    AlertStatus,
    Certainty,
    EntityId,
    Event,
    Lane,
    Language,
    MsgType,
    Severity,
    Urgency,
)
from .geo import validate_polygon


class ChannelTexts(BaseModel):
    """What each channel says, in one language."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    headline: str = Field(min_length=1, max_length=160, description="Short headline.")
    push_title: str = Field(min_length=1, max_length=120, description="Push notification title.")
    push_body: str = Field(min_length=1, max_length=1000, description="Push notification body.")
    sms: str = Field(min_length=1, max_length=1600, description="SMS text (GSM-7 or UCS-2).")
    voice: str = Field(
        min_length=1, max_length=2000, description="What text-to-speech says on a voice call."
    )
    email_subject: str | None = Field(default=None, max_length=200, description="E-mail subject.")
    email_body: str | None = Field(default=None, max_length=20000, description="E-mail body.")


MAX_AREA_POSITIONS = 2000
"""Positions of all rings of one area together (a CAP polygon of a warning area has dozens to
a few hundred)."""
MAX_AUDIENCE_POSITIONS = 5000
"""Positions of all areas of one audience together: the alert, areas included, travels whole in
every `alert.published` and fanout shard record, which must stay well below a broker's default
1 MB message limit (5,000 positions are about 200 KB of JSON)."""


class Area(BaseModel):
    """A target area: a polygon drawn or imported with the alert (CAP `<area>`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = Field(
        min_length=1, max_length=200, description="What the area is called (CAP areaDesc)."
    )
    polygon: list[list[tuple[float, float]]] = Field(
        min_length=1,
        max_length=20,
        description="GeoJSON Polygon coordinates: the outer ring, then holes; positions are "
        "[lon, lat] (WGS 84). Points on the border belong to the area.",
    )

    @model_validator(mode="after")
    def _valid_polygon(self) -> Area:
        validate_polygon(self.polygon)
        if sum(len(ring) for ring in self.polygon) > MAX_AREA_POSITIONS:
            raise ValueError(f"an area has at most {MAX_AREA_POSITIONS} positions")
        return self


class Audience(BaseModel):
    """Who an alert is for: everyone in the municipality or the subscribers of topics, and
    where: optionally only citizens in one of `districts` or with their address point inside
    one of `areas` (either suffices)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    everyone: bool = Field(default=False, description="Every active citizen of the tenant.")
    topics: list[EntityId] = Field(
        default_factory=list, description="Topic ids; citizens subscribed to any of them."
    )
    districts: list[str] = Field(
        default_factory=list,
        description="Districts (Ortsteile); if set (or areas), only citizens in one of them.",
    )
    areas: list[Area] = Field(
        default_factory=list,
        max_length=20,
        description="Target areas; if set (or districts), only citizens whose address point "
        "lies in one of them. Citizens without an address point are reached by district only.",
    )

    @model_validator(mode="after")
    def _not_empty(self) -> Audience:
        if not self.everyone and not self.topics:
            raise ValueError("audience needs 'everyone' or at least one topic")
        positions = sum(len(ring) for area in self.areas for ring in area.polygon)
        if positions > MAX_AUDIENCE_POSITIONS:
            raise ValueError(
                f"the areas have {positions} positions together, at most "
                f"{MAX_AUDIENCE_POSITIONS} are allowed (simplify the polygons)"
            )
        return self


class AlertPublished(Event):
    """A published post or alert. Produced by publisher (outbox relay), consumed by fanout."""

    alert_id: EntityId = Field(description="Id of the alert in the publisher.")
    msg_type: MsgType = Field(default=MsgType.ALERT, description="CAP msgType.")
    references: list[EntityId] = Field(
        default_factory=list, description="Alert ids this Update/Cancel refers to."
    )
    status: AlertStatus = Field(default=AlertStatus.ACTUAL, description="CAP status.")
    exercise: bool = Field(
        description="True for Exercise/Test: every channel text is marked and it never counts "
        "as a real warning."
    )
    severity: Severity = Field(description="CAP severity.")
    urgency: Urgency = Field(default=Urgency.UNKNOWN, description="CAP urgency.")
    certainty: Certainty = Field(default=Certainty.UNKNOWN, description="CAP certainty.")
    category: str = Field(default="Safety", max_length=40, description="CAP category.")
    lane: Lane = Field(description="Priority lane the deliveries travel on.")
    texts: dict[Language, ChannelTexts] = Field(
        description="Channel texts per language; German is required."
    )
    audience: Audience = Field(description="Who receives it.")
    effective: datetime = Field(description="When it takes effect (UTC).")
    expires: datetime = Field(description="After this, no delivery is attempted (UTC).")
    published_at: datetime = Field(description="When staff released it (UTC).")

    @model_validator(mode="after")
    def _consistent(self) -> AlertPublished:
        if Language.DE not in self.texts:
            raise ValueError("texts need German ('de')")
        if self.expires <= self.effective:
            raise ValueError("expires must be after effective")
        if self.exercise != (self.status is not AlertStatus.ACTUAL):
            raise ValueError("exercise must be true exactly for status Exercise or Test")
        return self
