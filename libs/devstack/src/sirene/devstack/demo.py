"""Seeds the demo municipality "Musterstadt": topics and 200 citizens with a realistic mix of
channels, including SMS-only and voice-only citizens (no smartphone)."""

from __future__ import annotations

import random
import time

import httpx

TENANT = "musterstadt"
DEV_TOKEN = "dev-token-musterstadt"  # noqa: S105 - the seeded development staff token

TOPICS = [
    ("gefahrenhinweise", "Gefahrenhinweise", "Warnungen bei Unwetter, Hochwasser, Bränden.", True),
    ("verkehr", "Verkehr", "Baustellen, Sperrungen und Umleitungen.", False),
    ("kinderbetreuung", "Kinderbetreuung", "Kitas, Schulen und Ferienangebote.", False),
    ("vereine", "Vereine", "Veranstaltungen der Vereine.", False),
    ("freibad", "Freibad", "Öffnungszeiten und Schließungen des Freibads.", False),
    ("abfall", "Abfall", "Änderungen im Abfallkalender.", False),
]
STAFF = [
    ("anna", "Anna Alarm", ["alerter", "editor"]),
    ("bernd", "Bernd Freigabe", ["approver"]),
    ("clara", "Clara Redaktion", ["editor"]),
    ("verwaltung", "Verwaltung (Admin)", ["admin"]),
]
"""Demo staff of the publisher console: user name, display name, roles."""
STAFF_PASSWORD = "musterstadt-demo-passwort"  # noqa: S105 - development demo password
DEMO_TEMPLATES = ["unwetter", "hochwasser", "trinkwasser", "stromausfall", "vermisst", "entwarnung"]
"""Templates the demo seeds a draft of (the "seeded alerts")."""

DISTRICTS = ["Altstadt", "Nordviertel", "Südfeld", "Bahnhofsviertel", "Am See"]

# channel profiles with their share of the demo population
PROFILES: list[tuple[str, float]] = [
    ("push", 0.40),
    ("push+sms", 0.15),
    ("sms", 0.20),  # SMS only: a simple mobile phone
    ("voice", 0.15),  # voice only: a landline, often registered by a relative
    ("sms+voice", 0.10),
]


def demo_citizens(count: int = 200, seed: int = 2026) -> list[dict[str, object]]:
    """Deterministic demo citizens (same input, same people)."""
    rng = random.Random(seed)  # noqa: S311 - demo data, not security
    citizens: list[dict[str, object]] = []
    bounds: list[tuple[str, int]] = []
    acc = 0.0
    for name, share in PROFILES:
        acc += share
        bounds.append((name, round(acc * count)))
    for i in range(count):
        kind = next(name for name, upto in bounds if i < upto)
        channels = kind.split("+")
        contacts: dict[str, object] = {}
        if "sms" in channels:
            contacts["sms"] = f"+491512{i:07d}"
        if "voice" in channels:
            contacts["voice"] = f"+4930{5550000 + i:07d}"
        if "push" in channels:
            platform = "fcm" if i % 4 == 3 else "apns"
            token = (
                rng.randbytes(32).hex()
                if platform == "apns"
                else (f"fcm{i:05d}:" + rng.randbytes(48).hex())
            )
            contacts["push"] = [{"platform": platform, "token": token}]
        extra = rng.sample([t[0] for t in TOPICS[1:]], k=rng.randint(0, 3))
        topics = ["gefahrenhinweise", *extra]
        citizens.append(
            {
                "id": f"demo-{i:04d}",
                "name": f"Demo-Bürger {i:04d}",
                "language": "en" if i % 10 == 9 else "de",
                "district": DISTRICTS[i % len(DISTRICTS)],
                "contacts": contacts,
                "subscriptions": dict.fromkeys(topics, channels),
            }
        )
    return citizens


