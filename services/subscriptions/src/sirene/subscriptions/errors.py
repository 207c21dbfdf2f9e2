"""Reason texts of subscriptions's message codes, German and English. Its service functions raise
the errors of `sirene.runtime.errors` with these codes; the API answers with the text in the
caller's language."""

from __future__ import annotations

from sirene.runtime.errors import Catalogue

MESSAGES = Catalogue(
    {
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
    }
)
