"""The fanout's own HTTP surface: index status for operators and tests."""

from __future__ import annotations

from fastapi import APIRouter

from .handlers import ProfileFollower


def index_router(follower: ProfileFollower) -> APIRouter:
    """`GET /api/v1/index/status`: how far the audience index trails the profile topic."""
    router = APIRouter(prefix="/api/v1/index", tags=["index"])

    @router.get("/status")
    async def status() -> dict[str, int]:
        return {"lag": await follower.lag(), "partitions": len(follower.partitions)}

    return router
