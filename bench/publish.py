"""`make bench-publish`: time from "Senden" (the equivalent API publish) to the first delivery
at the provider simulator, median of 10 runs, against the running local platform (`make up`).

Each run publishes an exercise alert to the demo town's district "Altstadt" (topic
Gefahrenhinweise; severity Moderate, urgency Immediate: the urgent lane, and no four-eyes wait,
which would measure a person), waits until every delivery is final, then takes the earliest
`received_at` the simulator recorded for that alert's marker (its own clock, the same machine).
Reference measured in the same run: a plain HTTP round trip to the publisher (`/healthz`).
Prints one JSON line and appends it with machine and date to bench/RESULTS.md."""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from _results import machine

from sirene.devstack import demo
from sirene.devstack.stack import DEV, SIM, service

RUNS = int(os.environ.get("BENCH_RUNS", "10"))
STAFF = {"Authorization": f"Bearer {demo.DEV_TOKEN}"}
RESULTS = Path(__file__).with_name("RESULTS.md")


def _alert(marker: str) -> dict[str, Any]:
    texts = {
        "headline": f"Benchmark {marker}",
        "push_title": f"Benchmark {marker}",
        "push_body": f"Messlauf {marker}.",
        "sms": f"Benchmark {marker}",
        "voice": f"Benchmark {marker}.",
    }
    return {
        "status": "Exercise",
        "severity": "Moderate",
        "urgency": "Immediate",
        "texts": {"de": texts, "en": texts},
        "audience": {"topics": ["gefahrenhinweise"], "districts": ["Altstadt"]},
        "duration_minutes": 30,
        "publish": True,
    }


def _first_delivery(sim: httpx.Client, marker: str) -> datetime | None:
    times: list[datetime] = []
    for phone in sim.get("/sim/phones").json()["phones"]:
        times += [
            datetime.fromisoformat(m["received_at"])
            for m in phone.get("messages", [])
            if marker in (m.get("body") or "")
        ]
        for call in phone.get("calls", []):
            spoken = " ".join(s.get("text", "") for s in call.get("spoken", []))
            if marker in spoken and call.get("received_at"):
                times.append(datetime.fromisoformat(call["received_at"]))
    for device in sim.get("/sim/devices").json()["devices"]:
        times += [
            datetime.fromisoformat(n["received_at"])
            for n in device.get("notifications", [])
            if marker in (n.get("title") or "")
        ]
    return min(times) if times else None


def _run(client: httpx.Client, sim: httpx.Client) -> tuple[float, float]:
    marker = uuid.uuid4().hex[:10]
    clicked = datetime.now(UTC)
    response = client.post("/api/v1/alerts", json=_alert(marker))
    response.raise_for_status()
    answered = (datetime.now(UTC) - clicked).total_seconds()
    alert_id = response.json()["id"]
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        progress = client.get(f"/api/v1/alerts/{alert_id}/progress").json()
        if progress["complete"]:
            break
        time.sleep(0.5)
    else:
        raise RuntimeError(f"alert {alert_id} not delivered within 180 s")
    first = _first_delivery(sim, marker)
    if first is None:
        raise RuntimeError(f"the simulator saw nothing of alert {alert_id}")
    return (first - clicked).total_seconds(), answered


def main() -> int:
    publisher = service("publisher").url(DEV)
    with (
        httpx.Client(base_url=publisher, headers=STAFF, timeout=30) as client,
        httpx.Client(base_url=SIM.url(DEV), timeout=30) as sim,
    ):
        references = []
        for _ in range(20):
            began = time.perf_counter()
            client.get("/healthz").raise_for_status()
            references.append(time.perf_counter() - began)
        _run(client, sim)  # warm-up (connections, JIT of the broker's first batches)
        firsts, answers = [], []
        for _ in range(RUNS):
            first, answered = _run(client, sim)
            firsts.append(first)
            answers.append(answered)
    median = statistics.median(firsts)
    reference = statistics.median(references)
    result = {
        "bench": "publish",
        "runs": RUNS,
        "median_first_delivery_s": round(median, 3),
        "min_s": round(min(firsts), 3),
        "max_s": round(max(firsts), 3),
        "median_publish_call_s": round(statistics.median(answers), 4),
        "reference_http_roundtrip_ms": round(reference * 1000, 2),
        "ratio_to_reference": round(median / reference, 1),
        "target_s": 60,
    }
    line = json.dumps(result)
    print(line)
    with RESULTS.open("a") as out:
        if out.tell() == 0:
            out.write("# Benchmark results\n\nAppend-only; one section per benchmark run.\n")
        out.write(
            f"\n## bench-publish — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n\n"
            f"Machine: {machine()}. Local platform (`make up`, FerretDB, single Kafka broker), "
            "demo town, district Altstadt, exercise alert on the urgent lane published through "
            'the API (the console\'s "Senden" calls the same service function); first '
            "delivery = earliest `received_at` at the provider simulator.\n\n"
            f"```json\n{line}\n```\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
