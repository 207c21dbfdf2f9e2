"""channel-email settings (env prefix `SIRENE_CHANNEL_EMAIL_`; infrastructure under
`SIRENE_KAFKA` etc.). Defaults point at the provider simulator's SMTP sink."""

from __future__ import annotations

import json
from email.headerregistry import Address
from email.utils import parseaddr
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from sirene.runtime.delivery import ChannelSettings
from sirene.runtime.settings import LOCAL_HOSTS

DEV_UNSUBSCRIBE_SECRET = "sirene-dev-unsubscribe-secret-000001"  # noqa: S105 -- dev only


def _valid_mailbox(value: str) -> str:
    name, address = parseaddr(value)
    if "@" not in address or address.startswith("@") or address.endswith("@"):
        raise ValueError(f"{value!r} is not a mailbox like 'Stadt Musterstadt <warnung@…>'")
    Address(display_name=name, addr_spec=address)  # raises on what cannot be a header
    return value


class ChannelEmailSettings(ChannelSettings):
    """How the e-mail worker reaches the mail relay, and what it sends as."""

    model_config = SettingsConfigDict(env_prefix="SIRENE_CHANNEL_EMAIL_", extra="ignore")

    service_name: str = "channel-email"
    http_port: int = 8009
    provider_concurrency: int = Field(
        default=8, ge=1, le=200, description="SMTP connections (one message at a time each)."
    )
    smtp_host: str = Field(default="127.0.0.1", description="Mail relay host.")
    smtp_port: int = Field(default=2525, ge=1, le=65535, description="Mail relay port.")
    smtp_username: str | None = Field(default=None, description="SMTP AUTH user, if any.")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP AUTH password.")
    smtp_starttls: bool = Field(default=False, description="Upgrade with STARTTLS (port 587).")
    smtp_tls: bool = Field(default=False, description="Implicit TLS (port 465).")
    smtp_timeout_s: float = Field(default=15.0, gt=0, description="Per SMTP command.")
    mail_from: str = Field(
        default="Sirene Warnsystem <warnung@sirene.invalid>",
        description="Default sender (From).",
    )
    tenant_senders: dict[str, str] = Field(
        default_factory=dict,
        description="Sender per tenant (JSON object), e.g. "
        '{"musterstadt": "Stadt Musterstadt <warnung@musterstadt.de>"}.',
    )
    unsubscribe_secret: SecretStr = Field(
        default=SecretStr(DEV_UNSUBSCRIBE_SECRET),
        description="Key that signs the one-click unsubscribe links (List-Unsubscribe).",
    )

    @field_validator("tenant_senders", mode="before")
    @classmethod
    def _parse_senders(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    @field_validator("tenant_senders")
    @classmethod
    def _valid_senders(cls, value: dict[str, str]) -> dict[str, str]:
        for sender in value.values():
            _valid_mailbox(sender)
        return value

    @field_validator("mail_from")
    @classmethod
    def _valid_from(cls, value: str) -> str:
        return _valid_mailbox(value)

    def sender_for(self, tenant_id: str) -> str:
        return self.tenant_senders.get(tenant_id, self.mail_from)

    def production_problems(self) -> list[str]:
        problems = super().production_problems()
        if self.smtp_host.startswith(LOCAL_HOSTS) and self.smtp_port == 2525:
            problems.append("smtp_host/smtp_port point at the simulator's SMTP sink")
        secret = self.unsubscribe_secret.get_secret_value()
        if secret == DEV_UNSUBSCRIBE_SECRET or len(secret) < 32:
            problems.append("unsubscribe_secret must be a real secret of 32+ characters")
        if not self.public_url:
            problems.append("public_url must be the https address unsubscribe links point at")
        if "sirene.invalid" in self.mail_from:
            problems.append("mail_from must be the municipality's sender address")
        return problems
