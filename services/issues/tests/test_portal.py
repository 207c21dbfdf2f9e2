"""The citizen portal and the staff pages over HTTP (no browser): the form with photos (GPS
EXIF stripped on the way in and absent when served), error messages, the public status page —
and every page in German and in English."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image

from .conftest import Issues
from .test_photos import GPS_IFD, jpeg_with_gps

pytestmark = pytest.mark.integration

FORM = {
    "category": "graffiti",
    "description": "Graffiti an der Schulmauer",
    "lat": "51.3400",
    "lon": "12.3650",
    "contact_email": "erika@example.org",
}


def photo_files(count: int, data: bytes | None = None) -> list[tuple[str, tuple[str, bytes, str]]]:
    raw = data if data is not None else jpeg_with_gps()
    return [("photos", (f"foto{i}.jpg", raw, "image/jpeg")) for i in range(count)]


async def test_a_jpeg_with_gps_exif_is_served_without_any_exif(issues: Issues) -> None:
    tenant = issues.tenants[0]
    upload = jpeg_with_gps()
    with Image.open(io.BytesIO(upload)) as original:
        assert original.getexif().get_ifd(GPS_IFD)  # the upload does carry a position
    sent = await issues.client.post(
        f"/portal/{tenant}/melden", data=FORM, files=photo_files(2, upload)
    )
    assert sent.status_code == 303, sent.text
    status_url = sent.headers["location"]
    report_id = re.search(r"/meldungen/([0-9a-f]{32})", status_url).group(1)  # type: ignore[union-attr]
    page = await issues.client.get(status_url)
    assert page.status_code == 200
    assert "Vielen Dank für Ihre Meldung!" in page.text
    assert "erika@example.org" not in page.text
    photos = re.findall(rf"/api/v1/{tenant}/reports/{report_id}/photos/([0-9a-f]{{32}})", page.text)
    assert len(photos) == 2
    for photo in photos:
        served = await issues.client.get(f"/api/v1/{tenant}/reports/{report_id}/photos/{photo}")
        assert served.status_code == 200
        assert served.headers["content-type"] == "image/jpeg"
        assert b"Exif" not in served.content
        assert b"ExampleCam" not in served.content
        with Image.open(io.BytesIO(served.content)) as image:
            assert len(image.getexif()) == 0
            assert image.size == (1600, 1067)
    # another tenant cannot fetch it
    other = issues.tenants[1]
    hidden = await issues.client.get(f"/api/v1/{other}/reports/{report_id}/photos/{photos[0]}")
    assert hidden.status_code == 404


@pytest.mark.parametrize(
    ("form", "files", "message"),
    [
        ({"description": ""}, [], "Beschreibung fehlt"),
        ({"lat": "abc"}, [], "Ort (Breitengrad) ist keine Zahl"),
        ({"category": "unbekannt"}, [], "Diese Kategorie gibt es nicht"),
        ({"lat": "52.52", "lon": "13.40"}, [], "außerhalb von Musterstadt"),
        ({"contact_email": "kaputt"}, [], "E-Mail ist ungültig"),
        ({}, photo_files(4), "Höchstens 3 Fotos"),
        ({}, [("photos", ("x.gif", b"GIF89a" + bytes(40), "image/gif"))], "kein lesbares Foto"),
    ],
)
async def test_form_errors_are_explained_in_german_and_the_input_kept(
    issues: Issues, form: dict[str, str], files: list[object], message: str
) -> None:
    tenant = issues.tenants[0]
    answer = await issues.client.post(
        f"/portal/{tenant}/melden",
        data=FORM | form,
        files=files or None,  # type: ignore[arg-type]
    )
    assert answer.status_code in (400, 422), answer.text
    assert 'role="alert"' in answer.text
    assert message in answer.text
    assert "Graffiti an der Schulmauer" in answer.text or form.get("description") == ""


async def test_portal_pages(issues: Issues) -> None:
    tenant = issues.tenants[0]
    form = await issues.client.get(f"/portal/{tenant}/")
    assert form.status_code == 200
    assert '<html lang="de">' in form.text
    assert 'for="description"' in form.text
    assert "/portal/assets/leaflet/leaflet.js" in form.text
    assert "Content-Security-Policy" in form.headers
    assert "Schlagloch" in form.text  # the tenant's own category
    assert "Wie groß ist das Loch?" in form.text  # and its extra question
    staff = await issues.client.get(f"/portal/{tenant}/staff")
    assert staff.status_code == 200
    assert 'autocomplete="current-password"' in staff.text
    assert "Zugangsschlüssel" not in staff.text  # no pasted tokens any more
    assert (await issues.client.get("/portal/nirgendwo/")).status_code == 404
    assert (await issues.client.get(f"/portal/{tenant}/meldungen/abc")).status_code == 404
    assert (await issues.client.get("/portal/static/portal.js")).status_code == 200


# --- German and English ---------------------------------------------------------------------

PAGES_DE_EN = {
    # page: (German strings, English strings)
    "form": (
        ["Problem melden", "Beschreibung", "Meldung absenden", "Schlagloch", "English"],
        ["Report a problem", "Description", "Send report", "Pothole", "Deutsch"],
    ),
    "status": (
        ["Vielen Dank für Ihre Meldung!", "eingegangen", "Verlauf", "Graffiti an der Schulmauer"],
        ["Thank you for your report!", "received", "History", "Graffiti an der Schulmauer"],
    ),
    "error": (["Nicht gefunden", "Meldung nicht gefunden."], ["Not found", "Report not found."]),
    "sign-in": (
        ["Anmeldung für Mitarbeitende", "Kennung", "Passwort", "Anmelden"],
        ["Staff sign-in", "User id", "Password", "Sign in"],
    ),
    "inbox": (
        ["Posteingang der Meldungen", "Angemeldet als", "(Sachbearbeitung)", "Status setzen"],
        ["Report inbox", "Signed in as", "(agent)", "Set status"],
    ),
    "password": (
        ["Passwort festlegen", "Einrichtungscode", "Passwort wiederholen"],
        ["Set your password", "Set-up code", "Repeat the password"],
    ),
    "change": (
        ["Passwort ändern", "Bisheriges Passwort", "Zum Posteingang"],
        ["Change password", "Current password", "To the inbox"],
    ),
}


async def test_every_page_speaks_german_by_default_and_english_on_request(issues: Issues) -> None:
    tenant = issues.tenants[0]
    sent = await issues.client.post(f"/portal/{tenant}/melden", data=FORM)
    status_url = sent.headers["location"]  # …/meldungen/<id>?neu=1
    browser, _ = await issues.signed_in(tenant, "anna")
    paths = {
        "form": f"/portal/{tenant}/",
        "status": status_url,
        "error": f"/portal/{tenant}/meldungen/{'0' * 32}",
        "sign-in": f"/portal/{tenant}/staff",
        "inbox": f"/portal/{tenant}/staff",
        "password": f"/portal/{tenant}/staff/passwort",
        "change": f"/portal/{tenant}/staff/passwort-aendern",
    }
    try:
        for page, (german, english) in PAGES_DE_EN.items():
            client = browser if page in ("inbox", "change") else issues.client
            path = paths[page]
            joiner = "&" if "?" in path else "?"
            answers = []
            for url, headers in (
                (path, {}),
                (f"{path}{joiner}lang=en", {}),
                (path, {"Accept-Language": "en-GB,en;q=0.8"}),
            ):
                client.cookies.delete("sirene_lang")  # each request on its own
                answers.append(await client.get(url, headers=headers))
            de, en, by_browser = answers
            for answer, lang, texts, absent in (
                (de, "de", german, english),
                (en, "en", english, german),
                (by_browser, "en", english, german),
            ):
                assert f'<html lang="{lang}">' in answer.text, (page, lang)
                for text in texts:
                    assert text in answer.text, (page, lang, text)
                assert absent[0] not in answer.text, (page, lang)  # the heading
            # the switch leads to the same page in the other language
            assert 'href="' + path.split("?")[0] + "?" in en.text
            assert "lang=de" in en.text
            assert "lang=en" in de.text
    finally:
        await browser.aclose()


async def test_the_chosen_language_is_kept_in_a_cookie_and_errors_follow_it(
    issues: Issues,
) -> None:
    tenant = issues.tenants[0]
    async with issues.browser() as browser:
        chosen = await browser.get(f"/portal/{tenant}/?lang=en")
        assert "sirene_lang=en" in chosen.headers["set-cookie"]
        later = await browser.get(f"/portal/{tenant}/")  # no ?lang: the cookie decides
        assert '<html lang="en">' in later.text
        refused = await browser.post(
            f"/portal/{tenant}/melden", data=FORM | {"description": "", "lat": "abc"}
        )
        assert refused.status_code == 422
        assert "Please check your entries" in refused.text
        assert "Description is missing." in refused.text
        assert "Location (latitude) is not a number." in refused.text
        outside = await browser.post(
            f"/portal/{tenant}/melden", data=FORM | {"lat": "52.52", "lon": "13.40"}
        )
        assert "The location is outside Musterstadt" in outside.text
        # the switch on a page answering the form leads to the form, not to the POST address
        assert f'href="/portal/{tenant}/?lang=de"' in refused.text
        failed = await browser.post(
            f"/portal/{tenant}/staff/anmelden", data={"staff_id": "anna", "password": "x"}
        )
        assert "User id or password is wrong." in failed.text
        back = await browser.get(f"/portal/{tenant}/?lang=de")
        assert '<html lang="de">' in back.text
        assert "sirene_lang=de" in back.headers["set-cookie"]
        # staff API answers (status labels, errors) follow Accept-Language, as the inbox sends it
    listed = await issues.client.get(
        "/api/v1/reports", headers=issues.staff(tenant, "anna") | {"Accept-Language": "en"}
    )
    assert listed.status_code == 200
