"""Fanout settings (env prefix `SIRENE_FANOUT_`; infrastructure under `SIRENE_KAFKA` etc.)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from sirene.runtime import ServiceSettings


class FanoutSettings(ServiceSettings):
    """How the fanout reads its audience and emits tasks."""

    model_config = SettingsConfigDict(env_prefix="SIRENE_FANOUT_", extra="ignore")

    service_name: str = "fanout"
    http_port: int = 8003
    chunk_size: int = Field(
        default=2000, ge=100, le=50_000, description="Citizens read and emitted per step."
    )
    alerts_per_batch: int = Field(
        default=5,
        ge=1,
        le=500,
        description="Alerts consumed per batch and lane (a failure re-expands the batch).",
    )
    index_prefix: str = Field(
        default="sirene:aud", description="Redis key prefix of the audience index."
    )
