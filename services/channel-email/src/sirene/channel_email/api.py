"""The one-click unsubscribe endpoint of List-Unsubscribe (RFC 8058). `GET` shows a page with a
button (mail scanners follow links, so a GET never unsubscribes); `POST` — the button, or the
mail client's one-click request — checks the link's signature and emits a `contact_dead`
receipt for the address (`error_code` 'unsubscribed'), which subscriptions consumes to
deactivate the e-mail contact. A link with a wrong signature gets 403 and changes nothing."""

from __future__ import annotations

import html

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse

from sirene.runtime import BatchProducer
from sirene.runtime.delivery import emit_receipts
from sirene.runtime.twilio import TaskRef
from sirene.schemas import Channel, ErrorClass, ReceiptStatus

from .metrics import UNSUBSCRIBES
from .service import PROVIDER, UNSUBSCRIBE_PATH, verify
from .settings import ChannelEmailSettings

PAGE = {
    "de": ("Abmelden", "Möchten Sie diese E-Mail-Adresse von den Warnungen abmelden?", "Abmelden"),
    "en": ("Unsubscribe", "Unsubscribe this e-mail address from the warnings?", "Unsubscribe"),
}
DONE = {
    "de": "Ihre E-Mail-Adresse wurde abgemeldet.",
    "en": "Your e-mail address has been unsubscribed.",
}


def unsubscribe_router(settings: ChannelEmailSettings, producer: BatchProducer) -> APIRouter:
    router = APIRouter(tags=["email"])

    def checked(request: Request) -> TaskRef:
        query = dict(request.query_params)
        if not verify(query, settings.unsubscribe_secret):
            UNSUBSCRIBES.labels("rejected").inc()
            raise HTTPException(status_code=403, detail="invalid unsubscribe link")
        return TaskRef.from_query(query)

    @router.get(UNSUBSCRIBE_PATH, response_class=HTMLResponse)
    async def confirm_page(request: Request, lang: str = "de") -> HTMLResponse:
        checked(request)
        title, question, button = PAGE.get(lang, PAGE["de"])
        action = html.escape(str(request.url))
        return HTMLResponse(
            f'<!DOCTYPE html><html lang="{lang if lang in PAGE else "de"}"><head>'
            f'<meta charset="utf-8"><title>{title}</title></head><body>'
            f"<h1>{title}</h1><p>{question}</p>"
            f'<form method="post" action="{action}">'
            '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
            f'<button type="submit">{button}</button></form></body></html>'
        )

    @router.post(UNSUBSCRIBE_PATH, response_class=HTMLResponse)
    async def unsubscribe(request: Request, lang: str = "de") -> HTMLResponse:
        ref = checked(request)
        receipt = ref.receipt(
            channel=Channel.EMAIL,
            status=ReceiptStatus.FAILED,
            provider_ref=None,
            error_code="unsubscribed",
            error_class=ErrorClass.CONTACT_DEAD,
            detail="recipient unsubscribed (List-Unsubscribe)",
        ).model_copy(update={"provider": PROVIDER})
        await emit_receipts(producer, [receipt])
        UNSUBSCRIBES.labels("ok").inc()
        return HTMLResponse(f"<!DOCTYPE html><p>{DONE.get(lang, DONE['de'])}</p>")

    return router
