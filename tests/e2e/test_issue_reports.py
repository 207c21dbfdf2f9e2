"""A citizen reports illegal dumping through the portal in a real browser (map click, photo
with GPS EXIF, mobile number); the report is routed to the Bauhof; a Bauhof agent chooses a
password through the administrator's one-time link, signs in to the inbox, sets the report
"in Bearbeitung", then "erledigt", and signs out; the reporter's phone at the simulator
receives both messages, and the photo is served without any EXIF."""

from __future__ import annotations

import io
import time
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import httpx
import pytest
from PIL import Image

from sirene.devstack import demo

if TYPE_CHECKING:
    from pathlib import Path

    from playwright.sync_api import Page

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ADMIN = {"Authorization": f"Bearer {demo.DEV_TOKEN}"}
TENANT = demo.TENANT
TOWN = {
    "type": "Polygon",
    "coordinates": [
        [[12.35, 51.32], [12.39, 51.32], [12.39, 51.36], [12.35, 51.36], [12.35, 51.32]]
    ],
}


def _jpeg_with_gps(path: Path) -> Path:
    exif = Image.Exif()
    exif[0x010F] = "ExampleCam"
    exif[0x8825] = {1: "N", 2: (51.0, 20.0, 24.0), 3: "E", 4: (12.0, 22.0, 12.0)}
    Image.new("RGB", (2400, 1800), (90, 120, 60)).save(path, format="JPEG", exif=exif)
    return path


def _configure(issues: str, marker: str) -> tuple[str, str, str]:
    """The Bauhof handles illegal dumping in Musterstadt; returns an agent's id, API token
    and password set-up link (on this platform's address)."""
    with httpx.Client(base_url=issues, headers=ADMIN, timeout=10) as client:

        def put(path: str, body: dict[str, Any]) -> None:
            response = client.put(f"/api/v1/admin/{path}", json=body)
            assert response.status_code == 200, response.text

        put("departments/bauhof", {"id": "bauhof", "name": "Bauhof", "email": "bauhof@example.org"})
        put(
            "rules/dumping",
            {"id": "dumping", "department": "bauhof", "category": "illegal_dumping"},
        )
        put(
            "config",
            {
                "name": "Musterstadt",
                "allow_anonymous": True,
                "moderation": False,
                "default_department": "buergerservice",
                "boundary": TOWN,
            },
        )
        created = client.post(
            "/api/v1/admin/staff",
            json={
                "id": f"bauhof-{marker}",
                "name": "Berta Bauhof",
                "role": "agent",
                "departments": ["bauhof"],
            },
        )
        assert created.status_code == 201, created.text
        link = urlsplit(created.json()["setup_url"])
        assert link.fragment.startswith("code=")
        return f"bauhof-{marker}", created.json()["token"], f"{issues}{link.path}#{link.fragment}"


def _messages(sim: str, phone: str) -> list[str]:
    answer = httpx.get(f"{sim}/sim/phones/{quote(phone, safe='')}", timeout=10)
    if answer.status_code != 200:
        return []
    return [m["body"] for m in answer.json().get("messages", [])]


