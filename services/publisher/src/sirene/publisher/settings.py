"""Settings of the publisher (environment prefix `SIRENE_PUBLISHER_`)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from sirene.runtime.auth import EstimateToken, StaffTokensSettings, estimate_token_field


class PublisherSettings(StaffTokensSettings):
    """Where the publisher listens, who may call it, how alerts are relayed."""

    model_config = SettingsConfigDict(env_prefix="SIRENE_PUBLISHER_", extra="ignore")

    service_name: str = Field(default="publisher", description="Name in logs and metrics.")
    http_port: int = Field(default=8001, ge=0, le=65535, description="HTTP port (0 = any).")
    default_duration_s: int = Field(
        default=24 * 3600,
        ge=60,
        description="How long an alert stays deliverable when neither expires nor duration "
        "is given.",
    )
    relay_poll_interval_s: float = Field(
        default=5.0, gt=0, description="Safety-net poll of the alert outbox (it is also woken)."
    )
    relay_batch_size: int = Field(default=100, ge=1, le=10_000, description="Alerts per relay.")
    schedule_poll_interval_s: float = Field(
        default=1.0,
        gt=0,
        le=4.0,
        description="How often due scheduled alerts are looked for (a due alert goes out "
        "within this time plus the relay's; keep it well under 5 s).",
    )
    session_ttl_s: int = Field(
        default=8 * 3600, ge=300, description="Console sessions expire after this idle time."
    )
    login_max_failures: int = Field(
        default=10, ge=3, le=100, description="Failed console sign-ins per account per window."
    )
    login_window_s: int = Field(
        default=900, ge=60, description="Window of the failed sign-in limit (then blocked)."
    )
    fanout_url: str = Field(
        default="http://127.0.0.1:8003",
        description="The fanout's HTTP API (recipient estimates before sending).",
    )
    estimate_token: EstimateToken = estimate_token_field()
    assets_dir: str | None = Field(
        default=None,
        description="Folder holding the console's npm packages (@kern-ux/native, htmx.org); "
        "default: services/publisher/web/node_modules of the source tree.",
    )
    attachment_max_mib: int = Field(
        default=10, ge=1, le=100, description="Largest attachment (MiB)."
    )
    attachments_per_alert: int = Field(default=5, ge=1, le=20, description="Attachments per alert.")
    cap_sender_domain: str = Field(
        default="sirene.invalid",
        pattern=r"^[a-z0-9.-]+$",
        description="CAP `sender` of exports is `<tenant>@<this domain>`.",
    )

    def cap_sender(self, tenant: str) -> str:
        """The CAP sender of a tenant's alerts."""
        return f"{tenant}@{self.cap_sender_domain}"
