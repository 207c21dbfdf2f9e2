"""`make bench-fanout`: the fanout at scale, against the running local stack (`make up`).

Seeds N synthetic citizen profiles of tenant `bench` (default 1,000,000) by producing them to
the compacted `citizen.profile` topic in aiokafka batches — the same path subscriptions uses —
and waits until the fanout's audience index has applied them (a rerun with the same N reuses
them; another N adds or erases the difference). Channel mix: 60 % push, 30 % SMS, 15 % voice,
10 % e-mail, some citizens with several; every citizen follows topic `news`, the first
min(N, 50,000) — the "town" — also `warn`.

Then, per run:
  (a) raw reference: aiokafka `create_batch`/`send_batch` of task-sized records (as many as the
      fanout emits for `news`) to a scratch topic — what this broker accepts from one process;
  (b) fanout: a bulk post to `news` (all N), publish → last task acknowledged (from the
      `alert.fanout` summary), tasks/s, peak RSS of the fanout process. The channel workers are
      stopped meanwhile, so the figure is the fanout's own; its tasks are then truncated from
      the bulk lanes and the workers started again;
  (c) end to end: an urgent warning to the town (simulators answer at once, no rate limit),
      publish → provider hand-off (first non-failed receipt per task) p50/p90/p99 and last;
  (d) priority: a bulk post to all N, and 1 s later an urgent warning to the town; the
      warning's first and last hand-off after its publish. The bulk lanes are truncated after.
(c) and (d) also report how many tasks were handed off within 10 s and the hand-off rate. After
each step the lanes it used are truncated and the channel workers restarted (and waited for),
so the next step starts with idle workers; the recipient sets of the bench alerts are deleted
after each run, and Redis' background snapshots are paused while measuring (restored after).

Prints one JSON line (medians over the runs, and each run) and appends it with machine and date
to `bench/RESULTS.md`. Tasks of channels without a running worker (e-mail, until its worker
exists) are counted in (b) and left out of hand-off figures."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from _results import git_rev, machine
from _results import record as record_result
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.records_to_delete import RecordsToDelete
from aiokafka.partitioner import murmur2
from aiokafka.structs import TopicPartition
from redis.asyncio import Redis

from sirene.devstack.stack import (
    DEV,
    SERVICES,
    Proc,
    recorded_pid,
    service,
    service_proc,
    start_together,
    stop,
)
from sirene.schemas import (
    ALERT_FANOUT,
    ALERT_PUBLISHED,
    CITIZEN_PROFILE,
    DELIVERY_RECEIPT,
    AlertPublished,
    Channel,
    CitizenProfile,
    Lane,
    delivery_topic,
    profile_key,
)
from sirene.schemas.examples import EXAMPLES

TENANT = "bench"
TOWN = 50_000
SEED_MARK = "bench:fanout:seeded"
"""Redis key (outside the index) holding how many bench citizens are seeded."""
HANDED_OFF = (b'"status":"sent"', b'"status":"delivered"', b'"status":"confirmed"')
RAW_TOPIC = "bench.raw-reference"
TARGETS = {
    "fanout_tasks_per_s": 100_000,
    "fanout_vs_raw": 0.6,
    "fanout_seconds": 10.0,
    "e2e_p99_s": 10.0,
    "urgent_first_s": 1.0,
    "urgent_last_s": 10.0,
    "fanout_peak_rss_mb": 300,
}


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# --- synthetic citizens -------------------------------------------------------------------


def citizen_id(i: int) -> str:
    return f"b-{i:07d}"


def channels_of(i: int) -> list[str]:
    """60 % push, 30 % SMS, 15 % voice, 10 % e-mail: one primary channel (push 50 %, SMS 25 %,
    voice 15 %, e-mail 10 %), plus push for a fifth and SMS for a fifteenth of the others."""
    rnd = random.Random(i)
    roll = rnd.random()
    primary = "push" if roll < 0.5 else "sms" if roll < 0.75 else "voice" if roll < 0.9 else "email"
    chosen = {primary}
    if primary != "push" and rnd.random() < 0.2:
        chosen.add("push")
    if primary != "sms" and rnd.random() < 0.05 / 0.75:
        chosen.add("sms")
    return sorted(chosen)


def profile_value(i: int, now: str) -> bytes:
    """The `citizen.profile` value of bench citizen i (what `CitizenProfile` validates)."""
    channels = channels_of(i)
    subscriptions = {"news": channels, **({"warn": channels} if i < TOWN else {})}
    return orjson.dumps(
        {
            "event_id": f"{i:032x}",
            "tenant_id": TENANT,
            "created_at": now,
            "citizen_id": citizen_id(i),
            "active": True,
            "language": "en" if i % 10 == 0 else "de",
            "district": f"ortsteil-{i % 20}",
            "contacts": {
                "sms": f"+49151{i:08d}" if "sms" in channels else None,
                "voice": f"+4930{i:08d}" if "voice" in channels else None,
                "email": f"b{i}@bench.example" if "email" in channels else None,
                "push": [{"platform": "apns" if i % 3 else "fcm", "token": f"{i:064x}"}]
                if "push" in channels
                else [],
            },
            "subscriptions": subscriptions,
            "version": 1,
            "updated_at": now,
        }
    )


def expected_tasks(n: int) -> dict[str, int]:
    counts = {c.value: 0 for c in Channel}
    for i in range(n):
        for channel in channels_of(i):
            counts[channel] += 1
    return counts


# --- the stack ---------------------------------------------------------------------------------


@dataclass
class Stack:
    """The running `make up` instance (SIRENE_DEV_SLOT selects which)."""

    kafka: str = DEV.kafka_url
    redis_url: str = DEV.redis_url
    fanout_url: str = service("fanout").url(DEV)
    workers: list[Proc] = field(
        default_factory=lambda: [
            service_proc(s, DEV) for s in SERVICES if s.name.startswith("channel-")
        ]
    )

    @property
    def worker_channels(self) -> set[str]:
        return {p.name.removeprefix("channel-") for p in self.workers}

    def fanout_pid(self) -> int:
        pid = recorded_pid(service_proc(service("fanout"), DEV))
        if pid is None:
            raise SystemExit("the fanout is not running: start the stack with `make up` first")
        return pid

    def check(self) -> None:
        self.fanout_pid()
        down = [p.name for p in self.workers if recorded_pid(p) is None]
        if down:
            raise SystemExit(f"not running: {', '.join(down)} — start the stack with `make up`")

    def stop_workers(self) -> None:
        for proc in self.workers:
            stop(proc)

    def start_workers(self) -> None:
        start_together(self.workers, echo=lambda _line: None)

    async def restart_workers(self) -> None:
        """Stops and starts the channel workers (dropping work a step left in their memory) and
        waits until their lane consumers are listening again."""
        self.stop_workers()
        self.start_workers()
        await workers_listening(self.worker_channels)


async def workers_listening(channels: set[str], timeout_s: float = 120.0) -> None:
    """Waits until every worker holds partitions of both of its lane topics (its
    `sirene_kafka_assigned_partitions` gauge), so a step's first task is not measured waiting
    for a consumer group to form."""
    wanted = {(c, f'topic="{delivery_topic(Channel(c), lane)}"') for c in channels for lane in Lane}
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=5.0) as http:
        while True:
            held = set()
            for channel in channels:
                try:
                    text = (
                        await http.get(f"{service(f'channel-{channel}').url(DEV)}/metrics")
                    ).text
                except httpx.HTTPError:
                    continue
                for line in text.splitlines():
                    if line.startswith("sirene_kafka_assigned_partitions{"):
                        labels, _, value = line.rpartition(" ")
                        for want in wanted:
                            if want[0] == channel and want[1] in labels and float(value) > 0:
                                held.add(want)
            if held >= wanted:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"workers without lane partitions: {sorted(wanted - held)}")
            await asyncio.sleep(0.5)


def rss_mb(pid: int, field_name: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


async def index_lag(fanout_url: str) -> int:
    """Profile records the fanout has not yet applied (-1 while it is too busy to answer)."""
    async with httpx.AsyncClient(timeout=30) as client:
        try:
            response = await client.get(f"{fanout_url}/api/v1/index/status")
            return int(response.json()["lag"])
        except httpx.HTTPError:
            return -1


async def producer(kafka: str) -> AIOKafkaProducer:
    p = AIOKafkaProducer(
        bootstrap_servers=kafka,
        acks="all",
        linger_ms=5,
        max_batch_size=512 * 1024,
        max_request_size=4 * 1024 * 1024,
        enable_idempotence=True,
    )
    await p.start()
    return p


async def produce_batched(p: AIOKafkaProducer, topic: str, records: Iterator[Any]) -> int:
    """Produces (partition, key, value) records through create_batch/send_batch."""
    batches: dict[int, Any] = {}
    pending: list[asyncio.Future[Any]] = []
    count = 0
    for partition, key, value in records:
        batch = batches.get(partition)
        if batch is None:
            batch = batches[partition] = p.create_batch()
        if batch.append(key=key, value=value, timestamp=None) is None:
            pending.append(await p.send_batch(batch, topic, partition=partition))
            batch = batches[partition] = p.create_batch()
            batch.append(key=key, value=value, timestamp=None)
        count += 1
        if len(pending) > 64:
            await asyncio.gather(*pending)
            pending.clear()
    for partition, batch in batches.items():
        if batch.record_count():
            pending.append(await p.send_batch(batch, topic, partition=partition))
    await asyncio.gather(*pending)
    return count


# --- seeding -----------------------------------------------------------------------------------


async def seed(stack: Stack, n: int) -> dict[str, Any]:
    """Makes exactly bench citizens 0..n-1 active in the fanout's index, via the profile topic."""
    redis = Redis.from_url(stack.redis_url)
    try:
        seeded = int(await redis.get(SEED_MARK) or 0)
        began = time.perf_counter()
        now = datetime.now(UTC).isoformat()
        # the sample every seeded value is shaped like must be a valid profile
        CitizenProfile.model_validate_json(profile_value(0, now))
        p = await producer(stack.kafka)
        try:
            parts: list[int] = sorted(await p.partitions_for(CITIZEN_PROFILE))

            def part(key: bytes) -> int:
                return parts[(int(murmur2(key)) & 0x7FFFFFFF) % len(parts)]

            def records() -> Iterator[tuple[int, bytes, bytes | None]]:
                for i in range(seeded, n):
                    key = profile_key(TENANT, citizen_id(i)).encode()
                    yield part(key), key, profile_value(i, now)
                for i in range(n, seeded):  # erased: fewer citizens than last time
                    key = profile_key(TENANT, citizen_id(i)).encode()
                    yield part(key), key, None

            produced = await produce_batched(p, CITIZEN_PROFILE, records())
        finally:
            await p.stop()
        produced_s = time.perf_counter() - began
        await redis.set(SEED_MARK, n)  # on the topic now; a rerun only waits for the index
        while (lag := await index_lag(stack.fanout_url)) != 0:
            say(f"  index: {lag if lag > 0 else 'busy'}: profile records to apply")
            await asyncio.sleep(5)
        return {
            "seed_records": produced,
            "seed_produce_s": round(produced_s, 1),
            "seed_indexed_s": round(time.perf_counter() - began, 1),
        }
    finally:
        await redis.aclose()


