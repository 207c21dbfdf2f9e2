"""The language catalogues without servers: both languages have the same keys with the same
placeholders, every key the templates and scripts use exists, and the language is chosen by
`?lang=`, then the cookie, then Accept-Language, else German."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest
from starlette.requests import Request

from sirene.issues.i18n import CATALOGUES, LANG_COOKIE, LANGUAGES, Translator, lang_of, switch_url
from sirene.issues.models import Role
from sirene.issues.portal import FORM_FIELDS

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "sirene" / "issues"


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_key_exists_in_every_language_with_the_same_placeholders() -> None:
    german = CATALOGUES["de"]
    for lang in LANGUAGES:
        missing = sorted(german.keys() - CATALOGUES[lang].keys())
        extra = sorted(CATALOGUES[lang].keys() - german.keys())
        assert missing == [], f"{lang} lacks {missing}"
        assert extra == [], f"{lang} has keys German lacks: {extra}"
        for key, text in CATALOGUES[lang].items():
            assert text.strip(), (lang, key)
            assert _placeholders(text) == _placeholders(german[key]), (lang, key)
    # the catalogues are translations, not copies
    same = [
        k
        for k in german
        if german[k] == CATALOGUES["en"][k] and len(re.sub(r"\{\w+\}|\W", "", german[k])) > 12
    ]
    assert same == []


def _used_keys() -> set[str]:
    used: set[str] = set()
    for template in (PACKAGE / "templates").glob("*.html"):
        found = re.findall(r"""\bt\(\s*["']([\w.]+)["']\s*[,)]""", template.read_text())
        used |= set(found)
    for script in (PACKAGE / "static").glob("*.js"):
        used |= {f"js.{k}" for k in re.findall(r"""\bt\(\s*"(\w+)\"""", script.read_text())}
    for module in PACKAGE.glob("*.py"):
        if module.name == "i18n.py":  # its docstring's example key
            continue
        code = module.read_text()
        used |= set(re.findall(r"""\bt\(\s*"([\w.]+)\"""", code))
        used |= set(re.findall(r'"((?:field|reason)\.\w+)"', code))
    used |= {f"field.{name}" for name in FORM_FIELDS}  # named dynamically by the form's errors
    used |= {f"role.{role.value}" for role in Role}
    return used


def test_every_key_the_pages_and_scripts_use_is_in_the_catalogues() -> None:
    used = _used_keys()
    assert {"form_title", "js.support", "signin", "field.description", "reason.missing"} <= used
    for lang in LANGUAGES:
        missing = sorted(used - CATALOGUES[lang].keys())
        assert missing == [], f"{lang} lacks {missing}"


def test_an_unknown_key_is_an_error_not_a_silent_fallback() -> None:
    with pytest.raises(KeyError):
        Translator("en")("no_such_key")
    assert Translator("fr").lang == "de"
    assert Translator("en")("photos", max=3, mb=10).startswith("Photos (optional, at most 3")


def _request(query: str = "", cookie: str | None = None, accept: str | None = None) -> Request:
    headers = []
    if cookie:
        headers.append((b"cookie", f"{LANG_COOKIE}={cookie}".encode()))
    if accept:
        headers.append((b"accept-language", accept.encode()))
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/portal/musterstadt/meldungen/abc",
        "query_string": query.encode(),
        "headers": headers,
    }
    return Request(scope)


@pytest.mark.parametrize(
    ("query", "cookie", "accept", "expected"),
    [
        ("", None, None, "de"),
        ("", None, "en-GB,en;q=0.9", "en"),
        ("", None, "de-DE,de;q=0.9,en;q=0.8", "de"),
        ("", "en", "de-DE", "en"),  # the cookie beats the browser
        ("lang=de", "en", "en", "de"),  # the query beats both
        ("lang=fr", None, None, "de"),  # unknown: German
        ("lang=fr", "en", None, "en"),
    ],
)
def test_language_choice(query: str, cookie: str | None, accept: str | None, expected: str) -> None:
    assert lang_of(_request(query, cookie, accept)) == expected


def test_the_switch_keeps_the_other_query_parameters() -> None:
    assert switch_url(_request("neu=1")) == "/portal/musterstadt/meldungen/abc?neu=1&lang=en"
    assert (
        switch_url(_request("lang=en&neu=1")) == "/portal/musterstadt/meldungen/abc?neu=1&lang=de"
    )
    assert switch_url(_request(), "/portal/x/") == "/portal/x/?lang=en"
