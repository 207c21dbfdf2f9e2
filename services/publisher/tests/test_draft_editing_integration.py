"""Editing a draft (API PUT/PATCH and console) against real MongoDB and Redis: only while it is
a draft, only in the own tenant, by the roles that may send it, never over a concurrent
change, and recorded in the audit log."""

from __future__ import annotations

import contextlib
import re
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from sirene.devstack.testing import InfraUrls, serve_app
from sirene.publisher.app import create_app
from sirene.publisher.settings import PublisherSettings

pytestmark = pytest.mark.integration

PASSWORD = "ein-langes-testpasswort"
TEXTS = {
    "headline": "Straßensperrung Hauptstraße",
    "push_title": "Sperrung",
    "push_body": "Die Hauptstraße ist gesperrt.",
    "sms": "Die Hauptstraße ist gesperrt.",
    "voice": "Die Hauptstraße ist gesperrt.",
}
BODY: dict[str, Any] = {
    "severity": "Minor",
    "urgency": "Expected",
    "texts": {"de": TEXTS},
    "audience": {"topics": ["verkehr"]},
}


def running(
    settings: PublisherSettings,
) -> contextlib.AbstractAsyncContextManager[tuple[FastAPI, httpx.AsyncClient]]:
    return serve_app(create_app(settings))


