"""Domain errors with user-facing reasons in German and English.

Service functions raise these; the API turns them into 4xx answers in the caller's language
(`Accept-Language`, German by default)."""

from __future__ import annotations

from typing import Any

MESSAGES: dict[str, tuple[str, str]] = {
    "phone_invalid": (
        "Keine gültige Telefonnummer.",
        "Not a valid phone number.",
    ),
    "phone_country": (
        "Telefonnummern aus {country} werden nicht angenommen (erlaubt: {allowed}).",
        "Phone numbers from {country} are not accepted (allowed: {allowed}).",
    ),
    "phone_premium": (
        "Mehrwert- und Sonderrufnummern werden nicht angenommen.",
        "Premium-rate and shared-cost numbers are not accepted.",
    ),
    "phone_not_mobile": (
        "SMS können nur an Mobilfunknummern gesendet werden.",
        "SMS can only be sent to mobile numbers.",
    ),
    "phone_not_callable": (
        "Diese Nummer kann nicht für Sprachanrufe verwendet werden.",
        "This number cannot be used for voice calls.",
    ),
    "email_invalid": (
        "Keine gültige E-Mail-Adresse.",
        "Not a valid e-mail address.",
    ),
    "topic_unknown": (
        "Das Thema '{topic}' gibt es nicht.",
        "There is no topic '{topic}'.",
    ),
    "channel_without_contact": (
        "Für den Kanal '{channel}' fehlt die Kontaktangabe.",
        "Channel '{channel}' needs a contact point.",
    ),
    "topic_exists": (
        "Das Thema '{topic}' gibt es schon.",
        "Topic '{topic}' already exists.",
    ),
    "citizen_not_found": (
        "Bürger/in nicht gefunden.",
        "Citizen not found.",
    ),
    "citizen_exists": (
        "Diese Bürger-ID gibt es schon.",
        "A citizen with this id already exists.",
    ),
    "conflict": (
        "Der Datensatz wurde gleichzeitig geändert; bitte erneut versuchen.",
        "The record was changed concurrently; please try again.",
    ),
    "unauthorized": (
        "Anmeldung erforderlich (Authorization: Bearer <Token>).",
        "Authentication required (Authorization: Bearer <token>).",
    ),
}


def message(code: str, language: str, **params: Any) -> str:
    """The text of `code` in `language` ('de' or 'en'), with `params` filled in."""
    german, english = MESSAGES[code]
    return (english if language == "en" else german).format(**params)


class DomainError(Exception):
    """A request the service refuses, with a message code and its parameters."""

    status_code = 400

    def __init__(self, code: str, **params: Any) -> None:
        super().__init__(code)
        self.code = code
        self.params = params


class InvalidInputError(DomainError):
    """Input that passed the schema but not the rules (422, with the field location)."""

    status_code = 422

    def __init__(self, loc: tuple[str | int, ...], code: str, **params: Any) -> None:
        super().__init__(code, **params)
        self.loc = loc


class NotFoundError(DomainError):
    """Nothing with that id in the caller's tenant (404)."""

    status_code = 404


class ConflictError(DomainError):
    """Duplicate or concurrent change (409)."""

    status_code = 409
