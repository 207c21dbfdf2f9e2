"""issues against real MongoDB (FerretDB locally): reports stored, public and staff views,
tenant isolation."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from sirene.devstack.testing import InfraUrls
from sirene.issues.app import create_app
from sirene.issues.settings import IssuesSettings

pytestmark = pytest.mark.integration

REPORT: dict[str, Any] = {
    "category": "illegal_dumping",
    "description": "Sperrmüll am Waldweg hinter dem Sportplatz.",
    "lat": 51.34,
    "lon": 12.37,
    "contact": {"email": "erika@example.org"},
}


async def test_report_lifecycle_and_isolation(sirene_infra: InfraUrls) -> None:
    tenant_a, token_a = f"t-{uuid.uuid4().hex[:10]}", f"token-{uuid.uuid4().hex}"
    tenant_b, token_b = f"t-{uuid.uuid4().hex[:10]}", f"token-{uuid.uuid4().hex}"
    settings = IssuesSettings(
        **sirene_infra.settings_kwargs(),  # type: ignore[arg-type]
        api_tokens={tenant_a: SecretStr(token_a), tenant_b: SecretStr(token_b)},
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        created = await client.post(f"/api/v1/{tenant_a}/reports", json=REPORT)
        assert created.status_code == 201, created.text
        receipt = created.json()
        assert receipt["status"] == "received"
        assert "contact" not in receipt
        assert receipt["message"].startswith("Vielen Dank")
        report_id = receipt["id"]

        public = await client.get(f"/api/v1/{tenant_a}/reports/{report_id}")
        assert public.status_code == 200
        assert "contact" not in public.json()
        assert public.json()["description"] == REPORT["description"]
        assert (await client.get(f"/api/v1/{tenant_b}/reports/{report_id}")).status_code == 404

        staff = await client.get("/api/v1/reports", headers={"Authorization": f"Bearer {token_a}"})
        assert [r["id"] for r in staff.json()["items"]] == [report_id]
        assert staff.json()["items"][0]["contact"] == {"email": "erika@example.org"}
        other = await client.get("/api/v1/reports", headers={"Authorization": f"Bearer {token_b}"})
        assert other.json()["items"] == []
        filtered = await client.get(
            "/api/v1/reports?status=received&limit=1",
            headers={"Authorization": f"Bearer {token_a}"},
        )
        assert len(filtered.json()["items"]) == 1
