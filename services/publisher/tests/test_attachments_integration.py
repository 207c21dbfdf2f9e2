"""Attachments against real MongoDB (GridFS) and Kafka: type from content, EXIF stripped, size
limit, linked in push and e-mail only, public only while the alert is published, tenant-scoped."""

from __future__ import annotations

import contextlib
import io
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from PIL import Image
from pydantic import SecretStr

from sirene.devstack.testing import InfraUrls, TopicReader, serve_app
from sirene.publisher.app import create_app
from sirene.publisher.settings import PublisherSettings
from sirene.schemas import ALERT_PUBLISHED, AlertPublished, Language

pytestmark = pytest.mark.integration

TEXTS = {
    "headline": "Straßensperrung Hauptstraße",
    "push_title": "Straßensperrung",
    "push_body": "Die Hauptstraße ist ab Montag gesperrt.",
    "sms": "Hauptstraße ab Montag gesperrt.",
    "voice": "Die Hauptstraße ist ab Montag gesperrt.",
}
GPS_TAG = 0x8825


def running(
    settings: PublisherSettings,
) -> contextlib.AbstractAsyncContextManager[tuple[FastAPI, httpx.AsyncClient]]:
    return serve_app(create_app(settings))


def _photo_with_exif() -> bytes:
    image = Image.new("RGB", (64, 32), (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "Kamera GmbH"  # Make
    exif[0x0112] = 6  # orientation: rotate 90° on display
    exif[GPS_TAG] = {1: "N", 2: (51.0, 20.0, 0.0)}
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif.tobytes())
    return out.getvalue()


def _draft(**overrides: Any) -> dict[str, Any]:
    return {
        "status": "Actual",
        "severity": "Minor",
        "urgency": "Expected",
        "category": "Transport",
        "texts": {"de": TEXTS},
        "audience": {"topics": ["verkehr"]},
    } | overrides


async def test_attachments(sirene_infra: InfraUrls) -> None:
    tenant, token = f"t-{uuid.uuid4().hex[:10]}", f"token-{uuid.uuid4().hex}"
    other, other_token = f"t-{uuid.uuid4().hex[:10]}", f"token-{uuid.uuid4().hex}"
    settings = PublisherSettings(
        **sirene_infra.settings_kwargs(),  # type: ignore[arg-type]
        api_tokens={tenant: SecretStr(token), other: SecretStr(other_token)},
        attachment_max_mib=1,
        public_url="https://buerger.musterstadt.example",
    )
    auth = {"Authorization": f"Bearer {token}"}
    async with (
        TopicReader(sirene_infra.kafka, [ALERT_PUBLISHED]) as reader,
        running(settings) as (_, client),
    ):
        draft = (await client.post("/api/v1/alerts", json=_draft(), headers=auth)).json()
        url = f"/api/v1/alerts/{draft['id']}/attachments"

        photo = _photo_with_exif()
        assert Image.open(io.BytesIO(photo)).getexif().get(0x010F) == "Kamera GmbH"
        added = await client.post(
            url, files={"file": ("../../Baustelle Foto.jpeg", photo, "image/jpeg")}, headers=auth
        )
        assert added.status_code == 201, added.text
        entry = added.json()["attachments"][0]
        assert entry["filename"] == "Baustelle Foto.jpg"
        assert entry["content_type"] == "image/jpeg"
        stored = await client.get(f"{url}/{entry['id']}", headers=auth)
        assert stored.status_code == 200
        assert stored.headers["x-content-type-options"] == "nosniff"
        cleaned = Image.open(io.BytesIO(stored.content))
        assert dict(cleaned.getexif()) == {}  # no camera, no GPS position, no orientation tag
        assert cleaned.size == (32, 64)  # the orientation was applied before it was dropped

        # the type comes from the content: an executable named .pdf is refused
        fake = await client.post(
            url, files={"file": ("plan.pdf", b"MZ\x90\x00binary", "application/pdf")}, headers=auth
        )
        assert fake.status_code == 422
        assert "PDF" in fake.json()["detail"][0]["msg"]
        large = b"%PDF-1.7\n" + b"0" * (1024 * 1024)
        too_large = await client.post(
            url, files={"file": ("plan.pdf", large, "application/pdf")}, headers=auth
        )
        assert too_large.status_code == 422
        assert "1 MiB" in too_large.json()["detail"][0]["msg"]
        pdf = await client.post(
            url, files={"file": ("Umleitung.pdf", b"%PDF-1.7\n%%EOF\n", "x/y")}, headers=auth
        )
        assert pdf.status_code == 201
        links = pdf.json()["attachments"]
        assert [a["content_type"] for a in links] == ["image/jpeg", "application/pdf"]

        # another tenant sees nothing; citizens see nothing before publication
        foreign = {"Authorization": f"Bearer {other_token}"}
        assert (await client.get(f"{url}/{entry['id']}", headers=foreign)).status_code == 404
        assert (
            await client.post(url, files={"file": ("x.pdf", b"%PDF-1", "x")}, headers=foreign)
        ).status_code == 404
        public_path = entry["url"].removeprefix("https://buerger.musterstadt.example")
        assert public_path.startswith("/public/attachments/")
        assert (await client.get(public_path)).status_code == 404

        published = await client.post(f"/api/v1/alerts/{draft['id']}/publish", headers=auth)
        assert published.json()["state"] == "published"
        public = await client.get(public_path)
        assert public.status_code == 200
        assert public.content == stored.content
        late = await client.post(url, files={"file": ("x.pdf", b"%PDF-1", "x")}, headers=auth)
        assert late.status_code == 409

        records = await reader.collect(
            lambda r: r.key == draft["id"].encode(), count=1, timeout_s=20
        )
        event = AlertPublished.model_validate_json(records[0].value)
        texts = event.texts[Language.DE]
        assert entry["url"] in (texts.email_body or "")
        assert links[1]["url"] in (texts.email_body or "")
        assert entry["url"] in texts.push_body
        assert "http" not in texts.sms
        assert "http" not in texts.voice

        # withdrawn from citizens once the alert is cancelled
        await client.post(f"/api/v1/alerts/{draft['id']}/cancel", headers=auth)
        assert (await client.get(public_path)).status_code == 404
