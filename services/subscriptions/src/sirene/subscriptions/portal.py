"""The citizen portal: server-rendered pages in German (English with `?lang=en`), plain HTML
forms that work without JavaScript, labelled fields and error messages announced to screen
readers (`role="alert"`, `aria-describedby`, `aria-invalid`).

Pages: register (code by SMS or call) or sign in → enter the code → account: topics and
channels, e-mail address (verified by a mailed link), settings (language, district, quiet
hours), relatives (register, see consent, withdraw), export (JSON), delete. Plus the page the
e-mail verification link opens (a button confirms: a GET never changes anything, because mail
scanners open links) and the one-click e-mail unsubscribe page.

The session is an HttpOnly, SameSite=Lax cookie (Secure when the public URL is https), so a
form on another site cannot post with it."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from html import escape
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError

from sirene.runtime import mask
from sirene.runtime.errors import DomainError, InvalidInputError
from sirene.runtime.logging import mask_phone
from sirene.schemas import Channel

from .api import SESSION_COOKIE, Context, client_ip
from .errors import MESSAGES
from .models import EmailChangeIn, MePatch, RegistrationIn, RelativeIn
from .ratelimit import RateLimitedError

portal_router = APIRouter(tags=["citizen portal pages"], include_in_schema=False)

LANG_COOKIE = "sirene_lang"
MAX_FORM_BYTES = 16_384

T: dict[str, tuple[str, str]] = {
    "portal": ("Bürgerinformation", "Citizen information"),
    "skip": ("Zum Inhalt springen", "Skip to content"),
    "other_lang": ("English", "Deutsch"),
    "register_h": ("Anmelden für Warnungen und Nachrichten", "Sign up for warnings and news"),
    "register_intro": (
        "Sie erhalten einen Bestätigungscode per SMS (Handy) oder per Anruf (jedes Telefon).",
        "You will receive a confirmation code by SMS (mobile) or by phone call (any phone).",
    ),
    "phone": ("Telefonnummer", "Phone number"),
    "phone_hint": ("z. B. 0151 23456789 oder +43 664 1234567", "e.g. +49 151 23456789"),
    "channel": ("Wie möchten Sie benachrichtigt werden?", "How would you like to be notified?"),
    "sms": ("SMS (Handy)", "SMS (mobile phone)"),
    "voice": ("Sprachanruf (auch Festnetz)", "Voice call (landline too)"),
    "email": ("E-Mail", "E-mail"),
    "push": ("App (Push)", "App (push)"),
    "name": ("Name (freiwillig)", "Name (optional)"),
    "name_rel": ("Name der Person", "Name of the person"),
    "topics": ("Themen", "Topics"),
    "language": ("Sprache", "Language"),
    "district": ("Ortsteil (freiwillig)", "District (optional)"),
    "send_code": ("Code anfordern", "Send code"),
    "login_h": ("Schon angemeldet?", "Already registered?"),
    "login_intro": (
        "Mit Ihrer Telefonnummer und einem Code verwalten Sie Ihre Anmeldung.",
        "Manage your registration with your phone number and a code.",
    ),
    "code_h": ("Code eingeben", "Enter the code"),
    "code_sent_sms": ("Wir haben Ihnen eine SMS an {to} gesendet.", "We sent an SMS to {to}."),
    "code_sent_voice": (
        "Wir rufen Sie unter {to} an und sagen Ihnen den Code.",
        "We are calling {to} to tell you the code.",
    ),
    "code": ("Bestätigungscode (6 Ziffern)", "Confirmation code (6 digits)"),
    "confirm": ("Bestätigen", "Confirm"),
    "account_h": ("Ihre Anmeldung", "Your registration"),
    "contacts": ("Kontakt", "Contact"),
    "inactive": ("abgemeldet", "unsubscribed"),
    "choose_h": ("Themen und Kanäle", "Topics and channels"),
    "save": ("Speichern", "Save"),
    "saved": ("Gespeichert.", "Saved."),
    "settings_h": ("Einstellungen", "Settings"),
    "quiet": (
        "Ruhezeiten (keine normalen Nachrichten; Warnungen kommen immer)",
        "Quiet hours (no ordinary posts; warnings always come through)",
    ),
    "quiet_from": ("von", "from"),
    "quiet_to": ("bis", "to"),
    "relatives_h": ("Angehörige anmelden", "Register a relative"),
    "relatives_intro": (
        "Die Person wird angerufen (Taste 1 zur Zustimmung) oder erhält eine SMS (Antwort JA). "
        "Sie wird erst nach ihrer Zustimmung benachrichtigt.",
        "The person is called (press 1 to agree) or texted (reply YES). "
        "They are notified only after agreeing.",
    ),
    "register_rel": ("Angehörige Person anmelden", "Register relative"),
    "rel_list": ("Von Ihnen angemeldet", "Registered by you"),
    "withdraw": ("Zurückziehen", "Withdraw"),
    "consent_pending": ("Zustimmung ausstehend", "awaiting consent"),
    "consent_granted": ("zugestimmt", "agreed"),
    "consent_refused": ("abgelehnt", "declined"),
    "consent_no_answer": ("nicht erreicht", "not reached"),
    "consent_expired": ("abgelaufen", "expired"),
    "consent_failed": ("nicht zustellbar", "could not be reached"),
    "rel_added": (
        "Die Person wird jetzt um Zustimmung gebeten.",
        "The person is now being asked for consent.",
    ),
    "data_h": ("Ihre Daten", "Your data"),
    "export": ("Alle Daten herunterladen (JSON)", "Download all data (JSON)"),
    "delete_confirm": (
        "Ja, meine Anmeldung und alle Daten endgültig löschen",
        "Yes, delete my registration and all data for good",
    ),
    "delete": ("Löschen", "Delete"),
    "deleted": (
        "Ihre Anmeldung und Ihre Daten wurden gelöscht.",
        "Your registration and your data have been deleted.",
    ),
    "logout": ("Abmelden", "Sign out"),
    "back": ("Zur Startseite", "Back to start"),
    "unsub_h": ("E-Mails abbestellen", "Unsubscribe from e-mails"),
    "unsub_button": ("Keine E-Mails mehr erhalten", "Stop sending me e-mails"),
    "unsub_done": (
        "Sie erhalten keine E-Mails mehr von uns.",
        "You will no longer receive e-mails from us.",
    ),
    "unverified": ("nicht bestätigt", "not confirmed"),
    "email_h": ("E-Mail", "E-mail"),
    "email_intro": (
        "Wir senden Ihnen einen Link an diese Adresse. Erst wenn Sie ihn geöffnet und bestätigt "
        "haben, erhalten Sie dort Nachrichten. Eine neue Adresse ersetzt die bisherige.",
        "We send a link to this address. You receive messages there only once you have opened "
        "it and confirmed. A new address replaces the previous one.",
    ),
    "email_address": ("E-Mail-Adresse", "E-mail address"),
    "email_topics": ("Diese Themen auch per E-Mail", "These topics by e-mail too"),
    "email_send": ("Bestätigungslink senden", "Send confirmation link"),
    "email_sent": (
        "Wir haben einen Bestätigungslink an {to} gesendet. Er ist {hours} Stunden gültig.",
        "We sent a confirmation link to {to}. It is valid for {hours} hours.",
    ),
    "email_already": (
        "Diese E-Mail-Adresse ist bereits bestätigt.",
        "This e-mail address is already confirmed.",
    ),
    "email_pending": (
        "Bestätigung ausstehend – bitte öffnen Sie den Link in der E-Mail.",
        "Awaiting confirmation – please open the link in the e-mail.",
    ),
    "confirm_email_h": ("E-Mail-Adresse bestätigen", "Confirm your e-mail address"),
    "confirm_email_intro": (
        "Bitte bestätigen Sie, dass Sie Nachrichten an {to} erhalten möchten.",
        "Please confirm that you want to receive messages at {to}.",
    ),
    "confirm_email_button": ("Ja, E-Mail-Adresse bestätigen", "Yes, confirm e-mail address"),
    "email_confirmed": (
        "Ihre E-Mail-Adresse ist bestätigt. Sie erhalten Nachrichten nun auch per E-Mail.",
        "Your e-mail address is confirmed. You now receive messages by e-mail too.",
    ),
    "to_account": ("Zu Ihrer Anmeldung", "To your registration"),
    "email_remove": ("E-Mail-Adresse entfernen", "Remove e-mail address"),
    "email_removed": (
        "Ihre E-Mail-Adresse wurde entfernt; Sie erhalten keine E-Mails mehr.",
        "Your e-mail address was removed; you will no longer receive e-mails.",
    ),
    "errors": ("Bitte prüfen Sie Ihre Angaben:", "Please check your entries:"),
    "invalid": ("Ungültige Angabe.", "Invalid entry."),
    "none": ("keine", "none"),
}


def lang_of(request: Request) -> str:
    """'en' when asked for (query, cookie or browser), else German."""
    asked = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE)
    if asked in ("de", "en"):
        return asked
    accept = request.headers.get("accept-language", "").strip().lower()
    return "en" if accept.startswith("en") else "de"


def t(key: str, lang: str, **params: str) -> str:
    de, en = T[key]
    return escape((en if lang == "en" else de).format(**params))


def _ctx(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


async def _form(request: Request) -> dict[str, list[str]]:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return {}
    return parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)


def _one(form: dict[str, list[str]], name: str) -> str | None:
    values = form.get(name)
    value = values[0].strip() if values else ""
    return value or None


def page(
    request: Request, *, tenant: str, title: str, body: str, status: int = 200
) -> HTMLResponse:
    """A whole page around `body` (already escaped HTML)."""
    lang = lang_of(request)
    other = "en" if lang == "de" else "de"
    name = escape(_ctx(request).settings.tenant_name(tenant))
    html = f"""<!doctype html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} – {name}</title>
