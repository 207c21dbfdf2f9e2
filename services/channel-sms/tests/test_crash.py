"""Crash: kill -9 the SMS worker (a real process) in the middle of a 20,000-task alert and
start it again; every task reaches the simulator exactly once, counted per task id."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from sirene.devstack.channel_testing import (
    free_socket,
    ledger_counts,
    send_tasks_in_bulk,
    sim_faults,
)
from sirene.devstack.testing import InfraUrls
from sirene.provider_sim.app import ProviderSimulator
from sirene.runtime import ensure_topics
from sirene.schemas import Channel, Lane, delivery_topic, retry_topic

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]

TASKS = 20_000
KILL_AFTER = 5_000
URGENT = delivery_topic(Channel.SMS, Lane.URGENT)


async def _start_groups_at_the_end(bootstrap: str, prefix: str) -> None:
    """Commits the current end offsets for the worker's consumer groups, so the fresh groups
    start exactly here ('earliest' after a crash must not replay other tests' records)."""
    topics = {
        "urgent": URGENT,
        "bulk": delivery_topic(Channel.SMS, Lane.BULK),
        **{f"retry.{tier}": retry_topic(Channel.SMS, tier) for tier in ("10s", "1m", "10m")},
    }
    await ensure_topics(bootstrap, list(topics.values()))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        numbers = {topic: sorted(await producer.partitions_for(topic)) for topic in topics.values()}
    finally:
        await producer.stop()
    for name, topic in topics.items():
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=f"{prefix}channel-sms.{name}",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            partitions = [TopicPartition(topic, p) for p in numbers[topic]]
            consumer.assign(partitions)
            ends = await consumer.end_offsets(partitions)
            await consumer.commit(dict(ends.items()))
        finally:
            await consumer.stop()


def _start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    return subprocess.Popen(
        [sys.executable, "-m", "sirene.channel_sms"],
        env={
            **env,
            "SIRENE_CHANNEL_SMS_HTTP_PORT": str(port),
            "SIRENE_CHANNEL_SMS_PUBLIC_URL": f"http://127.0.0.1:{port}",
        },
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


async def _accepted(sim: ProviderSimulator) -> int:
    async with httpx.AsyncClient(base_url=sim.http_url) as http:
        response = await http.get("/sim/ledger")
        return int(response.json()["tasks"])


async def _wait_for(
    sim: ProviderSimulator, target: int, *, timeout_s: float, workers: Sequence[Any]
) -> int:
    deadline = time.monotonic() + timeout_s
    while (seen := await _accepted(sim)) < target:
        for worker in workers:
            assert worker.poll() is None, "the worker died by itself"
        assert time.monotonic() < deadline, f"only {seen} of {target} tasks reached the provider"
        await asyncio.sleep(0.5)
    return seen


async def test_kill_9_mid_alert_every_task_reaches_the_provider_exactly_once(
    sirene_infra: InfraUrls,
    simulator: ProviderSimulator,
    tenant: str,
    task_factory: Any,
    tmp_path: Path,
) -> None:
    prefix = f"test-crash-{uuid.uuid4().hex[:8]}."
    env = {
        **os.environ,
        **sirene_infra.settings_env(),
        "SIRENE_KAFKA_GROUP_PREFIX": prefix,
        "SIRENE_KAFKA_OFFSET_RESET": "earliest",
        "SIRENE_LOG_LEVEL": "WARNING",
        "SIRENE_CHANNEL_SMS_TWILIO_API_URL": simulator.http_url,
        "SIRENE_CHANNEL_SMS_LEASE_S": "5",
        "SIRENE_CHANNEL_SMS_PROVIDER_CONCURRENCY": "64",
    }
    alert = f"a-{uuid.uuid4().hex[:12]}"
    tasks = [
        task_factory(
            tenant,
            f"+4916{i:09d}",
            alert_id=alert,
            citizen_id=f"c-{i}",
            body=f"Hochwasserwarnung {alert} #{i}",
        )
        for i in range(TASKS)
    ]
    await _start_groups_at_the_end(sirene_infra.kafka, prefix)
    log = tmp_path / "worker.log"
    baseline = await _accepted(simulator)
    async with sim_faults(simulator, callbacks={"drop": True}):
        await send_tasks_in_bulk(sirene_infra.kafka, URGENT, tasks)
        first = _start_worker(env, log)
        second: subprocess.Popen[bytes] | None = None
        try:
            await _wait_for(simulator, baseline + KILL_AFTER, timeout_s=600, workers=[first])
            first.send_signal(signal.SIGKILL)  # kill -9: no shutdown, leases left behind
            first.wait(timeout=30)
            killed_at = await _accepted(simulator) - baseline
            assert killed_at < TASKS, "the alert was over before the crash"
            second = _start_worker(env, log)
            await _wait_for(simulator, baseline + TASKS, timeout_s=900, workers=[second])
            await asyncio.sleep(3)  # a late duplicate would show up now
            counts = await ledger_counts(simulator, [t.task_id for t in tasks])
        finally:
            for worker in (first, second):
                if worker is not None and worker.poll() is None:
                    worker.terminate()
                    try:
                        worker.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        worker.kill()
    missing = [t for t, n in counts.items() if n == 0]
    doubled = {t: n for t, n in counts.items() if n > 1}
    assert not missing, f"{len(missing)} tasks lost"
    assert not doubled, f"{len(doubled)} tasks sent twice (killed after {killed_at})"
    assert len(counts) == TASKS
