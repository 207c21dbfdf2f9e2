"""Kafka subscribers of issues.

None: reports arrive over HTTP (portal, API, Open311). What issues produces
(`notification.requested`) leaves through the relay in `notify.py`."""

from __future__ import annotations

from sirene.runtime import Infra


def register_handlers(infra: Infra) -> None:
    """Declares the service's consumers on `infra.broker` (none)."""
    del infra