<style>
body {{ font: 1.1rem/1.5 system-ui, sans-serif; max-width: 44rem; margin: 0 auto; padding: 1rem;
  color: #1a1a1a; background: #fff; }}
a {{ color: #0645ad; }} .skip {{ position: absolute; left: -999px; }}
.skip:focus {{ left: 1rem; top: 1rem; background: #ffd; padding: .5rem; }}
header {{ display: flex; justify-content: space-between; align-items: baseline;
  border-bottom: 3px solid #b00; margin-bottom: 1rem; }}
fieldset {{ border: 1px solid #888; margin: 1rem 0; padding: .5rem 1rem; }}
label {{ display: block; margin: .6rem 0 .2rem; font-weight: 600; }}
label.inline {{ display: inline; font-weight: normal; }}
input[type=text], input[type=tel], input[type=email], input[type=time], select {{ font-size: 1.1rem;
  padding: .4rem; width: 100%; max-width: 24rem; box-sizing: border-box; }}
input:focus, select:focus, button:focus {{ outline: 3px solid #f90; }}
button {{ font-size: 1.1rem; padding: .5rem 1.2rem; margin: .8rem 0; background: #b00;
  color: #fff; border: 0; border-radius: 3px; cursor: pointer; }}
.error {{ border-left: 5px solid #b00; background: #fee; padding: .5rem 1rem; }}
.note {{ border-left: 5px solid #070; background: #efe; padding: .5rem 1rem; }}
.hint {{ color: #444; font-size: .95rem; }}
table {{ border-collapse: collapse; }} td, th {{ padding: .3rem .6rem; text-align: left; }}
</style>
</head>
<body>
<a class="skip" href="#main">{t("skip", lang)}</a>
<header><p><strong>{name}</strong> · {t("portal", lang)}</p>
<p><a href="?lang={other}" hreflang="{other}" lang="{other}">{t("other_lang", lang)}</a></p>
</header>
<main id="main">
<h1>{title}</h1>
{body}
</main>
</body>
</html>"""
    response = HTMLResponse(html, status_code=status)
    if request.query_params.get("lang") in ("de", "en"):
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax")
    return response


def _errors(messages: Sequence[str], lang: str) -> str:
    if not messages:
        return ""
    items = "".join(f"<li>{escape(m)}</li>" for m in messages)
    return (
        f'<div class="error" role="alert" id="errors"><p>{t("errors", lang)}</p>'
        f"<ul>{items}</ul></div>"
    )


def _messages(exc: Exception, lang: str) -> list[str]:
    """Readable reasons of a refused form."""
    if isinstance(exc, DomainError):
        return [MESSAGES.message(exc.code, lang, **exc.params)]
    if isinstance(exc, ValidationError):
        out = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"])
            out.append(f"{where}: {t('invalid', lang)}")
        return out
    return [t("invalid", lang)]


def _status(exc: Exception) -> int:
    if isinstance(exc, RateLimitedError):
        return 429
    if isinstance(exc, DomainError):
        return exc.status_code
    return 422


def _topic_boxes(topics: Sequence[dict[str, Any]], lang: str, name: str, checked: set[str]) -> str:
    boxes = []
    for topic in topics:
        label = topic["name"].get(lang) or topic["name"]["de"]
        tid = escape(topic["id"])
        mark = " checked" if topic["id"] in checked else ""
        boxes.append(
            f'<div><input type="checkbox" id="{name}-{tid}" name="{name}" value="{tid}"{mark}> '
            f'<label class="inline" for="{name}-{tid}">{escape(label)}</label></div>'
        )
    return "".join(boxes)


def _language_select(lang: str, selected: str, field_id: str = "language") -> str:
    options = "".join(
        f'<option value="{code}"{" selected" if code == selected else ""}>{label}</option>'
        for code, label in (("de", "Deutsch"), ("en", "English"))
    )
    return (
        f'<label for="{field_id}">{t("language", lang)}</label>'
        f'<select id="{field_id}" name="language">{options}</select>'
    )


def _channel_radios(lang: str, selected: str, group: str = "channel") -> str:
    radios = "".join(
        f'<div><input type="radio" id="{group}-{c}" name="channel" value="{c}"'
        f"{' checked' if c == selected else ''}> "
        f'<label class="inline" for="{group}-{c}">{t(c, lang)}</label></div>'
        for c in ("sms", "voice")
    )
    return f"<fieldset><legend>{t('channel', lang)}</legend>{radios}</fieldset>"


async def _session(request: Request, tenant: str) -> tuple[str, str] | None:
    session = await _ctx(request).selfservice.codes.session(request.cookies.get(SESSION_COOKIE, ""))
    if session is None or session[0] != tenant:
        return None
    return session


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


# --- start: register or sign in -------------------------------------------------------------


@portal_router.get("/portal/{tenant}", response_class=HTMLResponse)
async def start_route(request: Request, tenant: str) -> HTMLResponse:
    """The registration and sign-in forms."""
    return await start_page(request, tenant)


async def start_page(
    request: Request,
    tenant: str,
    errors: Sequence[str] = (),
    status: int = 200,
    values: dict[str, list[str]] | None = None,
) -> HTMLResponse:
    """The registration and sign-in forms."""
    ctx = _ctx(request)
    lang = lang_of(request)
    try:
        ctx.selfservice.known_tenant(tenant)
    except DomainError:
        return page(request, tenant=tenant, title="404", body="", status=404)
    values = values or {}
    topics = await ctx.repo.public_topics(tenant)
    chosen = set(values.get("topics", [t["id"] for t in topics if t.get("warnings")]))
    phone = escape(_one(values, "phone") or "")
    invalid = ' aria-invalid="true" aria-describedby="errors"' if errors else ""
    body = f"""{_errors(errors, lang)}
<p>{t("register_intro", lang)}</p>
<form method="post" action="/portal/{escape(tenant)}/registrieren" novalidate>
<label for="phone">{t("phone", lang)}</label>
<input type="tel" id="phone" name="phone" autocomplete="tel" required value="{phone}"{invalid}
 aria-describedby="phone-hint">
<p class="hint" id="phone-hint">{t("phone_hint", lang)}</p>
{_channel_radios(lang, _one(values, "channel") or "sms")}
<fieldset><legend>{t("topics", lang)}</legend>
{_topic_boxes(topics, lang, "topics", chosen)}</fieldset>
<label for="name">{t("name", lang)}</label>
<input type="text" id="name" name="name" autocomplete="name" maxlength="120"
 value="{escape(_one(values, "name") or "")}">
<label for="district">{t("district", lang)}</label>
<input type="text" id="district" name="district" maxlength="80"
 value="{escape(_one(values, "district") or "")}">
{_language_select(lang, _one(values, "language") or lang)}
<button type="submit">{t("send_code", lang)}</button>
</form>
<h2>{t("login_h", lang)}</h2>
<p>{t("login_intro", lang)}</p>
<form method="post" action="/portal/{escape(tenant)}/anmelden">
<label for="login-phone">{t("phone", lang)}</label>
<input type="tel" id="login-phone" name="phone" autocomplete="tel" required>
<button type="submit">{t("send_code", lang)}</button>
</form>"""
    return page(request, tenant=tenant, title=t("register_h", lang), body=body, status=status)


@portal_router.post("/portal/{tenant}/registrieren", response_model=None)
async def register_form(request: Request, tenant: str) -> Response:
    """Sends the code; on bad input shows the form again with the reasons."""
    ctx = _ctx(request)
    lang = lang_of(request)
    form = await _form(request)
    try:
        body = RegistrationIn(
            phone=_one(form, "phone") or "",
            channel=_one(form, "channel") or "sms",  # type: ignore[arg-type]
            name=_one(form, "name"),
            district=_one(form, "district"),
            language=_one(form, "language") or lang,  # type: ignore[arg-type]
            topics=form.get("topics", []),
        )
        vid, channel, phone = await ctx.selfservice.start_registration(
            tenant=tenant, body=body, ip=client_ip(request)
        )
    except (DomainError, ValidationError) as exc:
        return await start_page(
            request, tenant, errors=_messages(exc, lang), status=_status(exc), values=form
        )
    return _redirect(
        f"/portal/{quote(tenant)}/code/{vid}?c={channel}&to={quote(mask_phone(phone))}"
    )


@portal_router.post("/portal/{tenant}/anmelden", response_model=None)
async def login_form(request: Request, tenant: str) -> Response:
    """Sends a sign-in code."""
    ctx = _ctx(request)
    lang = lang_of(request)
    form = await _form(request)
    try:
        vid, channel, phone = await ctx.selfservice.start_login(
            tenant=tenant, raw_phone=(_one(form, "phone") or "")[:32], ip=client_ip(request)
        )
    except DomainError as exc:
        return await start_page(request, tenant, errors=_messages(exc, lang), status=_status(exc))
    return _redirect(
        f"/portal/{quote(tenant)}/code/{vid}?c={channel}&to={quote(mask_phone(phone))}"
    )


@portal_router.get("/portal/{tenant}/code/{vid}", response_class=HTMLResponse)
async def code_route(request: Request, tenant: str, vid: str) -> HTMLResponse:
    """The form for the code."""
    return await code_page(request, tenant, vid)


async def code_page(
    request: Request, tenant: str, vid: str, errors: Sequence[str] = (), status: int = 200
) -> HTMLResponse:
    """The form for the code."""
    lang = lang_of(request)
    channel = "voice" if request.query_params.get("c") == "voice" else "sms"
    # only a masked number (`+491****78`) is shown, never free text from the URL
    to = request.query_params.get("to", "")
    to = to if re.fullmatch(r"\+\d{3}\*{4}\d{2}", to) else "…"
    sent = t(f"code_sent_{channel}", lang, to=to)
    invalid = ' aria-invalid="true" aria-describedby="errors"' if errors else ""
    query = escape(f"c={channel}&to={quote(to)}")
    body = f"""{_errors(errors, lang)}
<p>{sent}</p>
<form method="post" action="/portal/{escape(tenant)}/code/{escape(vid)}?{query}">
<label for="code">{t("code", lang)}</label>
<input type="text" id="code" name="code" inputmode="numeric" autocomplete="one-time-code"
 pattern="[0-9]*" maxlength="8" required{invalid}>
<button type="submit">{t("confirm", lang)}</button>
</form>
<p><a href="/portal/{escape(tenant)}">{t("back", lang)}</a></p>"""
    return page(request, tenant=tenant, title=t("code_h", lang), body=body, status=status)


@portal_router.post("/portal/{tenant}/code/{vid}", response_model=None)
async def code_form(request: Request, tenant: str, vid: str) -> Response:
    """Checks the code, opens the session and shows the account."""
    ctx = _ctx(request)
    lang = lang_of(request)
    form = await _form(request)
    code = (_one(form, "code") or "").replace(" ", "")
    try:
        if not code.isdigit() or not 4 <= len(code) <= 8 or len(vid) > 64:
            raise InvalidInputError(("body", "code"), "code_wrong")
        doc, token = await ctx.selfservice.verify(
            verification_id=vid, code=code, ip=client_ip(request)
        )
    except DomainError as exc:
        return await code_page(
            request, tenant, vid, errors=_messages(exc, lang), status=_status(exc)
        )
    if doc["tenant"] != tenant:
        return _redirect(f"/portal/{quote(tenant)}")
    response = _redirect(f"/portal/{quote(tenant)}/konto")
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=ctx.settings.session_ttl_s,
        httponly=True,
        samesite="lax",
        secure=ctx.settings.base_url.startswith("https://"),
        path="/",
    )
    return response


# --- account ------------------------------------------------------------------------------


@portal_router.get("/portal/{tenant}/konto", response_class=HTMLResponse, response_model=None)
async def account_route(request: Request, tenant: str) -> Response:
    """The citizen's registration."""
    return await account_page(request, tenant)


async def account_page(
    request: Request, tenant: str, errors: Sequence[str] = (), note: str = "", status: int = 200
) -> Response:
    """The citizen's registration: topics and channels, settings, relatives, data."""
    ctx = _ctx(request)
    lang = lang_of(request)
    session = await _session(request, tenant)
    if session is None:
        return _redirect(f"/portal/{quote(tenant)}")
    doc = await ctx.selfservice.me(*session)
    topics = await ctx.repo.public_topics(tenant)
    contacts = doc["contacts"]
    rows = []
    for channel in ("sms", "voice", "email"):
        point = contacts.get(channel)
        if point:
            off = "unverified" if point.get("deactivated_reason") == "unverified" else "inactive"
            state = "" if point["active"] else f" ({t(off, lang)})"
            shown = mask_phone(point["address"]) if channel != "email" else point["address"]
            rows.append(
                f"<tr><th scope='row'>{t(channel, lang)}</th><td>{escape(shown)}{state}</td></tr>"
            )
    usable = [c for c in ("sms", "voice", "email") if (contacts.get(c) or {}).get("active")]
    if any(d["active"] for d in contacts.get("push", [])):
        usable.append("push")
    subs = doc.get("subscriptions", {})
    head = "".join(f"<th scope='col'>{t(c, lang)}</th>" for c in usable)
    body_rows = []
    for topic in topics:
        label = escape(topic["name"].get(lang) or topic["name"]["de"])
        cells = []
        for channel in usable:
            box_id = f"sub-{escape(topic['id'])}-{channel}"
            mark = " checked" if channel in subs.get(topic["id"], []) else ""
            cells.append(
                f'<td><input type="checkbox" id="{box_id}" name="sub" '
                f'value="{escape(topic["id"])}:{channel}"{mark} '
                f'aria-label="{label}: {t(channel, lang)}"></td>'
            )
        body_rows.append(f"<tr><th scope='row'>{label}</th>{''.join(cells)}</tr>")
    quiet = doc.get("quiet_hours") or {}
    relatives = await ctx.selfservice.relatives(tenant=tenant, citizen_id=doc["id"])
    rel_rows = []
    for rel in relatives:
        consent = (rel.get("consent") or {}).get("state") or "granted"
        rel_rows.append(
            f"<li>{escape(rel.get('name') or '')} – "
            f"{t('consent_' + consent, lang) if ('consent_' + consent) in T else escape(consent)} "
            f'<form method="post" style="display:inline" '
            f'action="/portal/{escape(tenant)}/konto/angehoerige/{escape(rel["id"])}/widerrufen">'
            f'<button type="submit">{t("withdraw", lang)}</button></form></li>'
        )
    note_html = f'<p class="note" role="status">{escape(note)}</p>' if note else ""
    base = f"/portal/{escape(tenant)}/konto"
    email_point = contacts.get("email") or {}
    email_state = (
        f'<p class="hint">{t("email_pending", lang)}</p>'
        if email_point.get("deactivated_reason") == "unverified"
        else ""
    )
    followed = set(subs) or {tp["id"] for tp in topics if tp.get("warnings")}
    email_remove = (
        f'<form method="post" action="{base}/email/entfernen">'
        f'<button type="submit">{t("email_remove", lang)}</button></form>'
        if email_point
        else ""
    )
    body = f"""{_errors(errors, lang)}{note_html}
<table><caption>{t("contacts", lang)}</caption>{"".join(rows)}</table>
<h2>{t("choose_h", lang)}</h2>
<form method="post" action="{base}/themen">
<table><tr><th scope="col">{t("topics", lang)}</th>{head}</tr>{"".join(body_rows)}</table>
<button type="submit">{t("save", lang)}</button>
</form>
<h2>{t("email_h", lang)}</h2>
<p>{t("email_intro", lang)}</p>{email_state}
<form method="post" action="{base}/email">
<label for="email">{t("email_address", lang)}</label>
<input type="email" id="email" name="email" autocomplete="email" maxlength="254" required
 value="{escape(email_point.get("address", ""))}">
<fieldset><legend>{t("email_topics", lang)}</legend>
{_topic_boxes(topics, lang, "email_topics", followed)}</fieldset>
<button type="submit">{t("email_send", lang)}</button>
</form>
{email_remove}<h2>{t("settings_h", lang)}</h2>
<form method="post" action="{base}/einstellungen">
{_language_select(lang, doc["language"], "settings-language")}
<label for="settings-district">{t("district", lang)}</label>
<input type="text" id="settings-district" name="district" maxlength="80"
 value="{escape(doc.get("district") or "")}">
<fieldset><legend>{t("quiet", lang)}</legend>
<label for="quiet-start">{t("quiet_from", lang)}</label>
<input type="time" id="quiet-start" name="quiet_start" value="{escape(quiet.get("start", ""))}">
<label for="quiet-end">{t("quiet_to", lang)}</label>
<input type="time" id="quiet-end" name="quiet_end" value="{escape(quiet.get("end", ""))}">
</fieldset>
<button type="submit">{t("save", lang)}</button>
</form>
<h2>{t("relatives_h", lang)}</h2>
<p>{t("relatives_intro", lang)}</p>
<form method="post" action="{base}/angehoerige">
<label for="rel-name">{t("name_rel", lang)}</label>
<input type="text" id="rel-name" name="name" maxlength="120" required>
<label for="rel-phone">{t("phone", lang)}</label>
<input type="tel" id="rel-phone" name="phone" required>
{_channel_radios(lang, "voice", "rel-channel")}
<fieldset><legend>{t("topics", lang)}</legend>
{_topic_boxes(topics, lang, "topics", {t["id"] for t in topics if t.get("warnings")})}</fieldset>
{_language_select(lang, "de", "rel-language")}
<button type="submit">{t("register_rel", lang)}</button>
</form>
<h3>{t("rel_list", lang)}</h3>
<ul>{"".join(rel_rows) or "<li>" + t("none", lang) + "</li>"}</ul>
<h2>{t("data_h", lang)}</h2>
<p><a href="{base}/export" download="export.json">{t("export", lang)}</a></p>
<form method="post" action="{base}/loeschen">
<input type="checkbox" id="delete-confirm" name="confirm" value="ja" required>
<label class="inline" for="delete-confirm">{t("delete_confirm", lang)}</label>
<div><button type="submit">{t("delete", lang)}</button></div>
</form>
<form method="post" action="/portal/{escape(tenant)}/abmelden">
<button type="submit">{t("logout", lang)}</button>
</form>"""
    return page(request, tenant=tenant, title=t("account_h", lang), body=body, status=status)


@portal_router.post("/portal/{tenant}/konto/themen", response_model=None)
async def topics_form(request: Request, tenant: str) -> Response:
    ctx = _ctx(request)
    lang = lang_of(request)
    session = await _session(request, tenant)
    if session is None:
        return _redirect(f"/portal/{quote(tenant)}")
    form = await _form(request)
    choice: dict[str, list[Channel]] = {}
    try:
        for value in form.get("sub", [])[:500]:
            topic, _, channel = value.partition(":")
            choice.setdefault(topic, []).append(Channel(channel))
        await ctx.selfservice.choose_topics(
            tenant=tenant, citizen_id=session[1], subscriptions=choice
        )
    except (DomainError, ValueError) as exc:
        return await account_page(request, tenant, errors=_messages(exc, lang), status=_status(exc))
    return await account_page(request, tenant, note=T["saved"][lang == "en"])


@portal_router.post("/portal/{tenant}/konto/einstellungen", response_model=None)
async def settings_form(request: Request, tenant: str) -> Response:
    ctx = _ctx(request)
    lang = lang_of(request)
    session = await _session(request, tenant)
    if session is None:
        return _redirect(f"/portal/{quote(tenant)}")
    form = await _form(request)
    start, end = _one(form, "quiet_start"), _one(form, "quiet_end")
    try:
        patch = MePatch.model_validate(
            {
                "language": _one(form, "language") or lang,
                "district": _one(form, "district"),
                "quiet_hours": {"start": start, "end": end} if start and end else None,
            }
        )
        await ctx.selfservice.change_me(tenant=tenant, citizen_id=session[1], patch=patch)
    except (DomainError, ValidationError) as exc:
        return await account_page(request, tenant, errors=_messages(exc, lang), status=_status(exc))
    return await account_page(request, tenant, note=T["saved"][lang == "en"])


@portal_router.post("/portal/{tenant}/konto/email", response_model=None)
async def email_form(request: Request, tenant: str) -> Response:
    """Stores the new address (inactive) and mails the link that confirms it."""
    ctx = _ctx(request)
    lang = lang_of(request)
    session = await _session(request, tenant)
    if session is None:
        return _redirect(f"/portal/{quote(tenant)}")
    form = await _form(request)
    try:
        body = EmailChangeIn(email=_one(form, "email") or "", topics=form.get("email_topics", []))
        state, address = await ctx.selfservice.start_email(
            tenant=tenant,
            citizen_id=session[1],
            raw_email=body.email,
            topics=body.topics,
            ip=client_ip(request),
        )
    except (DomainError, ValidationError) as exc:
        return await account_page(request, tenant, errors=_messages(exc, lang), status=_status(exc))
    if state == "already_verified":
        note = T["email_already"][lang == "en"]
    else:
        hours = str(max(1, ctx.settings.email_link_ttl_s // 3600))
        note = T["email_sent"][lang == "en"].format(to=mask(address), hours=hours)
    return await account_page(request, tenant, note=note)


@portal_router.post("/portal/{tenant}/konto/email/entfernen", response_model=None)
async def email_remove_form(request: Request, tenant: str) -> Response:
    """Removes the e-mail address."""
    ctx = _ctx(request)
    lang = lang_of(request)
    session = await _session(request, tenant)
    if session is None:
        return _redirect(f"/portal/{quote(tenant)}")
    try:
        await ctx.selfservice.remove_email(tenant=tenant, citizen_id=session[1])
    except DomainError as exc:
        return await account_page(request, tenant, errors=_messages(exc, lang), status=_status(exc))
    return await account_page(request, tenant, note=T["email_removed"][lang == "en"])


@portal_router.get("/portal/{tenant}/email/bestaetigen", response_class=HTMLResponse)
async def confirm_email_page(request: Request, tenant: str, token: str = "") -> HTMLResponse:
    """What the verification link opens: the address and one button. Opening it changes
    nothing (mail scanners and link previews fetch links); the button posts."""
    ctx = _ctx(request)
    lang = lang_of(request)
    title = t("confirm_email_h", lang)
    try:
        ctx.selfservice.known_tenant(tenant)
        address = await ctx.selfservice.pending_email(tenant=tenant, token=token[:128])
    except DomainError as exc:
        return page(
            request,
            tenant=tenant,
            title=title,
            body=_errors(_messages(exc, lang), lang)
            + f'<p><a href="/portal/{escape(tenant)}">{t("back", lang)}</a></p>',
            status=exc.status_code,
        )
    body = f"""<p>{t("confirm_email_intro", lang, to=mask(address))}</p>
<form method="post" action="/portal/{escape(tenant)}/email/bestaetigen?lang={lang}">
<input type="hidden" name="token" value="{escape(token[:128])}">
<button type="submit">{t("confirm_email_button", lang)}</button>
</form>"""
    response = page(request, tenant=tenant, title=title, body=body)
    # the token must not leak to other sites through the Referer header
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@portal_router.post("/portal/{tenant}/email/bestaetigen", response_class=HTMLResponse)
async def confirm_email_form(request: Request, tenant: str) -> HTMLResponse:
    """Confirms the address (once); a used, expired or replaced link changes nothing."""
    ctx = _ctx(request)
    lang = lang_of(request)
    title = t("confirm_email_h", lang)
    form = await _form(request)
    back = f'<p><a href="/portal/{escape(tenant)}/konto">{t("to_account", lang)}</a></p>'
    try:
        ctx.selfservice.known_tenant(tenant)
        await ctx.selfservice.confirm_email(
            token=(_one(form, "token") or "")[:128], ip=client_ip(request), tenant=tenant
        )
    except DomainError as exc:
        return page(
            request,
            tenant=tenant,
            title=title,
            body=_errors(_messages(exc, lang), lang) + back,
            status=_status(exc),
        )
    body = f'<p class="note" role="status">{t("email_confirmed", lang)}</p>{back}'
    return page(request, tenant=tenant, title=title, body=body)


@portal_router.post("/portal/{tenant}/konto/angehoerige", response_model=None)
async def relative_form(request: Request, tenant: str) -> Response:
    ctx = _ctx(request)
    lang = lang_of(request)
    session = await _session(request, tenant)
    if session is None:
        return _redirect(f"/portal/{quote(tenant)}")
    form = await _form(request)
    try:
        body = RelativeIn(
            name=_one(form, "name") or "",
            phone=_one(form, "phone") or "",
            channel=_one(form, "channel") or "voice",  # type: ignore[arg-type]
            topics=form.get("topics", []),
            language=_one(form, "language") or "de",  # type: ignore[arg-type]
        )
        registrant = await ctx.selfservice.me(*session)
        await ctx.selfservice.register_relative(
            tenant=tenant, registrant=registrant, body=body, ip=client_ip(request)
        )
    except (DomainError, ValidationError) as exc:
        return await account_page(request, tenant, errors=_messages(exc, lang), status=_status(exc))
    return await account_page(request, tenant, note=T["rel_added"][lang == "en"])


@portal_router.post(
    "/portal/{tenant}/konto/angehoerige/{relative_id}/widerrufen", response_model=None
)
async def withdraw_form(request: Request, tenant: str, relative_id: str) -> Response:
    ctx = _ctx(request)
    lang = lang_of(request)
    session = await _session(request, tenant)
    if session is None:
        return _redirect(f"/portal/{quote(tenant)}")
    try:
        await ctx.selfservice.withdraw_relative(
            tenant=tenant, citizen_id=session[1], relative_id=relative_id[:64]
        )
    except DomainError as exc:
        return await account_page(request, tenant, errors=_messages(exc, lang), status=_status(exc))
    return await account_page(request, tenant, note=T["saved"][lang == "en"])


@portal_router.get("/portal/{tenant}/konto/export", response_model=None)
async def export_download(request: Request, tenant: str) -> Response:
    ctx = _ctx(request)
    session = await _session(request, tenant)
    if session is None:
        return _redirect(f"/portal/{quote(tenant)}")
    data = await ctx.selfservice.export(tenant=tenant, citizen_id=session[1])
    return Response(
        json.dumps(data, ensure_ascii=False, indent=2),
        media_type="application/json",
        headers={"Content-Disposition": "attachment; filename=export.json"},
    )


@portal_router.post("/portal/{tenant}/konto/loeschen", response_model=None)
async def delete_form(request: Request, tenant: str) -> Response:
    ctx = _ctx(request)
    lang = lang_of(request)
    session = await _session(request, tenant)
    if session is None:
        return _redirect(f"/portal/{quote(tenant)}")
    form = await _form(request)
    if _one(form, "confirm") != "ja":
        return await account_page(
            request, tenant, errors=[T["delete_confirm"][lang == "en"]], status=422
        )
    await ctx.selfservice.erase(tenant=tenant, citizen_id=session[1], by="citizen")
    response = page(
        request,
        tenant=tenant,
        title=t("deleted", lang),
        body=f'<p><a href="/portal/{escape(tenant)}">{t("back", lang)}</a></p>',
    )
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@portal_router.post("/portal/{tenant}/abmelden", response_model=None)
async def logout(request: Request, tenant: str) -> Response:
    await _ctx(request).selfservice.codes.close_session(request.cookies.get(SESSION_COOKIE, ""))
    response = _redirect(f"/portal/{quote(tenant)}")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# --- one-click e-mail unsubscribe (RFC 8058) ---------------------------------------------------


@portal_router.get("/abmelden/email", response_class=HTMLResponse)
async def unsubscribe_page(request: Request, token: str = "") -> HTMLResponse:
    """One button (a GET never unsubscribes: mail scanners open links)."""
    ctx = _ctx(request)
    lang = lang_of(request)
    try:
        tenant, _, _ = ctx.selfservice.read_unsubscribe_token(token[:512])
    except DomainError as exc:
        return page(
            request,
            tenant="sirene",
            title=t("unsub_h", lang),
            body=_errors(_messages(exc, lang), lang),
            status=404,
        )
    body = f"""<form method="post" action="/abmelden/email?token={escape(quote(token))}">
<button type="submit">{t("unsub_button", lang)}</button></form>"""
    return page(request, tenant=tenant, title=t("unsub_h", lang), body=body)


@portal_router.post("/abmelden/email", response_class=HTMLResponse)
async def unsubscribe(request: Request, token: str = "") -> HTMLResponse:
    """Unsubscribes at once (the button above, or a mail client's List-Unsubscribe-Post)."""
    ctx = _ctx(request)
    lang = lang_of(request)
    try:
        tenant, _, _ = ctx.selfservice.read_unsubscribe_token(token[:512])
        await ctx.selfservice.unsubscribe_email(token[:512])
    except DomainError as exc:
        return page(
            request,
            tenant="sirene",
            title=t("unsub_h", lang),
            body=_errors(_messages(exc, lang), lang),
            status=exc.status_code,
        )
    return page(
        request,
        tenant=tenant,
        title=t("unsub_h", lang),
        body=f'<p class="note" role="status">{t("unsub_done", lang)}</p>',
    )
