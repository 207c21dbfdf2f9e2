"""An SMTP sink (aiosmtpd) that stands in for the municipality's mail relay: it accepts mail
like a relay (EHLO, MAIL, RCPT, DATA; 8BITMIME, SMTPUTF8), keeps the last messages per
mailbox for inspection (`GET /sim/mailboxes/{address}`), counts hand-offs per task id
(`X-Sirene-Task` header) in the fault ledger, and honours the injected faults of service
`email`: an outage answers 421 (try later), the rate limit 451, and an address pattern listed
under `number_errors` with a 5xx code is refused permanently (550, user unknown)."""

from __future__ import annotations

import asyncio
import logging
import re
from collections import OrderedDict, deque
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from sirene.provider_sim.faults import Faults, Rejection
from sirene.provider_sim.masking import mask_token

log = logging.getLogger(__name__)
# aiosmtpd logs every SMTP command and the sender address at INFO: per-message cost on the
# hand-off path, and addresses in the log. Its warnings and errors still show.
logging.getLogger("mail.log").setLevel(logging.WARNING)


class Mailboxes:
    """The last `history` messages per address, for at most `max_boxes` addresses. Messages
    are kept as received and parsed only when a mailbox is looked at: parsing every message
    on arrival cost the simulator more than the whole SMTP exchange."""

    def __init__(self, *, history: int, max_boxes: int) -> None:
        self._history = history
        self._max = max_boxes
        self.boxes: OrderedDict[str, deque[bytes]] = OrderedDict()
        self.total = 0

    def add(self, address: str, raw: bytes) -> None:
        box = self.boxes.get(address)
        if box is None:
            box = self.boxes[address] = deque(maxlen=self._history)
            if len(self.boxes) > self._max:
                self.boxes.popitem(last=False)
        box.appendleft(raw)
        self.total += 1

    def view(self, address: str) -> dict[str, Any]:
        box = self.boxes.get(address.lower())
        return {"address": address, "messages": [parse_view(raw) for raw in box] if box else []}

    def reset(self) -> None:
        self.boxes.clear()
        self.total = 0


_TASK_HEADER = re.compile(rb"^X-Sirene-Task:[ \t]*([0-9A-Za-z-]{1,64})[ \t]*\r?$", re.M | re.I)


def task_id_of_message(data: bytes) -> str | None:
    """The `X-Sirene-Task` header of a raw message (looked for in its header block only)."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        end = data.find(b"\n\n")
    found = _TASK_HEADER.search(data, 0, end if end >= 0 else len(data))
    return found.group(1).decode() if found else None


def parse_view(data: bytes) -> dict[str, Any]:
    """The mailbox view of a raw message (`message_view`)."""
    message = message_from_bytes(data, policy=policy.default)
    if not isinstance(message, EmailMessage):  # pragma: no cover - policy.default
        return {"task_id": task_id_of_message(data) or "", "unreadable": True}
    return message_view(message)


def message_view(message: EmailMessage) -> dict[str, Any]:
    """What a mailbox shows: headers that matter, the plain and the HTML part."""
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    return {
        "from": str(message.get("From", "")).strip(),
        "to": str(message.get("To", "")).strip(),
        "subject": str(message.get("Subject", "")).strip(),
        "message_id": str(message.get("Message-ID", "")).strip(),
        "list_unsubscribe": str(message.get("List-Unsubscribe", "")).strip(),
        "list_unsubscribe_post": str(message.get("List-Unsubscribe-Post", "")).strip(),
        "task_id": str(message.get("X-Sirene-Task", "")).strip(),
        "text": text.get_content() if isinstance(text, EmailMessage) else None,
        "html": html.get_content() if isinstance(html, EmailMessage) else None,
    }


class SinkHandler:
    """aiosmtpd handler: faults at RCPT time, storage at DATA time."""

    def __init__(self, faults: Faults, mailboxes: Mailboxes) -> None:
        self.faults = faults
        self.mailboxes = mailboxes

    async def handle_RCPT(  # aiosmtpd's hook name and signature
        self,
        server: SMTP,  # noqa: ARG002
        session: Session,  # noqa: ARG002
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],  # noqa: ARG002
    ) -> str:
        try:
            self.faults.check("email")
        except Rejection as exc:
            return "421 4.3.2 Service not available" if exc.status == 503 else "451 4.7.1 Rate"
        code = self.faults.number_error("email", address)
        if code is not None and code >= 500:
            self.faults.rejections[f"email.{code}"] += 1
            return f"{code} 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # aiosmtpd's hook name and signature
        self,
        server: SMTP,  # noqa: ARG002
        session: Session,  # noqa: ARG002
        envelope: Envelope,
    ) -> str:
        await self.faults.delay()
        raw = envelope.original_content or envelope.content or b""
        data = raw if isinstance(raw, bytes) else raw.encode()
        for rcpt in envelope.rcpt_tos:
            self.mailboxes.add(rcpt.lower(), data)
        self.faults.record_email(task_id_of_message(data))
        log.debug("mail for %s accepted", ", ".join(mask_token(r) for r in envelope.rcpt_tos))
        return "250 Message accepted for delivery"


class SmtpSink:
    """The SMTP server on the simulator's event loop."""

    def __init__(self, faults: Faults, mailboxes: Mailboxes, *, host: str, port: int) -> None:
        self.handler = SinkHandler(faults, mailboxes)
        self.host = host
        self.port = port
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(self.handler, enable_SMTPUTF8=True, hostname="sim.sirene.invalid"),
            host=self.host,
            port=self.port,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
