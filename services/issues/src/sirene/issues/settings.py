"""Settings of the issues service (environment prefix `SIRENE_ISSUES_`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from sirene.runtime.auth import StaffTokensSettings, api_tokens_field

_PACKAGE_ROOT = Path(__file__).resolve().parents[3]
"""services/issues (where package.json and node_modules live)."""


class IssuesSettings(StaffTokensSettings):
    """Where issues listens, which tenants it serves, and the limits of its public side."""

    model_config = SettingsConfigDict(env_prefix="SIRENE_ISSUES_", extra="ignore")

    service_name: str = Field(default="issues", description="Name in logs and metrics.")
    http_port: int = Field(default=8007, ge=0, le=65535, description="HTTP port (0 = any).")
    api_tokens: dict[str, SecretStr] = api_tokens_field(
        "Tenant id → administrator token of its report desk (JSON in the environment). The "
        "keys are also the tenants whose public report form and Open311 endpoint are open."
    )
    open311_api_keys: dict[str, list[SecretStr]] = Field(
        default_factory=lambda: {"musterstadt": [SecretStr("dev-open311-musterstadt")]},
        description="Tenant id → Open311 api_keys allowed to POST requests (JSON).",
    )
    portal_url: str | None = Field(
        default=None,
        description="Public base URL of the citizen portal (links in notifications); default "
        "<base_url>/portal.",
    )
    max_photos: int = Field(default=3, ge=0, le=10, description="Photos per report.")
    max_photo_mb: int = Field(default=10, ge=1, le=50, description="Upload limit per photo.")
    photo_max_side: int = Field(
        default=1600, ge=200, le=8000, description="Longer side of stored photos, in pixels."
    )
    reports_per_ip: int = Field(default=10, ge=1, description="Reports per IP and window.")
    reports_per_contact: int = Field(
        default=5, ge=1, description="Reports per e-mail address or phone number and window."
    )
    limit_window_s: int = Field(default=3600, ge=10, description="Abuse limit window.")
    duplicate_radius_m: float = Field(
        default=50.0, ge=5, le=1000, description="Open reports this close are suggested."
    )
    notify_interval_s: float = Field(
        default=2.0, gt=0, description="Safety-net interval of the notification relay."
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Proxy addresses whose X-Forwarded-For is believed (for per-IP limits).",
    )
    tile_url: str | None = Field(
        default=None,
        description="Map tile URL template for the portal (e.g. the municipality's own tile "
        "server); without it the map shows the municipality's outline and districts only.",
    )
    assets_dir: Path = Field(
        default=_PACKAGE_ROOT / "node_modules",
        description="Where `npm ci` put the portal's browser packages (Leaflet).",
    )

    session_ttl_s: int = Field(
        default=8 * 3600,
        ge=300,
        description="Staff inbox sessions end after this idle time (seconds).",
    )
    session_cookie_secure: bool | None = Field(
        default=None,
        description="Send the staff session cookie over HTTPS only (`Secure`); default: on "
        "in production, off otherwise (plain-HTTP development).",
    )
    login_max_failures: int = Field(
        default=10, ge=3, le=100, description="Failed staff sign-ins per account per window."
    )
    login_window_s: int = Field(
        default=900,
        ge=60,
        description="Window of the failed sign-in limit; an account over the limit is "
        "refused (even with the right password) until the window has passed.",
    )
    password_min_length: int = Field(
        default=12, ge=8, le=64, description="Shortest staff password accepted."
    )
    setup_link_ttl_h: int = Field(
        default=72,
        ge=1,
        le=720,
        description="A password set-up link (new account or reset) works this many hours, once.",
    )

    @property
    def cookie_secure(self) -> bool:
        """Whether the session cookie carries `Secure`."""
        if self.session_cookie_secure is None:
            return self.environment == "production"
        return self.session_cookie_secure

    def production_problems(self) -> list[str]:
        problems = super().production_problems()
        for tenant, keys in self.open311_api_keys.items():
            if any(k.get_secret_value().lower().startswith("dev-") for k in keys):
                problems.append(f"open311_api_keys of {tenant} hold a development placeholder")
        return problems

    @property
    def portal_base(self) -> str:
        """Base URL of the portal pages."""
        return (self.portal_url or f"{self.base_url}/portal").rstrip("/")
