"""The recipient estimate against real Kafka and Redis: counts from the audience index, only for
callers with the service token."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from pydantic import SecretStr, ValidationError

from sirene.devstack.testing import InfraUrls
from sirene.fanout.app import create_app
from sirene.fanout.settings import FanoutSettings
from sirene.schemas import CITIZEN_PROFILE, CitizenProfile, profile_key, utcnow

TOKEN = "estimate-token-" + uuid.uuid4().hex


def test_the_token_is_long_and_no_placeholder_in_production() -> None:
    with pytest.raises(ValidationError, match="shorter than 16"):
        FanoutSettings(estimate_token=SecretStr("kurz"))
    with pytest.raises(ValidationError, match="estimate_token holds a development placeholder"):
        FanoutSettings(environment="production")  # the development default
    assert (
        FanoutSettings(estimate_token=SecretStr(TOKEN)).estimate_token.get_secret_value() == TOKEN
    )


def _profile(tenant: str, i: int, topics: dict[str, list[str]]) -> CitizenProfile:
    return CitizenProfile(
        tenant_id=tenant,
        citizen_id=f"c-{i}",
        active=True,
        contacts={"sms": f"+49151{i:08d}", "voice": f"+4930{i:07d}"},
        subscriptions=topics,
        version=1,
        updated_at=utcnow(),
    )


@pytest.mark.integration
async def test_estimate_needs_the_service_token(sirene_infra: InfraUrls) -> None:
    tenant = f"t-{uuid.uuid4().hex[:12]}"
    profiles = [
        _profile(tenant, 1, {"warn": ["sms"]}),
        _profile(tenant, 2, {"warn": ["sms", "voice"]}),
        _profile(tenant, 3, {"verkehr": ["voice"]}),
    ]
    producer = AIOKafkaProducer(bootstrap_servers=sirene_infra.kafka, acks="all")
    await producer.start()
    try:
        for p in profiles:
            await producer.send_and_wait(
                CITIZEN_PROFILE,
                value=p.model_dump_json().encode(),
                key=profile_key(tenant, p.citizen_id).encode(),
            )
    finally:
        await producer.stop()
    settings = FanoutSettings(
        **sirene_infra.settings_kwargs(),  # type: ignore[arg-type]
        index_prefix=f"test:{uuid.uuid4().hex[:8]}",
        estimate_token=SecretStr(TOKEN),
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        deadline = asyncio.get_running_loop().time() + 120
        while (await client.get("/api/v1/index/status")).json()["lag"] != 0:
            assert asyncio.get_running_loop().time() < deadline, "index did not catch up"
            await asyncio.sleep(0.1)
        query = {"tenant": tenant, "topic": "warn"}
        for headers in (
            {},
            {"Authorization": "Bearer "},
            {"Authorization": "Bearer falsch-falsch-falsch-falsch"},
            {"Authorization": f"Bearer {TOKEN}x"},
            {"Authorization": f"Basic {TOKEN}"},
        ):
            refused = await client.get("/api/v1/estimate", params=query, headers=headers)
            assert refused.status_code == 401, headers
            assert refused.headers["www-authenticate"] == "Bearer"
            assert "recipients" not in refused.text
        english = await client.get(
            "/api/v1/estimate", params=query, headers={"Accept-Language": "en"}
        )
        assert english.json()["detail"].startswith("Authentication required")

        answer = await client.get(
            "/api/v1/estimate", params=query, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert answer.status_code == 200
        assert answer.json() == {
            "recipients": 2,
            "channels": {"push": 0, "sms": 2, "voice": 1, "email": 0},
        }
        everyone = await client.get(
            "/api/v1/estimate",
            params={"tenant": tenant, "everyone": "true"},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert everyone.json()["recipients"] == 3
