"""Plane geometry for routing; shared with the fanout's area targeting, so it lives in
`sirene.schemas.geo` (boundary semantics documented there)."""

from sirene.schemas.geo import (
    EARTH_RADIUS_M,
    EDGE_TOLERANCE_DEG,
    PolygonCoords,
    Ring,
    area_contains,
    bounding_box,
    distance_m,
    inside_ring,
    on_ring,
    polygon_contains,
    validate_polygon,
)

__all__ = [
    "EARTH_RADIUS_M",
    "EDGE_TOLERANCE_DEG",
    "PolygonCoords",
    "Ring",
    "area_contains",
    "bounding_box",
    "distance_m",
    "inside_ring",
    "on_ring",
    "polygon_contains",
    "validate_polygon",
]
