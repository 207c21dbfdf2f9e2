"""Subscriptions end to end, every service as its own process: an SMS "STOP" from a simulated
phone (signed inbound webhook at channel-sms → sms.inbound → subscriptions → citizen.profile →
fanout) means the next alert skips that citizen; an erased citizen is gone from the audience;
a citizen registers through the portal in headless Chromium — with JavaScript switched
off, because the core flow must work without it — and adds an e-mail address, confirmed by the
mailed link, after which the next alert reaches that mailbox through channel-email."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
import pytest

from sirene.devstack import demo
from sirene.devstack.browser import chromium

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

TOPIC = "gefahrenhinweise"
STAFF = {"Authorization": f"Bearer {demo.DEV_TOKEN}"}


def _new_mobile() -> str:
    return f"+49152{uuid.uuid4().int % 10**8:08d}"


def _until(check: Callable[[], Any], what: str, timeout_s: float = 120) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def _phone(sim: str, number: str) -> dict[str, Any]:
    response = httpx.get(f"{sim}/sim/phones/{quote(number, safe='')}", timeout=10)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def _texts(sim: str, number: str) -> list[str]:
    return [m["body"] for m in _phone(sim, number)["messages"]]


def _alert(marker: str) -> dict[str, Any]:
    de = {
        "headline": f"Probealarm {marker}",
        "push_title": f"Warnung {marker}",
        "push_body": "Bitte Radio einschalten.",
        "sms": f"Warnung {marker}: Bitte Radio einschalten.",
        "voice": f"Achtung, Warnung {marker}. Bitte schalten Sie das Radio ein.",
    }
    return {
        "severity": "Moderate",  # Severe would wait for a second person's approval (four eyes)
        "urgency": "Immediate",
        "certainty": "Observed",
        "category": "Safety",
        "texts": {"de": de},
        "audience": {"topics": [TOPIC]},
        "duration_minutes": 60,
        "publish": True,
    }


def _publish_and_wait(platform: dict[str, str], marker: str) -> None:
    response = httpx.post(
        f"{platform['publisher']}/api/v1/alerts", json=_alert(marker), headers=STAFF, timeout=10
    )
    assert response.status_code == 201, response.text
    alert_id = response.json()["id"]

    def complete() -> bool:
        progress = httpx.get(
            f"{platform['publisher']}/api/v1/alerts/{alert_id}/progress",
            headers=STAFF,
            timeout=10,
        ).json()
        return bool(progress.get("complete"))

    _until(complete, f"alert {marker} to complete", timeout_s=180)


def test_stop_by_sms_and_erasure_take_citizens_out_of_the_next_alert(
    platform: dict[str, str],
) -> None:
    subs, sim = platform["subscriptions"], platform["provider-sim"]
    stopper, control = _new_mobile(), _new_mobile()
    ids = {}
    with httpx.Client(base_url=subs, headers=STAFF, timeout=10) as client:
        for number in (stopper, control):
            created = client.post(
                "/api/v1/citizens",
                json={"contacts": {"sms": number}, "subscriptions": {TOPIC: ["sms"]}},
            )
            assert created.status_code == 201, created.text
            ids[number] = created.json()["id"]
    demo.wait_until_routable(subs, platform["fanout"])

    # the citizen texts STOP to the platform number (signed webhook to channel-sms)
    sent = httpx.post(
        f"{sim}/sim/phones/{quote(stopper, safe='')}/sms", json={"body": "STOP"}, timeout=30
    )
    assert sent.json()["webhook_status"] == 200, sent.text

    def stopped() -> bool:
        doc = httpx.get(f"{subs}/api/v1/citizens/{ids[stopper]}", headers=STAFF).json()
        return not doc["contacts"]["sms"]["active"] and doc["profile_state"] == "sent"

    _until(stopped, "STOP to reach subscriptions")
    demo.wait_until_routable(subs, platform["fanout"])

    first = uuid.uuid4().hex[:8]
    _publish_and_wait(platform, first)
    assert any(first in text for text in _texts(sim, control)), "the control citizen got it"
    assert not any(first in text for text in _texts(sim, stopper)), "STOP: no further SMS"

    # erasure: gone from the audience of the next alert
    erased = httpx.delete(f"{subs}/api/v1/citizens/{ids[control]}", headers=STAFF, timeout=30)
    assert erased.status_code == 204, erased.text
    assert httpx.get(f"{subs}/api/v1/citizens/{ids[control]}", headers=STAFF).status_code == 404
    demo.wait_until_routable(subs, platform["fanout"])
    second = uuid.uuid4().hex[:8]
    _publish_and_wait(platform, second)
    assert not any(second in text for text in _texts(sim, control)), "erased: not in audience"


def test_a_citizen_registers_through_the_portal_without_javascript(
    platform: dict[str, str],
) -> None:
    subs, sim = platform["subscriptions"], platform["provider-sim"]
    number = _new_mobile()
    # Its own Chromium, not the session-wide `browser` fixture: Playwright's sync API keeps an
    # event loop running in this thread while it lives, and the asyncio tests that run after
    # the end-to-end tests could not start theirs.
    with chromium() as browser:
        _register_in_the_browser(browser, subs, sim, number)

    found = _find_citizen(subs, number)
    assert found is not None, "the portal registration is stored"
    assert found["active"] is True
    assert found["origin"] == "self"
    assert found["name"] == "Erika Browser"
    assert found["subscriptions"] == {TOPIC: ["sms"]}


def test_a_citizen_confirms_an_e_mail_address_and_the_next_alert_arrives_by_e_mail(
    platform: dict[str, str],
) -> None:
    subs, sim = platform["subscriptions"], platform["provider-sim"]
    number, address = _new_mobile(), f"e2e.{uuid.uuid4().hex[:10]}@example.org"
    with chromium() as browser:
        _register_in_the_browser(browser, subs, sim, number, email=address)

    found = _find_citizen(subs, number)
    assert found is not None
    assert found["contacts"]["email"] == {
        "address": address,
        "active": True,
        "deactivated_reason": None,
    }
    assert found["subscriptions"] == {TOPIC: ["sms", "email"]}
    demo.wait_until_routable(subs, platform["fanout"])
    marker = uuid.uuid4().hex[:8]
    _publish_and_wait(platform, marker)

    def alert_mail() -> list[dict[str, Any]]:
        return [m for m in _mailbox(sim, address) if marker in m["subject"]]

    (mail,) = _until(alert_mail, "the alert e-mail")
    assert mail["list_unsubscribe"], "the alert e-mail carries its one-click unsubscribe link"


def _mailbox(sim: str, address: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{sim}/sim/mailboxes/{address}", timeout=10)
    response.raise_for_status()
    messages: list[dict[str, Any]] = response.json()["messages"]
    return messages


def _confirm_email_in_the_browser(page: Any, subs: str, sim: str, address: str) -> None:
    """On the account page: enter the address, open the mailed link, press the button."""
    page.get_by_label("E-Mail-Adresse", exact=True).fill(address)
    page.get_by_role("button", name="Bestätigungslink senden").click()
    page.get_by_role("status").filter(has_text="Bestätigungslink an").wait_for()

    def link() -> str | None:
        for message in _mailbox(sim, address):
            found = re.search(r"https?://\S+/email/bestaetigen\?token=[\w-]+", message["text"])
            if found:
                return found.group(0)
        return None

    page.goto(_until(link, "the verification e-mail"))
    page.get_by_role("heading", name="E-Mail-Adresse bestätigen").wait_for()
    page.get_by_role("button", name="Ja, E-Mail-Adresse bestätigen").click()
    page.get_by_role("status").filter(has_text="Ihre E-Mail-Adresse ist bestätigt").wait_for()


def _register_in_the_browser(
    browser: Browser, subs: str, sim: str, number: str, *, email: str | None = None
) -> None:
    context = browser.new_context(locale="de-DE", java_script_enabled=False)
    context.set_default_timeout(20_000)
    try:
        page = context.new_page()
        page.goto(f"{subs}/portal/{demo.TENANT}")
        assert page.locator("html").get_attribute("lang") == "de"
        page.get_by_role("heading", name="Anmelden für Warnungen und Nachrichten").wait_for()
        page.locator("#phone").fill(number.replace("+49", "0"))
        page.get_by_label("SMS (Handy)").check()
        page.get_by_label("Gefahrenhinweise").check()
        page.get_by_label("Verkehr").check()
        page.get_by_label("Name (freiwillig)").fill("Erika Browser")
        page.get_by_role("button", name="Code anfordern").first.click()
        page.get_by_role("heading", name="Code eingeben").wait_for()

        def code() -> str | None:
            for text in _texts(sim, number):
                found = re.search(r"\b(\d{6})\b", text)
                if found:
                    return found.group(1)
            return None

        page.get_by_label("Bestätigungscode (6 Ziffern)").fill(_until(code, "the SMS code"))
        page.get_by_role("button", name="Bestätigen").click()
        page.get_by_role("heading", name="Ihre Anmeldung").wait_for()
        # the account page shows the choice and lets the citizen change it
        assert page.get_by_label("Verkehr: SMS (Handy)").is_checked()
        page.get_by_label("Verkehr: SMS (Handy)").uncheck()
        page.get_by_role("button", name="Speichern").first.click()
        page.get_by_role("status").filter(has_text="Gespeichert.").wait_for()
        if email is not None:
            _confirm_email_in_the_browser(page, subs, sim, email)
            page.goto(f"{subs}/portal/{demo.TENANT}/konto")
        # English is available
        page.goto(f"{subs}/portal/{demo.TENANT}/konto?lang=en")
        page.get_by_role("heading", name="Your registration").wait_for()
    finally:
        context.close()


def _find_citizen(subs: str, number: str) -> dict[str, Any] | None:
    """The citizen whose SMS number is `number`, paging through the staff API."""
    after: str | None = None
    with httpx.Client(base_url=subs, headers=STAFF, timeout=10) as client:
        while True:
            params: dict[str, Any] = {"limit": 200, **({"after": after} if after else {})}
            listed = client.get("/api/v1/citizens", params=params).json()
            for citizen in listed["items"]:
                if (citizen["contacts"].get("sms") or {}).get("address") == number:
                    found: dict[str, Any] = citizen
                    return found
            after = listed["next_after"]
            if after is None:
                return None
