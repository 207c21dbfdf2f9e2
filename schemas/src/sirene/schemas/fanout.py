"""`fanout.shard.<lane>`: one shard of an alert's audience, expanded by any fanout instance."""

from __future__ import annotations

from pydantic import Field, model_validator

from .alert import AlertPublished
from .common import Event


class FanoutShard(Event):
    """One slice of an alert's audience to expand into delivery tasks.

    Produced by fanout when it consumes `alert.published` (the alert is split into `shards`
    slices of the audience index), consumed by fanout again — by whichever instance owns the
    partition — so several instances expand one alert in parallel. Key: `<alert_id>:<shard>`
    (`<alert_id>:<release>:<shard>` for a quiet-hours release).
    Expanding a shard twice yields the same task ids and is counted once."""

    alert: AlertPublished = Field(description="The alert being expanded.")
    shard: int = Field(ge=0, description="This slice, 0 ≤ shard < shards.")
    shards: int = Field(ge=1, le=4096, description="Slices the audience is split into.")
    release: int | None = Field(
        default=None,
        ge=0,
        description="Set when the shard releases the citizens a bulk post was held back for "
        "during their quiet hours: the epoch second those quiet hours ended. Such a shard "
        "expands only them and is not counted again (the post's totals already include them).",
    )

    @model_validator(mode="after")
    def _in_range(self) -> FanoutShard:
        if self.shard >= self.shards:
            raise ValueError("shard must be below shards")
        if self.tenant_id != self.alert.tenant_id:
            raise ValueError("tenant_id must be the alert's tenant")
        return self


__all__ = ["FanoutShard"]
