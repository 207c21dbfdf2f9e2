"""Staff login: settings check the tokens; the dependency answers the tenant or 401."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI
from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import SettingsConfigDict

from sirene.runtime.auth import StaffTokensSettings, api_tokens_field, staff_tenant_dependency

TOKEN_A = "a-very-long-token-of-tenant-a"
TOKEN_B = "a-very-long-token-of-tenant-b"


class DemoSettings(StaffTokensSettings):
    model_config = SettingsConfigDict(env_prefix="SIRENE_DEMO_", extra="ignore")

    http_port: int = Field(default=8099)


class DescribedSettings(StaffTokensSettings):
    api_tokens: dict[str, SecretStr] = api_tokens_field("Also the open report forms.")


def test_tokens_are_checked_at_start_up() -> None:
    with pytest.raises(ValidationError, match="shorter than 16 characters"):
        DemoSettings(api_tokens={"musterstadt": SecretStr("short")})
    with pytest.raises(ValidationError, match="not a tenant slug"):
        DemoSettings(api_tokens={"Muster Stadt": SecretStr(TOKEN_A)})
    with pytest.raises(ValidationError, match="development placeholder"):
        DemoSettings(environment="production")
    ok = DemoSettings(environment="production", api_tokens={"musterstadt": SecretStr(TOKEN_A)})
    assert ok.http_port == 8099
    assert DemoSettings().api_tokens["musterstadt"].get_secret_value() == "dev-token-musterstadt"


def test_tokens_come_from_the_service_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIRENE_DEMO_API_TOKENS", f'{{"bergdorf": "{TOKEN_B}"}}')
    assert DemoSettings().api_tokens["bergdorf"].get_secret_value() == TOKEN_B


def test_a_service_may_describe_its_tokens_its_own_way() -> None:
    schema = DescribedSettings.model_json_schema()
    assert schema["properties"]["api_tokens"]["description"] == "Also the open report forms."
    assert "bearer" in DemoSettings.model_json_schema()["properties"]["api_tokens"]["description"]


@dataclass(frozen=True)
class DemoContext:
    settings: DemoSettings


def get_context() -> DemoContext:
    return DemoContext(
        DemoSettings(api_tokens={"musterstadt": SecretStr(TOKEN_A), "bergdorf": SecretStr(TOKEN_B)})
    )


TenantDep = Annotated[str, Depends(staff_tenant_dependency(get_context))]
app = FastAPI()


@app.get("/whoami")
async def whoami(tenant: TenantDep) -> dict[str, str]:
    return {"tenant": tenant}


async def _get(headers: dict[str, str]) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.get("/whoami", headers=headers)


@pytest.mark.parametrize(("token", "tenant"), [(TOKEN_A, "musterstadt"), (TOKEN_B, "bergdorf")])
async def test_the_token_names_the_tenant(token: str, tenant: str) -> None:
    response = await _get({"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json() == {"tenant": tenant}


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, "Anmeldung erforderlich (Authorization: Bearer <Token>)."),
        (
            {"Authorization": "Bearer nope"},
            "Anmeldung erforderlich (Authorization: Bearer <Token>).",
        ),
        (
            {"Authorization": f"Basic {TOKEN_A}", "Accept-Language": "en-GB,en;q=0.9"},
            "Authentication required (Authorization: Bearer <token>).",
        ),
    ],
)
async def test_anything_else_is_401_in_the_callers_language(
    headers: dict[str, str], detail: str
) -> None:
    response = await _get(headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {"detail": detail}


def test_a_token_shared_by_two_tenants_is_refused() -> None:
    from pydantic import SecretStr

    from sirene.runtime.auth import check_api_tokens

    shared = SecretStr("x" * 40)
    with pytest.raises(ValueError, match="share a token"):
        check_api_tokens({"a-town": shared, "b-town": shared}, production=True)
    check_api_tokens({"a-town": shared, "b-town": SecretStr("y" * 40)}, production=True)
