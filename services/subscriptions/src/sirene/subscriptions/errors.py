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
        "tenant_unknown": (
            "Diese Gemeinde ist hier nicht bekannt.",
            "This municipality is not known here.",
        ),
        "code_wrong": (
            "Der Code stimmt nicht. Bitte erneut versuchen.",
            "The code is not correct. Please try again.",
        ),
        "code_exhausted": (
            "Zu viele falsche Eingaben. Bitte fordern Sie einen neuen Code an.",
            "Too many wrong attempts. Please request a new code.",
        ),
        "code_expired": (
            "Der Code ist abgelaufen oder wurde schon verwendet. Bitte fordern Sie einen neuen an.",
            "The code has expired or was already used. Please request a new one.",
        ),
        "send_failed": (
            "Die Nachricht konnte nicht zugestellt werden. Bitte später erneut versuchen.",
            "The message could not be sent. Please try again later.",
        ),
        "phone_registered": (
            "Diese Nummer ist bereits angemeldet.",
            "This number is already registered.",
        ),
        "link_invalid": (
            "Dieser Link ist ungültig.",
            "This link is not valid.",
        ),
        "email_link_gone": (
            "Dieser Bestätigungslink ist abgelaufen, wurde schon verwendet oder durch einen "
            "neueren ersetzt. Es wurde nichts geändert. Bitte fordern Sie in Ihrem Konto einen "
            "neuen Link an.",
            "This confirmation link has expired, was already used or was replaced by a newer "
            "one. Nothing was changed. Please request a new link in your account.",
        ),
        "session_required": (
            "Bitte melden Sie sich an.",
            "Please sign in.",
        ),
        "rate_limited_ip": (
            "Zu viele Anfragen von Ihrem Anschluss. Bitte in {retry_after} Sekunden erneut "
            "versuchen.",
            "Too many requests from your network. Please try again in {retry_after} seconds.",
        ),
        "rate_limited_number": (
            "Für diese Telefonnummer wurden zu viele Codes angefordert. Bitte in {retry_after} "
            "Sekunden erneut versuchen.",
            "Too many codes were requested for this number. Please try again in {retry_after} "
            "seconds.",
        ),
        "rate_limited_prefix": (
            "Zu viele Anfragen für Nummern dieses Bereichs. Bitte in {retry_after} Sekunden "
            "erneut versuchen.",
            "Too many requests for numbers of this range. Please try again in {retry_after} "
            "seconds.",
        ),
        "rate_limited_email": (
            "An diese E-Mail-Adresse wurden zu viele Bestätigungslinks gesendet. Bitte in "
            "{retry_after} Sekunden erneut versuchen.",
            "Too many confirmation links were sent to this e-mail address. Please try again in "
            "{retry_after} seconds.",
        ),
        "rate_limited_tenant": (
            "Derzeit gibt es zu viele Anmeldungen. Bitte in {retry_after} Sekunden erneut "
            "versuchen.",
            "There are too many registrations right now. Please try again in {retry_after} "
            "seconds.",
        ),
        "rate_limited_verify_ip": (
            "Zu viele Code-Eingaben. Bitte in {retry_after} Sekunden erneut versuchen.",
            "Too many code entries. Please try again in {retry_after} seconds.",
        ),
        "conflict": (
            "Der Datensatz wurde gleichzeitig geändert; bitte erneut versuchen.",
            "The record was changed concurrently; please try again.",
        ),
    }
)
