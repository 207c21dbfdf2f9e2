"""Fanout settings (env prefix `SIRENE_FANOUT_`; infrastructure under `SIRENE_KAFKA` etc.)."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from sirene.runtime import ServiceSettings
from sirene.runtime.auth import EstimateToken, estimate_token_field


class FanoutSettings(ServiceSettings):
    """How the fanout reads its audience and emits tasks."""

    model_config = SettingsConfigDict(env_prefix="SIRENE_FANOUT_", extra="ignore")

    service_name: str = "fanout"
    http_port: int = 8003
    chunk_size: int = Field(
        default=5000, ge=100, le=50_000, description="Citizens read and emitted per step."
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
    index_buckets: int = Field(
        default=64,
        ge=1,
        le=4096,
        description="Buckets of the audience index, the most shards an alert can get (a power "
        "of two; changing it rebuilds the index from the profile topic).",
    )
    shard_size: int = Field(
        default=25_000,
        ge=100,
        description="Citizens per shard an alert is split into (more shards, more instances "
        "can help; fewer, less overhead for small alerts).",
    )
    shards_per_batch: int = Field(
        default=8, ge=1, le=256, description="Shards consumed per batch and expanded together."
    )
    chunks_in_flight: int = Field(
        default=4,
        ge=1,
        le=64,
        description="Chunks of a shard awaiting Kafka's acknowledgement while the next is read.",
    )
    run_ttl_s: int = Field(
        default=7 * 24 * 3600,
        ge=3600,
        description="How long an alert's shard bookkeeping and expected counts are kept.",
    )
    timezone: str = Field(
        default="Europe/Berlin",
        description="Local time of the citizens' quiet hours (an IANA zone name).",
    )
    release_interval_s: float = Field(
        default=5.0,
        ge=0.5,
        le=300.0,
        description="How often the fanout looks for citizens whose quiet hours have ended, to "
        "send them the bulk posts held back for them.",
    )
    follower_lease_s: float = Field(
        default=15.0,
        ge=2.0,
        le=300.0,
        description="Lease of the one instance that follows the profile topic into the index; "
        "another instance takes over this long after it stops renewing.",
    )

    estimate_token: EstimateToken = estimate_token_field()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @property
    def zone(self) -> ZoneInfo:
        """The zone of the quiet hours."""
        return ZoneInfo(self.timezone)
