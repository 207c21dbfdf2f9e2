"""Domain errors with user-facing reasons in German and English.

Service functions raise these; the API turns them into 4xx answers in the caller's language
(`Accept-Language`, German by default)."""

from __future__ import annotations

from typing import Any

MESSAGES: dict[str, tuple[str, str]] = {
    "german_required": (
        "Die Texte auf Deutsch ('de') sind Pflicht.",
        "German texts ('de') are required.",
    ),
    "msg_type_unsupported": (
        "Nur neue Meldungen (msg_type 'Alert') werden bisher unterstützt.",
        "Only new alerts (msg_type 'Alert') are supported so far.",
    ),
    "expires_and_duration": (
        "Bitte entweder 'expires' oder 'duration_minutes' angeben, nicht beides.",
        "Give either 'expires' or 'duration_minutes', not both.",
    ),
    "expires_not_after_effective": (
        "Das Ablaufdatum muss nach dem Beginn liegen.",
        "Expiry must be after the effective time.",
    ),
    "expired": (
        "Die Meldung ist bereits abgelaufen.",
        "The alert has already expired.",
    ),
    "text_too_long": (
        "Der Text ist mit der Kennzeichnung '{marker}' zu lang (höchstens {limit} Zeichen).",
        "With the marker '{marker}' the text is too long (at most {limit} characters).",
    ),
    "alert_not_found": (
        "Meldung nicht gefunden.",
        "Alert not found.",
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
    """The alert is in a state that does not allow the request (409)."""

    status_code = 409
