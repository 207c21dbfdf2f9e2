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


Edge = tuple[float, float, float, float]
"""A ring's edge as (ax, ay, bx, by)."""


def _on_segment(x: float, y: float, edge: Edge) -> bool:
    ax, ay, bx, by = edge
    dx, dy = bx - ax, by - ay
    length_sq = dx * dx + dy * dy
    if length_sq == 0:
        return math.hypot(x - ax, y - ay) <= EDGE_TOLERANCE_DEG
    t = max(0.0, min(1.0, ((x - ax) * dx + (y - ay) * dy) / length_sq))
    return math.hypot(x - (ax + t * dx), y - (ay + t * dy)) <= EDGE_TOLERANCE_DEG


def edges(ring: Ring) -> list[Edge]:
    """The ring's edges (closed whether or not the last position repeats the first)."""
    points = [(float(p[0]), float(p[1])) for p in ring]
    if len(points) > 1 and points[0] == points[-1]:
        points = points[:-1]
    return [(*points[i], *points[(i + 1) % len(points)]) for i in range(len(points))]


def _on(lon: float, lat: float, ring_edges: Sequence[Edge]) -> bool:
    return any(_on_segment(lon, lat, edge) for edge in ring_edges)


def _inside(lon: float, lat: float, ring_edges: Sequence[Edge]) -> bool:
    inside = False
    for ax, ay, bx, by in ring_edges:
        if (ay > lat) != (by > lat) and lon < ax + (lat - ay) * (bx - ax) / (by - ay):
            inside = not inside
    return inside


def on_ring(lon: float, lat: float, ring: Ring) -> bool:
    """Whether the point lies on the ring's boundary."""
    return _on(lon, lat, edges(ring))


def inside_ring(lon: float, lat: float, ring: Ring) -> bool:
    """Strictly inside the ring (even-odd ray casting; boundary points are not decided here)."""
    return _inside(lon, lat, edges(ring))


def _contains(rings: Sequence[Sequence[Edge]], lon: float, lat: float) -> bool:
    """The closed polygon (outer ring minus open holes) of prepared rings contains the point."""
    if not rings:
        return False
    outer, holes = rings[0], rings[1:]
    if not _inside(lon, lat, outer):
        return _on(lon, lat, outer)
    for hole in holes:
        if _on(lon, lat, hole):
            return True
        if _inside(lon, lat, hole):
            return False
    return True


def polygon_contains(polygon: PolygonCoords, lon: float, lat: float) -> bool:
    """Whether the closed polygon (outer ring minus open holes) contains the point."""
    return _contains([edges(ring) for ring in polygon], lon, lat)


class _Banded:
    """A ring's edges sorted into horizontal bands: a point's ray casting and edge test only
    walk the edges of its band (those whose latitude range, widened by the edge tolerance,
    meets the band), a few dozen of a polygon's thousands."""

    __slots__ = ("_bands", "_height", "_y0")

    def __init__(self, ring_edges: list[Edge], y0: float, y1: float) -> None:
        count = max(1, min(512, len(ring_edges) // 4))
        self._y0 = y0
        self._height = max((y1 - y0) / count, 1e-12)
        self._bands: list[list[Edge]] = [[] for _ in range(count)]
        tol = EDGE_TOLERANCE_DEG
        for edge in ring_edges:
            low, high = sorted((edge[1], edge[3]))
            for band in range(self._band(low - tol), self._band(high + tol) + 1):
                self._bands[band].append(edge)

    def _band(self, lat: float) -> int:
        return min(len(self._bands) - 1, max(0, int((lat - self._y0) / self._height)))

    def near(self, lat: float) -> list[Edge]:
        """The edges that can cross or touch the latitude."""
        return self._bands[self._band(lat)]


class PreparedArea:
    """Polygons ready for many containment tests (the fanout asks once per citizen): a
    bounding box rejects most points, and banded edges keep the rest to a few dozen edges."""

    __slots__ = ("_prepared", "polygons")

    def __init__(self, polygons: Sequence[PolygonCoords]) -> None:
        self.polygons = [p for p in polygons if p]
        tol = EDGE_TOLERANCE_DEG
        self._prepared: list[tuple[float, float, float, float, list[_Banded]]] = []
        for polygon in self.polygons:
            rings = [edges(ring) for ring in polygon]
            xs = [e[0] for e in rings[0]]
            ys = [e[1] for e in rings[0]]
            box = (min(xs) - tol, max(xs) + tol, min(ys) - tol, max(ys) + tol)
            banded = [_Banded(ring, box[2], box[3]) for ring in rings]
            self._prepared.append((*box, banded))

    def contains(self, lon: float, lat: float) -> bool:
        """Whether any of the polygons contains the point (closed, as `polygon_contains`)."""
        for min_lon, max_lon, min_lat, max_lat, rings in self._prepared:
            if (
                min_lon <= lon <= max_lon
                and min_lat <= lat <= max_lat
                and _contains([ring.near(lat) for ring in rings], lon, lat)
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