# --- alerts and what comes of them ----------------------------------------------------------


def alert(lane: Lane, topic: str, *, expires_in: timedelta) -> AlertPublished:
    now = datetime.now(UTC)
    return AlertPublished.model_validate(
        {
            **EXAMPLES["alert.published"][0],
            "tenant_id": TENANT,
            "alert_id": f"bench-{uuid.uuid4().hex[:16]}",
            "lane": lane.value,
            "severity": "Extreme" if lane is Lane.URGENT else "Minor",
            "audience": {"topics": [topic]},
            "effective": now,
            "published_at": now,
            "expires": now + expires_in,
        }
    )


async def publish(kafka: str, event: AlertPublished) -> float:
    """Produces the alert with a fresh publish time; returns that time (epoch seconds)."""
    now = datetime.now(UTC)
    event = event.model_copy(update={"published_at": now, "effective": now})
    p = await producer(kafka)
    try:
        await p.send_and_wait(
            ALERT_PUBLISHED, event.model_dump_json().encode(), key=event.alert_id.encode()
        )
    finally:
        await p.stop()
    return now.timestamp()


class Watcher:
    """Reads `alert.fanout` and `delivery.receipt` from now on: fanout summaries, and the
    first hand-off of every task of the watched alerts (matched on bytes before parsing, so a
    million foreign receipts cost little)."""

    def __init__(self, kafka: str) -> None:
        self.kafka = kafka
        self.summaries: dict[str, dict[str, Any]] = {}
        self.handoffs: dict[str, dict[str, float]] = {}
        self._needles: dict[bytes, str] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    def watch(self, alert_id: str) -> None:
        self._needles[f'"alert_id":"{alert_id}"'.encode()] = alert_id
        self.handoffs.setdefault(alert_id, {})

    async def __aenter__(self) -> Watcher:
        consumer = AIOKafkaConsumer(
            ALERT_FANOUT,
            DELIVERY_RECEIPT,
            bootstrap_servers=self.kafka,
            enable_auto_commit=False,
            auto_offset_reset="latest",
            fetch_max_bytes=16 * 1024 * 1024,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        await consumer.start()
        await until(
            lambda: {tp.topic for tp in consumer.assignment()} == {ALERT_FANOUT, DELIVERY_RECEIPT},
            30,
            "partition assignment",
        )
        for tp in consumer.assignment():
            await consumer.position(tp)
        self._consumer = consumer
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    async def _run(self) -> None:
        if self._consumer is None:
            raise RuntimeError("enter the watcher first")
        while True:
            batches = await self._consumer.getmany(timeout_ms=200, max_records=20_000)
            for tp, records in batches.items():
                for record in records:
                    if tp.topic == ALERT_FANOUT:
                        value = orjson.loads(record.value)
                        self.summaries[value["alert_id"]] = value
                        continue
                    alert_id = self._match(record.value)
                    if alert_id is None or not any(s in record.value for s in HANDED_OFF):
                        continue
                    value = orjson.loads(record.value)
                    seen = self.handoffs[alert_id]
                    if value["task_id"] not in seen:
                        seen[value["task_id"]] = _epoch(value["occurred_at"])

    def _match(self, raw: bytes) -> str | None:
        for needle, alert_id in self._needles.items():
            if needle in raw:
                return alert_id
        return None

    async def summary(self, alert_id: str, timeout_s: float) -> dict[str, Any]:
        await until(lambda: alert_id in self.summaries, timeout_s, f"summary of {alert_id}")
        return self.summaries[alert_id]


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


async def until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {timeout_s:.0f} s")
        await asyncio.sleep(0.05)


async def truncate_lanes(kafka: str, lanes: tuple[Lane, ...] = (Lane.BULK,)) -> None:
    """Deletes everything on the lanes' delivery topics (tasks a step left undelivered), so the
    next step starts with idle workers; their groups continue from the new log start."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka)
    metadata = await producer(kafka)  # a producer fetches a topic's partitions on request
    await admin.start()
    await consumer.start()
    try:
        topics = [delivery_topic(c, lane) for lane in lanes for c in Channel]
        tps = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(await metadata.partitions_for(topic))
        ]
        ends = await consumer.end_offsets(tps)
        await admin.delete_records({tp: RecordsToDelete(end) for tp, end in ends.items()})
        starts = await consumer.beginning_offsets(tps)
        if any(starts[tp] < end for tp, end in ends.items()):
            raise RuntimeError("the lanes were not truncated")
    finally:
        await metadata.stop()
        await consumer.stop()
        await admin.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


# --- the four measurements -----------------------------------------------------------------


async def raw_reference(kafka: str, count: int, value_size: int) -> dict[str, Any]:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    await admin.start()
    try:
        with contextlib.suppress(Exception):
            await admin.delete_topics([RAW_TOPIC])
            await asyncio.sleep(1)
        for _ in range(30):
            try:
                await admin.create_topics([NewTopic(RAW_TOPIC, 6, 1)])
                break
            except Exception:  # still being deleted
                await asyncio.sleep(1)
        p = await producer(kafka)
        try:
            parts = sorted(await p.partitions_for(RAW_TOPIC))
            values = [os.urandom(value_size // 2).hex().encode() for _ in range(256)]
            keys = [citizen_id(i).encode() for i in range(4096)]
            began = time.perf_counter()
            sent = await produce_batched(
                p,
                RAW_TOPIC,
                ((parts[i % len(parts)], keys[i % 4096], values[i % 256]) for i in range(count)),
            )
            took = time.perf_counter() - began
        finally:
            await p.stop()
        await admin.delete_topics([RAW_TOPIC])
    finally:
        await admin.close()
    return {"raw_msgs": sent, "raw_seconds": round(took, 2), "raw_msgs_per_s": round(sent / took)}


async def fanout_alone(stack: Stack, watcher: Watcher) -> dict[str, Any]:
    pid = stack.fanout_pid()
    stack.stop_workers()
    try:
        peak = rss_mb(pid)
        bulk = alert(Lane.BULK, "news", expires_in=timedelta(minutes=5))
        published = await publish(stack.kafka, bulk)
        done = asyncio.create_task(watcher.summary(bulk.alert_id, 600))
        while not done.done():
            peak = max(peak, rss_mb(pid))
            await asyncio.sleep(0.05)
        summary = done.result()
        took = _epoch(summary["completed_at"]) - published
        tasks = sum(summary["expected"].values())
        return {
            "fanout_seconds": round(took, 2),
            "fanout_tasks": tasks,
            "fanout_expected": summary["expected"],
            "fanout_recipients": summary["recipients"],
            "fanout_tasks_per_s": round(tasks / took),
            "fanout_peak_rss_mb": round(peak, 1),
            "fanout_vm_hwm_mb": round(rss_mb(pid, "VmHWM"), 1),
        }
    finally:
        await truncate_lanes(stack.kafka)
        stack.start_workers()
        await workers_listening(stack.worker_channels)


def _handoff_expected(summary: dict[str, Any], stack: Stack) -> int:
    return sum(v for k, v in summary["expected"].items() if k in stack.worker_channels)


async def end_to_end(stack: Stack, watcher: Watcher, timeout_s: float) -> dict[str, Any]:
    warning = alert(Lane.URGENT, "warn", expires_in=timedelta(minutes=30))
    watcher.watch(warning.alert_id)
    published = await publish(stack.kafka, warning)
    try:
        summary = await watcher.summary(warning.alert_id, 300)
        wanted = _handoff_expected(summary, stack)
        seen = watcher.handoffs[warning.alert_id]
        with contextlib.suppress(TimeoutError):
            await until(lambda: len(seen) >= wanted, timeout_s, "hand-off of every task")
    finally:
        # what is not handed off by now must not queue ahead of the next step's warning, neither
        # on the lanes nor in the workers' memory
        await truncate_lanes(stack.kafka, (Lane.URGENT,))
        await stack.restart_workers()
    latencies = sorted(t - published for t in seen.values())
    # tasks still missing count as later than any measured one
    padded = latencies + [float("inf")] * max(0, wanted - len(latencies))
    return {
        "e2e_tasks": wanted,
        "e2e_handed_off": len(latencies),
        "e2e_within_10s": sum(1 for t in latencies if t <= 10.0),
        "e2e_handoffs_per_s": _rate(latencies),
        "e2e_p50_s": _finite(percentile(padded, 0.5)),
        "e2e_p90_s": _finite(percentile(padded, 0.9)),
        "e2e_p99_s": _finite(percentile(padded, 0.99)),
        "e2e_last_s": _finite(padded[-1]) if padded else None,
    }


def _rate(latencies: list[float]) -> float | None:
    """Hand-offs per second between the first and the last one (sorted latencies)."""
    if len(latencies) < 2 or latencies[-1] <= latencies[0]:
        return None
    return round((len(latencies) - 1) / (latencies[-1] - latencies[0]), 1)


def _finite(value: float) -> float | None:
    return None if value == float("inf") else round(value, 2)


async def priority(stack: Stack, watcher: Watcher, timeout_s: float) -> dict[str, Any]:
    bulk = alert(Lane.BULK, "news", expires_in=timedelta(minutes=10))
    warning = alert(Lane.URGENT, "warn", expires_in=timedelta(minutes=30))
    watcher.watch(warning.alert_id)
    try:
        bulk_published = await publish(stack.kafka, bulk)
        await asyncio.sleep(1.0)
        published = await publish(stack.kafka, warning)
        summary = await watcher.summary(warning.alert_id, 300)
        wanted = _handoff_expected(summary, stack)
        seen = watcher.handoffs[warning.alert_id]
        with contextlib.suppress(TimeoutError):
            await until(lambda: len(seen) >= wanted, timeout_s, "hand-off of every urgent task")
        times = sorted(t - published for t in seen.values())
        bulk_done = watcher.summaries.get(bulk.alert_id)
        return {
            "urgent_tasks": wanted,
            "urgent_handed_off": len(times),
            "urgent_within_10s": sum(1 for t in times if t <= 10.0),
            "urgent_handoffs_per_s": _rate(times),
            "urgent_first_s": round(times[0], 2) if times else None,
            "urgent_p99_s": _finite(
                percentile(times + [float("inf")] * max(0, wanted - len(times)), 0.99)
            )
            if times
            else None,
            "urgent_last_s": round(times[-1], 2) if times and len(times) >= wanted else None,
            "urgent_fanout_s": round(_epoch(summary["completed_at"]) - published, 2),
            "bulk_in_flight_at_urgent_end": bulk_done is None
            or (times and _epoch(bulk_done["completed_at"]) > published + times[-1]),
            "bulk_fanout_s": round(_epoch(bulk_done["completed_at"]) - bulk_published, 2)
            if bulk_done
            else None,
        }
    finally:
        await truncate_lanes(stack.kafka, (Lane.URGENT, Lane.BULK))
        await stack.restart_workers()


# --- driver --------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def snapshots_paused(stack: Stack) -> AsyncIterator[None]:
    """Pauses the dev Redis' background snapshots (`save`) while measuring, restoring the
    setting afterwards: the index of a million citizens makes each snapshot a fork and a
    dump of several hundred MB, which a 2-core machine feels in the next step's figures."""
    redis = Redis.from_url(stack.redis_url)
    try:
        saved = (await redis.config_get("save")).get("save", "")
        await redis.config_set("save", "")
        try:
            yield
        finally:
            await redis.config_set("save", saved)
    finally:
        await redis.aclose()


async def forget_recipients(stack: Stack) -> None:
    """Deletes what the fanout recorded about the bench tenant's alerts (who each reached, for
    an Update or Cancel — a million ids per bulk post, kept two days): otherwise every run
    leaves ~60 MB in Redis, and Redis' background saves of it load the machine during the
    next measurements."""
    redis = Redis.from_url(stack.redis_url)
    try:
        batch: list[bytes] = []
        async for key in redis.scan_iter(match=f"sirene:aud:rcpt:{TENANT}:*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                await redis.unlink(*batch)
                batch = []
        if batch:
            await redis.unlink(*batch)
    finally:
        await redis.aclose()


async def one_run(stack: Stack, n: int, run: int, timeout_s: float, steps: str) -> dict[str, Any]:
    result: dict[str, Any] = {"run": run}
    await forget_recipients(stack)
    if "a" in steps:
        say(f"run {run}: (a) raw reference …")
        sample = min(n, 20_000)
        tasks_estimate = sum(expected_tasks(sample).values()) * n // sample
        result |= await raw_reference(stack.kafka, tasks_estimate, value_size=task_size())
    async with Watcher(stack.kafka) as watcher:
        if "b" in steps:
            say(f"run {run}: (b) fanout of {n} citizens (channel workers stopped) …")
            result |= await fanout_alone(stack, watcher)
            if "raw_msgs_per_s" in result:
                result["fanout_vs_raw"] = round(
                    result["fanout_tasks_per_s"] / result["raw_msgs_per_s"], 3
                )
        if "c" in steps:
            say(f"run {run}: (c) end to end, urgent warning to {min(n, TOWN)} citizens …")
            result |= await end_to_end(stack, watcher, timeout_s)
        if "d" in steps:
            say(f"run {run}: (d) urgent warning while a bulk post to {n} is in flight …")
            result |= await priority(stack, watcher, timeout_s)
    await forget_recipients(stack)
    say(f"run {run}: {json.dumps(result)}")
    return result


def task_size() -> int:
    """Bytes of a typical encoded delivery task (the raw reference produces records this big)."""
    from sirene.fanout.repository import Recipient
    from sirene.fanout.service import TaskEncoder
    from sirene.schemas import Language

    sample = alert(Lane.URGENT, "warn", expires_in=timedelta(hours=1))
    recipient = Recipient(
        citizen_id=citizen_id(1),
        language=Language.DE,
        district="ortsteil-1",
        contacts={"sms": "+4915100000001", "voice": None, "email": None, "push": []},
        subscriptions={"warn": ["sms"]},
    )
    return max(len(value) for _, value in TaskEncoder(sample).encode(recipient))


MEDIAN_KEYS = [
    "raw_msgs_per_s",
    "fanout_seconds",
    "fanout_tasks_per_s",
    "fanout_vs_raw",
    "fanout_peak_rss_mb",
    "e2e_p50_s",
    "e2e_p90_s",
    "e2e_p99_s",
    "e2e_last_s",
    "e2e_within_10s",
    "e2e_handoffs_per_s",
    "urgent_first_s",
    "urgent_p99_s",
    "urgent_last_s",
    "urgent_within_10s",
    "urgent_handoffs_per_s",
]


def median_of(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r.get(key) for r in runs]
    numbers = [float(v) for v in values if v is not None]
    if len(numbers) < len(values):
        return None  # a run did not finish that step within the timeout
    return round(statistics.median(numbers), 3)


def verdict(medians: dict[str, Any]) -> dict[str, bool | None]:
    def at_most(key: str) -> bool | None:
        value = medians.get(key)
        return None if value is None else value <= TARGETS[key]

    def at_least(key: str) -> bool | None:
        value = medians.get(key)
        return None if value is None else value >= TARGETS[key]

    return {
        "fanout_tasks_per_s": at_least("fanout_tasks_per_s"),
        "fanout_vs_raw": at_least("fanout_vs_raw"),
        "fanout_seconds": at_most("fanout_seconds"),
        "e2e_p99_s": at_most("e2e_p99_s"),
        "urgent_first_s": at_most("urgent_first_s"),
        "urgent_last_s": at_most("urgent_last_s"),
        "fanout_peak_rss_mb": at_most("fanout_peak_rss_mb"),
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    stack = Stack()
    stack.check()
    say(f"seeding {args.n} bench citizens (profiles produced to {CITIZEN_PROFILE}) …")
    seeding = await seed(stack, args.n)
    say(f"  {seeding}")
    async with snapshots_paused(stack):
        runs = [
            await one_run(stack, args.n, run, args.timeout, args.steps)
            for run in range(1, args.runs + 1)
        ]
    medians = {key: median_of(runs, key) for key in MEDIAN_KEYS}
    return {
        "bench": "fanout",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "git": git_rev(),
        "n": args.n,
        "town": min(args.n, TOWN),
        "runs": args.runs,
        "handoff_channels": sorted(stack.worker_channels),
        **seeding,
        "median": medians,
        "steps": args.steps,
        "targets_met": verdict(medians)
        if args.n >= 1_000_000 and args.steps == "abcd"
        else "n/a (N below 1,000,000 or not every step)",
        "each_run": runs,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/fanout.py", description=__doc__)
    parser.add_argument("--n", type=int, default=1_000_000, help="synthetic citizens")
    parser.add_argument("--runs", type=int, default=3, help="runs (medians are reported)")
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="seconds to wait for hand-offs per step"
    )
    parser.add_argument("--note", default="", help="remark stored with the result")
    parser.add_argument(
        "--steps", default="abcd", help="which measurements to take (a, b, c, d; default all)"
    )
    parser.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    args = parser.parse_args(argv)
    if args.n < 1 or args.runs < 1:
        parser.error("--n and --runs must be positive")
    if not args.steps or set(args.steps) - set("abcd"):
        parser.error("--steps takes letters from 'abcd'")
    result = asyncio.run(main_async(args))
    print(json.dumps(result, separators=(",", ":")), flush=True)  # the one JSON line
    if not args.no_record:
        record_result(
            f"bench-fanout · {result['date']} · N={result['n']} · runs={result['runs']}",
            result,
            args.note,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
