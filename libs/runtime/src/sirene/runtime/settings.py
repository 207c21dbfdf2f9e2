"""Settings every service shares: where Kafka, MongoDB and Redis are, and how to serve HTTP.

Infrastructure is found under the same environment variables in every service and in the tests
(`SIRENE_KAFKA`, `SIRENE_MONGODB_URI`, `SIRENE_REDIS_URL`); service-specific settings use the
service's own prefix (e.g. `SIRENE_PUBLISHER_HTTP_PORT`)."""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_MARKERS = ("dev-", "change-me", "changeme", "insecure")
"""Substrings that mark a secret as a development placeholder."""


LOCAL_HOSTS = ("127.", "localhost", "[::1]")


def is_local_url(url: str) -> bool:
    """Whether a URL points at this machine (a simulator), or is not https."""
    rest = url.lower().removeprefix("https://")
    return rest == url.lower() or rest.startswith(LOCAL_HOSTS)


class ProductionSettingsError(ValueError):
    """A production deployment configured with development values."""


class ServiceSettings(BaseSettings):
    """Base settings. Subclasses set `model_config` with their own `env_prefix`."""

    model_config = SettingsConfigDict(env_prefix="SIRENE_", extra="ignore")

    service_name: str = Field(default="sirene", description="Name in logs, metrics, client ids.")
    environment: Literal["development", "test", "production"] = Field(
        default="development",
        validation_alias=AliasChoices("SIRENE_ENVIRONMENT", "environment"),
        description="'production' refuses development placeholder secrets.",
    )
    kafka: str = Field(
        default="127.0.0.1:29092",
        validation_alias=AliasChoices("SIRENE_KAFKA", "kafka"),
        description="Kafka bootstrap servers, comma separated.",
    )
    mongodb_uri: SecretStr = Field(
        default=SecretStr("mongodb://127.0.0.1:27117/"),
        validation_alias=AliasChoices("SIRENE_MONGODB_URI", "mongodb_uri"),
        description="MongoDB (or FerretDB) connection string; may hold credentials.",
    )
    mongodb_db: str = Field(
        default="",
        validation_alias=AliasChoices("SIRENE_MONGODB_DB", "mongodb_db"),
        description="Database name; default `sirene_<service>`, so each service owns its data "
        "(and, on FerretDB's SQLite backend, its own file).",
    )
    mongodb_retry_writes: bool = Field(
        default=False,
        validation_alias=AliasChoices("SIRENE_MONGODB_RETRY_WRITES", "mongodb_retry_writes"),
        description="Retryable writes: true on a MongoDB replica set (survives a primary "
        "failover); false on FerretDB v1, which does not implement them.",
    )
    mongodb_serialize_writes: bool = Field(
        default=True,
        validation_alias=AliasChoices(
            "SIRENE_MONGODB_SERIALIZE_WRITES", "mongodb_serialize_writes"
        ),
        description="Take a process's writes to an outbox collection one at a time: needed on "
        "FerretDB v1, which can lose one of two concurrent updates of a document (see "
        "`sirene.runtime.mongo.serialized_writes`); false on MongoDB.",
    )
    redis_url: SecretStr = Field(
        default=SecretStr("redis://127.0.0.1:26479/0"),
        validation_alias=AliasChoices("SIRENE_REDIS_URL", "redis_url"),
        description="Redis URL; may hold a password.",
    )
    kafka_group_prefix: str = Field(
        default="",
        validation_alias=AliasChoices("SIRENE_KAFKA_GROUP_PREFIX", "kafka_group_prefix"),
        description="Prefix of every consumer group id (lets tests run isolated groups).",
    )
    kafka_offset_reset: Literal["earliest", "latest"] = Field(
        default="earliest",
        validation_alias=AliasChoices("SIRENE_KAFKA_OFFSET_RESET", "kafka_offset_reset"),
        description="Where a new consumer group starts. Services start at 'earliest' so "
        "nothing published before their first start is lost; tests use 'latest'.",
    )
    redis_max_connections: int = Field(
        default=32,
        ge=1,
        le=1000,
        validation_alias=AliasChoices("SIRENE_REDIS_MAX_CONNECTIONS", "redis_max_connections"),
        description="Redis connections per process; callers wait for a free one.",
    )
    http_host: str = Field(default="127.0.0.1", description="Address the HTTP server binds.")
    http_port: int = Field(default=8000, ge=0, le=65535, description="HTTP port (0 = any).")
    public_url: str | None = Field(
        default=None,
        description="Base URL others use to reach this service (e.g. for provider callbacks).",
    )
    log_level: str = Field(
        default="INFO",
        validation_alias=AliasChoices("SIRENE_LOG_LEVEL", "log_level"),
        description="Python logging level (DEBUG, INFO, WARNING, ERROR).",
    )
    log_json: bool = Field(
        default=True,
        validation_alias=AliasChoices("SIRENE_LOG_JSON", "log_json"),
        description="One JSON object per log line (phone numbers, e-mail addresses and tokens "
        "masked); false gives plain text for a terminal.",
    )

    @model_validator(mode="after")
    def _own_database_by_default(self) -> ServiceSettings:
        if not self.mongodb_db:
            self.mongodb_db = "sirene_" + self.service_name.replace("-", "_")
        return self

    @classmethod
    def resolve(cls, settings: Self | None = None, **overrides: Any) -> Self:
        """What `create_app(settings, **overrides)` runs with: `settings` with `overrides`
        replacing fields, or, without `settings`, settings read from the environment and
        `overrides` (handy in tests)."""
        if settings is None:
            return cls(**overrides)
        return settings.model_copy(update=overrides) if overrides else settings

    def group_id(self, name: str) -> str:
        """The consumer group id for one of this service's subscribers."""
        return f"{self.kafka_group_prefix}{self.service_name}.{name}"

    def production_problems(self) -> list[str]:
        """What is wrong with these settings for production (development placeholder secrets);
        subclasses add their own checks to this list."""
        return [
            f"{name} holds a development placeholder secret"
            for name, value in self
            if isinstance(value, SecretStr)
            and any(marker in value.get_secret_value().lower() for marker in DEV_MARKERS)
        ]

    @model_validator(mode="after")
    def _fit_for_production(self) -> ServiceSettings:
        if self.environment == "production":
            problems = self.production_problems()
            if problems:
                raise ProductionSettingsError("not fit for production: " + "; ".join(problems))
        return self

    @property
    def base_url(self) -> str:
        """Where this service is reachable over HTTP."""
        return self.public_url or f"http://{self.http_host}:{self.http_port}"
