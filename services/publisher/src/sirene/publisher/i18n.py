"""The staff console's texts: one catalogue per language (German, the default, and English),
both with the same keys — `tests/test_console_i18n.py` fails when a key is missing in one.

Which language a request gets (`lang_of`): `?lang=de|en` in the URL, else the language cookie
(set by the language switch, `/console/language`), else the browser's `Accept-Language`, else
German. Texts of alerts themselves (with their ÜBUNG/TEST markers) are content and are never
translated here; message codes of domain errors keep their texts in `errors.MESSAGES`."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request

LANGUAGES = ("de", "en")
DEFAULT_LANGUAGE = "de"
LANG_COOKIE = "sirene_lang"
LOCAL_TZ = ZoneInfo("Europe/Berlin")

DE: dict[str, str] = {
    # page frame
    "layout.product": "Sirene Redaktionskonsole",
    "layout.banner": "Sirene – Warnungen und Beiträge Ihrer Kommune",
    "layout.skip": "Zum Inhalt springen",
    "layout.nav": "Hauptnavigation",
    "layout.switch": "English",
    "layout.switch_label": "Switch the console to English",
    "nav.alerts": "Meldungen",
    "nav.new": "Neue Meldung",
    "nav.audit": "Protokoll",
    "nav.totp": "Zweiter Faktor",
    "nav.signed_in": "Angemeldet:",
    "nav.logout": "Abmelden",
    # sign-in and second factor
    "login.title": "Anmelden",
    "login.tenant": "Kommune (Mandant)",
    "login.username": "Benutzername",
    "login.password": "Passwort",
    "login.code": "Einmalcode (falls eingerichtet)",
    "login.submit": "Anmelden",
    "totp.title": "Zweiter Faktor",
    "totp.heading": "Zweiter Faktor (TOTP)",
    "totp.enabled": "Für Ihr Konto ist bereits ein zweiter Faktor eingerichtet. Eine neue "
    "Einrichtung ersetzt ihn.",
    "totp.intro": "Tragen Sie diesen Schlüssel in Ihre Authenticator-App ein und bestätigen Sie "
    "mit dem angezeigten Code.",
    "totp.key": "Schlüssel:",
    "totp.code": "Code aus der App",
    "totp.submit": "Bestätigen",
    # alert list
    "alerts.title": "Meldungen",
    "alerts.from_template": "Neue Meldung aus Vorlage",
    "alerts.blank": "Ohne Vorlage",
    "alerts.all": "Alle Meldungen",
    "alerts.caption": "Meldungen, neueste zuerst",
    "alerts.none": "Noch keine Meldungen.",
    "import.heading": "CAP-Datei importieren",
    "import.file": "CAP-1.2-XML-Datei (z. B. vom DWD oder MoWaS); wird als Entwurf übernommen",
    "import.submit": "Importieren",
    "import.too_large": "größer als 1 MiB",
    # table columns
    "col.headline": "Überschrift",
    "col.state": "Zustand",
    "col.severity": "Schwere",
    "col.created": "Angelegt",
    "col.by": "Von",
    "col.time": "Zeit",
    "col.who": "Wer",
    "col.what": "Was",
    "col.alert": "Meldung",
    "col.channel": "Kanal",
    "col.expected": "Erwartet",
    "col.queued": "Eingereiht",
    "col.sent": "Gesendet",
    "col.delivered": "Zugestellt",
    "col.confirmed": "Bestätigt",
    "col.failed": "Fehlgeschlagen",
    "col.reached": "Erreicht",
    "col.receipts": "Rückmeldungen",
    "col.rate": "Quote",
    "col.result": "Ergebnis",
    "col.error_class": "Fehlerart",
    "col.provider_code": "Anbietercode",
    "col.count": "Anzahl",
    # audit log
    "audit.title": "Protokoll",
    "audit.caption": "Wer hat was wann getan, neueste zuerst",
    # templates of common warnings (their texts are content, their names are UI)
    "template.unwetter": "Unwetter",
    "template.hochwasser": "Hochwasser",
    "template.trinkwasser": "Trinkwasser",
    "template.stromausfall": "Stromausfall",
    "template.vermisst": "Vermisste Person",
    "template.entwarnung": "Entwarnung",
    # alert states, modes, message types, channels
    "state.draft": "Entwurf",
    "state.awaiting_approval": "Wartet auf Freigabe",
    "state.scheduled": "Geplant",
    "state.published": "Veröffentlicht",
    "state.withdrawn": "Zurückgezogen",
    "state.expired": "Abgelaufen",
    "status.Actual": "Echtbetrieb",
    "status.Exercise": "ÜBUNG",
    "status.Test": "TEST",
    "mode.Actual": "Echtbetrieb",
    "mode.Exercise": "Übung",
    "mode.Test": "Test",
    "msg_type.Alert": "Meldung",
    "msg_type.Update": "Aktualisierung",
    "msg_type.Cancel": "Aufhebung",
    "badge.cancelled": "aufgehoben",
    "channel.push": "Push",
    "channel.sms": "SMS",
    "channel.voice": "Anruf",
    "channel.email": "E-Mail",
    "language.de": "Deutsch",
    "language.en": "Englisch",
    # CAP values
    "severity.Extreme": "Extrem",
    "severity.Severe": "Schwer",
    "severity.Moderate": "Mittel",
    "severity.Minor": "Gering",
    "severity.Unknown": "Unbekannt",
    "urgency.Immediate": "Sofort",
    "urgency.Expected": "Erwartet",
    "urgency.Future": "Zukünftig",
    "urgency.Past": "Vorbei",
    "urgency.Unknown": "Unbekannt",
    "certainty.Observed": "Beobachtet",
    "certainty.Likely": "Wahrscheinlich",
    "certainty.Possible": "Möglich",
    "certainty.Unlikely": "Unwahrscheinlich",
    "certainty.Unknown": "Unbekannt",
    "category.Met": "Wetter",
    "category.Geo": "Geologie",
    "category.Safety": "Sicherheit",
    "category.Security": "Polizei/Schutz",
    "category.Rescue": "Rettung",
    "category.Fire": "Brand",
    "category.Health": "Gesundheit",
    "category.Env": "Umwelt",
    "category.Transport": "Verkehr",
    "category.Infra": "Infrastruktur",
    "category.CBRNE": "CBRN-Gefahr",
    "category.Other": "Sonstiges",
    # what the audit log records
    "action.created": "angelegt",
    "action.edited": "Entwurf bearbeitet",
    "action.submitted": "zur Freigabe gesendet",
    "action.approved": "freigegeben",
    "action.published": "veröffentlicht",
    "action.scheduled": "zeitgesteuert geplant",
    "action.cancelled": "aufgehoben",
    "action.updated": "aktualisiert",
    "action.withdrawn": "zurückgezogen",
    "action.rejected": "abgelehnt (zurück in den Entwurf)",
    "action.attachment_added": "Anhang hinzugefügt",
    "action.imported": "aus CAP importiert",
    "action.expired": "abgelaufen (nicht gesendet)",
    "action.staff_created": "Konto angelegt",
    "action.token_issued": "API-Token ausgestellt",
    "action.totp_enabled": "zweiten Faktor eingerichtet",
    "action.settings_changed": "Einstellungen geändert",
    "action.login": "angemeldet",
    # channel text fields
    "field.headline": "Überschrift",
    "field.push_title": "Push-Titel",
    "field.push_body": "Push-Text",
    "field.sms": "SMS-Text",
    "field.voice": "Ansagetext (Sprachanruf)",
    "field.email_subject": "E-Mail-Betreff",
    "field.email_body": "E-Mail-Text",
    "field.severity": "Schwere",
    "field.urgency": "Dringlichkeit",
    "field.certainty": "Gewissheit",
    "field.category": "Kategorie",
    # compose, correct and edit
    "compose.title_new": "Neue Meldung",
    "compose.title_update": "Aktualisierung",
    "compose.title_edit": "Entwurf bearbeiten",
    "compose.heading_update": "Aktualisierung zu „{headline}“",
    "compose.heading_edit": "Entwurf bearbeiten: „{headline}“",
    "compose.heading_template": "Neue Meldung – Vorlage {name}",
    "compose.not_saved": "Die Meldung wurde nicht gespeichert",
    "compose.banner_exercise": "ÜBUNG – diese Meldung ist als Übung gekennzeichnet, jeder Text "
    "beginnt mit „ÜBUNG:“ (englische Texte mit „EXERCISE:“)",
    "compose.banner_test": "TEST – diese Meldung ist als Test gekennzeichnet, jeder Text beginnt "
    "mit „TEST:“",
    "compose.mode": "Betriebsart",
    "compose.mode_kept": "Die Betriebsart der ursprünglichen Meldung bleibt erhalten – aus einer "
    "Übung wird nie eine echte Warnung.",
    "compose.mode_kept_edit": "Die Betriebsart eines Entwurfs bleibt erhalten – aus einer Übung "
    "wird nie eine echte Warnung; dafür legen Sie eine neue Meldung an.",
    "compose.four_eyes": "Schwere „Extrem“ und „Schwer“ brauchen je nach Einstellung Ihrer "
    "Kommune die Freigabe einer zweiten Person (Vier-Augen-Prinzip).",
    "compose.texts_de": "Texte Deutsch",
    "compose.texts_en": "Texte Englisch (optional)",
    "compose.optional": "– optional",
    "compose.recipients": "Empfänger",
    "compose.everyone": "Alle Bürgerinnen und Bürger der Kommune",
    "compose.topics": "Themen (kommagetrennt)",
    "compose.districts": "Nur Ortsteile (kommagetrennt)",
    "compose.areas": "Nur Gebiete (GeoJSON)",
    "compose.areas_hint": "Polygon, MultiPolygon, Feature oder FeatureCollection, z. B. aus dem "
    "GIS oder einer CAP-Datei; erreicht werden Bürgerinnen und Bürger, deren Adresspunkt im "
    "Gebiet liegt (oder in einem der Ortsteile).",
    "compose.same_recipients": "Die Aktualisierung geht an genau die Empfänger der ursprünglichen "
    "Meldung.",
    "compose.effective": "Veröffentlichen am",
    "compose.effective_hint": "– leer: sofort",
    "compose.duration": "Gültig für (Minuten)",
    "compose.send": "Senden",
    "compose.save_draft": "Als Entwurf speichern",
    "compose.save_changes": "Änderungen speichern",
    "compose.save_and_send": "Speichern und senden",
    "compose.discard": "Abbrechen",
    # live helpers
    "estimate.choose": "Wählen Sie Themen oder „Alle“, um die Zahl der Empfänger zu sehen.",
    "estimate.unavailable": "Empfängerschätzung gerade nicht verfügbar.",
    "estimate.invalid": "Keine Schätzung – die Empfängerauswahl ist nicht gültig:",
    "estimate.total": "Geschätzt",
    "estimate.recipients": "Empfänger:",
    "sms.segments_one": "{n} SMS-Teil",
    "sms.segments_many": "{n} SMS-Teile",
    "sms.characters": "{units} Zeichen (je Teil {per})",
    "sms.ucs2": "Sonderzeichen erzwingen UCS-2: „{chars}“",
    "sms.warning": "Achtung: mehr als 3 SMS-Teile – teurer und kann in falscher Reihenfolge "
    "ankommen. Bitte kürzen.",
    "sms.parts_one": "{n} Teil",
    "sms.parts_many": "{n} Teile",
    "sms.warning_short": "mehr als 3 Teile",
    # alert page
    "alert.banner_exercise": "ÜBUNG – keine echte Warnung",
    "alert.banner_test": "TEST – keine echte Warnung",
    "alert.rejected": "Abgelehnt: {reason}",
    "alert.four_eyes": "Vier-Augen-Prinzip: Diese Meldung wartet auf die Freigabe durch eine "
    "zweite Person.",
    "alert.refers_to": "zu",
    "alert.cancelled_by": "Aufgehoben durch",
    "alert.cancelled_by_link": "die Aufhebung",
    "alert.superseded_by": "Zuletzt aktualisiert durch",
    "alert.superseded_by_link": "diese Aktualisierung",
    "alert.send": "Senden",
    "alert.edit": "Bearbeiten",
    "alert.approve": "Freigeben und senden",
    "alert.reject_reason": "Grund der Ablehnung",
    "alert.reject": "Ablehnen (zurück in den Entwurf)",
    "alert.update": "Korrigieren (Aktualisierung)",
    "alert.cancel_published": "Aufheben (Entwarnung an dieselben Empfänger)",
    "alert.withdraw": "Zurückziehen",
    "alert.cap": "CAP-XML",
    "alert.report": "Zustellbericht",
    "alert.mode": "Betriebsart",
    "alert.classification": "Schwere / Dringlichkeit / Gewissheit",
    "alert.recipients": "Empfänger",
    "alert.everyone": "Alle",
    "alert.topics": "Themen: {topics}",
    "alert.districts": "Ortsteile: {districts}",
    "alert.areas": "Gebiete: {areas}",
    "alert.created": "Angelegt",
    "alert.approved": "Freigegeben",
    "alert.by": "{when} von {who}",
    "alert.scheduled_for": "Geplant für",
    "alert.published": "Veröffentlicht",
    "alert.expires": "Gültig bis",
    "alert.attachments": "Anhänge",
    "alert.attachment_linked": "in Push und E-Mail verlinkt, nie per SMS oder Anruf",
    "alert.no_attachments": "Keine Anhänge.",
    "alert.attachment_file": "Bild (JPEG, PNG – Metadaten wie GPS werden entfernt) oder PDF "
    "hinzufügen",
    "alert.attachment_upload": "Anhang hochladen",
    "alert.attachment_default_name": "anhang",
    "alert.texts": "Texte je Kanal",
    "alert.audit": "Protokoll",
    # live progress
    "progress.heading": "Zustellung",
    "progress.not_published": "Noch nicht veröffentlicht.",
    "progress.reached": "Erreicht:",
    "progress.of": "({reached} von {expected} Zustellungen)",
    "progress.complete": "– abgeschlossen",
    "progress.recipients": "Empfänger: {n}.",
    "progress.held": "Davon {n} wegen ihrer Ruhezeit zurückgestellt: Sie erhalten den Beitrag, "
    "wenn ihre Ruhezeit endet.",
    "progress.times": "Erste Zustellung nach {first}, letzte nach {last}.",
    "progress.bar": "Zustellfortschritt",
    "progress.caption": "Zustellungen je Kanal",
    "progress.no_receipts": "Noch keine Rückmeldungen.",
    # delivery report
    "report.title": "Zustellbericht: {headline}",
    "report.back": "Zurück zur Meldung",
    "report.empty": "Diese Meldung wurde noch nicht veröffentlicht; es gibt noch keine "
    "Zustellungen.",
    "report.published": "Veröffentlicht: {when}. Zeitraster: {width} s.",
    "report.csv": "Als CSV herunterladen",
    "report.reach_heading": "Erreichte Empfänger je Kanal",
    "report.reach_caption": "Erwartete und erreichte Zustellungen je Kanal",
    "report.chart_heading": "Erreichte Empfänger im Zeitverlauf",
    "report.chart_title": "Kumulierte Zustellungen je Kanal seit Veröffentlichung",
    "report.series": "{channel}: {n} erreicht",
    "report.until": "bis {offset} nach Veröffentlichung",
    "report.chart_also": "Die Werte stehen auch in der Tabelle unter dem Diagramm.",
    "report.x_axis": "Zeit seit Veröffentlichung",
    "report.table_summary": "Werte des Diagramms als Tabelle",
    "report.table_caption": "Kumulierte Zustellungen je Kanal am Ende jedes Zeitabschnitts",
    "report.no_deliveries": "Noch keine Zustellungen.",
    "report.failures_heading": "Fehlgeschlagene Zustellungen nach Grund",
    "report.failures_caption": "Fehlgeschlagene Zustellungen je Kanal und Grund",
    "report.no_failures": "Keine fehlgeschlagenen Zustellungen.",
    "error_class.transient": "vorübergehend",
    "error_class.permanent": "dauerhaft",
    "error_class.contact_dead": "Kontakt ungültig",
    "failure.failed": "fehlgeschlagen",
    "failure.undelivered": "nicht zustellbar",
    "failure.expired": "abgelaufen (nicht mehr zugestellt)",
}

EN: dict[str, str] = {
    # page frame
    "layout.product": "Sirene staff console",
    "layout.banner": "Sirene – warnings and posts of your municipality",
    "layout.skip": "Skip to content",
    "layout.nav": "Main navigation",
    "layout.switch": "Deutsch",
    "layout.switch_label": "Konsole auf Deutsch umstellen",
    "nav.alerts": "Alerts",
    "nav.new": "New alert",
    "nav.audit": "Audit log",
    "nav.totp": "Second factor",
    "nav.signed_in": "Signed in:",
    "nav.logout": "Sign out",
    # sign-in and second factor
    "login.title": "Sign in",
    "login.tenant": "Municipality (tenant)",
    "login.username": "User name",
    "login.password": "Password",
    "login.code": "One-time code (if set up)",
    "login.submit": "Sign in",
    "totp.title": "Second factor",
    "totp.heading": "Second factor (TOTP)",
    "totp.enabled": "A second factor is already set up for your account. Setting up a new one "
    "replaces it.",
    "totp.intro": "Enter this key in your authenticator app and confirm with the code it shows.",
    "totp.key": "Key:",
    "totp.code": "Code from the app",
    "totp.submit": "Confirm",
    # alert list
    "alerts.title": "Alerts",
    "alerts.from_template": "New alert from a template",
    "alerts.blank": "Without a template",
    "alerts.all": "All alerts",
    "alerts.caption": "Alerts, newest first",
    "alerts.none": "No alerts yet.",
    "import.heading": "Import a CAP file",
    "import.file": "CAP 1.2 XML file (e.g. from DWD or MoWaS); imported as a draft",
    "import.submit": "Import",
    "import.too_large": "larger than 1 MiB",
    # table columns
    "col.headline": "Headline",
    "col.state": "State",
    "col.severity": "Severity",
    "col.created": "Created",
    "col.by": "By",
    "col.time": "Time",
    "col.who": "Who",
    "col.what": "What",
    "col.alert": "Alert",
    "col.channel": "Channel",
    "col.expected": "Expected",
    "col.queued": "Queued",
    "col.sent": "Sent",
    "col.delivered": "Delivered",
    "col.confirmed": "Confirmed",
    "col.failed": "Failed",
    "col.reached": "Reached",
    "col.receipts": "Receipts",
    "col.rate": "Rate",
    "col.result": "Result",
    "col.error_class": "Kind of error",
    "col.provider_code": "Provider code",
    "col.count": "Count",
    # audit log
    "audit.title": "Audit log",
    "audit.caption": "Who did what and when, newest first",
    # templates of common warnings
    "template.unwetter": "Severe weather",
    "template.hochwasser": "Flood",
    "template.trinkwasser": "Drinking water",
    "template.stromausfall": "Power cut",
    "template.vermisst": "Missing person",
    "template.entwarnung": "All clear",
    # alert states, modes, message types, channels
    "state.draft": "Draft",
    "state.awaiting_approval": "Awaiting approval",
    "state.scheduled": "Scheduled",
    "state.published": "Published",
    "state.withdrawn": "Withdrawn",
    "state.expired": "Expired",
    "status.Actual": "Live",
    "status.Exercise": "EXERCISE",
    "status.Test": "TEST",
    "mode.Actual": "Live",
    "mode.Exercise": "Exercise",
    "mode.Test": "Test",
    "msg_type.Alert": "Alert",
    "msg_type.Update": "Update",
    "msg_type.Cancel": "Cancellation",
    "badge.cancelled": "cancelled",
    "channel.push": "Push",
    "channel.sms": "SMS",
    "channel.voice": "Voice call",
    "channel.email": "E-mail",
    "language.de": "German",
    "language.en": "English",
    # CAP values
    "severity.Extreme": "Extreme",
    "severity.Severe": "Severe",
    "severity.Moderate": "Moderate",
    "severity.Minor": "Minor",
    "severity.Unknown": "Unknown",
    "urgency.Immediate": "Immediate",
    "urgency.Expected": "Expected",
    "urgency.Future": "Future",
    "urgency.Past": "Past",
    "urgency.Unknown": "Unknown",
    "certainty.Observed": "Observed",
    "certainty.Likely": "Likely",
    "certainty.Possible": "Possible",
    "certainty.Unlikely": "Unlikely",
    "certainty.Unknown": "Unknown",
    "category.Met": "Weather",
    "category.Geo": "Geological",
    "category.Safety": "Safety",
    "category.Security": "Police/security",
    "category.Rescue": "Rescue",
    "category.Fire": "Fire",
    "category.Health": "Health",
    "category.Env": "Environment",
    "category.Transport": "Transport",
    "category.Infra": "Infrastructure",
    "category.CBRNE": "CBRN hazard",
    "category.Other": "Other",
    # what the audit log records
    "action.created": "created",
    "action.edited": "draft edited",
    "action.submitted": "submitted for approval",
    "action.approved": "approved",
    "action.published": "published",
    "action.scheduled": "scheduled",
    "action.cancelled": "cancelled",
    "action.updated": "updated",
    "action.withdrawn": "withdrawn",
    "action.rejected": "rejected (back to draft)",
    "action.attachment_added": "attachment added",
    "action.imported": "imported from CAP",
    "action.expired": "expired (not sent)",
    "action.staff_created": "account created",
    "action.token_issued": "API token issued",
    "action.totp_enabled": "second factor set up",
    "action.settings_changed": "settings changed",
    "action.login": "signed in",
    # channel text fields
    "field.headline": "Headline",
    "field.push_title": "Push title",
    "field.push_body": "Push text",
    "field.sms": "SMS text",
    "field.voice": "Spoken text (voice call)",
    "field.email_subject": "E-mail subject",
    "field.email_body": "E-mail text",
    "field.severity": "Severity",
    "field.urgency": "Urgency",
    "field.certainty": "Certainty",
    "field.category": "Category",
    # compose, correct and edit
    "compose.title_new": "New alert",
    "compose.title_update": "Update",
    "compose.title_edit": "Edit draft",
    "compose.heading_update": "Update of “{headline}”",
    "compose.heading_edit": "Edit draft: “{headline}”",
    "compose.heading_template": "New alert – template {name}",
    "compose.not_saved": "The alert was not saved",
    "compose.banner_exercise": "EXERCISE – this alert is marked as an exercise; every text starts "
    "with “ÜBUNG:” (English texts with “EXERCISE:”)",
    "compose.banner_test": "TEST – this alert is marked as a test; every text starts with “TEST:”",
    "compose.mode": "Mode",
    "compose.mode_kept": "The mode of the original alert is kept – an exercise never becomes a "
    "real warning.",
    "compose.mode_kept_edit": "A draft keeps its mode – an exercise never becomes a real "
    "warning; create a new alert for that.",
    "compose.four_eyes": "Severities “Extreme” and “Severe” need a second person's approval, "
    "depending on your municipality's settings (four-eyes rule).",
    "compose.texts_de": "German texts",
    "compose.texts_en": "English texts (optional)",
    "compose.optional": "– optional",
    "compose.recipients": "Recipients",
    "compose.everyone": "All citizens of the municipality",
    "compose.topics": "Topics (comma-separated)",
    "compose.districts": "Only districts (comma-separated)",
    "compose.areas": "Only areas (GeoJSON)",
    "compose.areas_hint": "Polygon, MultiPolygon, Feature or FeatureCollection, e.g. from the GIS "
    "or a CAP file; it reaches citizens whose address point lies in an area (or in one of the "
    "districts).",
    "compose.same_recipients": "The update goes to exactly the recipients of the original alert.",
    "compose.effective": "Publish at",
    "compose.effective_hint": "– empty: now",
    "compose.duration": "Valid for (minutes)",
    "compose.send": "Send",
    "compose.save_draft": "Save as draft",
    "compose.save_changes": "Save changes",
    "compose.save_and_send": "Save and send",
    "compose.discard": "Discard",
    # live helpers
    "estimate.choose": "Choose topics or “everyone” to see the number of recipients.",
    "estimate.unavailable": "Recipient estimate currently unavailable.",
    "estimate.invalid": "No estimate – the recipients are not valid:",
    "estimate.total": "Estimated",
    "estimate.recipients": "recipients:",
    "sms.segments_one": "{n} SMS segment",
    "sms.segments_many": "{n} SMS segments",
    "sms.characters": "{units} characters ({per} per segment)",
    "sms.ucs2": "Special characters force UCS-2: “{chars}”",
    "sms.warning": "Caution: more than 3 SMS segments – costlier, and parts may arrive out of "
    "order. Please shorten.",
    "sms.parts_one": "{n} segment",
    "sms.parts_many": "{n} segments",
    "sms.warning_short": "more than 3 segments",
    # alert page
    "alert.banner_exercise": "EXERCISE – not a real warning",
    "alert.banner_test": "TEST – not a real warning",
    "alert.rejected": "Rejected: {reason}",
    "alert.four_eyes": "Four-eyes rule: this alert is waiting for approval by a second person.",
    "alert.refers_to": "of",
    "alert.cancelled_by": "Cancelled by",
    "alert.cancelled_by_link": "the cancellation",
    "alert.superseded_by": "Last updated by",
    "alert.superseded_by_link": "this update",
    "alert.send": "Send",
    "alert.edit": "Edit",
    "alert.approve": "Approve and send",
    "alert.reject_reason": "Reason for rejection",
    "alert.reject": "Reject (back to draft)",
    "alert.update": "Correct (update)",
    "alert.cancel_published": "Cancel (all-clear to the same recipients)",
    "alert.withdraw": "Withdraw",
    "alert.cap": "CAP XML",
    "alert.report": "Delivery report",
    "alert.mode": "Mode",
    "alert.classification": "Severity / urgency / certainty",
    "alert.recipients": "Recipients",
    "alert.everyone": "Everyone",
    "alert.topics": "Topics: {topics}",
    "alert.districts": "districts: {districts}",
    "alert.areas": "areas: {areas}",
    "alert.created": "Created",
    "alert.approved": "Approved",
    "alert.by": "{when} by {who}",
    "alert.scheduled_for": "Scheduled for",
    "alert.published": "Published",
    "alert.expires": "Valid until",
    "alert.attachments": "Attachments",
    "alert.attachment_linked": "linked in push and e-mail, never sent by SMS or call",
    "alert.no_attachments": "No attachments.",
    "alert.attachment_file": "Add an image (JPEG, PNG – metadata such as GPS is removed) or a PDF",
    "alert.attachment_upload": "Upload attachment",
    "alert.attachment_default_name": "attachment",
    "alert.texts": "Texts per channel",
    "alert.audit": "Audit log",
    # live progress
    "progress.heading": "Delivery",
    "progress.not_published": "Not published yet.",
    "progress.reached": "Reached:",
    "progress.of": "({reached} of {expected} deliveries)",
    "progress.complete": "– complete",
    "progress.recipients": "Recipients: {n}.",
    "progress.held": "Of these, {n} were held back for their quiet hours: they get the post when "
    "those end.",
    "progress.times": "First delivery after {first}, last after {last}.",
    "progress.bar": "Delivery progress",
    "progress.caption": "Deliveries per channel",
    "progress.no_receipts": "No receipts yet.",
    # delivery report
    "report.title": "Delivery report: {headline}",
    "report.back": "Back to the alert",
    "report.empty": "This alert has not been published yet; there are no deliveries yet.",
    "report.published": "Published: {when}. Time step: {width} s.",
    "report.csv": "Download as CSV",
    "report.reach_heading": "Recipients reached per channel",
    "report.reach_caption": "Expected and reached deliveries per channel",
    "report.chart_heading": "Recipients reached over time",
    "report.chart_title": "Cumulative deliveries per channel since publication",
    "report.series": "{channel}: {n} reached",
    "report.until": "up to {offset} after publication",
    "report.chart_also": "The values are also in the table below the chart.",
    "report.x_axis": "Time since publication",
    "report.table_summary": "Chart values as a table",
    "report.table_caption": "Cumulative deliveries per channel at the end of each time step",
    "report.no_deliveries": "No deliveries yet.",
    "report.failures_heading": "Failed deliveries by reason",
    "report.failures_caption": "Failed deliveries per channel and reason",
    "report.no_failures": "No failed deliveries.",
    "error_class.transient": "transient",
    "error_class.permanent": "permanent",
    "error_class.contact_dead": "contact invalid",
    "failure.failed": "failed",
    "failure.undelivered": "undeliverable",
    "failure.expired": "expired (no longer delivered)",
}

CATALOGUES: dict[str, dict[str, str]] = {"de": DE, "en": EN}
"""Language → its texts; every catalogue has the same keys."""


def _accepted(header: str) -> str | None:
    """The first of our languages in an Accept-Language header, by the caller's preference."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and quality > 0:
            ranked.append((-quality, position, primary))
    return min(ranked)[2] if ranked else None


