"""The staff console in German (default) and English: the catalogues agree, every page renders
in both languages with its own texts, and the chosen language sticks (cookie)."""

from __future__ import annotations

import contextlib
import re
import string
import uuid
from pathlib import Path
from typing import get_args

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from starlette.requests import Request

from sirene.devstack.testing import InfraUrls, serve_app
from sirene.publisher import i18n
from sirene.publisher.alert_templates import TEMPLATES
from sirene.publisher.app import create_app
from sirene.publisher.console import (
    CATEGORIES,
    CERTAINTIES,
    SEVERITIES,
    TEXT_FIELDS,
    URGENCIES,
)
from sirene.publisher.models import AlertState
from sirene.publisher.settings import PublisherSettings
from sirene.schemas import AlertStatus, Channel, MsgType

PACKAGE = Path(i18n.__file__).parent
PASSWORD = "ein-langes-testpasswort"


# --- the catalogues (unit) -------------------------------------------------------------------


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_key_is_in_every_language() -> None:
    for lang, catalogue in i18n.CATALOGUES.items():
        for other, other_catalogue in i18n.CATALOGUES.items():
            missing = sorted(other_catalogue.keys() - catalogue.keys())
            assert not missing, f"keys of '{other}' missing in '{lang}': {missing}"


def test_translations_are_filled_and_take_the_same_parameters() -> None:
    for key, german in i18n.DE.items():
        english = i18n.EN[key]
        assert german.strip(), key
        assert english.strip(), key
        assert _placeholders(german) == _placeholders(english), key


def _keys_used_in_code() -> set[str]:
    """Literal keys of `t("...")` in the templates and of `i18n.text(lang, "...")` in code."""
    used: set[str] = set()
    for template in (PACKAGE / "templates").glob("*.html"):
        used |= set(re.findall(r"""\bt\(\s*["']([a-z0-9_.]+)["']\s*[,)]""", template.read_text()))
    for module in PACKAGE.glob("*.py"):
        used |= set(
            re.findall(r"""i18n\.text\([^,]+,\s*["']([a-z0-9_.]+)["']""", module.read_text())
        )
    return used


def test_every_key_used_exists() -> None:
    used = _keys_used_in_code()
    assert len(used) > 100  # the scan finds the templates' texts
    for lang, catalogue in i18n.CATALOGUES.items():
        assert not sorted(used - catalogue.keys()), lang


def test_keys_built_from_values_exist() -> None:
    """Labels looked up from data (`t("state." ~ alert.state)`): every possible value has one."""
    built = (
        [f"state.{s}" for s in get_args(AlertState)]
        + [f"status.{s.value}" for s in AlertStatus]
        + [f"mode.{s.value}" for s in AlertStatus]
        + [f"msg_type.{m.value}" for m in MsgType]
        + [f"channel.{c.value}" for c in Channel]
        + [f"severity.{v}" for v in SEVERITIES]
        + [f"urgency.{v}" for v in URGENCIES]
        + [f"certainty.{v}" for v in CERTAINTIES]
        + [f"category.{v}" for v in CATEGORIES]
        + [f"field.{f}" for f, _ in TEXT_FIELDS]
        + [f"template.{t}" for t in TEMPLATES]
        + ["language.de", "language.en", "compose.texts_de", "compose.texts_en"]
    )
    for lang, catalogue in i18n.CATALOGUES.items():
        assert not [k for k in built if k not in catalogue], lang


def _request(query: str = "", cookie: str = "", accept: str = "") -> Request:
    headers = []
    if cookie:
        headers.append((b"cookie", f"{i18n.LANG_COOKIE}={cookie}".encode()))
    if accept:
        headers.append((b"accept-language", accept.encode()))
    return Request(
        {
            "type": "http",
            "method": "GET",
            "path": "/",
            "query_string": query.encode(),
            "headers": headers,
        }
    )


def test_language_of_a_request() -> None:
    assert i18n.lang_of(_request()) == "de"
    assert i18n.lang_of(_request(accept="en-GB,en;q=0.9")) == "en"
    assert i18n.lang_of(_request(accept="fr-FR, en;q=0.5, de;q=0.8")) == "de"
    assert i18n.lang_of(_request(accept="fr-FR, de;q=0.2, en;q=0.5")) == "en"
    assert i18n.lang_of(_request(accept="fr")) == "de"
    assert i18n.lang_of(_request(cookie="en", accept="de-DE")) == "en"  # the switch wins
    assert i18n.lang_of(_request(query="lang=de", cookie="en")) == "de"  # the URL wins
    assert i18n.lang_of(_request(query="lang=xx", cookie="fr", accept="en")) == "en"


# --- the pages (integration) -----------------------------------------------------------------


def running(
    settings: PublisherSettings,
) -> contextlib.AbstractAsyncContextManager[tuple[FastAPI, httpx.AsyncClient]]:
    return serve_app(create_app(settings))


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


