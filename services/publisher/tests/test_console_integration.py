"""The console's sign-in against real MongoDB and Redis: argon2 password, sessions, CSRF, TOTP
second factor required for alerters when the tenant enables it."""

from __future__ import annotations

import contextlib
import json
import re
import uuid

import httpx
import pyotp
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from sirene.devstack.testing import InfraUrls, serve_app
from sirene.publisher.app import create_app
from sirene.publisher.settings import PublisherSettings

pytestmark = pytest.mark.integration

PASSWORD = "ein-langes-testpasswort"


def running(
    settings: PublisherSettings,
) -> contextlib.AbstractAsyncContextManager[tuple[FastAPI, httpx.AsyncClient]]:
    return serve_app(create_app(settings))


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


async def _login(
    client: httpx.AsyncClient, tenant: str, username: str, code: str = ""
) -> httpx.Response:
    return await client.post(
        "/console/login",
        data={"tenant": tenant, "username": username, "password": PASSWORD, "code": code},
    )


async def test_console_sign_in_sessions_csrf_and_totp(sirene_infra: InfraUrls) -> None:
    tenant, token = f"t-{uuid.uuid4().hex[:10]}", f"token-{uuid.uuid4().hex}"
    settings = PublisherSettings(
        **sirene_infra.settings_kwargs(),  # type: ignore[arg-type]
        api_tokens={tenant: SecretStr(token)},
        login_max_failures=3,
    )
    admin = {"Authorization": f"Bearer {token}"}
    async with running(settings) as (_, client):
        created = await client.post(
            "/api/v1/staff",
            json={
                "username": "anna",
                "display_name": "Anna",
                "password": PASSWORD,
                "roles": ["alerter"],
            },
            headers=admin,
        )
        assert created.status_code == 201
        assert "password" not in created.text
        assert "hash" not in created.text
        anna_id = created.json()["id"]

        # no session: the console sends people to the sign-in page
        assert (await client.get("/console/")).headers["location"] == "/console/login"
        wrong = await client.post(
            "/console/login",
            data={"tenant": tenant, "username": "anna", "password": "falsch-falsch-falsch"},
        )
        assert wrong.status_code == 401
        assert "Anmeldung fehlgeschlagen" in wrong.text
        # password guessing is cut off per account: after 3 failures even the right password
        # is refused for a while (another account is not affected)
        await client.post(
            "/api/v1/staff",
            json={
                "username": "bob",
                "display_name": "Bob",
                "password": PASSWORD,
                "roles": ["editor"],
            },
            headers=admin,
        )
        for _ in range(3):
            guess = await client.post(
                "/console/login",
                data={"tenant": tenant, "username": "bob", "password": "geraten-geraten"},
            )
            assert guess.status_code == 401
        blocked = await _login(client, tenant, "bob")
        assert blocked.status_code == 429
        assert "Zu viele Fehlversuche" in blocked.text
        signed_in = await _login(client, tenant, "anna")
        assert signed_in.status_code == 303
        cookie = signed_in.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie
        page = await client.get("/console/alerts/new?template=unwetter")
        assert page.status_code == 200
        assert "Unwetterwarnung für" in page.text
        csrf = _csrf(page.text)

        form = {
            "status": "Exercise",
            "severity": "Moderate",
            "urgency": "Immediate",
            "certainty": "Likely",
            "category": "Met",
            "de_headline": "Sturm",
            "de_push_title": "Sturm",
            "de_push_body": "Sturmböen.",
            "de_sms": "Sturmböen.",
            "de_voice": "Sturmböen.",
            "topics": "gefahrenhinweise",
            "duration_minutes": "60",
            "action": "draft",
        }
        # a form without the session's CSRF token is refused
        forged = await client.post("/console/alerts", data=form)
        assert forged.status_code == 400
        saved = await client.post("/console/alerts", data=form | {"csrf": csrf})
        assert saved.status_code == 303, saved.text
        detail = await client.get(saved.headers["location"])
        assert "ÜBUNG: Sturm" in detail.text
        assert "mode-exercise" in detail.text

        # a target area pasted as GeoJSON narrows the audience; a broken one is explained
        ring = [[12.3, 51.3], [12.4, 51.3], [12.4, 51.4], [12.3, 51.3]]
        area = {"type": "Polygon", "coordinates": [ring]}
        bad = await client.post(
            "/console/alerts", data=form | {"csrf": csrf, "areas": '{"type": "Polygon"'}
        )
        assert bad.status_code == 422
        assert "kein gültiges JSON" in bad.text
        assert "{&#34;type&#34;: &#34;Polygon&#34;" in bad.text  # the input is kept, escaped
        narrowed = await client.post(
            "/console/alerts", data=form | {"csrf": csrf, "areas": json.dumps(area)}
        )
        assert narrowed.status_code == 303, narrowed.text
        alert_id = narrowed.headers["location"].rsplit("/", 1)[1]
        stored = (await client.get(f"/api/v1/alerts/{alert_id}", headers=admin)).json()
        assert stored["audience"]["areas"] == [{"description": "Gebiet 1", "polygon": [ring]}]
        assert "Gebiete: Gebiet 1" in (await client.get(narrowed.headers["location"])).text

        # an attachment uploaded in the console is listed on the draft
        uploaded = await client.post(
            saved.headers["location"] + "/attachments",
            data={"csrf": csrf},
            files={"file": ("Lageplan.pdf", b"%PDF-1.7\n%%EOF\n", "application/pdf")},
        )
        assert uploaded.status_code == 303, uploaded.text
        assert "Lageplan.pdf" in (await client.get(saved.headers["location"])).text

        # the tenant requires a second factor: the password-only session may not send warnings
        await client.put("/api/v1/settings", json={"require_totp": True}, headers=admin)
        refused = await client.post("/console/alerts", data=form | {"csrf": csrf})
        assert refused.status_code == 403
        assert "zweiten Faktor" in refused.text

        # Anna enrols TOTP in the console; the session is then verified
        enrol = await client.get("/console/totp")
        secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', enrol.text)
        assert secret
        confirm = await client.post(
            "/console/totp",
            data={"code": pyotp.TOTP(secret.group(1)).now(), "csrf": _csrf(enrol.text)},
        )
        assert confirm.status_code == 303
        allowed = await client.post("/console/alerts", data=form | {"csrf": csrf})
        assert allowed.status_code == 303

        # from now on the code is needed at every sign-in
        client.cookies.clear()
        assert (await _login(client, tenant, "anna")).status_code == 401
        assert (await _login(client, tenant, "anna", code="000000")).status_code == 401
        with_code = await _login(client, tenant, "anna", pyotp.TOTP(secret.group(1)).now())
        assert with_code.status_code == 303
        staff = (await client.get("/api/v1/staff", headers=admin)).json()
        assert [s["totp_enabled"] for s in staff if s["id"] == anna_id] == [True]

        # signing out ends the session
        home = await client.get("/console/")
        assert (
            await client.post("/console/logout", data={"csrf": _csrf(home.text)})
        ).status_code == 303
        assert (await client.get("/console/")).status_code == 303
