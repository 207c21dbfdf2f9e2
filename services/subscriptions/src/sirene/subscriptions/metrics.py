"""Prometheus metrics of subscriptions, declared once. Labels are bounded (no ids, no numbers)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

PROFILES_RELAYED = Counter(
    "sirene_subscriptions_profiles_relayed_total",
    "Citizen profiles published to citizen.profile by the outbox relay.",
)
PROFILE_RELAY_LAG = Histogram(
    "sirene_subscriptions_profile_relay_lag_seconds",
    "Time from a citizen change to its profile being acknowledged by Kafka.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
CITIZEN_CHANGES = Counter(
    "sirene_subscriptions_citizen_changes_total",
    "Citizen changes by kind of change.",
    ["change"],
)
CONTACTS_DEACTIVATED = Counter(
    "sirene_subscriptions_contacts_deactivated_total",
    "Contact points deactivated after a contact_dead receipt, by channel.",
    ["channel"],
)
REJECTED_INPUT = Counter(
    "sirene_subscriptions_rejected_input_total",
    "Requests refused by a business rule, by reason code.",
    ["reason"],
)
RATE_LIMITED = Counter(
    "sirene_subscriptions_rate_limited_total",
    "Registration and verification requests refused by an abuse limit, by scope.",
    ["scope"],
)
VERIFICATIONS = Counter(
    "sirene_subscriptions_verifications_total",
    "Verifications by event (codes: sent_sms, sent_voice, verified, wrong, exhausted, expired; "
    "e-mail links: sent_email, email_confirmed, email_link_gone, email_link_superseded).",
    ["event"],
)
CONSENT = Counter(
    "sirene_subscriptions_consent_total",
    "Consent events of relatives' registrations by outcome and channel.",
    ["outcome", "channel"],
)
INBOUND_SMS = Counter(
    "sirene_subscriptions_inbound_sms_total",
    "Inbound SMS handled, by meaning (stop, yes, no, other).",
    ["meaning"],
)
ERASURES = Counter(
    "sirene_subscriptions_erasures_total",
    "Citizens erased (GDPR), by who asked (citizen, staff).",
    ["by"],
)
TWILIO_FAILURES = Counter(
    "sirene_subscriptions_twilio_failures_total",
    "Verification or consent messages and calls Twilio refused, by kind.",
    ["kind"],
)
MAIL_FAILURES = Counter(
    "sirene_subscriptions_mail_failures_total",
    "Verification e-mails the mail relay refused or that could not reach it, by kind.",
    ["kind"],
)
