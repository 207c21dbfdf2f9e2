"""The "simulated phones" page: what every simulated phone and device has received."""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from itertools import islice

from jinja2 import Environment, Template, select_autoescape

from sirene.provider_sim.state import SimState

MAX_SHOWN = 200

TEXTS: dict[str, dict[str, str]] = {
    "de": {
        "title": "Simulierte Telefone",
        "subtitle": "Sirene Provider-Simulator – nur für Entwicklung und Tests",
        "phones": "Telefone",
        "devices": "Geräte (Push)",
        "messages": "SMS",
        "calls": "Anrufe",
        "pushes": "Push-Nachrichten",
        "none": "Noch nichts empfangen.",
        "from": "von",
        "status": "Status",
        "segments": "Segmente",
        "spoken": "Gesprochen",
        "digits": "Gedrückte Tasten",
        "answered_by": "Angenommen von",
        "duration": "Dauer",
        "seconds": "s",
        "error": "Fehler",
        "unregistered": "abgemeldet (410)",
        "priority": "Priorität",
        "level": "Unterbrechungsstufe",
        "collapse": "Collapse-ID",
        "shown": "Angezeigt werden die zuletzt aktiven",
        "refresh": "Aktualisiert sich alle 3 Sekunden.",
        "other_lang": "English",
        "total": "gesamt",
    },
    "en": {
        "title": "Simulated phones",
        "subtitle": "Sirene provider simulator – development and testing only",
        "phones": "Phones",
        "devices": "Devices (push)",
        "messages": "SMS",
        "calls": "Calls",
        "pushes": "Push notifications",
        "none": "Nothing received yet.",
        "from": "from",
        "status": "Status",
        "segments": "segments",
        "spoken": "Spoken",
        "digits": "Digits pressed",
        "answered_by": "Answered by",
        "duration": "Duration",
        "seconds": "s",
        "error": "Error",
        "unregistered": "unregistered (410)",
        "priority": "Priority",
        "level": "Interruption level",
        "collapse": "Collapse id",
        "shown": "Showing the most recently active",
        "refresh": "Refreshes every 3 seconds.",
        "other_lang": "Deutsch",
        "total": "total",
    },
}


@cache
def _template() -> Template:
    source = files("sirene.provider_sim").joinpath("templates/phones.html").read_text("utf-8")
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    return env.from_string(source)


def render_phones_page(state: SimState, *, lang: str) -> str:
    """Newest activity first; at most ``MAX_SHOWN`` phones and devices."""
    lang = lang if lang in TEXTS else "de"
    phones = [state.phones[n] for n in islice(reversed(state.phones), MAX_SHOWN)]
    devices = [state.devices[t] for t in islice(reversed(state.devices), MAX_SHOWN)]
    return _template().render(
        t=TEXTS[lang],
        lang=lang,
        other_lang="de" if lang == "en" else "en",
        phones=phones,
        devices=devices,
        unregistered=state.unregistered,
        stats=state.stats(),
        max_shown=MAX_SHOWN,
    )
