"""The staff console in a real browser, against the whole platform and the demo town: an alerter
composes an exercise warning from a template, a second person approves it, the live progress
reaches 100 % delivered, and a one-click Cancel reaches exactly the same recipients."""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from sirene.devstack import demo
from sirene.publisher import cap

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

STAFF = {"Authorization": f"Bearer {demo.DEV_TOKEN}"}
DELIVERY_TIMEOUT_MS = 180_000


def _login(browser: Browser, base: str, username: str) -> Page:
    context = browser.new_context(locale="de-DE")
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.goto(f"{base}/console/")
    expect(page).to_have_url(re.compile(r"/console/login$"))  # no session: sign in first
    page.get_by_label("Kommune (Mandant)").fill(demo.TENANT)
    page.get_by_label("Benutzername").fill(username)
    page.get_by_label("Passwort").fill(demo.STAFF_PASSWORD)
    page.get_by_role("button", name="Anmelden").click()
    expect(page).to_have_url(re.compile(r"/console/$"))
    return page


def _wait_complete(page: Page) -> None:
    summary = page.locator("#progress-summary[data-complete=true]")
    expect(summary).to_be_visible(timeout=DELIVERY_TIMEOUT_MS)
    expect(summary).to_contain_text("100 %")


def _progress(publisher: str, alert_id: str) -> dict[str, Any]:
    response = httpx.get(
        f"{publisher}/api/v1/alerts/{alert_id}/progress", headers=STAFF, timeout=10
    )
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def test_compose_approve_publish_progress_and_cancel_in_the_console(
    platform: dict[str, str], browser: Browser
) -> None:
    base = platform["publisher"]
    marker = uuid.uuid4().hex[:6]

    # --- Anna (alerter) composes from the "Hochwasser" template -------------------------------
    anna = _login(browser, base, "anna")
    anna.get_by_role("link", name="Hochwasser", exact=True).click()
    expect(anna.locator("#de_headline")).to_have_value("Hochwasserwarnung für Musterstadt")
    expect(anna.locator("#severity")).to_have_value("Severe")
    expect(anna.locator(".mode-banner.exercise")).to_be_hidden()
    anna.get_by_label("Übung", exact=True).check()
    expect(anna.locator(".mode-banner.exercise")).to_be_visible()  # exercise mode looks different

    # live SMS segment count, with a warning above 3 segments
    anna.locator("#de_sms").fill("Hochwasser! " * 60)
    expect(anna.locator("#sms-length-de")).to_contain_text("mehr als 3 SMS-Teile")
    texts = {
        "de_headline": f"Hochwasserwarnung {marker}",
        "de_push_title": f"Hochwasser {marker}",
        "de_sms": f"Hochwasser {marker}: Pegel steigt, Ufer meiden.",
        "de_voice": f"Achtung, Hochwasser {marker}. Meiden Sie das Ufer.",
        "en_headline": f"Flood warning {marker}",
        "en_push_title": f"Flood {marker}",
        "en_sms": f"Flood {marker}: river rising, keep away from the bank.",
        "en_voice": f"Attention, flood {marker}. Keep away from the river bank.",
    }
    for field, value in texts.items():
        anna.locator(f"#{field}").fill(value)
    expect(anna.locator("#sms-length-de")).to_contain_text("1 SMS-Teil")
    expect(anna.locator("#sms-length-de")).not_to_contain_text("mehr als 3")
    expect(anna.locator("#estimate-total")).to_contain_text("Empfänger")  # from the fanout's index

    anna.get_by_role("button", name="Senden").click()
    expect(anna).to_have_url(re.compile(r"/console/alerts/[0-9a-f]{32}$"))
    alert_url = anna.url
    alert_id = alert_url.rsplit("/", 1)[1]
    expect(anna.locator("[data-state]").first).to_have_text("Wartet auf Freigabe")
    expect(anna.locator("#approve")).to_have_count(0)  # nobody approves their own alert
    expect(anna.locator(".mode-banner.exercise")).to_be_visible()

    # --- Bernd (approver) approves; the live progress reaches 100 % -----------------------------
    bernd = _login(browser, base, "bernd")
    bernd.goto(alert_url)
    expect(bernd.locator("#alert-headline")).to_have_text(f"ÜBUNG: Hochwasserwarnung {marker}")
    bernd.get_by_role("button", name="Freigeben und senden").click()
    expect(bernd.locator("[data-state]").first).to_have_text("Veröffentlicht")
    _wait_complete(bernd)

    original = _progress(base, alert_id)
    assert original["complete"]
    assert original["totals"]["statuses"]["failed"] == 0
    expected = {ch: c["expected"] for ch, c in original["channels"].items() if c["expected"]}
    assert set(expected) >= {"sms", "voice", "push"}
    assert original["recipients"] >= len(demo.demo_citizens())

    # --- Anna cancels in one click: the Cancel reaches the same recipients ---------------------
    anna.goto(alert_url)
    anna.get_by_role("button", name=re.compile("Aufheben")).click()
    expect(anna).not_to_have_url(alert_url)
    cancel_id = anna.url.rsplit("/", 1)[1]
    expect(anna.locator("[data-state]").first).to_have_text("Veröffentlicht")
    expect(anna.get_by_text("Aufhebung", exact=True)).to_be_visible()
    _wait_complete(anna)

    cancelled = _progress(base, cancel_id)
    assert cancelled["recipients"] == original["recipients"]
    assert {ch: c["expected"] for ch, c in cancelled["channels"].items() if c["expected"]} == (
        expected
    )
    assert cancelled["totals"]["statuses"]["failed"] == 0

    # every demo citizen's phone got the exercise warning and then its cancellation
    sim = platform["provider-sim"]
    with httpx.Client(base_url=sim, timeout=10) as client:
        for citizen in demo.demo_citizens():
            number = citizen["contacts"].get("sms")  # type: ignore[attr-defined]
            if not number:
                continue
            phone = client.get(f"/sim/phones/{quote(number, safe='')}").json()
            ours = [m["body"] for m in phone["messages"] if marker in m["body"]]
            assert len(ours) == 2, (citizen["id"], ours)
            assert all(body.startswith(("ÜBUNG: ", "EXERCISE: ")) for body in ours)
            assert any("Entwarnung" in body or "All clear" in body for body in ours)

    # the audit log names who did what
    bernd.goto(f"{base}/console/audit")
    expect(bernd.locator("tbody")).to_contain_text("Bernd Freigabe")
    expect(bernd.locator("tbody")).to_contain_text("freigegeben")

    # every seeded alert (and these two) exports as CAP 1.2 valid against the OASIS schema
    listed = httpx.get(f"{base}/api/v1/alerts?limit=200", headers=STAFF, timeout=10).json()
    seeded = {t["body"]["texts"]["de"]["headline"] for t in _templates(base)}
    headlines = {a["headline"] for a in listed["items"]}
    assert seeded <= headlines
    for alert in listed["items"]:
        xml = httpx.get(f"{base}/api/v1/alerts/{alert['id']}/cap.xml", headers=STAFF, timeout=10)
        assert xml.status_code == 200, xml.text
        cap.validate(xml.content)


def _templates(base: str) -> list[dict[str, Any]]:
    wanted = set(demo.DEMO_TEMPLATES)
    templates = httpx.get(f"{base}/api/v1/templates", headers=STAFF, timeout=10).json()
    return [t for t in templates if t["id"] in wanted]
