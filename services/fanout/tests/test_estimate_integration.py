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
from sirene.schemas import CITIZEN_PROFILE, CitizenProfile, GeoPoint, profile_key, utcnow

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
        location=GeoPoint(lon=12.0 + i / 10, lat=51.0),  # c-1 at 12.1, c-2 at 12.2, c-3 at 12.3
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
        query = {"tenant": tenant, "audience": {"topics": ["warn"]}}
        for headers in (
            {},
            {"Authorization": "Bearer "},
            {"Authorization": "Bearer falsch-falsch-falsch-falsch"},
            {"Authorization": f"Bearer {TOKEN}x"},
            {"Authorization": f"Basic {TOKEN}"},
        ):
            refused = await client.post("/api/v1/estimate", json=query, headers=headers)
            assert refused.status_code == 401, headers
            assert refused.headers["www-authenticate"] == "Bearer"
            assert "recipients" not in refused.text
        english = await client.post(
            "/api/v1/estimate", json=query, headers={"Accept-Language": "en"}
        )
        assert english.json()["detail"].startswith("Authentication required")

        auth = {"Authorization": f"Bearer {TOKEN}"}
        answer = await client.post("/api/v1/estimate", json=query, headers=auth)
        assert answer.status_code == 200
        assert answer.json() == {
            "recipients": 2,
            "channels": {"push": 0, "sms": 2, "voice": 1, "email": 0},
        }
        everyone = await client.post(
            "/api/v1/estimate",
            json={"tenant": tenant, "audience": {"everyone": True}},
            headers=auth,
        )
        assert everyone.json()["recipients"] == 3
        # a target area around c-1's and c-2's address points (then with a hole around c-2's)
        ring = [[12.05, 50.9], [12.25, 50.9], [12.25, 51.1], [12.05, 51.1], [12.05, 50.9]]
        hole = [[12.15, 50.95], [12.25, 50.95], [12.25, 51.05], [12.15, 51.05], [12.15, 50.95]]
        area = {"description": "Ufer", "polygon": [ring]}
        inside = await client.post(
            "/api/v1/estimate",
            json={"tenant": tenant, "audience": {"everyone": True, "areas": [area]}},
            headers=auth,
        )
        assert inside.json()["recipients"] == 2
        holed = {**area, "polygon": [ring, hole]}
        with_hole = await client.post(  # c-2 lies inside the hole
            "/api/v1/estimate",
            json={"tenant": tenant, "audience": {"everyone": True, "areas": [holed]}},
            headers=auth,
        )
        assert with_hole.json() == {
            "recipients": 1,
            "channels": {"push": 0, "sms": 1, "voice": 0, "email": 0},
        }
        east = [[12.3, 50.9], [12.5, 50.9], [12.5, 51.1], [12.3, 51.1], [12.3, 50.9]]
        border = await client.post(  # c-3 lies on the area's border, which belongs to it
            "/api/v1/estimate",
            json={
                "tenant": tenant,
                "audience": {"everyone": True, "areas": [{**area, "polygon": [east]}]},
            },
            headers=auth,
        )
        assert border.json() == {
            "recipients": 1,
            "channels": {"push": 0, "sms": 0, "voice": 1, "email": 0},
        }
        bad = await client.post(
            "/api/v1/estimate",
            json={"tenant": tenant, "audience": {"everyone": True, "areas": [{"x": 1}]}},
            headers=auth,
        )
        assert bad.status_code == 422
