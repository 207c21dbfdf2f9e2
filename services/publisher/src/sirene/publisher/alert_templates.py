"""Prefilled templates for the warnings a municipality sends most (editable before sending).

`{ort}` is replaced by the tenant's display name when a template is used."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sirene.schemas import Certainty, Severity, Urgency


@dataclass(frozen=True, slots=True)
class AlertTemplate:
    """A warning template: CAP defaults and the texts of every channel in German and English."""

    id: str
    name: str
    category: str
    severity: Severity
    urgency: Urgency
    certainty: Certainty
    duration_minutes: int
    texts: dict[str, dict[str, str]]

    def body(self, place: str) -> dict[str, Any]:
        """An `AlertIn`-shaped draft body with the texts filled in for `place`."""
        return {
            "severity": self.severity.value,
            "urgency": self.urgency.value,
            "certainty": self.certainty.value,
            "category": self.category,
            "duration_minutes": self.duration_minutes,
            "texts": {
                lang: {k: v.replace("{ort}", place) for k, v in texts.items()}
                for lang, texts in self.texts.items()
            },
        }


def _texts(
    headline: str, title: str, body: str, sms: str, voice: str, subject: str | None = None
) -> dict[str, str]:
    return {
        "headline": headline,
        "push_title": title,
        "push_body": body,
        "sms": sms,
        "voice": voice,
        "email_subject": subject or headline,
        "email_body": body,
    }


TEMPLATES: dict[str, AlertTemplate] = {
    t.id: t
    for t in [
        AlertTemplate(
            "unwetter",
            "Unwetter",
            "Met",
            Severity.SEVERE,
            Urgency.IMMEDIATE,
            Certainty.LIKELY,
            360,
            {
                "de": _texts(
                    "Unwetterwarnung für {ort}",
                    "Unwetterwarnung",
                    "Schwere Gewitter mit Sturmböen und Starkregen. Bleiben Sie in Gebäuden, "
                    "meiden Sie Bäume und sichern Sie lose Gegenstände.",
                    "Unwetterwarnung {ort}: Schwere Gewitter, Sturm, Starkregen. Bleiben Sie in "
                    "Gebäuden, meiden Sie Bäume.",
                    "Achtung, Unwetterwarnung für {ort}. Schwere Gewitter mit Sturm und "
                    "Starkregen. Bleiben Sie in Gebäuden.",
                ),
                "en": _texts(
                    "Severe weather warning for {ort}",
                    "Severe weather warning",
                    "Severe thunderstorms with gusts and heavy rain. Stay indoors, keep away "
                    "from trees and secure loose objects.",
                    "Severe weather {ort}: thunderstorms, gusts, heavy rain. Stay indoors, keep "
                    "away from trees.",
                    "Attention, severe weather warning for {ort}. Thunderstorms with gusts and "
                    "heavy rain. Stay indoors.",
                ),
            },
        ),
        AlertTemplate(
            "hochwasser",
            "Hochwasser",
            "Met",
            Severity.SEVERE,
            Urgency.IMMEDIATE,
            Certainty.OBSERVED,
            720,
            {
                "de": _texts(
                    "Hochwasserwarnung für {ort}",
                    "Hochwasserwarnung",
                    "Der Pegel steigt stark. Meiden Sie Ufer und Keller, bringen Sie Fahrzeuge "
                    "aus überflutungsgefährdeten Bereichen.",
                    "Hochwasser {ort}: Pegel steigt stark. Ufer und Keller meiden, Fahrzeuge "
                    "umparken.",
                    "Achtung, Hochwasserwarnung für {ort}. Der Pegel steigt stark. Meiden Sie "
                    "Ufer und Keller.",
                ),
                "en": _texts(
                    "Flood warning for {ort}",
                    "Flood warning",
                    "The river is rising fast. Keep away from the banks and cellars, move "
                    "vehicles out of areas at risk.",
                    "Flood {ort}: river rising fast. Avoid banks and cellars, move vehicles.",
                    "Attention, flood warning for {ort}. The river is rising fast. Keep away "
                    "from the banks and cellars.",
                ),
            },
        ),
        AlertTemplate(
            "trinkwasser",
            "Trinkwasser",
            "Health",
            Severity.SEVERE,
            Urgency.IMMEDIATE,
            Certainty.OBSERVED,
            2880,
            {
                "de": _texts(
                    "Abkochgebot für Trinkwasser in {ort}",
                    "Trinkwasser abkochen",
                    "Im Trinkwasser wurden Keime nachgewiesen. Kochen Sie Leitungswasser vor "
                    "dem Trinken und Zähneputzen sprudelnd ab.",
                    "Abkochgebot {ort}: Leitungswasser vor Trinken und Zähneputzen sprudelnd "
                    "abkochen.",
                    "Achtung, Abkochgebot für Trinkwasser in {ort}. Kochen Sie Leitungswasser "
                    "vor dem Trinken ab.",
                ),
                "en": _texts(
                    "Boil water notice for {ort}",
                    "Boil tap water",
                    "Germs were found in the drinking water. Boil tap water before drinking "
                    "or brushing teeth.",
                    "Boil water notice {ort}: boil tap water before drinking or brushing teeth.",
                    "Attention, boil water notice for {ort}. Boil tap water before drinking.",
                ),
            },
        ),
        AlertTemplate(
            "stromausfall",
            "Stromausfall",
            "Infra",
            Severity.MODERATE,
            Urgency.IMMEDIATE,
            Certainty.OBSERVED,
            480,
            {
                "de": _texts(
                    "Stromausfall in {ort}",
                    "Stromausfall",
                    "In Teilen von {ort} ist der Strom ausgefallen. Schalten Sie empfindliche "
                    "Geräte aus. Notruf 112 funktioniert über Mobilfunk.",
                    "Stromausfall {ort}: Empfindliche Geräte ausschalten. Notruf 112 über "
                    "Mobilfunk.",
                    "Achtung, Stromausfall in {ort}. Schalten Sie empfindliche Geräte aus.",
                ),
                "en": _texts(
                    "Power cut in {ort}",
                    "Power cut",
                    "Parts of {ort} have no electricity. Switch off sensitive devices. "
                    "Emergency number 112 works over mobile networks.",
                    "Power cut {ort}: switch off sensitive devices. 112 works over mobile.",
                    "Attention, power cut in {ort}. Switch off sensitive devices.",
                ),
            },
        ),
        AlertTemplate(
            "vermisst",
            "Vermisste Person",
            "Rescue",
            Severity.MODERATE,
            Urgency.IMMEDIATE,
            Certainty.OBSERVED,
            720,
            {
                "de": _texts(
                    "Vermisste Person in {ort}",
                    "Vermisste Person",
                    "Die Polizei sucht eine vermisste Person (Beschreibung ergänzen). "
                    "Hinweise bitte an die Polizei unter 110.",
                    "Vermisst in {ort}: (Beschreibung). Hinweise an die Polizei: 110.",
                    "Die Polizei sucht in {ort} eine vermisste Person. Hinweise bitte an die "
                    "Polizei unter eins eins null.",
                ),
                "en": _texts(
                    "Missing person in {ort}",
                    "Missing person",
                    "The police are looking for a missing person (add description). Please "
                    "call the police on 110 with any information.",
                    "Missing in {ort}: (description). Information to the police: 110.",
                    "The police are looking for a missing person in {ort}. Please call one "
                    "one zero with any information.",
                ),
            },
        ),
        AlertTemplate(
            "entwarnung",
            "Entwarnung",
            "Safety",
            Severity.MINOR,
            Urgency.IMMEDIATE,
            Certainty.OBSERVED,
            120,
            {
                "de": _texts(
                    "Entwarnung für {ort}",
                    "Entwarnung",
                    "Die Gefahr ist vorüber. Es sind keine weiteren Maßnahmen nötig.",
                    "Entwarnung {ort}: Die Gefahr ist vorüber.",
                    "Entwarnung für {ort}. Die Gefahr ist vorüber.",
                ),
                "en": _texts(
                    "All clear for {ort}",
                    "All clear",
                    "The danger is over. No further action is needed.",
                    "All clear {ort}: the danger is over.",
                    "All clear for {ort}. The danger is over.",
                ),
            },
        ),
    ]
}
"""Every template by id."""


def cancel_texts(original: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """Prefilled texts of a Cancel for an alert with `original` texts (per language)."""
    out: dict[str, dict[str, str]] = {}
    for lang, texts in original.items():
        headline = texts["headline"]
        for marker in ("ÜBUNG: ", "EXERCISE: ", "TEST: "):
            headline = headline.removeprefix(marker)
        if lang == "de":
            out[lang] = _texts(
                f"Aufgehoben: {headline}"[:160],
                "Entwarnung",
                f"Die Meldung „{headline}“ ist aufgehoben. Die Gefahr besteht nicht mehr.",
                f"Entwarnung: „{headline}“ ist aufgehoben.",
                f"Entwarnung. Die Meldung {headline} ist aufgehoben.",
            )
        else:
            out[lang] = _texts(
                f"Cancelled: {headline}"[:160],
                "All clear",
                f"The alert “{headline}” has been cancelled. The danger is over.",
                f"All clear: “{headline}” is cancelled.",
                f"All clear. The alert {headline} has been cancelled.",
            )
    return out