# Per page: texts that must show in that language (and, for English, German ones that must not).
EXPECTED = {
    "login": {
        "de": ["Kommune (Mandant)", "Benutzername", "Passwort", "Einmalcode"],
        "en": ["Municipality (tenant)", "User name", "Password", "One-time code"],
    },
    "home": {
        "de": ["Neue Meldung aus Vorlage", "Hochwasser", "CAP-Datei importieren", "Entwurf"],
        "en": ["New alert from a template", "Flood", "Import a CAP file", "Draft"],
    },
    "compose": {
        "de": ["Betriebsart", "Als Entwurf speichern", "Alle Bürgerinnen und Bürger", "Push-Titel"],
        "en": ["Mode", "Save as draft", "All citizens of the municipality", "Push title"],
    },
    "draft": {
        "de": ["Bearbeiten", "Texte je Kanal", "Noch nicht veröffentlicht.", "Anhang hochladen"],
        "en": ["Edit", "Texts per channel", "Not published yet.", "Upload attachment"],
    },
    "edit": {
        "de": ["Entwurf bearbeiten", "Änderungen speichern", "Speichern und senden"],
        "en": ["Edit draft", "Save changes", "Save and send"],
    },
    "published": {
        "de": ["Zustellung", "Korrigieren (Aktualisierung)", "Erreicht:", "ÜBUNG – keine echte"],
        "en": ["Delivery", "Correct (update)", "Reached:", "EXERCISE – not a real warning"],
    },
    "progress": {
        "de": ["Zustellungen je Kanal", "Erste Zustellung nach"],
        "en": ["Deliveries per channel", "First delivery after"],
    },
    "report": {
        "de": ["Zustellbericht", "Fehlgeschlagene Zustellungen nach Grund", "Als CSV"],
        "en": ["Delivery report", "Failed deliveries by reason", "Download as CSV"],
    },
    "audit": {
        "de": ["Wer hat was wann getan", "angemeldet", "Entwurf bearbeitet"],
        "en": ["Who did what and when", "signed in", "draft edited"],
    },
    "totp": {
        "de": ["Zweiter Faktor (TOTP)", "Code aus der App"],
        "en": ["Second factor (TOTP)", "Code from the app"],
    },
    "sms": {
        "de": ["1 SMS-Teil", "Zeichen"],
        "en": ["1 SMS segment", "characters"],
    },
    "estimate": {
        "de": ["Wählen Sie Themen"],
        "en": ["Choose topics"],
    },
}
GERMAN_UI = ["Abmelden", "Zweiter Faktor", "Neue Meldung", "Empfänger", "Zustellung"]
"""German texts of the page frame and forms that no English page may show."""


