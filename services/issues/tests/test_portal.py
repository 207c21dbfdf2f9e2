"""The citizen portal over HTTP (no browser): the form with photos (GPS EXIF stripped on the
way in and absent when served), German error messages, and the public status page."""

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
    assert "Zugangsschlüssel" in staff.text
    assert (await issues.client.get("/portal/nirgendwo/")).status_code == 404
    assert (await issues.client.get(f"/portal/{tenant}/meldungen/abc")).status_code == 404
    assert (await issues.client.get("/portal/static/portal.js")).status_code == 200
