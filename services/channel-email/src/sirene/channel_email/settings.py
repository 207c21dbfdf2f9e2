"""channel-email settings (env prefix `SIRENE_CHANNEL_EMAIL_`; infrastructure under
`SIRENE_KAFKA` etc.). Defaults point at the provider simulator's SMTP sink."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from sirene.runtime.delivery import ChannelSettings
from sirene.runtime.mail import MailRelaySettings

DEV_UNSUBSCRIBE_SECRET = "sirene-dev-unsubscribe-secret-000001"  # noqa: S105 -- dev only


class ChannelEmailSettings(ChannelSettings, MailRelaySettings):
    """How the e-mail worker reaches the mail relay, and what it sends as."""

    model_config = SettingsConfigDict(env_prefix="SIRENE_CHANNEL_EMAIL_", extra="ignore")

    service_name: str = "channel-email"
    http_port: int = 8009
    provider_concurrency: int = Field(
        default=8, ge=1, le=200, description="SMTP connections (one message at a time each)."
    )
    mail_from: str = Field(
        default="Sirene Warnsystem <warnung@sirene.invalid>",
        description="Default sender (From).",
    )
    unsubscribe_secret: SecretStr = Field(
        default=SecretStr(DEV_UNSUBSCRIBE_SECRET),
        description="Key that signs the one-click unsubscribe links (List-Unsubscribe).",
    )

    def production_problems(self) -> list[str]:
        problems = super().production_problems()
        secret = self.unsubscribe_secret.get_secret_value()
        if secret == DEV_UNSUBSCRIBE_SECRET or len(secret) < 32:
            problems.append("unsubscribe_secret must be a real secret of 32+ characters")
        if not self.public_url:
            problems.append("public_url must be the https address unsubscribe links point at")
        return problems
