"""Unit tests of issues (no network): report validation, views, authentication."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from sirene.issues.app import create_app
from sirene.issues.models import ReportIn
from sirene.issues.service import public_view, staff_view
from sirene.issues.settings import IssuesSettings
from sirene.schemas import utcnow

REPORT: dict[str, Any] = {
    "category": "illegal_dumping",
    "description": "Sperrmüll am Waldweg hinter dem Sportplatz.",
    "lat": 51.34,
    "lon": 12.37,
    "contact": {"email": "erika@example.org", "phone": "+49 151 12345678"},
}


@pytest.mark.parametrize(
    "overrides",
    [
        {"lat": 90.5},
        {"lat": -91},
        {"lon": 180.1},
        {"lat": "nan"},
        {"category": "noise"},
        {"description": "  "},
        {"contact": {"email": "erika"}},
        {"contact": {"phone": "ruf mich an"}},
        {"tenant": "musterstadt"},
    ],
)
def test_invalid_reports_are_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ReportIn.model_validate(REPORT | overrides)


def test_public_view_never_shows_the_contact() -> None:
    now = utcnow()
    doc = {
        "id": "r1",
        "category": "graffiti",
        "description": "Graffiti an der Schule",
        "location": {"lat": 1.0, "lon": 2.0},
        "contact": {"email": "erika@example.org"},
        "status": "received",
        "created_at": now,
        "updated_at": now,
    }
    public = public_view(doc, "de")
    assert "contact" not in public
    assert public["category_label"] == "Graffiti"
    assert public_view(doc | {"category": "streetlight"}, "en")["category_label"] == (
        "Broken street light"
    )
    assert staff_view(doc, "de")["contact"] == {"email": "erika@example.org"}


async def _call(method: str, path: str, **kwargs: Any) -> httpx.Response:
    app = create_app(IssuesSettings())  # no lifespan: nothing connects
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.request(method, path, **kwargs)


async def test_staff_list_needs_a_token() -> None:
    assert (await _call("GET", "/api/v1/reports")).status_code == 401
    bad = await _call("GET", "/api/v1/reports", headers={"Authorization": "Bearer wrong"})
    assert bad.status_code == 401


async def test_unknown_tenant_and_bad_input() -> None:
    unknown = await _call("POST", "/api/v1/nirgendwo/reports", json=REPORT)
    assert unknown.status_code == 404
    assert unknown.json()["detail"] == "Diese Gemeinde gibt es hier nicht."
    bad = await _call("POST", "/api/v1/musterstadt/reports", json=REPORT | {"lat": 123})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "lat"]
    categories = await _call(
        "GET", "/api/v1/musterstadt/categories", headers={"Accept-Language": "en"}
    )
    assert {"id": "graffiti", "label": "Graffiti"} in categories.json()
