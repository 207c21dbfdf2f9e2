"""E-mail delivery over SMTP (aiosmtplib): a multipart message (plain text and HTML) with a
signed one-click List-Unsubscribe link (RFC 8058), handed to the mail relay over a small pool
of persistent connections.

A relay accepting the message (250 after DATA) is the last a sender can know (as with APNs and
FCM), so it becomes a DELIVERED receipt with the Message-ID as provider_ref. SMTP 5xx for the
recipient (550/551/553: no such mailbox) is `contact_dead`; other 5xx `permanent`; 4xx,
timeouts and broken connections `transient` (retried on the retry tiers)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import logging
from email.charset import QP, Charset
from email.header import Header
from email.message import EmailMessage, Message
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.utils import format_datetime, formataddr, make_msgid, parseaddr
from urllib.parse import urlencode

import aiosmtplib
from pydantic import SecretStr

from sirene.runtime import mask
from sirene.runtime.delivery import Outcome
from sirene.runtime.twilio import TaskRef
from sirene.schemas import DeliveryTask, ErrorClass, Language, ReceiptStatus, Severity, utcnow

from .settings import ChannelEmailSettings

log = logging.getLogger(__name__)

PROVIDER = "smtp"
UNSUBSCRIBE_PATH = "/email/unsubscribe"
DEAD_MAILBOX_CODES = frozenset({550, 551, 553})

DEFAULT_SUBJECT: dict[Language, str] = {Language.DE: "Warnung", Language.EN: "Warning"}
FOOTER: dict[Language, str] = {
    Language.DE: "Sie erhalten diese Nachricht, weil Sie Warnungen Ihrer Gemeinde abonniert "
    "haben. Abmelden: {url}",
    Language.EN: "You receive this message because you subscribed to your municipality's "
    "warnings. Unsubscribe: {url}",
}
UNSUBSCRIBE_LABEL: dict[Language, str] = {Language.DE: "Abmelden", Language.EN: "Unsubscribe"}
SEVERITY_COLOUR: dict[Severity, str] = {
    Severity.EXTREME: "#a50021",
    Severity.SEVERE: "#d4500b",
    Severity.MODERATE: "#b8860b",
}


def signature(secret: SecretStr, query: dict[str, str]) -> str:
    """HMAC-SHA256 over the canonical (sorted) query of an unsubscribe link."""
    canonical = urlencode(sorted(query.items()))
    return hmac.new(
        secret.get_secret_value().encode(), canonical.encode(), hashlib.sha256
    ).hexdigest()


def unsubscribe_url(task: DeliveryTask, *, public_url: str, secret: SecretStr) -> str:
    """The signed one-click unsubscribe link of a task's recipient."""
    query = TaskRef.of(task).query()
    signed = urlencode({**query, "s": signature(secret, query)})
    return f"{public_url.rstrip('/')}{UNSUBSCRIBE_PATH}?{signed}"


def verify(query: dict[str, str], secret: SecretStr) -> bool:
    """Whether an unsubscribe link's query carries a valid signature."""
    given = query.get("s", "")
    rest = {k: v for k, v in query.items() if k != "s"}
    return hmac.compare_digest(given, signature(secret, rest))


def build_message(
    task: DeliveryTask, *, sender: str, public_url: str, secret: SecretStr
) -> Message:
    """The e-mail of a task: subject = title, plain text and HTML alternative, List-Unsubscribe
    (URL, one-click), a Message-ID naming the task, and Sirene's task id for tracing.

    Built with the classic (compat32) MIME classes when both addresses are ASCII — the usual
    case: building and flattening it costs a third of the `EmailMessage` API's header parsing
    and refolding, and it leaves the List-Unsubscribe URL intact where that API folded the long
    URL into RFC 2047 encoded words, which mail clients do not decode in that header. Addresses
    with non-ASCII characters (SMTPUTF8) need the `EmailMessage` API, which writes them raw."""
    link = unsubscribe_url(task, public_url=public_url, secret=secret)
    subject = task.title or DEFAULT_SUBJECT[task.language]
    text = f"{task.body}\n\n-- \n{FOOTER[task.language].format(url=link)}\n"
    html_part = render_html(task, subject=subject, link=link)
    name, address = parseaddr(sender)
    if not (address.isascii() and task.address.isascii()):
        return _utf8_message(
            task, sender=sender, subject=subject, link=link, text=text, html=html_part
        )
    message = MIMEMultipart("alternative")
    message["From"] = formataddr((name, address), charset="utf-8") if name else address
    message["To"] = task.address
    # compat32 takes a `Header` as a value (encoded words for a non-ASCII subject)
    message["Subject"] = subject if subject.isascii() else Header(subject, "utf-8")  # type: ignore[assignment]
    _common_headers(message, task, sender=sender, link=link)
    message.attach(_text_part(text, "plain"))
    message.attach(_text_part(html_part, "html"))
    return message


def _text_part(text: str, subtype: str) -> MIMENonMultipart:
    """A text part in UTF-8, quoted-printable (readable source)."""
    part = MIMENonMultipart("text", subtype)
    part.set_payload(text, _UTF8_QP)
    return part


