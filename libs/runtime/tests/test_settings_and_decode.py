"""Settings refuse placeholder secrets in production; decode gives dead-letter reasons."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from sirene.runtime import PoisonMessageError, ServiceSettings, decode
from sirene.schemas import AlertPublished


def test_production_refuses_development_placeholder_secrets() -> None:
    with pytest.raises(ValidationError, match="placeholder"):
        ServiceSettings(environment="production", redis_url=SecretStr("redis://:dev-pw@r:6379"))
    ok = ServiceSettings(environment="production", redis_url=SecretStr("redis://:Zq8v@r:6379"))
    assert ok.environment == "production"
    assert ServiceSettings(redis_url=SecretStr("redis://:dev-pw@r:6379")).environment


def test_infrastructure_comes_from_the_shared_environment_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SIRENE_KAFKA", "k1:9092,k2:9092")
    monkeypatch.setenv("SIRENE_MONGODB_URI", "mongodb://m:27017/")
    settings = ServiceSettings()
    assert settings.kafka == "k1:9092,k2:9092"
    assert settings.mongodb_uri.get_secret_value() == "mongodb://m:27017/"
    assert "mongodb://m" not in repr(settings)
    assert settings.group_id("alerts") == "sirene.alerts"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "invalid JSON"),
        (b'{"tenant_id": "musterstadt"}', "schema violation (AlertPublished)"),
        (None, "empty value"),
    ],
)
def test_decode_explains_why_a_message_is_poison(raw: bytes | None, reason: str) -> None:
    with pytest.raises(PoisonMessageError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        decode(AlertPublished, raw)


def test_resolve_applies_overrides_to_given_or_environment_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SIRENE_KAFKA", "k1:9092")
    assert ServiceSettings.resolve(http_port=9001).kafka == "k1:9092"
    given = ServiceSettings(http_port=9002)
    assert ServiceSettings.resolve(given) is given
    changed = ServiceSettings.resolve(given, http_port=9003)
    assert (changed.http_port, given.http_port) == (9003, 9002)


async def test_a_failed_batch_is_handed_back_only_after_a_pause(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import time

    from sirene.runtime import kafka

    monkeypatch.setattr(kafka, "REDELIVERY_PAUSE_S", 0.2)
    middleware = kafka.PauseBeforeRedelivery(None, context=None)  # type: ignore[arg-type]

    async def failing(_msg: object) -> None:
        raise ConnectionError("mongodb is down")

    async def fine(msg: object) -> object:
        return msg

    began = time.perf_counter()
    with pytest.raises(ConnectionError):
        await middleware.consume_scope(failing, "batch")
    assert time.perf_counter() - began >= 0.1
    began = time.perf_counter()
    assert await middleware.consume_scope(fine, "batch") == "batch"
    assert time.perf_counter() - began < 0.1
