"""``python -m sirene.provider_sim``: run the HTTP API and the APNs server in one process."""

from __future__ import annotations

import asyncio
import logging

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
    asyncio.run(_main(settings))


if __name__ == "__main__":
    main()