def lang_of(request: Request) -> str:
    """The console language of a request: `?lang=`, the language cookie, the browser's
    Accept-Language, else German."""
    for asked in (request.query_params.get("lang"), request.cookies.get(LANG_COOKIE)):
        if asked in LANGUAGES:
            return str(asked)
    return _accepted(request.headers.get("accept-language", "")) or DEFAULT_LANGUAGE


def text(lang: str, key: str, **params: Any) -> str:
    """The text of `key` in `lang`, with `params` filled in (a missing key raises KeyError:
    a page must never show a key or silently fall back to the other language)."""
    value = CATALOGUES[lang if lang in CATALOGUES else DEFAULT_LANGUAGE][key]
    return value.format(**params) if params else value


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def local_time(value: datetime | None, lang: str) -> str:
    """A time for people in the municipality: '22.11.2026, 14:05:09' / '22 Nov 2026, 14:05:09'."""
    if value is None:
        return "–"
    shown = value.astimezone(LOCAL_TZ)
    if lang == "en":  # month names spelled out here: strftime's %b follows the process locale
        return f"{shown.day} {_MONTHS[shown.month - 1]} {shown.strftime('%Y, %H:%M:%S')}"
    return shown.strftime("%d.%m.%Y, %H:%M:%S")


def decimal(value: float, lang: str, digits: int = 1) -> str:
    """A number with the decimal mark of the language ('1,5' / '1.5')."""
    shown = f"{value:.{digits}f}"
    return shown.replace(".", ",") if lang == "de" else shown
