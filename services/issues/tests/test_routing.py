"""Routing without servers: point in polygon (boundary points included), rule order, the
default desk, and refusing a location outside the municipality."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sirene.issues import geo
from sirene.issues.routing import Rule, route
from sirene.issues.service import check_in_municipality
from sirene.runtime.errors import InvalidInputError

# two districts sharing the border lon = 12.37 (west: Altstadt, east: Nordviertel)
ALTSTADT = [[[12.36, 51.33], [12.37, 51.33], [12.37, 51.35], [12.36, 51.35], [12.36, 51.33]]]
NORD = [[[12.37, 51.33], [12.38, 51.33], [12.38, 51.35], [12.37, 51.35], [12.37, 51.33]]]
TOWN = [[[12.35, 51.32], [12.39, 51.32], [12.39, 51.36], [12.35, 51.36], [12.35, 51.32]]]
# a square with a square hole
DONUT = [
    [[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]],
    [[4.0, 4.0], [6.0, 4.0], [6.0, 6.0], [4.0, 6.0]],
]
AREAS = {"altstadt": [ALTSTADT], "nord": [NORD]}
RULES = [
    Rule(
        id="graffiti-altstadt", department="ordnungsamt-alt", category="graffiti", area="altstadt"
    ),
    Rule(id="graffiti-nord", department="ordnungsamt-nord", category="graffiti", area="nord"),
    Rule(id="graffiti-any", department="ordnungsamt", category="graffiti"),
    Rule(id="lights", department="stadtwerke", category="streetlight"),
    Rule(id="nord-anything", department="bauhof-nord", area="nord"),
]


def _route(
    category: str, lat: float, lon: float, default: str | None = "buergerservice"
) -> str | None:
    return route(
        category=category, lat=lat, lon=lon, rules=RULES, areas=AREAS, default_department=default
    ).department


def test_category_and_location_pick_the_department() -> None:
    assert _route("graffiti", 51.34, 12.365) == "ordnungsamt-alt"
    assert _route("graffiti", 51.34, 12.375) == "ordnungsamt-nord"
    assert _route("graffiti", 51.325, 12.355) == "ordnungsamt"  # in town, in no district
    assert _route("streetlight", 51.34, 12.375) == "stadtwerke"  # category beats area
    assert _route("road_damage", 51.34, 12.375) == "bauhof-nord"  # area-only rule
    assert _route("road_damage", 51.34, 12.365) == "buergerservice"  # default desk
    assert _route("road_damage", 51.34, 12.365, default=None) is None  # stays unassigned


def test_a_point_on_a_shared_district_border_is_decided_by_rule_order_not_by_chance() -> None:
    # exactly on lon = 12.37: in both districts (areas are closed sets)
    assert geo.area_contains([ALTSTADT], 12.37, 51.34)
    assert geo.area_contains([NORD], 12.37, 51.34)
    # both graffiti+area rules match with equal priority: the rule id decides (stable)
    assert _route("graffiti", 51.34, 12.37) == "ordnungsamt-alt"
    # a lower priority number wins over the id
    rules = [
        *RULES,
        Rule(id="zz-nord", department="nord-first", category="graffiti", area="nord", priority=1),
    ]
    decision = route(
        category="graffiti", lat=51.34, lon=12.37, rules=rules, areas=AREAS, default_department=None
    )
    assert decision.department == "nord-first"
    # a vertex shared by both districts counts for both as well
    assert geo.area_contains([ALTSTADT], 12.37, 51.35)
    assert geo.area_contains([NORD], 12.37, 51.35)
    # just across the border (≈ 1 m) it is one district only
    assert _route("graffiti", 51.34, 12.37 + 0.00002) == "ordnungsamt-nord"
    assert _route("graffiti", 51.34, 12.37 - 0.00002) == "ordnungsamt-alt"


def test_holes_are_open_and_their_border_belongs_to_the_area() -> None:
    assert geo.polygon_contains(DONUT, 1, 1)
    assert not geo.polygon_contains(DONUT, 5, 5)
    assert geo.polygon_contains(DONUT, 4, 5)  # on the hole's edge
    assert geo.polygon_contains(DONUT, 10, 5)  # on the outer edge
    assert geo.polygon_contains(DONUT, 0, 0)  # a vertex
    assert not geo.polygon_contains(DONUT, 10.001, 5)


def test_a_location_outside_the_municipality_is_refused_with_a_clear_reason() -> None:
    config = {"name": "Musterstadt", "boundary": {"type": "Polygon", "coordinates": TOWN}}
    check_in_municipality(config, 51.34, 12.36)
    check_in_municipality(config, 51.32, 12.37)  # on the boundary: inside
    with pytest.raises(InvalidInputError) as refused:
        check_in_municipality(config, 51.40, 12.37)
    assert refused.value.code == "outside_municipality"
    assert refused.value.params == {"town": "Musterstadt"}
    assert refused.value.loc == ("body", "lat")
    check_in_municipality({"name": "X", "boundary": None}, 0.0, 0.0)  # no boundary: anywhere


@given(
    x=st.floats(min_value=-1, max_value=11, allow_nan=False),
    y=st.floats(min_value=-1, max_value=11, allow_nan=False),
)
def test_containment_of_a_rectangle_agrees_with_plain_comparison(x: float, y: float) -> None:
    square = [[[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0], [0.0, 0.0]]]
    expected = 0 <= x <= 10 and 0 <= y <= 10
    near_edge = min(abs(x), abs(x - 10), abs(y), abs(y - 10)) <= geo.EDGE_TOLERANCE_DEG
    assert geo.polygon_contains(square, x, y) == expected or near_edge


def test_distance_and_bounding_box() -> None:
    # 0.00045° of latitude ≈ 50 m
    assert 49 < geo.distance_m(51.34, 12.37, 51.34045, 12.37) < 51
    min_lat, max_lat, min_lon, max_lon = geo.bounding_box(51.34, 12.37, 50)
    assert min_lat < 51.34 < max_lat
    assert min_lon < 12.37 < max_lon
    assert geo.distance_m(51.34, 12.37, max_lat, 12.37) == pytest.approx(50, rel=0.01)
    with pytest.raises(ValueError, match="3 distinct"):
        geo.validate_polygon([[[0, 0], [1, 1], [0, 0]]])
