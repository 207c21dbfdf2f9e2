"""Kafka subscribers of issues.

None yet: reports arrive over HTTP only. Routing to departments and `notification.requested`
for reporters come with the issue workflow."""

from __future__ import annotations

from sirene.runtime import Infra


def register_handlers(infra: Infra) -> None:
    """Declares the service's consumers on `infra.broker` (none so far)."""
    del infra
