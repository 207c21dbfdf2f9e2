"""Target areas in the console: GeoJSON as staff export it from their GIS or draw it on
geojson.io — a Polygon, a MultiPolygon, a Feature or a FeatureCollection of those — turned into
`Audience.areas` (one area per polygon, named by the feature's `name`), and back for editing.
The polygons themselves are validated by `sirene.schemas.Area`."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator

MAX_GEOJSON_CHARS = 200_000
_NAME_KEYS = ("name", "areaDesc", "description", "title")


def _two_d(polygon: Any) -> Any:
    """The polygon without altitudes (GIS exports may write [lon, lat, 0])."""
    if not isinstance(polygon, list):
        return polygon
    return [
        [p[:2] if isinstance(p, list) else p for p in ring] if isinstance(ring, list) else ring
        for ring in polygon
    ]


def _polygons(geometry: Any) -> list[Any]:
    if not isinstance(geometry, dict):
        raise ValueError("GeoJSON: Geometrie fehlt")
    kind = geometry.get("type")
    if kind == "Polygon":
        return [_two_d(geometry.get("coordinates"))]
    if kind == "MultiPolygon":
        return [_two_d(p) for p in geometry.get("coordinates") or []]
    raise ValueError(f"GeoJSON: '{kind}' ist keine Fläche (Polygon oder MultiPolygon)")


def parse_areas(text: str, *, default_name: str = "Gebiet") -> list[dict[str, Any]]:
    """The areas of a GeoJSON text (empty text: none). Raises ValueError with the reason."""
    if not text.strip():
        return []
    if len(text) > MAX_GEOJSON_CHARS:
        raise ValueError(f"GeoJSON: höchstens {MAX_GEOJSON_CHARS} Zeichen")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"GeoJSON: kein gültiges JSON (Zeile {exc.lineno})") from None
    if not isinstance(data, dict):
        raise ValueError("GeoJSON: ein Objekt erwartet")
    if data.get("type") == "FeatureCollection":
        features = data.get("features") or []
    elif data.get("type") == "Feature":
        features = [data]
    else:
        features = [{"type": "Feature", "geometry": data, "properties": {}}]
    areas: list[dict[str, Any]] = []
    for feature in features:
        if not isinstance(feature, dict):
            raise ValueError("GeoJSON: ein Feature ist kein Objekt")
        properties = feature.get("properties") or {}
        name = next(
            (str(properties[k]).strip() for k in _NAME_KEYS if str(properties.get(k, "")).strip()),
            "",
        )
        for polygon in _polygons(feature.get("geometry")):
            areas.append(
                {
                    "description": (name or f"{default_name} {len(areas) + 1}")[:200],
                    "polygon": polygon,
                }
            )
    if not areas:
        raise ValueError("GeoJSON: keine Fläche gefunden")
    return areas


def areas_geojson(areas: list[dict[str, Any]]) -> str:
    """Stored areas as a GeoJSON FeatureCollection (what `parse_areas` reads back)."""
    if not areas:
        return ""
    return json.dumps(
        {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "properties": {"name": a["description"]},
                    "geometry": {"type": "Polygon", "coordinates": a["polygon"]},
                }
                for a in areas
            ],
        },
        ensure_ascii=False,
    )


class AreasField(BaseModel):
    """The console's GeoJSON field, so a bad one is reported like every other form error."""

    areas: Annotated[list[dict[str, Any]], BeforeValidator(lambda text: parse_areas(str(text)))]
