"""Settings of a service that sends e-mail through a mail relay (channel-email for alerts,
subscriptions for verification links): the relay, the sender, a sender per tenant, and the
production checks they share. Defaults point at the provider simulator's SMTP sink."""

from __future__ import annotations

import json
from email.headerregistry import Address
from email.utils import parseaddr
from typing import Any

from pydantic import Field, SecretStr, field_validator

from .settings import LOCAL_HOSTS, ServiceSettings

SIM_SMTP_PORT = 2525
"""The provider simulator's SMTP sink."""


def valid_mailbox(value: str) -> str:
    """`value` if it is a mailbox such as 'Stadt Musterstadt <info@musterstadt.de>'."""
    name, address = parseaddr(value)
    if "@" not in address or address.startswith("@") or address.endswith("@"):
        raise ValueError(f"{value!r} is not a mailbox like 'Stadt Musterstadt <info@…>'")
    Address(display_name=name, addr_spec=address)  # raises on what cannot be a header
    return value


class MailRelaySettings(ServiceSettings):
    """The mail relay and the senders; a service redeclares `mail_from` with its own default
    and description."""

    smtp_host: str = Field(default="127.0.0.1", description="Mail relay host.")
    smtp_port: int = Field(default=SIM_SMTP_PORT, ge=1, le=65535, description="Mail relay port.")
    smtp_username: str | None = Field(default=None, description="SMTP AUTH user, if any.")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP AUTH password.")
    smtp_starttls: bool = Field(default=False, description="Upgrade with STARTTLS (port 587).")
    smtp_tls: bool = Field(default=False, description="Implicit TLS (port 465).")
    smtp_timeout_s: float = Field(default=15.0, gt=0, description="Per SMTP command.")
    mail_from: str = Field(
        default="Sirene <noreply@sirene.invalid>", description="Default sender (From)."
    )
    tenant_senders: dict[str, str] = Field(
        default_factory=dict,
        description="Sender per tenant (JSON object), e.g. "
        '{"musterstadt": "Stadt Musterstadt <info@musterstadt.de>"}.',
    )

    @field_validator("tenant_senders", mode="before")
    @classmethod
    def _parse_senders(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    @field_validator("tenant_senders")
    @classmethod
    def _valid_senders(cls, value: dict[str, str]) -> dict[str, str]:
        for sender in value.values():
            valid_mailbox(sender)
        return value

    @field_validator("mail_from")
    @classmethod
    def _valid_from(cls, value: str) -> str:
        return valid_mailbox(value)

    def sender_for(self, tenant: str) -> str:
        """The From of the tenant's e-mails."""
        return self.tenant_senders.get(tenant, self.mail_from)

    def production_problems(self) -> list[str]:
        problems = super().production_problems()
        if not self.smtp_host.strip():
            problems.append("smtp_host is empty")
        elif self.smtp_host.startswith(LOCAL_HOSTS) and self.smtp_port == SIM_SMTP_PORT:
            problems.append("smtp_host/smtp_port point at the simulator's SMTP sink")
        if "sirene.invalid" in self.mail_from:
            problems.append("mail_from must be the municipality's sender address")
        return problems
