"""Settings of the subscriptions service (environment prefix `SIRENE_SUBSCRIPTIONS_`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from sirene.runtime.auth import StaffTokensSettings
from sirene.runtime.mail import MailRelaySettings
from sirene.runtime.settings import is_local_url
from sirene.runtime.twilio import DEV_ACCOUNT_SID, DEV_AUTH_TOKEN

DEV_LINK_SECRET = "dev-link-secret-subscriptions-0000"  # noqa: S105 -- development placeholder


class Limit(BaseModel):
    """At most `count` requests per `window_s` seconds (fixed window in Redis)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    count: int = Field(ge=1, description="Requests allowed per window.")
    window_s: int = Field(ge=1, le=7 * 86400, description="Window length in seconds.")


class RateLimits(BaseModel):
    """Limits on registration and verification, each counted in Redis. Every registration
    that would cost an SMS or a call counts against all four of ip, number, prefix and tenant."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ip: Limit = Field(default=Limit(count=10, window_s=3600), description="Per client address.")
    number: Limit = Field(default=Limit(count=3, window_s=3600), description="Per phone number.")
    prefix: Limit = Field(
        default=Limit(count=10, window_s=3600),
        description="Per number prefix (the E.164 number without its last `prefix_cut` digits): "
        "sequential numbers of one range are what SMS pumping uses.",
    )
    tenant: Limit = Field(
        default=Limit(count=1000, window_s=3600), description="Per municipality, all together."
    )
    verify_ip: Limit = Field(
        default=Limit(count=30, window_s=600),
        description="Code entries and e-mail link confirmations per client address.",
    )
    email: Limit = Field(
        default=Limit(count=3, window_s=3600),
        description="Verification e-mails per e-mail address (a mailbox is not flooded).",
    )
    prefix_cut: int = Field(default=4, ge=1, le=8, description="Digits cut off for the prefix.")


class SubscriptionsSettings(StaffTokensSettings, MailRelaySettings):
    """Where subscriptions listens, who may call it, which phone numbers it accepts, how it
    reaches Twilio for verification codes and consent calls, how it sends e-mail verification
    links, and its abuse limits."""

    model_config = SettingsConfigDict(env_prefix="SIRENE_SUBSCRIPTIONS_", extra="ignore")

    service_name: str = Field(default="subscriptions", description="Name in logs and metrics.")
    http_port: int = Field(default=8002, ge=0, le=65535, description="HTTP port (0 = any).")
    default_region: str = Field(
        default="DE", description="Region assumed for phone numbers without a country code."
    )
    allowed_countries: list[str] = Field(
        default_factory=lambda: ["DE", "AT", "CH", "CZ", "PL"],
        description="ISO country codes whose phone numbers are accepted (default of tenants).",
    )
    tenant_allowed_countries: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Per tenant: its own list of accepted countries (JSON tenant → list).",
    )
    tenant_names: dict[str, str] = Field(
        default_factory=lambda: {"musterstadt": "Musterstadt"},
        description="Display name per tenant, used in portal pages, SMS and calls.",
    )
    relay_poll_interval_s: float = Field(
        default=5.0, gt=0, description="Safety-net poll of the profile outbox (it is also woken)."
    )
    relay_batch_size: int = Field(default=500, ge=1, le=10_000, description="Profiles per relay.")

    twilio_api_url: str = Field(
        default="http://127.0.0.1:8010",
        description="Twilio REST API base ('https://api.twilio.com' in production).",
    )
    twilio_account_sid: str = Field(
        default=DEV_ACCOUNT_SID, pattern=r"^AC[0-9a-fA-F]{32}$", description="Account SID."
    )
    twilio_auth_token: SecretStr = Field(
        default=SecretStr(DEV_AUTH_TOKEN),
        description="Auth token: API credential and the key webhook signatures are checked with.",
    )
    twilio_from: str = Field(
        default="+15005550006", pattern=r"^\+[1-9]\d{1,14}$", description="Sender number."
    )
    twilio_timeout_s: float = Field(default=10.0, gt=0, description="Per API request.")

    link_secret: SecretStr = Field(
        default=SecretStr(DEV_LINK_SECRET),
        description="Key of signed links (e-mail unsubscribe) and of verification code hashes.",
    )
    code_ttl_s: int = Field(default=600, ge=60, le=3600, description="Verification code life.")
    code_attempts: int = Field(default=5, ge=1, le=10, description="Wrong codes allowed.")
    consent_ttl_s: int = Field(
        default=72 * 3600, ge=600, description="How long a relative's consent may be given."
    )
    session_ttl_s: int = Field(default=30 * 86400, ge=600, description="Citizen portal login.")
    email_link_ttl_s: int = Field(
        default=24 * 3600,
        ge=600,
        le=7 * 86400,
        description="How long the link that verifies a citizen's e-mail address stays valid.",
    )

    mail_from: str = Field(
        default="Sirene Bürgerinformation <noreply@sirene.invalid>",
        description="Sender (From) of verification e-mails.",
    )
    limits: RateLimits = Field(default_factory=RateLimits, description="Abuse limits (JSON).")

    @field_validator("default_region")
    @classmethod
    def _upper_region(cls, value: str) -> str:
        return value.upper()

    @field_validator("allowed_countries")
    @classmethod
    def _upper_countries(cls, value: list[str]) -> list[str]:
        return [v.upper() for v in value]

    @field_validator("tenant_allowed_countries")
    @classmethod
    def _upper_tenant_countries(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        return {tenant: [v.upper() for v in codes] for tenant, codes in value.items()}

    def countries_for(self, tenant: str) -> list[str]:
        """The countries whose numbers `tenant` accepts."""
        return self.tenant_allowed_countries.get(tenant, self.allowed_countries)

    def tenant_name(self, tenant: str) -> str:
        """How citizens see the municipality's name."""
        return self.tenant_names.get(tenant) or tenant.replace("-", " ").title()

    def production_problems(self) -> list[str]:
        problems = super().production_problems()
        if is_local_url(self.twilio_api_url):
            problems.append("twilio_api_url must be Twilio's https API, not a simulator")
        if self.twilio_account_sid == DEV_ACCOUNT_SID:
            problems.append("twilio_account_sid is the simulator's development account")
        if self.twilio_auth_token.get_secret_value() == DEV_AUTH_TOKEN:
            problems.append("twilio_auth_token must be the account's real auth token")
        secret = self.link_secret.get_secret_value()
        if secret == DEV_LINK_SECRET or len(secret) < 32:
            problems.append("link_secret must be a random secret of at least 32 characters")
        if not self.public_url or is_local_url(self.public_url):
            problems.append("public_url must be the https address citizens and Twilio use")
        return problems
