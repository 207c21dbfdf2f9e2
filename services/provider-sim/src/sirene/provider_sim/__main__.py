"""``python -m sirene.provider_sim``: run the HTTP API and the APNs server in one process."""

from __future__ import annotations

import asyncio
import logging

import uvloop

from sirene.provider_sim.app import ProviderSimulator
from sirene.provider_sim.settings import SimSettings


async def _main(settings: SimSettings) -> None:
    simulator = ProviderSimulator(settings, handle_signals=True)
    await simulator.start()
    try:
        await simulator.wait()
    finally:
        await simulator.stop()


def main() -> None:
    settings = SimSettings()
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # uvloop: the simulator stands in for providers that are not on this machine, so its own
    # per-request cost should be as small as it can be (it shares the CPU with the workers).
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_main(settings))


if __name__ == "__main__":
    main()
