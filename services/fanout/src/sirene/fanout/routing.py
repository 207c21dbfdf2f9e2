"""Where a citizen's tasks go: their contact points per channel, and the per-task parts of a
delivery task that depend only on the citizen ("routes"). Routes are computed once, when a
profile is indexed, instead of once per task of every alert: the expansion of an alert then
only hashes the task id and joins bytes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from sirene.schemas import Channel, contact_key_for

CHANNEL_ORDER = tuple(sorted(c.value for c in Channel))
"""Channels in the order a citizen's tasks are emitted (the order of `sorted(set[Channel])`)."""

Routes = dict[str, list[list[str]]]
"""Channel → one `[task id suffix, JSON tail]` per active contact point. The suffix is
`citizen␟channel␟contact key` (the task id is sha256 of `alert␟` + suffix, see
`sirene.schemas.task_id_for`); the tail is the task's per-citizen JSON fields and the closing
brace: `"citizen_id":…,"address":…,"push_platform":…,"fallback_address":…}`."""


def addresses(channel: str, contacts: dict[str, Any]) -> Iterator[tuple[str, str | None]]:
    """(address, push platform) of a citizen's active contact points on a channel."""
    if channel == Channel.PUSH:
        for platform, token in contacts.get("push") or []:
            yield token, platform
        return
    address = contacts.get(channel)
    if isinstance(address, str) and address:
        yield address, None


def fallback_address(channel: str, contacts: dict[str, Any]) -> str | None:
    """For a push task, the citizen's mobile: where the push worker falls back to SMS when the
    device is gone (only for tenants that enable fallback; see `sirene.runtime.delivery`)."""
    if channel != Channel.PUSH:
        return None
    mobile = contacts.get("sms")
    return mobile if isinstance(mobile, str) and mobile else None


def routes_for(citizen_id: str, contacts: dict[str, Any]) -> Routes:
    """The citizen's routes (see `Routes`); channels without an active contact are absent."""
    routes: Routes = {}
    for channel in CHANNEL_ORDER:
        fallback = fallback_address(channel, contacts)
        for address, platform in addresses(channel, contacts):
            tail = orjson.dumps(
                {
                    "citizen_id": citizen_id,
                    "address": address,
                    "push_platform": platform,
                    "fallback_address": fallback,
                }
            )
            routes.setdefault(channel, []).append(
                [f"{citizen_id}\x1f{channel}\x1f{contact_key_for(address)}", tail[1:].decode()]
            )
    return routes