_UTF8_QP = Charset("utf-8")
_UTF8_QP.body_encoding = QP  # the transfer encoding the EmailMessage API chose as well


def _common_headers(message: Message, task: DeliveryTask, *, sender: str, link: str) -> None:
    message["Date"] = format_datetime(utcnow())
    domain = parseaddr(sender)[1].rpartition("@")[2] or "sirene.invalid"
    message["Message-ID"] = make_msgid(idstring=task.task_id, domain=domain)
    message["List-Unsubscribe"] = f"<{link}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["Auto-Submitted"] = "auto-generated"
    message["X-Sirene-Task"] = task.task_id
    if task.severity in (Severity.EXTREME, Severity.SEVERE):
        message["Importance"] = "high"
        message["X-Priority"] = "1"


def _utf8_message(
    task: DeliveryTask, *, sender: str, subject: str, link: str, text: str, html: str
) -> EmailMessage:
    """The message for non-ASCII addresses (sent with SMTPUTF8)."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = task.address
    message["Subject"] = subject
    _common_headers(message, task, sender=sender, link=link)
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def render_html(task: DeliveryTask, *, subject: str, link: str) -> str:
    """The HTML part: escaped text, paragraphs kept, severity colour bar, unsubscribe link."""
    colour = SEVERITY_COLOUR.get(task.severity, "#1f4e79")
    paragraphs = "".join(
        f"<p>{html.escape(part).replace(chr(10), '<br>')}</p>"
        for part in task.body.split("\n\n")
        if part.strip()
    )
    footer = html.escape(FOOTER[task.language].split(":")[0])
    return (
        f'<!DOCTYPE html><html lang="{task.language.value}"><head><meta charset="utf-8">'
        f"<title>{html.escape(subject)}</title></head>"
        f'<body style="font-family:sans-serif;max-width:40em">'
        f'<div style="border-left:6px solid {colour};padding-left:1em">'
        f'<h1 style="font-size:1.3em">{html.escape(subject)}</h1>{paragraphs}</div>'
        f'<p style="color:#555;font-size:.85em">{footer}: '
        f'<a href="{html.escape(link)}">{UNSUBSCRIBE_LABEL[task.language]}</a></p>'
        "</body></html>"
    )


def classify(exc: BaseException) -> tuple[ErrorClass, str]:
    """Error class and code of a failed SMTP hand-off."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        return classify(exc.recipients[0])
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        code = exc.code
        if 400 <= code < 500:
            return ErrorClass.TRANSIENT, str(code)
        if code in DEAD_MAILBOX_CODES and isinstance(exc, aiosmtplib.SMTPRecipientRefused):
            return ErrorClass.CONTACT_DEAD, str(code)
        return ErrorClass.PERMANENT, str(code)
    return ErrorClass.TRANSIENT, type(exc).__name__[:40]


class SmtpPool:
    """Persistent SMTP connections, one message at a time each. Contract: `start()` inside the
    running loop, `stop()` at shutdown; a broken connection is dropped and replaced on the next
    send."""

    def __init__(self, settings: ChannelEmailSettings) -> None:
        self.settings = settings
        self._idle: asyncio.Queue[aiosmtplib.SMTP | None] = asyncio.Queue()
        self._all: set[aiosmtplib.SMTP] = set()

    async def start(self) -> None:
        for _ in range(self.settings.provider_concurrency):
            self._idle.put_nowait(None)  # a slot; connected on first use

    async def stop(self) -> None:
        for client in list(self._all):
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()
        self._all.clear()

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self.settings
        client = aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            timeout=s.smtp_timeout_s,
            use_tls=s.smtp_tls,
            start_tls=s.smtp_starttls,
        )
        await client.connect()
        if s.smtp_username and s.smtp_password:
            await client.login(s.smtp_username, s.smtp_password.get_secret_value())
        self._all.add(client)
        return client

    async def send(self, message: Message) -> None:
        client = await self._idle.get()
        try:
            if client is None or not client.is_connected:
                if client is not None:
                    self._all.discard(client)
                client = await self._connect()
            await client.send_message(message)
        except BaseException:
            if client is not None:
                self._all.discard(client)
                client.close()
            self._idle.put_nowait(None)
            raise
        self._idle.put_nowait(client)


async def send_email(
    task: DeliveryTask, *, pool: SmtpPool, settings: ChannelEmailSettings
) -> Outcome:
    """Hands one e-mail task to the relay; DELIVERED with the Message-ID, or FAILED
    classified."""
    message = build_message(
        task,
        sender=settings.sender_for(task.tenant_id),
        public_url=settings.base_url,
        secret=settings.unsubscribe_secret,
    )
    try:
        await pool.send(message)
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        error_class, code = classify(exc)
        log.warning(
            "email hand-off failed",
            extra={
                "task_id": task.task_id,
                "to": mask(task.address),
                "error_code": code,
                "error_class": error_class.value,
            },
        )
        return Outcome(
            ReceiptStatus.FAILED,
            error_code=code,
            error_class=error_class,
            detail=f"smtp refused the message ({code})",
        )
    return Outcome(ReceiptStatus.DELIVERED, provider_ref=str(message["Message-ID"])[:128])
