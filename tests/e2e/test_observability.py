"""Operators can trust the dashboards and alert rules: a real Prometheus (Debian package)
scrapes the running platform while an alert goes out, and through Prometheus's HTTP API every
PromQL query of every dashboard panel returns data and every alert rule evaluates cleanly."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sirene.devstack import dashboards
from sirene.devstack.stack import TEST, prometheus_proc, prometheus_url, start_all, stop_all
from sirene.devstack.testing import InfraUrls

from .test_issue_reports import TENANT, _configure
from .test_walking_skeleton import STAFF, _alert

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


@pytest.fixture(scope="module")
def prometheus(platform: dict[str, str]) -> Iterator[str]:
    proc = prometheus_proc(TEST, scrape_interval_s=1)
    started = start_all([proc], echo=print)
    try:
        yield prometheus_url(TEST)
    finally:
        stop_all(started, echo=None)


def _query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert answer["status"] == "success", (expr, answer)
    return list(answer["data"]["result"])


def _send_poison(kafka: str) -> None:
    """One unparseable delivery task: the SMS worker must dead-letter it and keep going."""
    import asyncio

    from aiokafka import AIOKafkaProducer

    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=kafka)
        await producer.start()
        try:
            await producer.send_and_wait("delivery.sms.bulk", b"{not json", key=b"poison")
        finally:
            await producer.stop()

    asyncio.run(send())


def _work_on_a_citizen_report(issues: str, marker: str) -> None:
    """A report comes in through the API, one is refused (outside the town), staff start on the
    first: what the "Citizen reports" dashboard shows."""
    _, token, _ = _configure(issues, marker)  # (staff id, API token, password set-up link)
    agent = {"Authorization": f"Bearer {token}"}
    report = {
        "category": "illegal_dumping",
        "description": f"Sperrmüll am Waldweg {marker}",
        "lat": 51.34,
        "lon": 12.36,
        "contact": {"phone": f"+49157{int(marker, 16) % 10**8:08d}"},
    }
    created = httpx.post(f"{issues}/api/v1/{TENANT}/reports", json=report, timeout=10)
    assert created.status_code == 201, created.text
    outside = httpx.post(
        f"{issues}/api/v1/{TENANT}/reports", json={**report, "lat": 48.1}, timeout=10
    )
    assert outside.status_code == 422, outside.text
    changed = httpx.post(
        f"{issues}/api/v1/reports/{created.json()['id']}/status",
        json={"status": "in_progress", "note": "Wir kümmern uns."},
        headers=agent,
        timeout=10,
    )
    assert changed.status_code == 200, changed.text


def test_every_panel_returns_data_and_every_rule_evaluates(
    platform: dict[str, str], prometheus: str, sirene_infra: InfraUrls
) -> None:
    marker = uuid.uuid4().hex[:8]
    response = httpx.post(
        f"{platform['publisher']}/api/v1/alerts", json=_alert(marker), headers=STAFF, timeout=10
    )
    assert response.status_code == 201, response.text
    alert_id = response.json()["id"]
    _send_poison(sirene_infra.kafka)
    _work_on_a_citizen_report(platform["issues"], marker)

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        progress = httpx.get(
            f"{platform['publisher']}/api/v1/alerts/{alert_id}/progress", headers=STAFF, timeout=10
        ).json()
        if progress.get("complete"):
            break
        time.sleep(0.5)
    assert progress.get("complete"), progress

    panels = [
        (dashboard, panel, dashboards.grafana_to_promql(expr, rate_interval="1m"))
        for dashboard, panel, expr in dashboards.queries()
    ]
    empty: list[str] = []
    deadline = time.monotonic() + 60  # rates need two scrapes after the traffic
    while time.monotonic() < deadline:
        empty = [f"{d} / {p}: {e}" for d, p, e in panels if not _query(prometheus, e)]
        if not empty:
            break
        time.sleep(2)
    assert not empty, "panels without data:\n" + "\n".join(empty)

    groups = httpx.get(f"{prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert len(rules) >= 7
    deadline = time.monotonic() + 30
    while any(rule.get("health") != "ok" for rule in rules) and time.monotonic() < deadline:
        time.sleep(1)  # a rule is 'unknown' until its first evaluation
        groups = httpx.get(f"{prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
    bad = [(r["name"], r.get("health"), r.get("lastError")) for r in rules if r["health"] != "ok"]
    assert not bad, bad
    for rule in rules:  # and each expression is accepted by the query API as well
        _query(prometheus, rule["query"])
