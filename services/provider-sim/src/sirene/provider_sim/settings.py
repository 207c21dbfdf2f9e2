"""Settings of the provider simulator (environment prefix ``SIRENE_SIM_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_ACCOUNT_SID = "AC5e1f2a3b4c5d6e7f8091a2b3c4d5e6f7"
DEV_AUTH_TOKEN = "sirene-sim-dev-auth-token-0000001"  # noqa: S105 -- simulator-only credential


class SimSettings(BaseSettings):
    """Everything the simulator can be configured with; all fields have dev defaults."""

    model_config = SettingsConfigDict(env_prefix="SIRENE_SIM_", extra="ignore")

    host: str = Field(default="127.0.0.1", description="Interface both servers bind to.")
    http_port: int = Field(
        default=8010, ge=0, le=65535, description="Twilio/FCM/sim HTTP API port (0 = any)."
    )
    apns_port: int = Field(
        default=8443, ge=0, le=65535, description="APNs HTTP/2 TLS port (0 = any)."
    )
    smtp_port: int = Field(default=2525, ge=0, le=65535, description="SMTP sink port (0 = any).")
    accounts: dict[str, str] = Field(
        default_factory=lambda: {DEV_ACCOUNT_SID: DEV_AUTH_TOKEN},
        description="Twilio AccountSid -> AuthToken; JSON in SIRENE_SIM_ACCOUNTS.",
    )
    cert_dir: Path = Field(
        default=Path(".local/sim-certs"),
        description="Where ca.pem, server.pem and apns-key.p8 live (created if missing).",
    )
    apns_verify_signature: bool = Field(
        default=True,
        description="Verify the ES256 signature of APNs provider tokens against the key below.",
    )
    apns_key_file: Path | None = Field(
        default=None,
        description="PEM private (.p8) or public key that provider tokens are verified with; "
        "default: <cert_dir>/apns-key.p8, generated on first start.",
    )
    apns_team_id: str | None = Field(
        default=None, description="If set, provider tokens must carry this iss (team id)."
    )
    apns_key_id: str | None = Field(
        default=None, description="If set, provider tokens must carry this kid (key id)."
    )
    sms_inbound_url: str | None = Field(
        default=None,
        description="Messaging webhook of the platform number: where SMS from simulated phones "
        "are delivered (POST /sim/phones/{number}/sms).",
    )
    fcm_enabled: bool = Field(default=True, description="Serve the minimal FCM HTTP v1 API.")
    status_callback_delay: float = Field(
        default=0.05, ge=0, description="Seconds between simulated provider status changes."
    )
    webhook_timeout: float = Field(default=5.0, gt=0, description="Per webhook request.")
    webhook_retries: int = Field(default=3, ge=0, description="Retries after a failed webhook.")
    webhook_concurrency: int = Field(
        default=64, ge=1, description="Max webhook requests in flight."
    )
    history_per_item: int = Field(
        default=50, ge=1, description="Entries kept per phone/device and kind."
    )
    max_phones: int = Field(
        default=10_000, ge=1, description="Phones/devices kept; least recently used dropped."
    )
    max_resources: int = Field(
        default=100_000, ge=1, description="Message/call resources kept for GET by sid."
    )
    log_level: str = Field(default="INFO", description="Python logging level.")

    @field_validator("cert_dir", "apns_key_file")
    @classmethod
    def _resolve_against_cwd(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser().resolve()

    @field_validator("accounts")
    @classmethod
    def _accounts_look_like_twilio(cls, value: dict[str, str]) -> dict[str, str]:
        for sid, token in value.items():
            if not (sid.startswith("AC") and len(sid) == 34):
                raise ValueError(f"account sid {sid!r} must be 'AC' + 32 hex characters")
            if not token:
                raise ValueError(f"account {sid} needs a non-empty auth token")
        return value

    @property
    def resolved_apns_key_file(self) -> Path:
        """The key file provider tokens are verified with."""
        return self.apns_key_file or self.cert_dir / "apns-key.p8"