def test_portal_report_is_routed_worked_on_and_the_reporter_gets_two_sms(
    platform: dict[str, str], page: Page, tmp_path: Path
) -> None:
    issues, sim = platform["issues"], platform["provider-sim"]
    marker = uuid.uuid4().hex[:8]
    agent_id, token, setup_link = _configure(issues, marker)
    agent = {"Authorization": f"Bearer {token}"}  # API clients keep using bearer tokens
    password = f"Sperrmüll-Dienstag {marker}"
    phone = f"+49157{int(marker, 16) % 10**8:08d}"
    photo = _jpeg_with_gps(tmp_path / "muell.jpg")

    page.goto(f"{issues}/portal/{TENANT}/")
    assert page.title().startswith("Problem melden")
    page.get_by_label("Kategorie").select_option(label="Illegale Müllablagerung")
    page.get_by_label("Beschreibung", exact=True).fill(f"Sperrmüll am Waldweg {marker}")
    # the map has no tiles (offline) but shows the town outline; a click sets the position
    page.locator("#map path").first.wait_for()
    box = page.locator("#map").bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    assert page.get_by_label("Breitengrad").input_value().startswith("51.3")
    assert page.get_by_label("Längengrad").input_value().startswith("12.3")
    page.get_by_label("Fotos", exact=False).set_input_files(str(photo))
    page.get_by_label("Mobilnummer", exact=False).fill(phone)
    page.get_by_role("button", name="Meldung absenden").click()

    page.get_by_role("heading", name="Vielen Dank für Ihre Meldung!").wait_for()
    report_id = page.locator("#meldungsnummer").inner_text().strip()
    assert page.locator("#status").inner_text() == "eingegangen"
    assert page.locator("#zustaendig").inner_text() == "Bauhof"
    assert phone not in page.content()

    with httpx.Client(base_url=issues, timeout=10) as client:
        staff_view = client.get(f"/api/v1/reports/{report_id}", headers=agent)
        assert staff_view.status_code == 200, staff_view.text
        assert staff_view.json()["department"] == "bauhof"
        assert staff_view.json()["contact"]["phone"] == phone
        photos = staff_view.json()["photos"]
        assert len(photos) == 1
        served = client.get(f"/api/v1/{TENANT}/reports/{report_id}/photos/{photos[0]}")
        assert served.status_code == 200
        assert served.headers["content-type"] == "image/jpeg"
        with Image.open(io.BytesIO(served.content)) as image:
            assert len(image.getexif()) == 0
            assert max(image.size) == 1600
        assert b"Exif" not in served.content
        assert b"ExampleCam" not in served.content

    # the agent chooses a password through the administrator's one-time link ...
    page.goto(setup_link)
    assert page.get_by_label("Einrichtungscode").input_value() == setup_link.split("#code=")[1]
    assert "#code=" not in page.url  # the code leaves the address bar (and the history)
    page.get_by_label("Neues Passwort", exact=True).fill(password)
    page.get_by_label("Passwort wiederholen", exact=True).fill(password)
    page.get_by_role("button", name="Passwort festlegen").click()
    page.get_by_text("Ihr Passwort ist festgelegt").wait_for()
    page.get_by_role("link", name="Zur Anmeldung").click()
    # ... signs in to the inbox, opens the report, sets two statuses
    page.get_by_label("Kennung", exact=True).fill(agent_id)
    page.get_by_label("Passwort", exact=True).fill(password)
    page.get_by_role("button", name="Anmelden").click()
    page.get_by_text("Angemeldet als Berta Bauhof (Sachbearbeitung)").wait_for()
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["sirene_issues_session"]["httpOnly"] is True
    assert cookies["sirene_issues_session"]["sameSite"] == "Strict"
    page.get_by_role("button", name=f"Meldung {report_id[:8]} öffnen").click()
    page.get_by_role(
        "heading", name=f"Meldung {report_id[:8]} – Illegale Müllablagerung"
    ).wait_for()
    assert phone in page.locator("#detail-daten").inner_text()  # staff see the contact
    page.get_by_label("Neuer Status").select_option(label="in Bearbeitung")
    page.get_by_label("Hinweis für die meldende Person", exact=False).fill(
        "Der Bauhof holt den Sperrmüll ab."
    )
    page.get_by_role("button", name="Status setzen").click()
    page.get_by_text("Status geändert.").wait_for()
    assert "in Bearbeitung" in page.locator("#detail-verlauf").inner_text()
    page.get_by_label("Interner Kommentar", exact=False).fill("Termin Donnerstag.")
    page.get_by_role("button", name="Kommentar speichern").click()
    page.locator("#detail-kommentare li").first.wait_for()
    page.get_by_label("Neuer Status").select_option(label="erledigt")
    page.get_by_role("button", name="Status setzen").click()
    page.locator("#detail-verlauf li").nth(2).wait_for()
    resolved_at = time.monotonic()
    page.get_by_role("button", name="Abmelden").click()
    page.get_by_text("Sie sind abgemeldet.").wait_for()
    assert "sirene_issues_session" not in {c["name"] for c in page.context.cookies()}

    deadline = time.monotonic() + 120
    texts: list[str] = []
    while time.monotonic() < deadline:
        texts = _messages(sim, phone)
        if len(texts) >= 2:
            break
        time.sleep(0.5)
    assert len(texts) == 2, texts
    print(  # noqa: T201 - worth seeing in the test log
        f"\nreport {report_id}: 'erledigt' set → both SMS at the simulator after "
        f"{time.monotonic() - resolved_at:.1f} s"
    )
    assert any("„in Bearbeitung“" in t and "holt den Sperrmüll ab" in t for t in texts), texts
    assert any("„erledigt“" in t for t in texts), texts
    assert all(report_id[:8] in t for t in texts)
    # the department got the new report by e-mail, through the same pipeline (channel-email)
    mails: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not mails:
        mailbox = httpx.get(f"{sim}/sim/mailboxes/bauhof@example.org", timeout=10)
        if mailbox.status_code == 200:
            mails = [m for m in mailbox.json().get("messages", []) if marker in m["text"]]
        if not mails:
            time.sleep(0.5)
    assert len(mails) == 1, "one e-mail to the department"
    assert mails[0]["subject"] == "Neue Meldung: Illegale Müllablagerung"
    assert f"Sperrmüll am Waldweg {marker}" in mails[0]["text"]
    assert phone not in mails[0]["text"]  # the reporter's contact stays in the inbox

    page.goto(f"{issues}/portal/{TENANT}/meldungen/{report_id}")
    assert page.locator("#status").inner_text() == "erledigt"
    assert "Termin Donnerstag" not in page.content()  # internal comments stay internal
    history = page.locator("ol.history li").all_inner_texts()
    assert [h.split(": ", 1)[1].split(" – ")[0] for h in history] == [
        "eingegangen",
        "in Bearbeitung",
        "erledigt",
    ]
    # the reporter switches to English: the same page, the language kept for the next one
    page.get_by_role("link", name="English").click()
    page.wait_for_url("**lang=en**")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("#status").inner_text() == "resolved"
    page.get_by_role("link", name="Report another problem").click()
    page.get_by_role("heading", name="Report a problem").wait_for()
