"""channel-push settings (env prefix `SIRENE_CHANNEL_PUSH_`; infrastructure under
`SIRENE_KAFKA` etc.). Defaults point at the provider simulator (APNs on 127.0.0.1:8443 with its
own CA and signing key in `.local/sim-certs`, FCM v1 on 127.0.0.1:8010)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from sirene.runtime.delivery import ChannelSettings
from sirene.runtime.settings import LOCAL_HOSTS, is_local_url


class ChannelPushSettings(ChannelSettings):
    """How the push worker reaches APNs and FCM."""

    model_config = SettingsConfigDict(env_prefix="SIRENE_CHANNEL_PUSH_", extra="ignore")

    service_name: str = "channel-push"
    http_port: int = 8006

    apns_host: str = Field(
        default="127.0.0.1", description="APNs host ('api.push.apple.com' in production)."
    )
    apns_port: int = Field(default=8443, ge=1, le=65535, description="APNs port (443 at Apple).")
    apns_cert_dir: Path = Field(
        default=Path(".local/sim-certs"),
        description="Simulator cert dir: default place of the CA and the signing key "
        "(relative paths resolve against the working directory).",
    )
    apns_ca_file: Path | None = Field(
        default=None,
        description="CA to trust for APNs TLS; default <apns_cert_dir>/ca.pem if it exists, "
        "else the system trust store (use that for Apple).",
    )
    apns_key: SecretStr | None = Field(
        default=None, description="ES256 signing key (.p8 PEM text); wins over apns_key_file."
    )
    apns_key_file: Path | None = Field(
        default=None, description="ES256 signing key file; default <apns_cert_dir>/apns-key.p8."
    )
    apns_key_id: str = Field(
        default="SIRENEDEV1", min_length=1, description="Key id (kid) of the signing key."
    )
    apns_team_id: str = Field(
        default="SIRENETEAM", min_length=1, description="Apple developer team id (iss)."
    )
    apns_topic: str = Field(default="de.sirene.app", description="App bundle id (apns-topic).")
    apns_max_connections: int = Field(
        default=8, ge=1, le=100, description="HTTP/2 connections to APNs (1000 streams each)."
    )

    fcm_api_url: str = Field(
        default="http://127.0.0.1:8010",
        description="FCM HTTP v1 base URL ('https://fcm.googleapis.com' in production).",
    )
    fcm_project: str = Field(default="sirene-dev", description="Firebase project id.")
    fcm_access_token: SecretStr | None = Field(
        default=SecretStr("dev-fcm-access-token"),
        description="OAuth bearer for FCM (static for now; unset = FCM tasks fail PERMANENT).",
    )
    provider_timeout_s: float = Field(default=10.0, gt=0, description="Per provider request.")
    provider_concurrency: int = Field(
        default=200, ge=1, le=5000, description="Pushes in flight per worker process."
    )
    gone_token_ttl_s: int = Field(
        default=30 * 24 * 3600,
        ge=60,
        description="How long a token APNs/FCM declared gone is remembered (not sent to).",
    )

    def production_problems(self) -> list[str]:
        problems = super().production_problems()
        if self.apns_host.startswith(LOCAL_HOSTS):
            problems.append("apns_host must be Apple's APNs host, not a simulator")
        if self.apns_key_id == "SIRENEDEV1" or self.apns_team_id == "SIRENETEAM":
            problems.append("apns_key_id/apns_team_id are the simulator's development values")
        if is_local_url(self.fcm_api_url):
            problems.append("fcm_api_url must be FCM's https API, not a simulator")
        return problems

    @field_validator("apns_cert_dir", "apns_ca_file", "apns_key_file")
    @classmethod
    def _resolve_against_cwd(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser().resolve()

    @property
    def resolved_ca_file(self) -> Path | None:
        """The CA file to trust, or None for the system trust store."""
        if self.apns_ca_file is not None:
            return self.apns_ca_file
        default = self.apns_cert_dir / "ca.pem"
        return default if default.exists() else None

    def signing_key(self) -> str:
        """The ES256 provider-token key (PEM text)."""
        if self.apns_key is not None:
            return self.apns_key.get_secret_value()
        return (self.apns_key_file or self.apns_cert_dir / "apns-key.p8").read_text()
