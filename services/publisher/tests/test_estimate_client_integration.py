"""The compose form's live recipient estimate: the publisher asks the fanout with the shared
service token, and says so when the fanout refuses (another token) instead of showing zeros."""

from __future__ import annotations

import dataclasses
import json
import re
import uuid

import httpx
import pytest
from pydantic import SecretStr

from sirene.devstack.testing import InfraUrls
from sirene.publisher.app import create_app
from sirene.publisher.settings import PublisherSettings

pytestmark = pytest.mark.integration

PASSWORD = "ein-langes-testpasswort"
TOKEN = "estimate-token-" + uuid.uuid4().hex


async def test_the_estimate_is_asked_with_the_service_token(sirene_infra: InfraUrls) -> None:
    tenant, api_token = f"t-{uuid.uuid4().hex[:10]}", f"token-{uuid.uuid4().hex}"
    settings = PublisherSettings(
        **sirene_infra.settings_kwargs(),  # type: ignore[arg-type]
        api_tokens={tenant: SecretStr(api_token)},
        fanout_url="http://fanout.test",
        estimate_token=SecretStr(TOKEN),
    )
    seen: list[httpx.Request] = []
    accepted = {"token": TOKEN}

    def fanout(request: httpx.Request) -> httpx.Response:
        """Stands in for the fanout's estimate endpoint and its token check."""
        seen.append(request)
        if request.headers.get("authorization") != f"Bearer {accepted['token']}":
            return httpx.Response(401, json={"detail": "Authentication required"})
        return httpx.Response(
            200, json={"recipients": 7, "channels": {"push": 2, "sms": 5, "voice": 0, "email": 0}}
        )

    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        app.state.ctx = dataclasses.replace(
            app.state.ctx, http=httpx.AsyncClient(transport=httpx.MockTransport(fanout))
        )
        await client.post(
            "/api/v1/staff",
            json={
                "username": "anna",
                "display_name": "Anna",
                "password": PASSWORD,
                "roles": ["alerter"],
            },
            headers={"Authorization": f"Bearer {api_token}"},
        )
        signed_in = await client.post(
            "/console/login", data={"tenant": tenant, "username": "anna", "password": PASSWORD}
        )
        assert signed_in.status_code == 303
        found = re.search(r'name="csrf" value="([^"]+)"', (await client.get("/console/")).text)
        assert found
        csrf = {"x-csrf-token": found.group(1)}
        forged = await client.post("/console/estimate", data={"topics": "warn"})
        assert forged.status_code == 400  # a POST without the session's CSRF token
        shown = await client.post(
            "/console/estimate", data={"topics": "warn, verkehr"}, headers=csrf
        )
        assert 'id="estimate-total"' in shown.text
        assert "<strong>7</strong>" in shown.text
        assert seen[-1].headers["authorization"] == f"Bearer {TOKEN}"
        asked = json.loads(seen[-1].content)
        assert seen[-1].method == "POST"
        assert asked["tenant"] == tenant
        assert asked["audience"]["topics"] == ["warn", "verkehr"]
        assert asked["audience"]["areas"] == []
        # a target area pasted as GeoJSON goes along; a broken one is explained, not sent
        ring = [[12.3, 51.3], [12.4, 51.3], [12.4, 51.4], [12.3, 51.3]]
        feature = {
            "type": "Feature",
            "properties": {"name": "Auwald"},
            "geometry": {"type": "Polygon", "coordinates": [ring]},
        }
        shown = await client.post(
            "/console/estimate",
            data={"topics": "warn", "areas": json.dumps(feature)},
            headers=csrf,
        )
        assert "<strong>7</strong>" in shown.text
        assert json.loads(seen[-1].content)["audience"]["areas"] == [
            {"description": "Auwald", "polygon": [ring]}
        ]
        asks = len(seen)
        broken = await client.post(
            "/console/estimate",
            data={"topics": "warn", "areas": '{"type": "Point"}'},
            headers=csrf,
        )
        assert 'id="estimate-invalid"' in broken.text
        assert "keine Fläche" in broken.text
        assert len(seen) == asks

        accepted["token"] = "another-token-of-the-fanout"  # the two are configured apart
        refused = await client.post("/console/estimate", data={"topics": "warn"}, headers=csrf)
        assert "nicht verfügbar" in refused.text
        assert "<strong>" not in refused.text
