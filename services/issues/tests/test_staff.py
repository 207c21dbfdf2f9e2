"""The staff side against the real servers: routing of new reports, the status workflow with
its notification events, comments, reassignment, merging, moderation, templates — and, for
every staff endpoint, authentication, roles and tenant isolation."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from sirene.devstack.testing import InfraUrls, TopicReader
from sirene.issues.signin import COOKIE
from sirene.schemas import NOTIFICATION_REQUESTED

from .conftest import Issues

pytestmark = pytest.mark.integration

REPORT: dict[str, Any] = {
    "category": "illegal_dumping",
    "description": "Sperrmüll am Waldweg hinter dem Sportplatz.",
    "lat": 51.34,
    "lon": 12.375,  # Nordviertel
    "contact": {"phone": "+49 151 23456789", "email": "erika@example.org"},
}


async def report(issues: Issues, tenant: str, **changes: Any) -> dict[str, Any]:
    response = await issues.client.post(f"/api/v1/{tenant}/reports", json=REPORT | changes)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def staff_view(issues: Issues, tenant: str, report_id: str) -> dict[str, Any]:
    response = await issues.client.get(f"/api/v1/reports/{report_id}", headers=issues.admin(tenant))
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_category_and_location_route_to_the_right_department(issues: Issues) -> None:
    tenant = issues.tenants[0]
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"lon": 12.375}, "bauhof-nord", "Bauhof Nord"),
        ({"lon": 12.36}, "bauhof-alt", "Bauhof Altstadt"),
        ({"category": "graffiti"}, "ordnungsamt", "Ordnungsamt"),
        ({"category": "road_damage"}, "buergerservice", "Bürgerservice"),  # default desk
        # exactly on the Altstadt/Nordviertel border: both rules match, the rule id decides
        ({"lon": 12.37}, "bauhof-alt", "Bauhof Altstadt"),
        # on the municipal boundary itself: inside
        ({"lat": 51.32, "lon": 12.38}, "bauhof-nord", "Bauhof Nord"),
    ]
    for changes, department, name in cases:
        created = await report(issues, tenant, **changes)
        assert created["agency_responsible"] == name, changes
        view = await staff_view(issues, tenant, created["id"])
        assert view["department"] == department
        assert view["assignments"][0]["by"] == "routing"

    outside = await issues.client.post(
        f"/api/v1/{tenant}/reports", json=REPORT | {"lat": 52.52, "lon": 13.40}
    )
    assert outside.status_code == 422
    detail = outside.json()["detail"][0]
    assert detail["type"] == "outside_municipality"
    assert "außerhalb von Musterstadt" in detail["msg"]
    english = await issues.client.post(
        f"/api/v1/{tenant}/reports",
        json=REPORT | {"lat": 52.52, "lon": 13.40},
        headers={"Accept-Language": "en"},
    )
    assert "outside Musterstadt" in english.json()["detail"][0]["msg"]


async def test_status_workflow_notifies_the_reporter_and_new_reports_the_department(
    issues: Issues, sirene_infra: InfraUrls
) -> None:
    tenant = issues.tenants[0]
    async with TopicReader(sirene_infra.kafka, [NOTIFICATION_REQUESTED]) as reader:
        created = await report(issues, tenant)
        report_id = created["id"]
        assert "contact" not in created
        anna = issues.staff(tenant, "bernd")  # agent of bauhof-nord
        for status, note in [("in_progress", "Der Bauhof ist informiert."), ("resolved", None)]:
            changed = await issues.client.post(
                f"/api/v1/reports/{report_id}/status",
                json={"status": status, "note": note},
                headers=anna,
            )
            assert changed.status_code == 200, changed.text
            assert changed.json()["status"] == status
        again = await issues.client.post(
            f"/api/v1/reports/{report_id}/status", json={"status": "resolved"}, headers=anna
        )
        assert again.status_code == 409

        def ours(record: Any) -> bool:
            return bool(json.loads(record.value)["reference"] == report_id)

        records = await reader.collect(ours, count=3, timeout_s=30)
        events = [json.loads(r.value) for r in records]
        to_department = [e for e in events if e["recipient_id"] == "department-bauhof-nord"]
        to_reporter = [e for e in events if e["recipient_id"] == f"report-{report_id}"]
        assert len(to_department) == 1
        assert to_department[0]["channel"] == "email"
        assert to_department[0]["address"] == "bauhof-nord@example.org"
        assert "Sperrmüll" in to_department[0]["body"]
        assert [e["channel"] for e in to_reporter] == ["sms", "sms"]
        assert to_reporter[0]["address"] == "+4915123456789"
        assert "„in Bearbeitung“" in to_reporter[0]["body"]
        assert "Der Bauhof ist informiert." in to_reporter[0]["body"]
        assert "„erledigt“" in to_reporter[1]["body"]
        assert f"/meldungen/{report_id}" in to_reporter[1]["body"]
        assert len({e["notification_id"] for e in events}) == 3

    public = (await issues.client.get(f"/api/v1/{tenant}/reports/{report_id}")).json()
    assert public["status_label"] == "erledigt"
    assert [h["status"] for h in public["history"]] == ["received", "in_progress", "resolved"]
    assert "contact" not in public
    view = await staff_view(issues, tenant, report_id)
    assert view["contact"]["email"] == "erika@example.org"
    # the outbox is empty once relayed
    doc = await issues.app.state.ctx.repo.get_report(tenant, report_id)
    assert doc["pending_notifications"] == {}
    assert doc["notify_pending"] is False


async def test_comments_templates_reassignment_merge_and_overdue(issues: Issues) -> None:
    tenant = issues.tenants[0]
    lena, anna, bernd = (issues.staff(tenant, s) for s in ("lena", "anna", "bernd"))
    first = await report(issues, tenant, category="graffiti", contact=None)
    second = await report(issues, tenant, category="graffiti", lat=51.3401, contact=None)

    comment = await issues.client.post(
        f"/api/v1/reports/{first['id']}/comments",
        json={"text": "Fassade der Schule."},
        headers=anna,
    )
    assert comment.status_code == 201
    assert comment.json()["comments"][0]["text"] == "Fassade der Schule."
    public = (await issues.client.get(f"/api/v1/{tenant}/reports/{first['id']}")).json()
    assert "comments" not in public
    assert "Fassade" not in json.dumps(public)

    template = {
        "id": "reinigung",
        "title": "Reinigung beauftragt",
        "text": "Eine Fachfirma ist beauftragt.",
        "status": "in_progress",
    }
    assert (
        await issues.client.put("/api/v1/templates/reinigung", json=template, headers=anna)
    ).status_code == 403
    assert (
        await issues.client.put("/api/v1/templates/reinigung", json=template, headers=lena)
    ).status_code == 200
    templated = await issues.client.post(
        f"/api/v1/reports/{first['id']}/status",
        json={"status": "in_progress", "template": "reinigung"},
        headers=anna,
    )
    assert templated.json()["status_notes"] == "Eine Fachfirma ist beauftragt."
    unknown = await issues.client.post(
        f"/api/v1/reports/{first['id']}/status",
        json={"status": "resolved", "template": "gibtsnicht"},
        headers=anna,
    )
    assert unknown.status_code == 422

    # duplicates: nearby open report of the same category is suggested, then merged
    nearby = await issues.client.get(
        f"/api/v1/{tenant}/reports/nearby",
        params={"category": "graffiti", "lat": 51.34, "lon": 12.3752},
    )
    found = {r["id"]: r for r in nearby.json()}
    assert {first["id"], second["id"]} <= set(found)
    assert all(r["distance_m"] <= 50 for r in nearby.json())
    far = await issues.client.get(
        f"/api/v1/{tenant}/reports/nearby",
        params={"category": "graffiti", "lat": 51.3406, "lon": 12.375},  # ≈ 67 m away
    )
    assert first["id"] not in {r["id"] for r in far.json()}
    assert (
        await issues.client.post(
            f"/api/v1/reports/{second['id']}/merge", json={"into": first["id"]}, headers=anna
        )
    ).status_code == 403
    merged = await issues.client.post(
        f"/api/v1/reports/{second['id']}/merge", json={"into": first["id"]}, headers=lena
    )
    assert merged.status_code == 200, merged.text
    assert merged.json()["status"] == "duplicate"
    assert merged.json()["duplicate_of"] == first["id"]
    target = await staff_view(issues, tenant, first["id"])
    assert target["merged"] == [second["id"]]
    assert target["supporters"] == 1

    # reassignment: the report leaves the Ordnungsamt's inbox for Bauhof Nord, with history
    moved = await issues.client.post(
        f"/api/v1/reports/{first['id']}/assignment",
        json={"department": "bauhof-nord", "reason": "Zuständig ist der Bauhof."},
        headers=anna,
    )
    assert moved.status_code == 200, moved.text
    history = moved.json()["assignments"]
    assert [a["department"] for a in history] == ["ordnungsamt", "bauhof-nord"]
    assert history[1]["from"] == "ordnungsamt"
    assert history[1]["by"] == "anna"
    assert (
        await issues.client.get(f"/api/v1/reports/{first['id']}", headers=anna)
    ).status_code == 404
    assert (
        await issues.client.get(f"/api/v1/reports/{first['id']}", headers=bernd)
    ).status_code == 200
    inbox = (await issues.client.get("/api/v1/reports", headers=bernd)).json()["items"]
    assert first["id"] in {r["id"] for r in inbox}

    # SLA: pretend the category promised an hour and the report is two hours old
    repo = issues.app.state.ctx.repo
    from datetime import timedelta

    from sirene.schemas import utcnow

    await repo.patch_report(
        {"tenant": tenant, "id": first["id"]},
        {"$set": {"expected_at": utcnow() - timedelta(hours=1)}},
    )
    overdue = (await issues.client.get("/api/v1/reports?overdue=true", headers=bernd)).json()[
        "items"
    ]
    assert [r["id"] for r in overdue] == [first["id"]]
    assert overdue[0]["overdue"] is True
    found_by_text = await issues.client.get(
        "/api/v1/reports", params={"q": "WALDWEG"}, headers=issues.admin(tenant)
    )
    assert first["id"] in {r["id"] for r in found_by_text.json()["items"]}
    assert (
        await issues.client.get("/api/v1/reports", params={"q": "Rathausdach"}, headers=bernd)
    ).json()["items"] == []
    filtered = (
        await issues.client.get(
            "/api/v1/reports?status=resolved&category=graffiti", headers=issues.admin(tenant)
        )
    ).json()
    assert filtered["items"] == []


async def test_moderation_hides_reports_until_approved_and_anonymous_can_be_switched_off(
    issues: Issues,
) -> None:
    tenant = issues.tenants[1]
    admin, lena = issues.admin(tenant), issues.staff(tenant, "lena")
    config = (await issues.client.get("/api/v1/admin/config", headers=admin)).json()
    config |= {"moderation": True, "allow_anonymous": False}
    switched = await issues.client.put("/api/v1/admin/config", json=config, headers=admin)
    assert switched.status_code == 200, switched.text

    anonymous = await issues.client.post(
        f"/api/v1/{tenant}/reports", json=REPORT | {"contact": None, "category": "graffiti"}
    )
    assert anonymous.status_code == 422
    assert anonymous.json()["detail"][0]["type"] == "contact_required"

    created = await report(issues, tenant, category="graffiti")
    assert created["moderation"] == "pending"
    public = (await issues.client.get(f"/api/v1/{tenant}/reports/{created['id']}")).json()
    assert public["description"] is None  # only the status until approved
    assert public["lat"] is None
    listed = await issues.client.get(f"/open311/{tenant}/v2/requests.json")
    assert created["id"] not in {r["service_request_id"] for r in listed.json()}
    queue = await issues.client.get("/api/v1/moderation", headers=lena)
    assert [r["id"] for r in queue.json()["items"]] == [created["id"]]
    assert (
        await issues.client.get("/api/v1/moderation", headers=issues.staff(tenant, "anna"))
    ).status_code == 403
    approved = await issues.client.post(
        f"/api/v1/reports/{created['id']}/moderation", json={"approve": True}, headers=lena
    )
    assert approved.json()["moderation"] == "public"
    public = (await issues.client.get(f"/api/v1/{tenant}/reports/{created['id']}")).json()
    assert public["description"] == REPORT["description"]

    rejected = await report(issues, tenant, category="graffiti", description="Beleidigender Text")
    refused = await issues.client.post(
        f"/api/v1/reports/{rejected['id']}/moderation",
        json={"approve": False, "reason": "Kein Anliegen für die Verwaltung."},
        headers=lena,
    )
    assert refused.json()["status"] == "rejected"
    assert refused.json()["moderation"] == "hidden"


async def test_abuse_limits_per_ip_and_per_contact(issues: Issues) -> None:
    tenant = issues.tenants[0]
    ctx = issues.app.state.ctx
    limited = ctx.settings.model_copy(update={"reports_per_contact": 2, "reports_per_ip": 3})
    issues.app.state.ctx = dataclasses.replace(ctx, settings=limited)
    try:
        contact = {"email": f"{tenant}@example.org"}
        codes = [
            (
                await issues.client.post(
                    f"/api/v1/{tenant}/reports", json=REPORT | {"contact": contact}
                )
            ).status_code
            for _ in range(3)
        ]
        assert codes == [201, 201, 429]
        tooo_many = await issues.client.post(
            f"/api/v1/{tenant}/reports", json=REPORT | {"contact": None}
        )
        assert tooo_many.status_code == 429  # the IP has used its 3
        assert "Zu viele Meldungen" in tooo_many.json()["detail"]
        # an Open311 client (api_key) relays many citizens from one address: not IP-limited,
        # but its citizens' contacts are
        form = {
            "api_key": issues.open311_keys[tenant],
            "service_code": "graffiti",
            "lat": "51.34",
            "long": "12.36",
            "description": "Graffiti am Bahnhof",
        }
        relayed = await issues.client.post(
            f"/open311/{tenant}/v2/requests.json",
            data=form | {"email": f"neu-{tenant}@example.org"},
        )
        assert relayed.status_code == 201, relayed.text
        same_contact = await issues.client.post(
            f"/open311/{tenant}/v2/requests.json", data=form | {"email": contact["email"]}
        )
        assert same_contact.status_code == 429
        assert same_contact.json()[0]["code"] == 429
    finally:
        issues.app.state.ctx = ctx


# --- every staff endpoint: authentication, roles, tenant isolation ------------------------------

ROLE_RANK = {"agent": 0, "lead": 1, "admin": 2}


def staff_endpoints(
    report_id: str, other_id: str
) -> list[tuple[str, str, dict[str, Any] | None, str]]:
    """(method, path, body, least role) of every staff endpoint."""
    area = {
        "id": "sued",
        "name": "Süd",
        "geometry": {
            "type": "Polygon",
            "coordinates": [[[12.35, 51.32], [12.36, 51.32], [12.36, 51.33], [12.35, 51.32]]],
        },
    }
    return [
        ("GET", "/api/v1/me", None, "agent"),
        ("GET", "/api/v1/reports", None, "agent"),
        ("GET", f"/api/v1/reports/{report_id}", None, "agent"),
        ("POST", f"/api/v1/reports/{report_id}/comments", {"text": "intern"}, "agent"),
        ("POST", f"/api/v1/reports/{report_id}/status", {"status": "in_progress"}, "agent"),
        ("GET", "/api/v1/templates", None, "agent"),
        ("GET", "/api/v1/departments", None, "agent"),
        ("GET", "/api/v1/moderation", None, "lead"),
        ("PUT", "/api/v1/templates/t1", {"id": "t1", "title": "T", "text": "Text"}, "lead"),
        ("DELETE", "/api/v1/templates/t1", None, "lead"),
        ("POST", f"/api/v1/reports/{other_id}/merge", {"into": report_id}, "lead"),
        ("POST", f"/api/v1/reports/{report_id}/moderation", {"approve": True}, "lead"),
        ("POST", f"/api/v1/reports/{report_id}/assignment", {"department": "bauhof-nord"}, "agent"),
        ("GET", "/api/v1/admin/config", None, "admin"),
        ("GET", "/api/v1/admin/categories", None, "admin"),
        ("PUT", "/api/v1/admin/categories/bench", {"code": "bench", "name_de": "Bank"}, "admin"),
        ("GET", "/api/v1/admin/departments", None, "admin"),
        ("PUT", "/api/v1/admin/departments/gruen", {"id": "gruen", "name": "Grünflächen"}, "admin"),
        ("GET", "/api/v1/admin/areas", None, "admin"),
        ("PUT", "/api/v1/admin/areas/sued", area, "admin"),
        ("GET", "/api/v1/admin/rules", None, "admin"),
        (
            "PUT",
            "/api/v1/admin/rules/bank",
            {"id": "bank", "department": "gruen", "category": "bench"},
            "admin",
        ),
        ("DELETE", "/api/v1/admin/rules/bank", None, "admin"),
        ("GET", "/api/v1/admin/staff", None, "admin"),
        ("POST", "/api/v1/admin/staff/bernd/password-link", None, "admin"),
        ("POST", "/api/v1/admin/staff", {"id": "neu", "name": "Neu", "departments": []}, "admin"),
        ("DELETE", "/api/v1/admin/staff/neu", None, "admin"),
        (
            "PUT",
            "/api/v1/admin/config",
            {"name": "Musterstadt", "default_department": "buergerservice"},
            "admin",
        ),
    ]


def _allowed(response: Any, role: str, least: str, *where: Any) -> None:
    """The answer a caller of `role` must get from an endpoint needing `least`."""
    if ROLE_RANK[role] < ROLE_RANK[least]:
        assert response.status_code == 403, (role, *where, response.text)
        assert response.json().get("code") != "csrf", (role, *where)
    else:
        assert response.status_code < 400 or response.status_code in (404, 409, 422), (
            role,
            *where,
            response.status_code,
            response.text,
        )
        assert response.status_code not in (401, 403), (role, *where)


async def test_every_staff_endpoint_checks_login_role_and_tenant(issues: Issues) -> None:
    """Each staff endpoint, called by bearer token and by an inbox session (cookie): 401
    without or with a forged credential, 403 below its role, 403 for a session's
    state-changing call without the page's CSRF token — and never another tenant's data."""
    tenant, other = issues.tenants
    graffiti = await report(issues, tenant, category="graffiti")  # Ordnungsamt: anna, lena
    duplicate = await report(issues, tenant, category="graffiti", lat=51.3401)
    foreign = await report(issues, other, category="graffiti")
    callers = {
        "agent": issues.staff(tenant, "anna"),
        "lead": issues.staff(tenant, "lena"),
        "admin": issues.admin(tenant),
    }
    sessions = {
        "agent": await issues.signed_in(tenant, "anna"),
        "lead": await issues.signed_in(tenant, "lena"),
        "admin": await issues.signed_in(tenant, "ada"),  # a staff account with the admin role
    }
    forged_cookie = issues.browser()
    forged_cookie.cookies.set(COOKIE, "forged-session-value")
    opened = [forged_cookie, *(b for b, _ in sessions.values())]
    try:
        for method, path, body, least in staff_endpoints(graffiti["id"], duplicate["id"]):
            anonymous = await issues.client.request(method, path, json=body)
            assert anonymous.status_code == 401, (method, path)
            forged = await issues.client.request(
                method, path, headers={"Authorization": "Bearer sis_forged-token-123"}, json=body
            )
            assert forged.status_code == 401, (method, path)
            assert (await forged_cookie.request(method, path, json=body)).status_code == 401
            for role, headers in callers.items():
                response = await issues.client.request(method, path, headers=headers, json=body)
                _allowed(response, role, least, "bearer", method, path)
            for role, (browser, csrf) in sessions.items():
                if method != "GET":
                    for sent in ({}, {"X-CSRF-Token": "not-the-token"}):
                        refused = await browser.request(method, path, headers=sent, json=body)
                        assert refused.status_code == 403, (role, method, path, sent)
                        assert refused.json()["code"] == "csrf", (role, method, path)
                response = await browser.request(
                    method, path, headers={"X-CSRF-Token": csrf}, json=body
                )
                _allowed(response, role, least, "session", method, path)

        # signed in to the other tenant, its staff never reach this tenant's reports
        their_sessions = [
            await issues.signed_in(other, "lena"),
            await issues.signed_in(other, "ada"),
        ]
        opened.extend(b for b, _ in their_sessions)
        for browser, csrf in their_sessions:
            for method, path, body, _ in staff_endpoints(graffiti["id"], duplicate["id"]):
                if graffiti["id"] not in path:
                    continue
                response = await browser.request(
                    method, path, headers={"X-CSRF-Token": csrf}, json=body
                )
                assert response.status_code in (403, 404), (method, path, response.status_code)
            listed = (await browser.get("/api/v1/reports")).json()["items"]
            assert graffiti["id"] not in {r["id"] for r in listed}
            assert (await browser.get("/api/v1/me")).json()["tenant"] == other
            # a session of one tenant does not open another tenant's inbox page
            page = await browser.get(f"/portal/{tenant}/staff")
            assert 'name="csrf-token"' not in page.text
            assert 'id="login"' in page.text
    finally:
        for browser in opened:
            await browser.aclose()

    # tenant isolation: the other tenant's staff never reach this tenant's reports ...
    for headers in (issues.admin(other), issues.staff(other, "lena"), issues.staff(other, "anna")):
        for method, path, body, _ in staff_endpoints(graffiti["id"], duplicate["id"]):
            if graffiti["id"] not in path:
                continue
            response = await issues.client.request(method, path, headers=headers, json=body)
            assert response.status_code in (403, 404), (method, path, response.status_code)
        listed = (await issues.client.get("/api/v1/reports", headers=headers)).json()["items"]
        assert graffiti["id"] not in {r["id"] for r in listed}
        merge = await issues.client.post(
            f"/api/v1/reports/{foreign['id']}/merge",
            json={"into": graffiti["id"]},
            headers=issues.admin(other),
        )
        assert merge.status_code == 422  # the target is unknown in the caller's tenant
    # ... and their configuration stays their own
    mine = (
        await issues.client.get("/api/v1/admin/departments", headers=issues.admin(tenant))
    ).json()
    theirs = (
        await issues.client.get("/api/v1/admin/departments", headers=issues.admin(other))
    ).json()
    assert "gruen" in {d["id"] for d in mine}
    assert "gruen" not in {d["id"] for d in theirs}
    # an agent of another department of the same tenant does not see the report either
    # (the one above was reassigned to Bauhof Nord by the loop: a fresh one)
    graffiti = await report(issues, tenant, category="graffiti")
    bernd = issues.staff(tenant, "bernd")
    assert (
        await issues.client.get(f"/api/v1/reports/{graffiti['id']}", headers=bernd)
    ).status_code == 404
    assert (
        await issues.client.post(
            f"/api/v1/reports/{graffiti['id']}/status", json={"status": "resolved"}, headers=bernd
        )
    ).status_code == 404


async def test_departments_and_areas_in_use_cannot_be_deleted(issues: Issues) -> None:
    tenant = issues.tenants[0]
    admin = issues.admin(tenant)
    in_use = await issues.client.delete("/api/v1/admin/departments/bauhof-nord", headers=admin)
    assert in_use.status_code == 409
    assert in_use.json()["code"] == "department_in_use"
    default = await issues.client.delete("/api/v1/admin/departments/buergerservice", headers=admin)
    assert default.status_code == 409
    area = await issues.client.delete("/api/v1/admin/areas/nord", headers=admin)
    assert area.json()["code"] == "area_in_use"
    rule = await issues.client.delete("/api/v1/admin/rules/dump-nord", headers=admin)
    assert rule.status_code == 204
    assert (
        await issues.client.delete("/api/v1/admin/areas/nord", headers=admin)
    ).status_code == 204
    gone = await issues.client.delete("/api/v1/admin/departments/bauhof-nord", headers=admin)
    assert gone.status_code == 204
    assert (
        await issues.client.delete("/api/v1/admin/rules/dump-nord", headers=admin)
    ).status_code == 404
