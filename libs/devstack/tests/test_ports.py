"""The native stack's ports: distinct across the dev and test stacks of every slot, and below
Linux's ephemeral port range, so no outgoing connection can hold one the stack is to bind."""

from __future__ import annotations

from pathlib import Path

from sirene.devstack.stack import Layout

EPHEMERAL_START = 32768


def _ports(layout: Layout) -> list[int]:
    return [
        layout.kafka_port,
        layout.kafka_controller_port,
        layout.mongo_port,
        layout.redis_port,
        layout.ferretdb_debug_port,
    ]


def test_every_stack_port_is_unique_and_below_the_ephemeral_range() -> None:
    layouts = [Layout(f"dev{n}", Path("."), 100 * n) for n in range(10)] + [
        Layout(f"test{n}", Path("."), 1000 + 100 * n) for n in range(10)
    ]
    ports = [port for layout in layouts for port in _ports(layout)]
    assert len(ports) == len(set(ports)), "two stacks would bind the same port"
    assert max(ports) < EPHEMERAL_START
    assert min(ports) > 1024
