"""Verification e-mails: a plain-text and HTML message in the citizen's language with the link
that confirms the address, handed to the configured mail relay with aiosmtplib.

Verification mails are rare (a citizen adds or changes an address), so each one opens its own
SMTP connection: nothing idles against the relay, and a relay restart never leaves a broken
pooled connection behind. Alert e-mails are channel-email's business, not this module's."""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr

import aiosmtplib

from sirene.runtime import mask
from sirene.schemas import Language, utcnow

from . import metrics
from .settings import SubscriptionsSettings

log = logging.getLogger(__name__)


class MailError(Exception):
    """The relay did not take the message (refused, unreachable or timed out)."""


@dataclass(frozen=True, slots=True)
class VerificationMail:
    """What a verification e-mail says."""

    to: str
    link: str
    tenant_name: str
    language: Language
    valid_hours: int


_TEXT: dict[Language, dict[str, str]] = {
    Language.DE: {
        "subject": "Bitte bestätigen Sie Ihre E-Mail-Adresse – {tenant}",
        "hello": "Guten Tag,",
        "why": "Sie möchten Nachrichten und Warnungen von {tenant} per E-Mail erhalten. "
        "Bitte bestätigen Sie, dass diese Adresse Ihnen gehört:",
        "button": "E-Mail-Adresse bestätigen",
        "valid": "Der Link ist {hours} Stunden gültig und kann nur einmal verwendet werden.",
        "ignore": "Wenn Sie das nicht angefordert haben, ignorieren Sie diese E-Mail einfach: "
        "Ohne Bestätigung senden wir an diese Adresse nichts.",
        "signature": "Ihre Gemeinde {tenant}",
    },
    Language.EN: {
        "subject": "Please confirm your e-mail address – {tenant}",
        "hello": "Hello,",
        "why": "You asked to receive news and warnings from {tenant} by e-mail. "
        "Please confirm that this address is yours:",
        "button": "Confirm e-mail address",
        "valid": "The link is valid for {hours} hours and can be used once.",
        "ignore": "If you did not ask for this, simply ignore this e-mail: "
        "without confirmation we send nothing to this address.",
        "signature": "Your municipality {tenant}",
    },
}


def build_verification(mail: VerificationMail, *, sender: str) -> EmailMessage:
    """The verification message: subject, plain text and an HTML alternative with one button."""
    words = {
        key: value.format(tenant=mail.tenant_name, hours=mail.valid_hours)
        for key, value in _TEXT[mail.language].items()
    }
    text = (
        f"{words['hello']}\n\n{words['why']}\n\n{mail.link}\n\n{words['valid']}\n\n"
        f"{words['ignore']}\n\n-- \n{words['signature']}\n"
    )
    e = {key: html.escape(value) for key, value in words.items()}
    link = html.escape(mail.link)
    html_part = (
        f'<!DOCTYPE html><html lang="{mail.language.value}"><head><meta charset="utf-8">'
        f"<title>{e['subject']}</title></head>"
        '<body style="font-family:sans-serif;max-width:40em">'
        f"<p>{e['hello']}</p><p>{e['why']}</p>"
        f'<p><a href="{link}" style="display:inline-block;padding:.6em 1.2em;background:#b00;'
        f'color:#fff;text-decoration:none;border-radius:3px">{e["button"]}</a></p>'
        f'<p style="font-size:.9em">{link}</p>'
        f"<p>{e['valid']}</p><p>{e['ignore']}</p>"
        f'<p style="color:#555">{e["signature"]}</p></body></html>'
    )
    message = EmailMessage()
    message["From"] = sender
    message["To"] = mail.to
    message["Subject"] = words["subject"]
    message["Date"] = format_datetime(utcnow())
    domain = parseaddr(sender)[1].rpartition("@")[2] or "sirene.invalid"
    message["Message-ID"] = make_msgid(domain=domain)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text)
    message.add_alternative(html_part, subtype="html")
    return message


class Mailer:
    """Sends verification e-mails. Contract: `send` returns once the relay accepted the
    message (250 after DATA) and raises `MailError` otherwise; it never logs the address
    unmasked or the link."""

    def __init__(self, settings: SubscriptionsSettings) -> None:
        self.settings = settings

    async def send(self, *, tenant: str, mail: VerificationMail) -> None:
        s = self.settings
        message = build_verification(mail, sender=s.sender_for(tenant))
        password = s.smtp_password.get_secret_value() if s.smtp_password else ""
        try:
            await aiosmtplib.send(
                message,
                hostname=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_username if s.smtp_username and password else None,
                password=password if s.smtp_username and password else None,
                use_tls=s.smtp_tls,
                start_tls=s.smtp_starttls,
                timeout=s.smtp_timeout_s,
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            code = getattr(exc, "code", None)
            metrics.MAIL_FAILURES.labels(kind="verify_email").inc()
            log.warning(
                "verification e-mail refused",
                extra={"to": mask(mail.to), "error": type(exc).__name__, "smtp_code": code},
            )
            raise MailError(type(exc).__name__) from None
