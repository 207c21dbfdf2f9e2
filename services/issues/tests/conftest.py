"""An issues app against the real servers, with two isolated tenants."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from sirene.devstack.testing import InfraUrls
from sirene.issues.app import create_app
from sirene.issues.settings import IssuesSettings

# Musterstadt: the town square, split into two districts along lon 12.37
TOWN = {
    "type": "Polygon",
    "coordinates": [
        [[12.35, 51.32], [12.39, 51.32], [12.39, 51.36], [12.35, 51.36], [12.35, 51.32]]
    ],
}
ALTSTADT = {
    "type": "Polygon",
    "coordinates": [
        [[12.35, 51.32], [12.37, 51.32], [12.37, 51.36], [12.35, 51.36], [12.35, 51.32]]
    ],
}
NORD = {
    "type": "Polygon",
    "coordinates": [
        [[12.37, 51.32], [12.39, 51.32], [12.39, 51.36], [12.37, 51.36], [12.37, 51.32]]
    ],
}


@dataclass
class Issues:
    """The app under test and its tenants' tokens."""

    app: FastAPI
    client: httpx.AsyncClient
    settings: IssuesSettings
    tenants: list[str]
    admin_tokens: dict[str, str]
    open311_keys: dict[str, str]
    staff_tokens: dict[tuple[str, str], str] = field(default_factory=dict)
    setup_codes: dict[tuple[str, str], str] = field(default_factory=dict)

    def admin(self, tenant: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_tokens[tenant]}"}

    def staff(self, tenant: str, staff_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.staff_tokens[(tenant, staff_id)]}"}

    def browser(self) -> httpx.AsyncClient:
        """A client with its own cookie jar (one browser), on the same app."""
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://t")

    async def set_password(self, tenant: str, staff_id: str, password: str) -> httpx.Response:
        """Uses the member's set-up code (from the account's creation) like the set-up page."""
        code = self.setup_codes.pop((tenant, staff_id))
        return await self.client.post(
            f"/portal/{tenant}/staff/passwort",
            data={"code": code, "password": password, "repeat": password},
        )

    async def signed_in(
        self, tenant: str, staff_id: str, password: str | None = None
    ) -> tuple[httpx.AsyncClient, str]:
        """A browser signed in to the inbox as the member (a password is set first if the
        member has none yet), and the CSRF token of its inbox page."""
        password = password or f"Rathaus-Passwort Nr. {len(staff_id)} für {tenant}"
        if (tenant, staff_id) in self.setup_codes:
            answer = await self.set_password(tenant, staff_id, password)
            assert answer.status_code == 200, answer.text
        browser = self.browser()
        signed = await browser.post(
            f"/portal/{tenant}/staff/anmelden", data={"staff_id": staff_id, "password": password}
        )
        assert signed.status_code == 303, signed.text
        page = await browser.get(f"/portal/{tenant}/staff")
        found = re.search(r'<meta name="csrf-token" content="([^"]+)">', page.text)
        assert found is not None, page.text
        return browser, found.group(1)


async def configure(issues: Issues, tenant: str) -> None:
    """Departments, districts, rules, a category with attributes and staff accounts."""
    client, headers = issues.client, issues.admin(tenant)

    async def put(path: str, body: dict[str, object]) -> None:
        response = await client.put(f"/api/v1/admin/{path}", json=body, headers=headers)
        assert response.status_code == 200, response.text

    for dept, name in [
        ("ordnungsamt", "Ordnungsamt"),
        ("bauhof-nord", "Bauhof Nord"),
        ("bauhof-alt", "Bauhof Altstadt"),
        ("buergerservice", "Bürgerservice"),
    ]:
        await put(f"departments/{dept}", {"id": dept, "name": name, "email": f"{dept}@example.org"})
    await put("areas/altstadt", {"id": "altstadt", "name": "Altstadt", "geometry": ALTSTADT})
    await put("areas/nord", {"id": "nord", "name": "Nordviertel", "geometry": NORD})
    await put(
        "rules/graffiti", {"id": "graffiti", "department": "ordnungsamt", "category": "graffiti"}
    )
    await put(
        "rules/dump-alt",
        {
            "id": "dump-alt",
            "department": "bauhof-alt",
            "category": "illegal_dumping",
            "area": "altstadt",
        },
    )
    await put(
        "rules/dump-nord",
        {
            "id": "dump-nord",
            "department": "bauhof-nord",
            "category": "illegal_dumping",
            "area": "nord",
        },
    )
    await put(
        "categories/pothole",
        {
            "code": "pothole",
            "name_de": "Schlagloch",
            "name_en": "Pothole",
            "description": "Löcher in der Fahrbahn",
            "group": "Straße",
            "keywords": ["Straße", "Loch"],
            "sla_hours": 48,
            "attributes": [
                {
                    "code": "size",
                    "description": "Wie groß ist das Loch?",
                    "datatype": "singlevaluelist",
                    "required": True,
                    "order": 1,
                    "values": [{"key": "small", "name": "klein"}, {"key": "large", "name": "groß"}],
                }
            ],
        },
    )
    await put(
        "config",
        {
            "name": "Musterstadt" if tenant == issues.tenants[0] else "Nachbarstadt",
            "allow_anonymous": True,
            "moderation": False,
            "default_department": "buergerservice",
            "boundary": TOWN,
        },
    )
    for staff_id, role, departments in [
        ("anna", "agent", ["ordnungsamt"]),
        ("bernd", "agent", ["bauhof-nord"]),
        ("lena", "lead", ["ordnungsamt"]),
        ("ada", "admin", []),
    ]:
        created = await client.post(
            "/api/v1/admin/staff",
            json={
                "id": staff_id,
                "name": staff_id.title(),
                "role": role,
                "departments": departments,
            },
            headers=headers,
        )
        assert created.status_code == 201, created.text
        issues.staff_tokens[(tenant, staff_id)] = created.json()["token"]
        issues.setup_codes[(tenant, staff_id)] = created.json()["setup_code"]


@pytest.fixture
async def issues(sirene_infra: InfraUrls) -> AsyncIterator[Issues]:
    tenants = [f"t-{uuid.uuid4().hex[:10]}" for _ in range(2)]
    admin_tokens = {t: f"admin-{uuid.uuid4().hex}" for t in tenants}
    keys = {t: f"key-{uuid.uuid4().hex}" for t in tenants}
    settings = IssuesSettings(
        **sirene_infra.settings_kwargs(),  # type: ignore[arg-type]
        api_tokens={t: SecretStr(v) for t, v in admin_tokens.items()},
        open311_api_keys={t: [SecretStr(v)] for t, v in keys.items()},
        notify_interval_s=0.5,
        reports_per_ip=1000,
        reports_per_contact=1000,
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        issues = Issues(app, client, settings, tenants, admin_tokens, keys)
        for tenant in tenants:
            await configure(issues, tenant)
        yield issues
