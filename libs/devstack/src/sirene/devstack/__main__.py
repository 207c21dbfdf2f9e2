"""`python -m sirene.devstack up|down|infra-up|infra-down|status|seed` — the native local stack.

`make up` and `make down` call this after `deploy/local/install.sh` has installed what it needs.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from sirene.runtime import ensure_topics
from sirene.schemas import TOPICS

from . import demo
from .stack import (
    APNS_SIM_PORT,
    DEV,
    SERVICES,
    SIM,
    StackError,
    infra_procs,
    prometheus_proc,
    prometheus_url,
    recorded_pid,
    service_proc,
    start_all,
    start_together,
    stop_all,
)
from .stack import service as service_named


def echo(line: str) -> None:
    print(line, flush=True)  # noqa: T201 - this is a command-line tool


def infra_up() -> None:
    echo("Starting infrastructure (Kafka, FerretDB, Redis) …")
    start_all(infra_procs(DEV), echo=echo)
    asyncio.run(ensure_topics(DEV.kafka_url, list(TOPICS)))
    echo(f"  topics         {len(TOPICS)} ensured")


def services_up() -> None:
    echo("Starting services …")
    start_together([service_proc(s, DEV) for s in SERVICES], echo=echo)


def ops_up() -> None:
    echo("Starting Prometheus …")
    start_all([prometheus_proc(DEV)], echo=echo)


def seed() -> dict[str, int]:
    subscriptions = service_named("subscriptions").url(DEV)
    created = demo.seed(subscriptions)
    demo.wait_until_routable(subscriptions, service_named("fanout").url(DEV))
    created |= demo.seed_staff(service_named("publisher").url(DEV))
    return created


def up(*, with_seed: bool) -> None:
    began = time.monotonic()
    infra_up()
    services_up()
    ops_up()
    if with_seed:
        echo("Seeding the demo municipality 'musterstadt' …")
        created = seed()
        echo(
            f"  created {created['topics']} topics and {created['citizens']} citizens "
            "(existing ones kept); all profiles are in the fanout's audience index"
        )
    echo(f"\nSirene is up ({time.monotonic() - began:.0f} s). URLs:")
    for svc in SERVICES:
        echo(f"  {svc.name:<16} {svc.url(DEV)}")
    echo(f"  {'simulated phones':<16} {SIM.url(DEV)}/")
    echo(f"  {'APNs simulator':<16} https://127.0.0.1:{APNS_SIM_PORT}")
    echo(f"  {'kafka':<16} {DEV.kafka_url}")
    echo(f"  {'mongodb':<16} {DEV.mongodb_uri}  (FerretDB)")
    echo(f"  {'redis':<16} {DEV.redis_url}")
    echo(f"  {'prometheus':<16} {prometheus_url(DEV)}  (alert rules: deploy/prometheus/rules/)")
    echo(f"\nStaff API token of the demo tenant: {demo.DEV_TOKEN}")
    echo(
        f"Staff console: {service_named('publisher').url(DEV)}/console/ (Kommune musterstadt; "
        f"users {', '.join(u for u, _, _ in demo.STAFF)}; password {demo.STAFF_PASSWORD})"
    )
    echo(f"Logs: {DEV.logs}/  ·  stop everything: make down")


def down() -> None:
    echo("Stopping Sirene …")
    stop_all([prometheus_proc(DEV)], echo=echo)
    stop_all([service_proc(s, DEV) for s in SERVICES], echo=echo)
    stop_all(infra_procs(DEV), echo=echo)


def status() -> int:
    procs = [*infra_procs(DEV), *(service_proc(s, DEV) for s in SERVICES), prometheus_proc(DEV)]
    down_count = 0
    for proc in procs:
        pid = recorded_pid(proc)
        ok = pid is not None and proc.ready()
        down_count += not ok
        echo(
            f"  {proc.name:<14} {'up' if ok else 'down':<5} port {proc.port}"
            + (f" pid {pid}" if pid else "")
        )
    return 1 if down_count else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sirene.devstack", description=__doc__)
    parser.add_argument(
        "command", choices=["up", "down", "infra-up", "infra-down", "status", "seed"]
    )
    parser.add_argument("--no-seed", action="store_true", help="up: skip the demo data")
    args = parser.parse_args(argv)
    try:
        match args.command:
            case "up":
                up(with_seed=not args.no_seed)
            case "down":
                down()
            case "infra-up":
                infra_up()
            case "infra-down":
                stop_all(infra_procs(DEV), echo=echo)
            case "status":
                return status()
            case "seed":
                echo(str(seed()))
    except StackError as exc:
        echo(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
