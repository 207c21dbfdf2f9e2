"""Open311 GeoReport v2, written against the spec's field lists: every endpoint in JSON and
XML, including the errors (403 without api_key, 404 for unknown ids, 400 with an array of
{code, description})."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from xml.etree import ElementTree as ET

import pytest

from sirene.schemas import utcnow

from .conftest import Issues

pytestmark = pytest.mark.integration

SERVICE_FIELDS = {
    "service_code",
    "service_name",
    "description",
    "metadata",
    "type",
    "keywords",
    "group",
}
ATTRIBUTE_FIELDS = {
    "variable",
    "code",
    "datatype",
    "required",
    "datatype_description",
    "order",
    "description",
    "values",
}
REQUEST_FIELDS = {
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
}


def xml(response: Any) -> ET.Element:
    assert response.headers["content-type"].startswith("text/xml"), response.headers
    return ET.fromstring(response.content)  # noqa: S314 - our own server's answer


def errors_of(response: Any, fmt: str) -> list[dict[str, str]]:
    if fmt == "json":
        body = response.json()
        assert isinstance(body, list), body
        assert body
        for error in body:
            assert set(error) == {"code", "description"}
        return body
    root = xml(response)
    assert root.tag == "errors"
    items = [{c.tag: c.text or "" for c in e} for e in root.findall("error")]
    assert items
    assert all(set(i) == {"code", "description"} for i in items)
    return items


async def post_request(issues: Issues, tenant: str, fmt: str = "json", **fields: str) -> Any:
    form = {
        "api_key": issues.open311_keys[tenant],
        "service_code": "pothole",
        "lat": "51.3401",
        "long": "12.3751",
        "address_string": "Hauptstraße 5",
        "description": "Tiefes Schlagloch vor Hausnummer 5",
        "email": "erika@example.org",
        "first_name": "Erika",
        "last_name": "Muster",
        "attribute[size]": "large",
        **fields,
    }
    form = {k: v for k, v in form.items() if v is not None}
    return await issues.client.post(f"/open311/{tenant}/v2/requests.{fmt}", data=form)


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_discovery_services_and_service_definition(issues: Issues, fmt: str) -> None:
    tenant = issues.tenants[0]
    base = f"/open311/{tenant}/v2"
    discovery = await issues.client.get(f"{base}/discovery.{fmt}")
    assert discovery.status_code == 200
    if fmt == "json":
        body = discovery.json()
        assert {"changeset", "contact", "key_service", "endpoints"} <= set(body)
        endpoint = body["endpoints"][0]
        assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
        assert endpoint["url"].endswith(base)
        assert set(endpoint["formats"]) == {"application/json", "text/xml"}
    else:
        root = xml(discovery)
        assert root.tag == "discovery"
        formats = [f.text for f in root.find("endpoints/endpoint/formats").findall("format")]  # type: ignore[union-attr]
        assert "text/xml" in formats

    services = await issues.client.get(f"{base}/services.{fmt}")
    assert services.status_code == 200
    if fmt == "json":
        items = services.json()
    else:
        root = xml(services)
        assert root.tag == "services"
        items = [{c.tag: c.text for c in s} for s in root.findall("service")]
    by_code = {s["service_code"]: s for s in items}
    assert all(set(s) == SERVICE_FIELDS for s in items)
    assert by_code["pothole"]["service_name"] == "Schlagloch"
    assert str(by_code["pothole"]["metadata"]).lower() == "true"
    assert str(by_code["graffiti"]["metadata"]).lower() == "false"
    assert by_code["pothole"]["type"] == "realtime"
    assert by_code["pothole"]["keywords"] == "Straße,Loch"

    definition = await issues.client.get(f"{base}/services/pothole.{fmt}")
    assert definition.status_code == 200
    if fmt == "json":
        body = definition.json()
        assert body["service_code"] == "pothole"
        attribute = body["attributes"][0]
        assert set(attribute) == ATTRIBUTE_FIELDS
        assert attribute["required"] is True
        assert attribute["values"] == [
            {"key": "small", "name": "klein"},
            {"key": "large", "name": "groß"},
        ]
    else:
        root = xml(definition)
        assert root.tag == "service_definition"
        attribute_el = root.find("attributes/attribute")
        assert attribute_el is not None
        assert {c.tag for c in attribute_el} == ATTRIBUTE_FIELDS
        assert [v.findtext("key") for v in attribute_el.findall("values/value")] == [
            "small",
            "large",
        ]

    missing = await issues.client.get(f"{base}/services/nope.{fmt}")
    assert missing.status_code == 404
    assert errors_of(missing, fmt)[0]["code"] in (404, "404")


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_post_get_and_token_round_trip(issues: Issues, fmt: str) -> None:
    tenant, other = issues.tenants
    created = await post_request(issues, tenant, fmt)
    assert created.status_code == 201, created.text
    if fmt == "json":
        receipt = created.json()[0]
    else:
        root = xml(created)
        assert root.tag == "service_requests"
        receipt = {c.tag: c.text for c in root.find("request")}  # type: ignore[union-attr]
    request_id, token = receipt["service_request_id"], receipt["token"]
    assert request_id
    assert token
    assert "service_notice" in receipt
    assert "account_id" in receipt

    base = f"/open311/{tenant}/v2"
    one = await issues.client.get(f"{base}/requests/{request_id}.{fmt}")
    assert one.status_code == 200
    if fmt == "json":
        item = one.json()[0]
    else:
        root = xml(one)
        assert root.tag == "service_requests"
        item = {c.tag: c.text for c in root.find("request")}  # type: ignore[union-attr]
    assert set(item) >= REQUEST_FIELDS
    assert item["service_request_id"] == request_id
    assert item["status"] == "open"
    assert item["detailed_status"] == "received"
    assert item["service_code"] == "pothole"
    assert item["service_name"] == "Schlagloch"
    assert item["agency_responsible"] == "Bürgerservice"  # no pothole rule: the default desk
    assert item["address"] == "Hauptstraße 5"
    assert float(item["lat"]) == pytest.approx(51.3401)
    assert float(item["long"]) == pytest.approx(12.3751)
    assert item["expected_datetime"]  # from the category's 48 h SLA
    assert "erika" not in (one.text or "").lower()  # never the contact

    tokens = await issues.client.get(f"{base}/tokens/{token}.{fmt}")
    assert tokens.status_code == 200
    if fmt == "json":
        assert tokens.json() == [{"service_request_id": request_id, "token": token}]
    else:
        assert xml(tokens).findtext("request/service_request_id") == request_id

    # tenant isolation: the neighbour's endpoint knows nothing of it
    assert (
        await issues.client.get(f"/open311/{other}/v2/requests/{request_id}.{fmt}")
    ).status_code == 404
    assert (await issues.client.get(f"/open311/{other}/v2/tokens/{token}.{fmt}")).status_code == 404
    foreign_key = await post_request(issues, tenant, fmt, api_key=issues.open311_keys[other])
    assert foreign_key.status_code == 403


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_get_requests_filters_and_window(issues: Issues, fmt: str) -> None:
    tenant = issues.tenants[0]
    base = f"/open311/{tenant}/v2"
    ids = []
    for code, extra in [("pothole", {}), ("graffiti", {"attribute[size]": ""}), ("graffiti", {})]:
        response = await post_request(issues, tenant, "json", service_code=code, **extra)
        assert response.status_code == 201, response.text
        ids.append(response.json()[0]["service_request_id"])
    # close one through the staff API: it becomes 'closed' with status_notes
    closed = await issues.client.post(
        f"/api/v1/reports/{ids[2]}/status",
        json={"status": "resolved", "note": "Graffiti entfernt."},
        headers=issues.admin(tenant),
    )
    assert closed.status_code == 200, closed.text

    async def search(**params: str) -> list[dict[str, Any]]:
        response = await issues.client.get(f"{base}/requests.{fmt}", params=params)
        assert response.status_code == 200, response.text
        if fmt == "json":
            return list(response.json())
        root = xml(response)
        assert root.tag == "service_requests"
        return [{c.tag: c.text for c in r} for r in root.findall("request")]

    everything = await search()
    assert {r["service_request_id"] for r in everything} == set(ids)
    assert [r["service_request_id"] for r in everything] == ids[::-1]  # newest first
    graffiti = await search(service_code="graffiti")
    assert {r["service_request_id"] for r in graffiti} == set(ids[1:])
    closed_only = await search(status="closed")
    assert [r["service_request_id"] for r in closed_only] == [ids[2]]
    assert closed_only[0]["status_notes"] == "Graffiti entfernt."
    assert closed_only[0]["detailed_status"] == "resolved"
    assert {r["service_request_id"] for r in await search(status="open")} == set(ids[:2])
    by_id = await search(service_request_id=f"{ids[0]},{ids[2]}", status="open")
    assert {r["service_request_id"] for r in by_id} == {ids[0], ids[2]}  # ids win over filters
    now = utcnow()
    recent = await search(
        start_date=(now - timedelta(hours=1)).isoformat(),
        end_date=(now + timedelta(minutes=5)).isoformat(),
    )
    assert len(recent) == 3
    old = await search(
        start_date=(now - timedelta(days=80)).isoformat(),
        end_date=(now - timedelta(days=1)).isoformat(),
    )
    assert old == []
    # default window: the last 90 days (an end date in the past shifts it)
    assert await search(end_date=(now - timedelta(days=1)).isoformat()) == []


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_errors_have_the_specs_shape(issues: Issues, fmt: str) -> None:
    tenant = issues.tenants[0]
    base = f"/open311/{tenant}/v2"
    no_key = await post_request(issues, tenant, fmt, api_key="")
    assert no_key.status_code == 403
    assert "api_key" in errors_of(no_key, fmt)[0]["description"]
    wrong_key = await post_request(issues, tenant, fmt, api_key="wrong-key-123456")
    assert wrong_key.status_code == 403

    unknown = await issues.client.get(f"{base}/requests/00000000000000000000000000000000.{fmt}")
    assert unknown.status_code == 404
    assert str(errors_of(unknown, fmt)[0]["code"]) == "404"
    assert (await issues.client.get(f"{base}/tokens/nope.{fmt}")).status_code == 404
    assert (await issues.client.get(f"/open311/nirgendwo/v2/services.{fmt}")).status_code == 404

    cases: list[tuple[dict[str, str], str]] = [
        ({"lat": "", "long": ""}, "lat and long"),
        ({"lat": "abc"}, "lat"),
        ({"service_code": ""}, "service_code"),
        ({"service_code": "unknown-thing"}, "service_code"),
        ({"description": ""}, "description"),
        ({"attribute[size]": ""}, "Wie groß"),
        ({"attribute[size]": "huge"}, "Wie groß"),
        ({"email": "not-an-address"}, "email"),
        ({"lat": "52.52", "long": "13.40"}, "Musterstadt"),  # Berlin: outside the municipality
    ]
    for fields, hint in cases:
        bad = await post_request(issues, tenant, fmt, **fields)
        assert bad.status_code == 400, (fields, bad.text)
        errors = errors_of(bad, fmt)
        assert str(errors[0]["code"]) == "400"
        assert hint.lower() in " ".join(e["description"] for e in errors).lower(), (fields, errors)

    for params in [
        {"start_date": "yesterday"},
        {"status": "pending"},
        {"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-06-01T00:00:00Z"},  # > 90 days
        {"start_date": "2026-06-01T00:00:00Z", "end_date": "2026-05-01T00:00:00Z"},
    ]:
        bad = await issues.client.get(f"{base}/requests.{fmt}", params=params)
        assert bad.status_code == 400, (params, bad.text)
        errors_of(bad, fmt)
    bad_format = await issues.client.get(f"{base}/services.yaml")
    assert bad_format.status_code == 400
    errors_of(bad_format, "json")
