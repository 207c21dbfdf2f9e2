"""Languages of the portal and the staff inbox: German by default, English available.

Every text of the pages and their scripts lives in one catalogue per language
(`locales/de.json`, `locales/en.json`, the same keys in both — a test checks it). Texts of the
scripts start with `js.` and reach the browser as a JSON block of the page. Refusal reasons of
the API stay in `service.MESSAGES` (the runtime's error catalogue, which the pages use too).
Category names, their questions and the town's name are tenant data and shown as configured
(a category's English name when the tenant gave one)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

LANGUAGES = ("de", "en")
DEFAULT = "de"
LANG_COOKIE = "sirene_lang"
"""The same cookie as the subscriptions portal's: one choice per browser."""

LOCALES = Path(__file__).parent / "locales"


def _load(lang: str) -> dict[str, str]:
    texts: dict[str, str] = json.loads((LOCALES / f"{lang}.json").read_text(encoding="utf-8"))
    return texts


CATALOGUES: dict[str, dict[str, str]] = {lang: _load(lang) for lang in LANGUAGES}


def lang_of(request: Request) -> str:
    """'en' or 'de': `?lang=`, else the language cookie, else the browser's first preference
    (Accept-Language), else German."""
    for asked in (request.query_params.get("lang"), request.cookies.get(LANG_COOKIE)):
        if asked in LANGUAGES:
            return asked
    accept = request.headers.get("accept-language", "").strip().lower()
    return "en" if accept.startswith("en") else DEFAULT


def remember(request: Request, response: Response) -> None:
    """Keeps a language chosen with `?lang=` in a cookie (a year)."""
    asked = request.query_params.get("lang")
    if asked in LANGUAGES:
        response.set_cookie(LANG_COOKIE, asked, max_age=365 * 86400, samesite="lax", path="/")


class Translator:
    """The texts of one language: `t("key", name=value)`; an unknown key is an error (never a
    silently German or empty text)."""

    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in LANGUAGES else DEFAULT
        self.texts = CATALOGUES[self.lang]

    def __call__(self, key: str, **params: Any) -> str:
        text = self.texts[key]
        return text.format(**params) if params else text

    def script_texts(self) -> dict[str, str]:
        """The texts the page scripts need (keys without their `js.` prefix)."""
        return {k.removeprefix("js."): v for k, v in self.texts.items() if k.startswith("js.")}


def switch_url(request: Request, path: str | None = None) -> str:
    """The current page (or `path`) in the other language, other query parameters kept."""
    other = "en" if lang_of(request) == "de" else "de"
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    return f"{path or request.url.path}?{urlencode([*query, ('lang', other)])}"
