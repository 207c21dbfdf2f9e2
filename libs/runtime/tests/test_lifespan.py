"""The shared lifespan starts in order and stops in reverse, also when the app fails."""

from __future__ import annotations

from typing import cast

import pytest
from fastapi import FastAPI

from sirene.runtime import Infra, infra_lifespan
from sirene.runtime.outbox import OutboxRelay


class _Recorder:
    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log

    async def prepare(self) -> None:
        self.log.append(f"{self.name}.prepare")

    async def start(self) -> None:
        self.log.append(f"{self.name}.start")

    async def stop(self) -> None:
        self.log.append(f"{self.name}.stop")


class _Relay(_Recorder):
    def start(self) -> None:  # type: ignore[override]  # OutboxRelay.start is synchronous
        self.log.append(f"{self.name}.start")


async def test_prepare_infra_relays_then_reverse() -> None:
    log: list[str] = []
    infra = _Recorder("infra", log)
    relays = [_Relay("r1", log), _Relay("r2", log)]
    lifespan = infra_lifespan(
        cast(Infra, infra),
        prepare=[_Recorder("indexes", log).prepare],
        relays=cast(list[OutboxRelay], relays),
    )

    async def serve() -> None:
        async with lifespan(FastAPI()):
            log.append("serving")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await serve()
    assert log == [
        "indexes.prepare",
        "infra.start",
        "r1.start",
        "r2.start",
        "serving",
        "r2.stop",
        "r1.stop",
        "infra.stop",
    ]
