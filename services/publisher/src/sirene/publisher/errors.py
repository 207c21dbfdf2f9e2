"""Reason texts of the publisher's message codes, German and English. Its service functions raise
the errors of `sirene.runtime.errors` with these codes; the API answers with the text in the
caller's language."""

from __future__ import annotations

from sirene.runtime.errors import Catalogue

MESSAGES = Catalogue(
    {
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
        "scheduling_unsupported": (
            "Zeitgesteuerte Veröffentlichung gibt es noch nicht: 'effective' darf nicht in der "
            "Zukunft liegen.",
            "Scheduled publication is not available yet: 'effective' must not lie in the future.",
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
    }
)
