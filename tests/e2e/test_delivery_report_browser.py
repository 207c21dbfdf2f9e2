"""The per-alert delivery report in a real browser, against the whole platform and the demo
town: a Moderate alert (no approval needed) goes out to every demo citizen on the topic; once
complete, the report page shows a chart with one series per channel whose final points, the
tables and the CSV export all agree with the progress API."""

from __future__ import annotations

import csv
import io
import re
import time
import uuid
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from sirene.devstack import demo

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

STAFF = {"Authorization": f"Bearer {demo.DEV_TOKEN}"}
TOPIC = "gefahrenhinweise"
DELIVERY_TIMEOUT_S = 180


def _login(browser: Browser, base: str, username: str) -> Page:
    context = browser.new_context(locale="de-DE", accept_downloads=True)
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.goto(f"{base}/console/login")
    page.get_by_label("Kommune (Mandant)").fill(demo.TENANT)
    page.get_by_label("Benutzername").fill(username)
    page.get_by_label("Passwort").fill(demo.STAFF_PASSWORD)
    page.get_by_role("button", name="Anmelden").click()
    expect(page).to_have_url(re.compile(r"/console/$"))
    return page


def _alert(marker: str) -> dict[str, Any]:
    texts = {
        "headline": f"Sturmböen {marker}",
        "push_title": f"Sturmwarnung {marker}",
        "push_body": "Sturmböen erwartet. Sichern Sie lose Gegenstände.",
        "sms": f"Sturmwarnung {marker}: Sturmböen erwartet. Lose Gegenstände sichern.",
        "voice": f"Achtung, Sturmwarnung {marker}. Sichern Sie lose Gegenstände.",
    }
    return {
        "severity": "Moderate",  # Severe would wait for a second person's approval
        "urgency": "Immediate",
        "certainty": "Observed",
        "category": "Met",
        "texts": {"de": texts},
        "audience": {"topics": [TOPIC]},
        "duration_minutes": 60,
        "publish": True,
    }


def _wait_complete(publisher: str, alert_id: str) -> dict[str, Any]:
    progress: dict[str, Any] = {}
    deadline = time.monotonic() + DELIVERY_TIMEOUT_S
    while time.monotonic() < deadline:
        progress = httpx.get(
            f"{publisher}/api/v1/alerts/{alert_id}/progress", headers=STAFF, timeout=10
        ).json()
        if progress.get("complete"):
            return progress
        time.sleep(0.5)
    raise AssertionError(f"not complete after {DELIVERY_TIMEOUT_S} s: {progress}")


def _reached(progress: dict[str, Any], channel: str) -> int:
    statuses = progress["channels"][channel]["statuses"]
    return int(statuses["delivered"] + statuses["confirmed"])


def test_delivery_report_shows_reach_per_channel_as_a_chart_and_csv(
    platform: dict[str, str], browser: Browser
) -> None:
    base = platform["publisher"]
    created = httpx.post(
        f"{base}/api/v1/alerts", json=_alert(uuid.uuid4().hex[:6]), headers=STAFF, timeout=10
    )
    assert created.status_code == 201, created.text
    alert_id = created.json()["id"]
    progress = _wait_complete(base, alert_id)
    channels = sorted(progress["channels"])
    assert {"sms", "voice", "push"} <= set(channels), progress
    assert all(_reached(progress, c) for c in ("sms", "voice", "push")), progress

    page = _login(browser, base, "anna")
    page.goto(f"{base}/console/alerts/{alert_id}")
    page.locator("#report-link").click()
    expect(page).to_have_url(re.compile(rf"/console/alerts/{alert_id}/report$"))
    expect(page.locator("#report-heading")).to_contain_text("Zustellbericht")

    # the chart: an accessible SVG with one series per channel, each with points
    chart = page.locator("svg#reach-chart")
    expect(chart).to_be_visible()
    expect(chart.locator("title#reach-chart-title")).to_have_count(1)
    expect(chart.locator("desc#reach-chart-desc")).to_have_count(1)
    series = chart.locator("g.series")
    expect(series).to_have_count(len(channels))
    assert sorted(series.evaluate_all("gs => gs.map(g => g.dataset.channel)")) == channels
    offsets = page.locator("#reach-table tbody tr")
    buckets = offsets.count()
    assert buckets >= 1
    for channel in channels:
        points = (
            chart.locator(f"g.series[data-channel={channel}] polyline").get_attribute("points")
            or ""
        ).split()
        assert len(points) == buckets + 1, (channel, points)  # origin plus one per bucket
        ys = [float(p.split(",")[1]) for p in points]
        assert ys == sorted(ys, reverse=True), "cumulative reach never drops"
        if _reached(progress, channel):
            assert ys[-1] < ys[0], f"{channel}: the line rises above zero"
        else:  # e.g. e-mail when no demo citizen on the topic has it: a flat line at zero
            assert ys[-1] == ys[0], channel

    # the numbers shown match the progress API
    for channel in channels:
        row = page.locator(f"#report-channels tr[data-channel={channel}]")
        expected = progress["channels"][channel]["expected"]
        expect(row.locator("[data-field=expected]")).to_have_text(str(expected))
        expect(row.locator("[data-field=reached]")).to_have_text(str(_reached(progress, channel)))
        last_cell = page.locator(f"#reach-table tbody tr:last-child td[data-channel={channel}]")
        assert last_cell.text_content() == str(_reached(progress, channel))
    failed = sum(
        progress["channels"][c]["statuses"][s]
        for c in channels
        for s in ("failed", "undelivered", "expired")
    )
    if failed == 0:
        expect(page.locator("#no-failures")).to_be_visible()

    # the CSV export, downloaded from the page, says the same
    with page.expect_download() as download_info:
        page.locator("#report-csv").click()
    download = download_info.value
    assert download.suggested_filename == f"zustellbericht-{alert_id}.csv"
    with open(download.path(), encoding="utf-8") as handle:
        rows = list(csv.DictReader(io.StringIO(handle.read())))
    summary = {r["channel"]: r for r in rows if r["section"] == "channel"}
    for channel in channels:
        assert int(summary[channel]["reached"]) == _reached(progress, channel)
        assert int(summary[channel]["expected"]) == progress["channels"][channel]["expected"]
        reach = [r for r in rows if r["section"] == "reach" and r["channel"] == channel]
        assert len(reach) == buckets
        assert int(reach[-1]["reached_cumulative"]) == _reached(progress, channel)
    # and the API's CSV is the same report
    api_csv = httpx.get(f"{base}/api/v1/alerts/{alert_id}/report.csv", headers=STAFF, timeout=10)
    assert api_csv.status_code == 200
    assert list(csv.DictReader(io.StringIO(api_csv.text))) == rows
