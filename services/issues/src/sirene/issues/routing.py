"""Which department a report goes to: rules by category and area, then the default desk.

Rule order (first match wins), so the outcome never depends on storage order:
1. rules naming both a category and an area, then rules naming only a category, then rules
   naming only an area (the more specific rule wins);
2. within that, the lower `priority` number;
3. then the rule id (stable tie-break).
An area rule matches when the report's point lies in the area's closed polygons (see `geo`):
a point on the border of two districts matches both districts' rules, and rule order decides.
No match: the tenant's default department; none configured: the report stays unassigned and
shows in the administrators' inbox."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .geo import PolygonCoords, area_contains


@dataclass(frozen=True, slots=True)
class Rule:
    """A routing rule: reports of `category` (None: any) within `area` (None: anywhere) go to
    `department`."""

    id: str
    department: str
    category: str | None = None
    area: str | None = None
    priority: int = 100

    @property
    def specificity(self) -> int:
        return 2 * (self.category is not None) + (self.area is not None)


@dataclass(frozen=True, slots=True)
class Decision:
    """Where a report goes and why (shown in the assignment history)."""

    department: str | None
    rule: str | None
    reason: str


def order_rules(rules: Sequence[Rule]) -> list[Rule]:
    """Rules in evaluation order."""
    return sorted(rules, key=lambda r: (-r.specificity, r.priority, r.id))


def areas_at(areas: Mapping[str, Sequence[PolygonCoords]], lon: float, lat: float) -> set[str]:
    """Ids of the areas whose closed polygons contain the point."""
    return {area_id for area_id, polygons in areas.items() if area_contains(polygons, lon, lat)}


def route(
    *,
    category: str,
    lat: float,
    lon: float,
    rules: Sequence[Rule],
    areas: Mapping[str, Sequence[PolygonCoords]],
    default_department: str | None,
) -> Decision:
    """The department for a report of `category` at (lat, lon)."""
    here = areas_at(areas, lon, lat)
    for rule in order_rules(rules):
        if rule.category is not None and rule.category != category:
            continue
        if rule.area is not None and rule.area not in here:
            continue
        return Decision(rule.department, rule.id, "rule")
    if default_department:
        return Decision(default_department, None, "default")
    return Decision(None, None, "unassigned")
