"""Plane geometry on WGS 84 coordinates: point in polygon and distances, for the routing of
citizen reports (issues) and the area targeting of alerts (fanout).

Boundary semantics (documented in the issues README): areas are closed sets. A point exactly on
an area's edge or vertex (within `EDGE_TOLERANCE_DEG`, about 1 cm) belongs to the area; a point
on the edge of a hole belongs to the area as well (the hole is open). A point on the border
shared by two districts therefore lies in both, and the routing decides by rule order (see
`sirene.issues.routing`), never by chance. The municipality boundary, and an alert's target
area, are closed the same way.

At municipal scale (a few km) treating lon/lat as plane coordinates is exact enough for
containment (edges are the straight lines the polygons were drawn with); distances use the
haversine formula."""

from __future__ import annotations

import math
from collections.abc import Sequence

Ring = Sequence[Sequence[float]]
"""A closed ring of [lon, lat] positions (GeoJSON order); the last may repeat the first."""
PolygonCoords = Sequence[Ring]
"""GeoJSON Polygon coordinates: the outer ring, then holes."""

EDGE_TOLERANCE_DEG = 1e-7
"""How close to an edge counts as on it (≈ 1 cm in latitude)."""

EARTH_RADIUS_M = 6_371_008.8


def _on_segment(x: float, y: float, a: Sequence[float], b: Sequence[float]) -> bool:
    ax, ay, bx, by = a[0], a[1], b[0], b[1]
    dx, dy = bx - ax, by - ay
    length_sq = dx * dx + dy * dy
    if length_sq == 0:
        return math.hypot(x - ax, y - ay) <= EDGE_TOLERANCE_DEG
    t = max(0.0, min(1.0, ((x - ax) * dx + (y - ay) * dy) / length_sq))
    return math.hypot(x - (ax + t * dx), y - (ay + t * dy)) <= EDGE_TOLERANCE_DEG


def _edges(ring: Ring) -> list[tuple[Sequence[float], Sequence[float]]]:
    points = list(ring)
    if len(points) > 1 and list(points[0]) == list(points[-1]):
        points = points[:-1]
    return [(points[i], points[(i + 1) % len(points)]) for i in range(len(points))]


def on_ring(lon: float, lat: float, ring: Ring) -> bool:
    """Whether the point lies on the ring's boundary."""
    return any(_on_segment(lon, lat, a, b) for a, b in _edges(ring))


def inside_ring(lon: float, lat: float, ring: Ring) -> bool:
    """Strictly inside the ring (even-odd ray casting; boundary points are not decided here)."""
    inside = False
    for a, b in _edges(ring):
        ax, ay, bx, by = a[0], a[1], b[0], b[1]
        if (ay > lat) != (by > lat):
            cross_x = ax + (lat - ay) * (bx - ax) / (by - ay)
            if lon < cross_x:
                inside = not inside
    return inside


def polygon_contains(polygon: PolygonCoords, lon: float, lat: float) -> bool:
    """Whether the closed polygon (outer ring minus open holes) contains the point."""
    if not polygon:
        return False
    outer, holes = polygon[0], polygon[1:]
    if not inside_ring(lon, lat, outer):
        return on_ring(lon, lat, outer)
    for hole in holes:
        if on_ring(lon, lat, hole):
            return True
        if inside_ring(lon, lat, hole):
            return False
    return True


class PreparedArea:
    """Polygons ready for many containment tests (the fanout asks once per citizen): a bounding
    box rejects most points before any ring is walked."""

    __slots__ = ("_boxes", "polygons")

    def __init__(self, polygons: Sequence[PolygonCoords]) -> None:
        self.polygons = [p for p in polygons if p]
        tol = EDGE_TOLERANCE_DEG
        self._boxes = [
            (
                min(float(q[0]) for q in p[0]) - tol,
                max(float(q[0]) for q in p[0]) + tol,
                min(float(q[1]) for q in p[0]) - tol,
                max(float(q[1]) for q in p[0]) + tol,
                p,
            )
            for p in self.polygons
        ]

    def contains(self, lon: float, lat: float) -> bool:
        """Whether any of the polygons contains the point (closed, as `polygon_contains`)."""
        for min_lon, max_lon, min_lat, max_lat, polygon in self._boxes:
            if (
                min_lon <= lon <= max_lon
                and min_lat <= lat <= max_lat
                and polygon_contains(polygon, lon, lat)
            ):
                return True
        return False


def area_contains(polygons: Sequence[PolygonCoords], lon: float, lat: float) -> bool:
    """Whether any polygon of a (multi)polygon area contains the point."""
    return any(polygon_contains(p, lon, lat) for p in polygons)


def validate_polygon(polygon: PolygonCoords) -> None:
    """Raises ValueError unless every ring has ≥ 3 distinct valid positions."""
    if not polygon:
        raise ValueError("a polygon needs an outer ring")
    for ring in polygon:
        points = {(float(p[0]), float(p[1])) for p in ring}
        if len(points) < 3:
            raise ValueError("a ring needs at least 3 distinct positions")
        for p in ring:
            if len(p) < 2 or not (-180 <= p[0] <= 180 and -90 <= p[1] <= 90):
                raise ValueError("positions are [lon, lat] within −180…180 and −90…90")


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def bounding_box(lat: float, lon: float, radius_m: float) -> tuple[float, float, float, float]:
    """(min_lat, max_lat, min_lon, max_lon) enclosing a circle (for an index range query)."""
    dlat = math.degrees(radius_m / EARTH_RADIUS_M)
    dlon = dlat / max(0.01, math.cos(math.radians(lat)))
    return lat - dlat, lat + dlat, lon - dlon, lon + dlon
