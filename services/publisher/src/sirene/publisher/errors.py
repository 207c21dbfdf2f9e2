"""Reason texts of the publisher's message codes, German and English. Its service functions raise
the errors of `sirene.runtime.errors` with these codes; the API answers with the text in the
caller's language."""

from __future__ import annotations

from sirene.runtime.errors import Catalogue, DomainError


class ForbiddenError(DomainError):
    """The caller is known but may not do this (403): missing role, own alert, second factor."""

    status_code = 403


MESSAGES = Catalogue(
    {
        "german_required": (
            "Die Texte auf Deutsch ('de') sind Pflicht.",
            "German texts ('de') are required.",
        ),
        "msg_type_via_reference": (
            "Aktualisierungen und Aufhebungen entstehen aus der ursprünglichen Meldung "
            "(…/update, …/cancel), nicht als neue Meldung.",
            "Updates and cancellations are made from the original alert (…/update, …/cancel), "
            "not as a new alert.",
        ),
        "expires_and_duration": (
            "Bitte entweder 'expires' oder 'duration_minutes' angeben, nicht beides.",
            "Give either 'expires' or 'duration_minutes', not both.",
        ),
        "expires_not_after_effective": (
            "Das Ablaufdatum muss nach dem Beginn liegen.",
            "Expiry must be after the effective time.",
        ),
        "schedule_too_far": (
            "Eine Veröffentlichung kann höchstens 90 Tage im Voraus geplant werden.",
            "Publication can be scheduled at most 90 days ahead.",
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
        "audience_required": (
            "Bitte die Empfänger angeben (Themen oder alle).",
            "Please give the audience (topics or everyone).",
        ),
        "role_required": (
            "Dafür fehlt Ihnen die Rolle '{role}'.",
            "You need the role '{role}' for this.",
        ),
        "editor_alert_only": (
            "Redakteure dürfen nur Beiträge ohne Dringlichkeit senden (nicht 'Extreme'/'Severe', "
            "nicht 'Immediate'); Warnungen brauchen die Rolle 'alerter'.",
            "Editors may only send non-urgent posts (not 'Extreme'/'Severe', not 'Immediate'); "
            "warnings need the role 'alerter'.",
        ),
        "self_approval": (
            "Vier-Augen-Prinzip: Sie können Ihre eigene Meldung nicht freigeben.",
            "Four-eyes rule: you cannot approve your own alert.",
        ),
        "not_awaiting_approval": (
            "Die Meldung wartet nicht auf Freigabe (Zustand: {state}).",
            "The alert is not awaiting approval (state: {state}).",
        ),
        "not_published": (
            "Nur veröffentlichte Meldungen können aktualisiert werden (Zustand: {state}).",
            "Only published alerts can be updated (state: {state}).",
        ),
        "not_draft": (
            "Nur Entwürfe können bearbeitet werden; diese Meldung ist schon weiter "
            "(Zustand: {state}). Für eine veröffentlichte Meldung gibt es die Aktualisierung.",
            "Only drafts can be edited; this alert has moved on (state: {state}). A published "
            "alert is corrected with an update.",
        ),
        "edit_conflict": (
            "Der Entwurf wurde inzwischen geändert. Bitte laden Sie ihn neu und bearbeiten Sie "
            "ihn dann.",
            "The draft has been changed in the meantime. Please reload it and edit it again.",
        ),
        "status_fixed": (
            "Die Betriebsart ({status}) eines Entwurfs bleibt; aus einer Übung wird nie eine "
            "echte Warnung. Legen Sie dafür eine neue Meldung an.",
            "A draft keeps its mode ({status}); an exercise never becomes a real alert. "
            "Create a new alert instead.",
        ),
        "msg_type_fixed": (
            "Die Art der Meldung ({msg_type}) eines Entwurfs bleibt.",
            "A draft keeps its message type ({msg_type}).",
        ),
        "reference_audience_fixed": (
            "Eine Aktualisierung geht an die Empfänger der ursprünglichen Meldung; Empfänger und "
            "Kategorie bleiben.",
            "An update goes to the recipients of the original alert; audience and category stay.",
        ),
        "already_cancelled": (
            "Die Meldung ist bereits aufgehoben.",
            "The alert has already been cancelled.",
        ),
        "not_cancellable": (
            "Eine Aufhebung kann nicht selbst aufgehoben werden.",
            "A cancellation cannot itself be cancelled.",
        ),
        "totp_required": (
            "Ihr Mandant verlangt für Warnungen und Freigaben einen zweiten Faktor (TOTP). "
            "Bitte melden Sie sich mit Einmalcode an bzw. richten Sie ihn ein.",
            "Your tenant requires a second factor (TOTP) for alerts and approvals. Sign in with a "
            "one-time code or set one up.",
        ),
        "login_failed": (
            "Anmeldung fehlgeschlagen: Benutzername, Passwort oder Einmalcode falsch.",
            "Sign-in failed: wrong user name, password or one-time code.",
        ),
        "login_blocked": (
            "Zu viele Fehlversuche für dieses Konto. Bitte versuchen Sie es später erneut.",
            "Too many failed attempts for this account. Please try again later.",
        ),
        "rejected_needs_reason": (
            "Bitte geben Sie einen Grund für die Ablehnung an.",
            "Please give a reason for the rejection.",
        ),
        "attachment_empty": ("Die Datei ist leer.", "The file is empty."),
        "attachment_too_large": (
            "Die Datei ist zu groß (höchstens {limit} MiB, Bilder höchstens 40 Megapixel).",
            "The file is too large (at most {limit} MiB, images at most 40 megapixels).",
        ),
        "attachment_type": (
            "Erlaubt sind Bilder (JPEG, PNG) und PDF-Dateien.",
            "Allowed are images (JPEG, PNG) and PDF files.",
        ),
        "attachment_unreadable": (
            "Das Bild lässt sich nicht lesen.",
            "The image cannot be read.",
        ),
        "attachment_not_draft": (
            "Anhänge können nur Entwürfen hinzugefügt werden, höchstens {count} je Meldung.",
            "Attachments can only be added to drafts, at most {count} per alert.",
        ),
        "attachment_not_found": ("Anhang nicht gefunden.", "Attachment not found."),
        "username_taken": (
            "Den Benutzernamen gibt es in diesem Mandanten schon.",
            "This user name already exists in this tenant.",
        ),
        "staff_not_found": (
            "Mitarbeiterkonto nicht gefunden.",
            "Staff account not found.",
        ),
        "totp_invalid": (
            "Der Einmalcode stimmt nicht.",
            "The one-time code is wrong.",
        ),
        "totp_not_started": (
            "Bitte zuerst die Einrichtung des zweiten Faktors beginnen.",
            "Start the second-factor setup first.",
        ),
        "template_not_found": (
            "Vorlage nicht gefunden.",
            "Template not found.",
        ),
        "cap_invalid": (
            "Die CAP-Datei ist ungültig: {reason}",
            "The CAP file is invalid: {reason}",
        ),
        "cap_unsupported": (
            "Die CAP-Datei kann nicht übernommen werden: {reason}",
            "The CAP file cannot be imported: {reason}",
        ),
        "csrf": (
            "Die Sitzung ist abgelaufen oder das Formular ist veraltet. Bitte Seite neu laden.",
            "The session expired or the form is stale. Please reload the page.",
        ),
    }
)
