"""`make bench-channels`: hand-off throughput of each channel worker (SMS, voice, push, e-mail)
as a ratio against a raw reference measured in the same run.

Per channel and run:
- *raw*: the same client library the worker uses (twilio async client, aioapns, aiosmtplib)
  posting N requests to the same simulator in a tight loop with the worker's concurrency;
- *worker*: N tasks produced to `delivery.<channel>.urgent` at once, then the worker (served
  in-process, real Kafka and Redis) consumes, claims, hands off and emits receipts; measured at
  the simulator from the first to the last accepted hand-off (the simulator's ledger times).

Throughput = (N - 1) / span; ratio = worker / raw. Also the CPU time of this process (worker,
simulator and bench share it) per accepted hand-off, `*_cpu_ms`, from the first request or
task until the N-th acceptance: on a shared machine a rate swings with the other load, the
CPU a hand-off costs much less. Medians of `--runs` runs are reported. `--loop asyncio` runs
on the standard event loop (the services run on uvloop) to compare with older code.
Infrastructure: the tests' own local stack (`SIRENE_TEST_SLOT` picks its ports), or servers
named by `SIRENE_KAFKA` / `SIRENE_MONGODB_URI` / `SIRENE_REDIS_URL`. Status callbacks are
dropped by the simulator (they are not part of the hand-off). Prints one JSON line and appends
it with machine and date to `bench/RESULTS.md`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import ssl
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
import httpx
import uvloop
from _results import git_rev, machine
from _results import record as record_result
from aioapns import APNs, NotificationRequest, PushType
from aioapns.connection import APNsProductionClientProtocol
from fastapi import FastAPI
from twilio.rest import Client

from sirene.channel_email.app import create_app as email_app
from sirene.channel_email.settings import ChannelEmailSettings
from sirene.channel_push.app import create_app as push_app
from sirene.channel_push.settings import ChannelPushSettings
from sirene.channel_sms.app import create_app as sms_app
from sirene.channel_sms.settings import ChannelSmsSettings
from sirene.channel_voice.app import create_app as voice_app
from sirene.channel_voice.settings import ChannelVoiceSettings
from sirene.devstack.channel_testing import make_task, send_tasks_in_bulk, serve_worker
from sirene.devstack.testing import InfraUrls, real_infra
from sirene.provider_sim.app import ProviderSimulator
from sirene.provider_sim.settings import SimSettings
from sirene.runtime.twilio import DEV_ACCOUNT_SID, DEV_AUTH_TOKEN, BaseUrlTwilioHttpClient
from sirene.schemas import Channel, DeliveryTask, Lane, PushPlatform, delivery_topic

CONCURRENCY = 64
SIM_SERVICE = {
    Channel.SMS: "sms",
    Channel.VOICE: "voice",
    Channel.PUSH: "push",
    Channel.EMAIL: "email",
}


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _sim_times(sim: ProviderSimulator, service: str, since: float) -> list[float]:
    """The simulator's acceptance times of `service` since `since`, read in-process (the
    simulator runs in this process; polling it over HTTP cost ~10 % of the CPU under test)."""
    times: list[float] = []
    for t in reversed(sim.service.faults.times[service]):
        if t < since:
            break
        times.append(t)
    times.reverse()
    return times


async def _wait_accepted(
    sim: ProviderSimulator, service: str, since: float, n: int, timeout_s: float
) -> list[float]:
    deadline = time.monotonic() + timeout_s
    while True:
        times = _sim_times(sim, service, since)
        if len(times) >= n or time.monotonic() > deadline:
            return times
        await asyncio.sleep(0.25)


def _rate(times: list[float]) -> float | None:
    if len(times) < 2 or times[-1] <= times[0]:
        return None
    return (len(times) - 1) / (times[-1] - times[0])


async def _bounded(n: int, call: Callable[[int], Awaitable[Any]]) -> None:
    """`call(i)` for i < n with CONCURRENCY in flight (errors count as hand-offs refused)."""
    queue = iter(range(n))

    async def runner() -> None:
        for i in queue:
            with contextlib.suppress(Exception):
                await call(i)

    await asyncio.gather(*(runner() for _ in range(CONCURRENCY)))


# --- raw references: the worker's client library, straight to the simulator ----------------


async def raw_twilio(sim: ProviderSimulator, n: int, *, voice: bool) -> None:
    http = BaseUrlTwilioHttpClient(sim.http_url, timeout_s=30, max_connections=CONCURRENCY)
    client = Client(DEV_ACCOUNT_SID, DEV_AUTH_TOKEN, http_client=http)
    tag = uuid.uuid4().hex[:8]
    try:

        async def one(i: int) -> None:
            callback = f"http://127.0.0.1:9/raw?k={tag}{i:024d}"
            to = f"+4917{i % 10**9:09d}"
            if voice:
                await client.calls.create_async(
                    to=to,
                    from_="+15005550006",
                    twiml="<Response><Hangup/></Response>",
                    status_callback=callback,
                )
            else:
                await client.messages.create_async(
                    to=to, from_="+15005550006", body=f"Warnung {i}", status_callback=callback
                )

        await _bounded(n, one)
    finally:
        await http.close()


async def raw_apns(sim: ProviderSimulator, n: int, settings: ChannelPushSettings) -> None:
    apns = APNs(
        key=settings.signing_key(),
        key_id=settings.apns_key_id,
        team_id=settings.apns_team_id,
        topic=settings.apns_topic,
        max_connections=settings.apns_max_connections,
        ssl_context=ssl.create_default_context(cafile=str(settings.resolved_ca_file)),
    )

    class Protocol(APNsProductionClientProtocol):
        APNS_SERVER = "127.0.0.1"
        APNS_PORT = sim.apns_port

    apns.pool.protocol_class = Protocol
    try:

        async def one(i: int) -> None:
            await apns.send_notification(
                NotificationRequest(
                    device_token=f"{i:064x}",
                    message={"aps": {"alert": {"title": "Warnung", "body": f"Warnung {i}"}}},
                    push_type=PushType.ALERT,
                )
            )

        await _bounded(n, one)
    finally:
        apns.pool.close()


async def raw_smtp(sim: ProviderSimulator, n: int, pool_size: int) -> None:
    clients = [aiosmtplib.SMTP(hostname="127.0.0.1", port=sim.smtp_port) for _ in range(pool_size)]
    for client in clients:
        await client.connect()
    idle: asyncio.Queue[aiosmtplib.SMTP] = asyncio.Queue()
    for client in clients:
        idle.put_nowait(client)
    try:

        async def one(i: int) -> None:
            message = EmailMessage()
            message["From"] = "warnung@sirene.invalid"
            message["To"] = f"b{i}@example.org"
            message["Subject"] = "Warnung"
            message.set_content(f"Warnung {i}")
            message.add_alternative(f"<p>Warnung {i}</p>", subtype="html")
            client = await idle.get()
            try:
                await client.send_message(message)
            finally:
                idle.put_nowait(client)

        await _bounded(n, one)
    finally:
        for client in clients:
            with contextlib.suppress(Exception):
                await client.quit()


# --- the workers ----------------------------------------------------------------------------


def _worker(
    channel: Channel, infra: InfraUrls, sim: ProviderSimulator
) -> tuple[Callable[[int], Any], Callable[[Any], FastAPI]]:
    common: dict[str, Any] = {**infra.settings_kwargs(), "provider_concurrency": CONCURRENCY}
    if channel is Channel.SMS:
        return (
            lambda port: ChannelSmsSettings(
                **common,
                http_port=port,
                public_url=f"http://127.0.0.1:{port}",
                twilio_api_url=sim.http_url,
            ),
            sms_app,
        )
    if channel is Channel.VOICE:
        return (
            lambda port: ChannelVoiceSettings(
                **common,
                http_port=port,
                public_url=f"http://127.0.0.1:{port}",
                twilio_api_url=sim.http_url,
                rate_limit_per_s=0,
            ),
            voice_app,
        )
    if channel is Channel.PUSH:
        return (
            lambda port: ChannelPushSettings(
                **common,
                http_port=port,
                apns_host="127.0.0.1",
                apns_port=sim.apns_port,
                apns_cert_dir=sim.settings.cert_dir,
                fcm_api_url=sim.http_url,
            ),
            push_app,
        )
    return (
        lambda port: ChannelEmailSettings(
            **{**common, "provider_concurrency": 8},
            http_port=port,
            public_url=f"http://127.0.0.1:{port}",
            smtp_port=sim.smtp_port,
        ),
        email_app,
    )


def _tasks(channel: Channel, n: int) -> list[DeliveryTask]:
    tenant = f"bench-{uuid.uuid4().hex[:8]}"
    alert = f"a-{uuid.uuid4().hex[:12]}"
    tasks = []
    for i in range(n):
        if channel is Channel.PUSH:
            address, extra = f"{i:064x}", {"push_platform": PushPlatform.APNS, "title": "Warnung"}
        elif channel is Channel.EMAIL:
            address, extra = f"b{i}@example.org", {"title": "Warnung"}
        else:
            address, extra = f"+4916{i % 10**9:09d}", {}
        tasks.append(
            make_task(
                tenant,
                address,
                channel=channel,
                alert_id=alert,
                citizen_id=f"c-{i}",
                body=f"Hochwasserwarnung {alert} {i}",
                **extra,
            )
        )
    return tasks


async def one_run(
    channel: Channel, n: int, infra: InfraUrls, sim: ProviderSimulator, timeout_s: float
) -> dict[str, Any]:
    service = SIM_SERVICE[channel]
    settings_for, create_app = _worker(channel, infra, sim)
    # raw reference
    since, cpu0 = time.time(), time.process_time()
    if channel is Channel.SMS or channel is Channel.VOICE:
        await raw_twilio(sim, n, voice=channel is Channel.VOICE)
    elif channel is Channel.PUSH:
        await raw_apns(sim, n, settings_for(0))
    else:
        await raw_smtp(sim, n, 8)
    raw = _rate(await _wait_accepted(sim, service, since, n, timeout_s))
    raw_cpu = time.process_time() - cpu0
    await sim.service.drain()
    # the worker
    tasks = _tasks(channel, n)
    async with serve_worker(settings_for, create_app):
        since, cpu0 = time.time(), time.process_time()
        await send_tasks_in_bulk(infra.kafka, delivery_topic(channel, Lane.URGENT), tasks)
        accepted = await _wait_accepted(sim, service, since, n, timeout_s)
        worker_cpu = time.process_time() - cpu0
    worker = _rate(accepted)
    await sim.service.drain()
    return {
        "channel": channel.value,
        "n": n,
        "raw_per_s": round(raw, 1) if raw else None,
        "worker_per_s": round(worker, 1) if worker else None,
        "handed_off": len(accepted),
        "ratio": round(worker / raw, 3) if worker and raw else None,
        # CPU of this process (worker + simulator + bench) per accepted hand-off, in ms: what a
        # hand-off costs, much less sensitive to other load on a shared machine than a rate
        "raw_cpu_ms": round(1000 * raw_cpu / n, 3),
        "worker_cpu_ms": round(1000 * worker_cpu / max(1, len(accepted)), 3),
    }


@contextlib.asynccontextmanager
async def simulator() -> AsyncIterator[ProviderSimulator]:
    with tempfile.TemporaryDirectory() as certs:
        settings = SimSettings(
            http_port=0,
            apns_port=0,
            smtp_port=0,
            cert_dir=Path(certs),
            status_callback_delay=0.01,
            max_phones=200_000,
            max_resources=200_000,
            log_level="WARNING",
        )
        async with ProviderSimulator(settings) as sim:
            async with httpx.AsyncClient(base_url=sim.http_url) as http:
                await http.put("/sim/faults", json={"callbacks": {"drop": True}})
            yield sim


async def main_async(args: argparse.Namespace, infra: InfraUrls) -> dict[str, Any]:
    channels = [Channel(c) for c in args.channels.split(",")]
    per_channel: dict[str, Any] = {}
    async with simulator() as sim:
        for channel in channels:
            n = args.n_email if channel is Channel.EMAIL else args.n
            runs = []
            for run in range(1, args.runs + 1):
                result = await one_run(channel, n, infra, sim, args.timeout)
                say(f"{channel.value} run {run}: {json.dumps(result)}")
                runs.append(result)
            per_channel[channel.value] = {
                key: _median([r[key] for r in runs])
                for key in ("raw_per_s", "worker_per_s", "ratio", "raw_cpu_ms", "worker_cpu_ms")
            } | {"n": n, "each_run": runs}
    return {
        "bench": "channels",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "git": git_rev(),
        "runs": args.runs,
        "concurrency": CONCURRENCY,
        "loop": args.loop,
        "median": {
            c: {
                k: v[k]
                for k in ("raw_per_s", "worker_per_s", "ratio", "raw_cpu_ms", "worker_cpu_ms")
            }
            for c, v in per_channel.items()
        },
        "channels": per_channel,
    }


def _median(values: list[Any]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 3) if present else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/channels.py", description=__doc__)
    parser.add_argument("--n", type=int, default=2000, help="hand-offs per run (SMS/voice/push)")
    parser.add_argument("--n-email", type=int, default=500, help="hand-offs per e-mail run")
    parser.add_argument("--runs", type=int, default=3, help="runs per channel (medians)")
    parser.add_argument("--channels", default="sms,voice,push,email")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per measurement")
    parser.add_argument("--note", default="", help="remark stored with the result")
    parser.add_argument(
        "--loop",
        choices=("uvloop", "asyncio"),
        default="uvloop",
        help="event loop (the services run on uvloop; asyncio to compare with older code)",
    )
    parser.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    args = parser.parse_args(argv)
    if args.n < 2 or args.n_email < 2 or args.runs < 1:
        parser.error("--n, --n-email must be >= 2 and --runs >= 1")
    with (
        real_infra() as infra,
        # the loop the services run on (`sirene.runtime.serve`, the simulator's __main__)
        asyncio.Runner(
            loop_factory=uvloop.new_event_loop if args.loop == "uvloop" else None
        ) as runner,
    ):
        result = runner.run(main_async(args, infra))
    print(json.dumps(result, separators=(",", ":")), flush=True)  # the one JSON line
    if not args.no_record:
        record_result(
            f"bench-channels · {result['date']} · runs={result['runs']}", result, args.note
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