async def _staff_token(
    client: httpx.AsyncClient, admin: dict[str, str], name: str, roles: list[str]
) -> dict[str, str]:
    created = await client.post(
        "/api/v1/staff",
        json={"username": name, "display_name": name.title(), "password": PASSWORD, "roles": roles},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    issued = await client.post(f"/api/v1/staff/{created.json()['id']}/tokens", headers=admin)
    return {"Authorization": f"Bearer {issued.json()['token']}"}


async def test_edit_a_draft_only_while_it_is_one(sirene_infra: InfraUrls) -> None:
    tenant, token = f"t-{uuid.uuid4().hex[:10]}", f"token-{uuid.uuid4().hex}"
    other, other_token = f"t-{uuid.uuid4().hex[:10]}", f"token-{uuid.uuid4().hex}"
    settings = PublisherSettings(
        **sirene_infra.settings_kwargs(),  # type: ignore[arg-type]
        api_tokens={tenant: SecretStr(token), other: SecretStr(other_token)},
    )
    admin = {"Authorization": f"Bearer {token}"}
    async with running(settings) as (_, client):
        editor = await _staff_token(client, admin, "erika", ["editor"])
        alerter = await _staff_token(client, admin, "anna", ["alerter"])
        approver = await _staff_token(client, admin, "bernd", ["approver"])

        draft = (await client.post("/api/v1/alerts", json=BODY, headers=editor)).json()
        assert draft["state"] == "draft"
        assert draft["version"] == 1

        # PUT: the whole content, checked as on creation
        changed_texts = TEXTS | {"headline": "Sperrung Hauptstraße bis Freitag"}
        put = await client.put(
            f"/api/v1/alerts/{draft['id']}",
            json=BODY
            | {"texts": {"de": changed_texts}, "audience": {"topics": ["verkehr", "baustellen"]}},
            headers=editor,
        )
        assert put.status_code == 200, put.text
        edited = put.json()
        assert edited["state"] == "draft"
        assert edited["headline"] == "Sperrung Hauptstraße bis Freitag"
        assert edited["audience"]["topics"] == ["verkehr", "baustellen"]
        assert edited["version"] == 2
        assert edited["edited_by_name"] == "Erika"

        # PATCH: only the given fields; texts per language; the result checked like a new alert
        english = {k: f"EN {v}" for k, v in TEXTS.items()}
        patched = await client.patch(
            f"/api/v1/alerts/{draft['id']}",
            json={"certainty": "Likely", "texts": {"en": english}},
            headers=editor,
        )
        assert patched.status_code == 200, patched.text
        assert patched.json()["certainty"] == "Likely"
        assert patched.json()["texts"]["de"]["headline"] == "Sperrung Hauptstraße bis Freitag"
        assert patched.json()["texts"]["en"]["headline"] == "EN Straßensperrung Hauptstraße"
        invalid = await client.patch(
            f"/api/v1/alerts/{draft['id']}",
            json={"texts": {"de": {"headline": "nur"}}},
            headers=editor,
        )
        assert invalid.status_code == 422
        bad_times = await client.patch(
            f"/api/v1/alerts/{draft['id']}",
            json={"effective": "2099-01-01T00:00:00+00:00"},
            headers=editor,
        )
        assert bad_times.status_code == 422
        assert bad_times.json()["detail"][0]["type"] == "schedule_too_far"

        # an edit based on an outdated copy is refused (If-Match carries the version read)
        stale = await client.patch(
            f"/api/v1/alerts/{draft['id']}",
            json={"severity": "Moderate"},
            headers=editor | {"If-Match": '"2"'},
        )
        assert stale.status_code == 409
        assert stale.json()["code"] == "edit_conflict"
        garbled = await client.patch(
            f"/api/v1/alerts/{draft['id']}",
            json={"severity": "Moderate"},
            headers=editor | {"If-Match": "irgendwas"},
        )
        assert garbled.status_code == 409
        current = await client.patch(
            f"/api/v1/alerts/{draft['id']}", json={}, headers=editor | {"If-Match": 'W/"3"'}
        )
        assert current.status_code == 200, current.text

        # roles: an approver (or admin) alone does not write alerts; an editor cannot make a
        # post into a warning; an alerter may edit the editor's draft
        assert (
            await client.patch(
                f"/api/v1/alerts/{draft['id']}", json={"severity": "Moderate"}, headers=approver
            )
        ).status_code == 403
        to_warning = await client.patch(
            f"/api/v1/alerts/{draft['id']}", json={"severity": "Extreme"}, headers=editor
        )
        assert to_warning.status_code == 403
        assert to_warning.json()["code"] == "editor_alert_only"
        by_alerter = await client.patch(
            f"/api/v1/alerts/{draft['id']}", json={"severity": "Severe"}, headers=alerter
        )
        assert by_alerter.status_code == 200
        # ... and now that it is a warning, the editor may no longer touch it
        assert (
            await client.patch(
                f"/api/v1/alerts/{draft['id']}", json={"severity": "Minor"}, headers=editor
            )
        ).status_code == 403

        # the mode is fixed: an exercise never becomes a real alert
        exercise = (
            await client.post("/api/v1/alerts", json=BODY | {"status": "Exercise"}, headers=alerter)
        ).json()
        to_actual = await client.put(
            f"/api/v1/alerts/{exercise['id']}", json=BODY | {"status": "Actual"}, headers=alerter
        )
        assert to_actual.status_code == 422
        assert to_actual.json()["detail"][0]["type"] == "status_fixed"
        kept = await client.put(
            f"/api/v1/alerts/{exercise['id']}", json=BODY | {"status": "Exercise"}, headers=alerter
        )
        assert kept.json()["texts"]["de"]["sms"].startswith("ÜBUNG: ")

        # another tenant sees nothing
        assert (
            await client.put(
                f"/api/v1/alerts/{draft['id']}",
                json=BODY,
                headers={"Authorization": f"Bearer {other_token}"},
            )
        ).status_code == 404
        assert (
            await client.patch(
                f"/api/v1/alerts/{draft['id']}",
                json={"severity": "Minor"},
                headers={"Authorization": f"Bearer {other_token}"},
            )
        ).status_code == 404

        # sent (here: waiting for approval under the four-eyes rule): no more edits
        submitted = await client.post(f"/api/v1/alerts/{draft['id']}/publish", headers=alerter)
        assert submitted.json()["state"] == "awaiting_approval"
        refused = await client.patch(
            f"/api/v1/alerts/{draft['id']}", json={"severity": "Minor"}, headers=alerter
        )
        assert refused.status_code == 409
        assert refused.json()["code"] == "not_draft"
        assert "awaiting_approval" in refused.json()["detail"]
        published = (
            await client.post("/api/v1/alerts", json=BODY | {"publish": True}, headers=alerter)
        ).json()
        assert published["state"] == "published"
        for method in ("put", "patch"):
            answer = await client.request(
                method.upper(),
                f"/api/v1/alerts/{published['id']}",
                json=BODY if method == "put" else {"severity": "Minor"},
                headers=alerter | {"Accept-Language": "en"},
            )
            assert answer.status_code == 409
            assert "Only drafts can be edited" in answer.json()["detail"]
        # PUT with publish: the edited draft goes out at once
        second = (await client.post("/api/v1/alerts", json=BODY, headers=alerter)).json()
        sent = await client.put(
            f"/api/v1/alerts/{second['id']}", json=BODY | {"publish": True}, headers=alerter
        )
        assert sent.json()["state"] == "published"

        audit = (
            await client.get("/api/v1/audit", params={"alert_id": draft["id"]}, headers=admin)
        ).json()
        edits = [e for e in audit if e["action"] == "edited"]
        assert len(edits) == 4  # the empty PATCH is recorded too (fields: none)
        assert {e["actor_name"] for e in edits} == {"Erika", "Anna"}
        assert sorted(edits[-1]["detail"]["fields"]) == ["audience", "headline", "texts"]


async def test_console_edit_and_a_concurrent_approval(sirene_infra: InfraUrls) -> None:
    tenant, token = f"t-{uuid.uuid4().hex[:10]}", f"token-{uuid.uuid4().hex}"
    settings = PublisherSettings(
        **sirene_infra.settings_kwargs(),  # type: ignore[arg-type]
        api_tokens={tenant: SecretStr(token)},
    )
    admin = {"Authorization": f"Bearer {token}"}
    async with running(settings) as (_, client):
        alerter = await _staff_token(client, admin, "anna", ["alerter"])
        draft = (
            await client.post("/api/v1/alerts", json=BODY | {"severity": "Severe"}, headers=alerter)
        ).json()
        signed_in = await client.post(
            "/console/login", data={"tenant": tenant, "username": "anna", "password": PASSWORD}
        )
        assert signed_in.status_code == 303
        page = await client.get(f"/console/alerts/{draft['id']}")
        assert f'href="/console/alerts/{draft["id"]}/edit"' in page.text
        form_page = await client.get(f"/console/alerts/{draft['id']}/edit")
        assert form_page.status_code == 200
        assert 'value="Straßensperrung Hauptstraße"' in form_page.text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form_page.text).group(1)  # type: ignore[union-attr]
        version = re.search(r'name="version" value="(\d+)"', form_page.text).group(1)  # type: ignore[union-attr]
        form = {
            "csrf": csrf,
            "version": version,
            "severity": "Severe",
            "urgency": "Immediate",
            "certainty": "Observed",
            "category": "Transport",
            **{f"de_{k}": v for k, v in TEXTS.items()},
            "de_sms": "Hauptstraße gesperrt, bitte umfahren.",
            "topics": "verkehr",
            "districts": "Nord",
            "action": "draft",
        }
        saved = await client.post(f"/console/alerts/{draft['id']}/edit", data=form)
        assert saved.status_code == 303, saved.text
        stored = (await client.get(f"/api/v1/alerts/{draft['id']}", headers=alerter)).json()
        assert stored["texts"]["de"]["sms"] == "Hauptstraße gesperrt, bitte umfahren."
        assert stored["audience"]["districts"] == ["Nord"]
        assert stored["category"] == "Transport"

        # the same form sent again is based on an old version: refused, nothing overwritten
        again = await client.post(
            f"/console/alerts/{draft['id']}/edit", data=form | {"de_sms": "alt"}
        )
        assert again.status_code == 409
        assert "inzwischen geändert" in again.text

        # while the alerter edits, the alert is sent for approval: the edit is refused
        current = await client.get(f"/console/alerts/{draft['id']}/edit")
        newer = re.search(r'name="version" value="(\d+)"', current.text).group(1)  # type: ignore[union-attr]
        await client.post(f"/api/v1/alerts/{draft['id']}/publish", headers=alerter)
        late = await client.post(
            f"/console/alerts/{draft['id']}/edit",
            data=form | {"version": newer, "de_sms": "zu spät"},
            headers={"accept-language": "en"},
        )
        assert late.status_code == 409
        assert "Only drafts can be edited" in late.text
        after = (await client.get(f"/api/v1/alerts/{draft['id']}", headers=alerter)).json()
        assert after["state"] == "awaiting_approval"
        assert after["texts"]["de"]["sms"] == "Hauptstraße gesperrt, bitte umfahren."
        # and the edit page itself says why
        gone = await client.get(f"/console/alerts/{draft['id']}/edit")
        assert gone.status_code == 409
        assert "Nur Entwürfe können bearbeitet werden" in gone.text