def seed(subscriptions_url: str, *, count: int = 200) -> dict[str, int]:
    """Creates the demo topics and citizens through the subscriptions API (idempotent)."""
    headers = {"Authorization": f"Bearer {DEV_TOKEN}"}
    created = {"topics": 0, "citizens": 0}
    with httpx.Client(base_url=subscriptions_url, headers=headers, timeout=30) as client:
        for slug, name, description, warnings in TOPICS:
            response = client.post(
                "/api/v1/topics",
                json={
                    "id": slug,
                    "name": name,
                    "description": description,
                    "kind": name,
                    "warnings": warnings,
                    "public": True,
                },
            )
            if response.status_code == 201:
                created["topics"] += 1
            elif response.status_code != 409:
                response.raise_for_status()
        for citizen in demo_citizens(count):
            response = client.post("/api/v1/citizens", json=citizen)
            if response.status_code == 201:
                created["citizens"] += 1
            elif response.status_code != 409:
                raise RuntimeError(
                    f"seeding citizen {citizen['id']} failed: {response.status_code} "
                    f"{response.text[:300]}"
                )
    return created


def wait_until_routable(subscriptions_url: str, fanout_url: str, timeout_s: float = 60) -> None:
    """Waits until every demo profile is published (outbox drained) and applied to the fanout's
    audience index, so an alert sent right after seeding reaches everyone."""
    deadline = time.monotonic() + timeout_s
    headers = {"Authorization": f"Bearer {DEV_TOKEN}"}
    with httpx.Client(headers=headers, timeout=10) as client:
        while True:
            pending = _pending_profiles(client, subscriptions_url)
            if pending == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{pending} citizen profiles still unpublished")
            time.sleep(0.2)
        lag = -1
        while time.monotonic() < deadline:
            lag = client.get(f"{fanout_url}/api/v1/index/status").json()["lag"]
            if lag == 0:
                return
            time.sleep(0.2)
    raise RuntimeError(f"fanout audience index still {lag} profiles behind")


def _pending_profiles(client: httpx.Client, subscriptions_url: str) -> int:
    pending, after = 0, None
    while True:
        params: dict[str, str | int] = {"limit": 200}
        if after:
            params["after"] = after
        page = client.get(f"{subscriptions_url}/api/v1/citizens", params=params).json()
        pending += sum(1 for c in page["items"] if c.get("profile_state") != "sent")
        after = page.get("next_after")
        if not page["items"] or not after:
            return pending


def seed_staff(publisher_url: str) -> dict[str, int]:
    """Sets the demo tenant's policy (four-eyes for Extreme/Severe, its display name), creates
    the demo staff accounts and one draft per warning template, through the publisher API
    with the tenant's integration token (idempotent)."""
    headers = {"Authorization": f"Bearer {DEV_TOKEN}"}
    created = {"staff": 0, "alerts": 0}
    with httpx.Client(base_url=publisher_url, headers=headers, timeout=30) as client:
        client.put(
            "/api/v1/settings",
            json={
                "four_eyes": ["Extreme", "Severe"],
                "require_totp": False,
                "display_name": "Musterstadt",
            },
        ).raise_for_status()
        for username, display_name, roles in STAFF:
            response = client.post(
                "/api/v1/staff",
                json={
                    "username": username,
                    "display_name": display_name,
                    "password": STAFF_PASSWORD,
                    "roles": roles,
                },
            )
            if response.status_code == 201:
                created["staff"] += 1
            elif response.status_code != 409:
                response.raise_for_status()
        existing = {a["headline"] for a in client.get("/api/v1/alerts?limit=200").json()["items"]}
        templates = {t["id"]: t for t in client.get("/api/v1/templates").json()}
        for template_id in DEMO_TEMPLATES:
            body = {
                **templates[template_id]["body"],
                "audience": {"topics": ["gefahrenhinweise"]},
            }
            if body["texts"]["de"]["headline"] in existing:
                continue
            client.post("/api/v1/alerts", json=body).raise_for_status()
            created["alerts"] += 1
    return created