@pytest.mark.integration
async def test_every_page_in_german_and_english(sirene_infra: InfraUrls) -> None:
    tenant, token = f"t-{uuid.uuid4().hex[:10]}", f"token-{uuid.uuid4().hex}"
    settings = PublisherSettings(
        **sirene_infra.settings_kwargs(),  # type: ignore[arg-type]
        api_tokens={tenant: SecretStr(token)},
        fanout_url="http://127.0.0.1:9",  # no fanout: the estimate says it is unavailable
    )
    admin = {"Authorization": f"Bearer {token}"}
    async with running(settings) as (_, client):
        created = await client.post(
            "/api/v1/staff",
            json={
                "username": "anna",
                "display_name": "Anna",
                "password": PASSWORD,
                "roles": ["alerter", "approver"],
            },
            headers=admin,
        )
        assert created.status_code == 201
        texts = {
            "headline": "Sturm über Musterstadt",
            "push_title": "Sturm",
            "push_body": "Sturmböen bis 100 km/h.",
            "sms": "Sturmböen bis 100 km/h.",
            "voice": "Sturmböen.",
        }
        body = {
            "status": "Exercise",
            "severity": "Moderate",
            "urgency": "Expected",
            "texts": {"de": texts},
            "audience": {"topics": ["gefahrenhinweise"]},
        }
        draft = (await client.post("/api/v1/alerts", json=body, headers=admin)).json()
        sent = await client.post("/api/v1/alerts", json=body | {"publish": True}, headers=admin)
        published = sent.json()
        assert published["state"] == "published", published

        pages: dict[str, dict[str, str]] = {page: {} for page in EXPECTED}
        for lang in ("de", "en"):
            client.cookies.clear()
            client.headers["accept-language"] = "de-DE" if lang == "de" else "en-US,en;q=0.9"
            pages["login"][lang] = (await client.get("/console/login")).text
            signed_in = await client.post(
                "/console/login",
                data={"tenant": tenant, "username": "anna", "password": PASSWORD},
            )
            assert signed_in.status_code == 303
            home = await client.get("/console/")
            pages["home"][lang] = home.text
            csrf = _csrf(home.text)
            pages["compose"][lang] = (await client.get("/console/alerts/new")).text
            pages["draft"][lang] = (await client.get(f"/console/alerts/{draft['id']}")).text
            edit = await client.get(f"/console/alerts/{draft['id']}/edit")
            pages["edit"][lang] = edit.text
            saved = await client.post(
                f"/console/alerts/{draft['id']}/edit",
                data={
                    "csrf": csrf,
                    "version": re.search(r'name="version" value="(\d+)"', edit.text).group(1),  # type: ignore[union-attr]
                    "status": "Exercise",
                    "severity": "Minor",
                    "urgency": "Expected",
                    "certainty": "Likely",
                    "category": "Met",
                    **{f"de_{k}": v for k, v in texts.items()},
                    "topics": "gefahrenhinweise",
                    "action": "draft",
                },
            )
            assert saved.status_code == 303, saved.text
            pages["published"][lang] = (await client.get(f"/console/alerts/{published['id']}")).text
            pages["progress"][lang] = (
                await client.get(f"/console/alerts/{published['id']}/progress")
            ).text
            pages["report"][lang] = (
                await client.get(f"/console/alerts/{published['id']}/report")
            ).text
            pages["audit"][lang] = (await client.get("/console/audit")).text
            pages["totp"][lang] = (await client.get("/console/totp")).text
            pages["sms"][lang] = (
                await client.post(
                    "/console/sms-length",
                    data={"lang": "de", "de_sms": "Kurz.", "status": "Actual"},
                    headers={"x-csrf-token": csrf},
                )
            ).text
            pages["estimate"][lang] = (
                await client.post("/console/estimate", headers={"x-csrf-token": csrf})
            ).text

        for page, per_lang in EXPECTED.items():
            for lang, expected in per_lang.items():
                html = pages[page][lang]
                for text in expected:
                    assert text in html, f"{page} ({lang}) lacks {text!r}"
                if page not in {"sms", "progress", "estimate"}:  # fragments have no <html>
                    assert f'<html lang="{lang}">' in html, page
            for german in GERMAN_UI:
                if page not in {"sms", "estimate"}:
                    assert german not in pages[page]["en"], f"{page} (en) shows {german!r}"
        # alert texts are content: the exercise marker stays German on the English page
        assert "ÜBUNG: Sturm über Musterstadt" in pages["published"]["en"]
        # times and numbers follow the language
        assert re.search(r"\d{2}\.\d{2}\.\d{4}, \d{2}:\d{2}", pages["published"]["de"])
        assert re.search(r"\d{1,2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2}", pages["published"]["en"])
        # the estimate fragment when the fanout cannot be asked
        assert (
            "Empfängerschätzung gerade nicht verfügbar"
            in (
                await client.post(
                    "/console/estimate",
                    data={"topics": "gefahrenhinweise"},
                    headers={"accept-language": "de", "x-csrf-token": csrf},
                )
            ).text
        )


@pytest.mark.integration
async def test_the_language_switch_sticks_and_errors_follow_it(sirene_infra: InfraUrls) -> None:
    tenant, token = f"t-{uuid.uuid4().hex[:10]}", f"token-{uuid.uuid4().hex}"
    settings = PublisherSettings(
        **sirene_infra.settings_kwargs(),  # type: ignore[arg-type]
        api_tokens={tenant: SecretStr(token)},
    )
    async with running(settings) as (_, client):
        client.headers["accept-language"] = "de-DE,de;q=0.9"
        german = await client.get("/console/login")
        assert '<html lang="de">' in german.text
        switch = re.search(r'id="language-switch" href="([^"]+)"', german.text)
        assert switch
        assert switch.group(1).replace("&amp;", "&") == (
            "/console/language?lang=en&next=%2Fconsole%2Flogin"
        )

        moved = await client.get(switch.group(1).replace("&amp;", "&"))
        assert moved.status_code == 303
        assert moved.headers["location"] == "/console/login"
        assert f"{i18n.LANG_COOKIE}=en" in moved.headers["set-cookie"]
        # the browser still asks for German, the switch wins on every later page
        english = await client.get("/console/login")
        assert '<html lang="en">' in english.text
        assert english.headers["content-language"] == "en"
        assert "Sign in" in english.text
        failed = await client.post(
            "/console/login", data={"tenant": tenant, "username": "nobody", "password": "x" * 12}
        )
        assert failed.status_code == 401
        assert "Sign-in failed" in failed.text
        assert '<html lang="en">' in failed.text

        # ?lang= in a link works too, and is remembered
        back = await client.get("/console/login?lang=de")
        assert '<html lang="de">' in back.text
        assert f"{i18n.LANG_COOKIE}=de" in back.headers["set-cookie"]
        assert '<html lang="de">' in (await client.get("/console/login")).text

        # the switch only ever returns into the console
        for target in ("//evil.example/console/", "https://evil.example/", "/console\\..\\x"):
            away = await client.get("/console/language", params={"lang": "en", "next": target})
            assert away.headers["location"] == "/console/"
        unknown = await client.get("/console/language", params={"lang": "fr", "next": "/console/"})
        assert f"{i18n.LANG_COOKIE}=de" in unknown.headers["set-cookie"]
