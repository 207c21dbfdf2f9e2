"""Self-service rules without servers: inbound keywords, number ranges, rate-limit keys, signed
unsubscribe links, TwiML of the calls, and the portal pages (rendered without infrastructure)."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import httpx
import pytest

from sirene.runtime.errors import NotFoundError
from sirene.schemas import Language
from sirene.subscriptions.app import create_app
from sirene.subscriptions.mailer import VerificationMail, build_verification
from sirene.subscriptions.ratelimit import (
    Scope,
    counter_key,
    email_scopes,
    number_prefix,
    registration_scopes,
)
from sirene.subscriptions.selfservice import SelfService, classify_inbound
from sirene.subscriptions.settings import Limit, RateLimits, SubscriptionsSettings
from sirene.subscriptions.telephony import code_twiml, consent_question_twiml


@pytest.mark.parametrize(
    ("body", "meaning"),
    [
        ("STOP", "stop"),
        ("stopp", "stop"),
        (" Abmelden ", "stop"),
        ("STOP bitte", "stop"),
        ("Ja", "yes"),
        ("ja!", "yes"),
        ("1", "yes"),
        ("NEIN", "no"),
        ("2", "no"),
        ("", "other"),
        ("Hallo", "other"),
        ("Jaguar", "other"),
    ],
)
def test_inbound_keywords(body: str, meaning: str) -> None:
    assert classify_inbound(body) == meaning


def test_number_ranges_and_scopes() -> None:
    assert number_prefix("+4915112345678", 4) == "+491511234"
    assert number_prefix("+4915112340000", 4) == number_prefix("+4915112349999", 4)
    scopes = registration_scopes(RateLimits(), tenant="t", ip="1.2.3.4", phone="+4915112345678")
    assert [s.name for s in scopes] == ["ip", "number", "prefix", "tenant"]
    assert [s.name for s in registration_scopes(RateLimits(), tenant="t", ip="x", phone=None)] == [
        "ip",
        "tenant",
    ]


def test_rate_limit_keys_never_hold_the_number() -> None:
    scope = Scope("number", "+4915112345678", Limit(count=3, window_s=3600))
    key = counter_key("ns", scope, 7200.0)
    assert "4915112345678" not in key
    assert key.startswith("sub:rl:ns:number:3600:2:")
    assert counter_key("ns", scope, 7200.0) != counter_key("ns", scope, 10800.0)


def _selfservice(**overrides: Any) -> SelfService:
    settings = SubscriptionsSettings(**overrides)
    return SelfService(
        settings=settings,
        repo=None,  # type: ignore[arg-type]
        wake=lambda: None,
        codes=None,  # type: ignore[arg-type]
        limiter=None,  # type: ignore[arg-type]
        telephony=None,  # type: ignore[arg-type]
        links=None,  # type: ignore[arg-type]
        mailer=None,  # type: ignore[arg-type]
    )


def test_unsubscribe_tokens_are_signed_and_bound_to_the_address() -> None:
    service = _selfservice()
    token = service.unsubscribe_token("musterstadt", "c-1", "Erika@Example.org")
    tenant, citizen, email_hash = service.read_unsubscribe_token(token)
    assert (tenant, citizen) == ("musterstadt", "c-1")
    assert "example" not in token.lower(), "the address itself is not in the link"
    assert (
        email_hash
        == service.read_unsubscribe_token(
            service.unsubscribe_token("musterstadt", "c-1", "erika@example.org")
        )[2]
    )
    body, _, signature = token.partition(".")
    for forged in (f"{body}.{signature[:-1]}A", f"{body[:-2]}xx.{signature}", "garbage", ""):
        with pytest.raises(NotFoundError):
            service.read_unsubscribe_token(forged)
    other_key = _selfservice(link_secret="another-secret-of-sufficient-length-123")
    with pytest.raises(NotFoundError):
        other_key.read_unsubscribe_token(token)


def test_twiml_speaks_the_code_digit_by_digit_and_asks_for_a_key() -> None:
    spoken = code_twiml("047113", language="de", tenant_name="Musterstadt")
    assert spoken.count("0, 4, 7, 1, 1, 3") == 2
    assert 'language="de-DE"' in spoken
    question = consent_question_twiml(
        language="de",
        tenant_name="Musterstadt",
        registrant="Erika",
        topics="Gefahrenhinweise",
        action_url="http://x/twilio/consent/answer?t=a&amp;c=b",
    )
    assert "<Gather" in question
    assert 'numDigits="1"' in question
    assert "drücken Sie 1" in question
    assert "drücken Sie 2" in question


async def test_portal_pages_need_a_session_and_name_unknown_tenants() -> None:
    app = create_app(SubscriptionsSettings())  # no lifespan: nothing connects
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        unknown = await client.get("/portal/nirgendwo")
        assert unknown.status_code == 404
        anonymous = await client.get("/api/v1/portal/me")
        assert anonymous.status_code == 401
        assert anonymous.json()["detail"] == "Bitte melden Sie sich an."
        english = await client.get("/api/v1/portal/me", headers={"Accept-Language": "en"})
        assert english.json()["detail"] == "Please sign in."


async def test_portal_pages_show_no_free_text_from_the_url() -> None:
    app = create_app(SubscriptionsSettings())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        page = await client.get(
            "/portal/musterstadt/code/abc",
            params={"c": "sms", "to": "Ihr Konto ist gesperrt", "errors": "Rufen Sie 0900 an"},
        )
        assert page.status_code == 200
        assert "gesperrt" not in page.text
        assert "0900" not in page.text
        masked = await client.get("/portal/musterstadt/code/abc", params={"to": "+491****78"})
        assert "+491****78" in masked.text
        assert 'lang="de"' in masked.text
        english = await client.get("/portal/musterstadt/code/abc", params={"lang": "en"})
        assert 'lang="en"' in english.text
        assert "Enter the code" in english.text
        assert english.cookies.get("sirene_lang") == "en"


def _parts(message: EmailMessage) -> tuple[str, str]:
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    text = parsed.get_body(preferencelist=("plain",))
    html = parsed.get_body(preferencelist=("html",))
    assert isinstance(text, EmailMessage)
    assert isinstance(html, EmailMessage)
    return text.get_content(), html.get_content()


@pytest.mark.parametrize(
    ("language", "subject", "valid"),
    [
        (Language.DE, "Bitte bestätigen Sie Ihre E-Mail-Adresse – Musterstadt", "24 Stunden"),
        (Language.EN, "Please confirm your e-mail address – Musterstadt", "24 hours"),
    ],
)
def test_verification_mail_has_text_and_html_in_the_citizens_language(
    language: Language, subject: str, valid: str
) -> None:
    link = "https://buerger.example/portal/musterstadt/email/bestaetigen?token=abc&lang=en"
    message = build_verification(
        VerificationMail(
            to="erika@example.org",
            link=link,
            tenant_name="Musterstadt",
            language=language,
            valid_hours=24,
        ),
        sender="Stadt Musterstadt <info@musterstadt.example>",
    )
    assert message["Subject"] == subject
    assert message["To"] == "erika@example.org"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Message-ID"].endswith("@musterstadt.example>")
    text, html = _parts(message)
    assert link in text
    assert valid in text
    assert (
        'href="https://buerger.example/portal/musterstadt/email/bestaetigen?token=abc&amp;' in html
    )
    assert f'lang="{language.value}"' in html


def test_email_limits_count_the_address_case_insensitively_and_never_hold_it() -> None:
    limits = RateLimits()
    scopes = email_scopes(limits, tenant="t", ip="10.0.0.1", email="Erika@Example.org")
    assert [s.name for s in scopes] == ["ip", "email", "tenant"]
    assert scopes[1].limit == limits.email
    same = email_scopes(limits, tenant="t", ip="10.0.0.1", email="erika@example.org")
    assert counter_key("ns", scopes[1], 0.0) == counter_key("ns", same[1], 0.0)
    assert "erika" not in counter_key("ns", scopes[1], 0.0).lower()


def test_production_refuses_the_smtp_sink_and_a_placeholder_sender() -> None:
    problems = " ".join(SubscriptionsSettings().production_problems())
    assert "SMTP sink" in problems
    assert "mail_from" in problems
    real = SubscriptionsSettings(
        smtp_host="mail.musterstadt.example",
        smtp_port=587,
        mail_from="Stadt Musterstadt <info@musterstadt.example>",
    )
    assert "smtp" not in " ".join(real.production_problems()).lower()
    with pytest.raises(ValueError, match="mailbox"):
        SubscriptionsSettings(tenant_senders={"musterstadt": "kein Absender"})


async def test_the_confirm_page_of_an_unknown_link_changes_nothing_and_says_why() -> None:
    app = create_app(SubscriptionsSettings())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        unknown = await client.get("/portal/nirgendwo/email/bestaetigen", params={"token": "x"})
        assert unknown.status_code == 404
        assert "nicht bekannt" in unknown.text
