"""What each call must say, kept in Redis by task id until shortly after the task expires
(the TwiML webhook reads it while the call is up; nothing about a call is stored in MongoDB)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from redis.asyncio import Redis

from sirene.schemas import Language

SCRIPT_PREFIX = "sirene:voice:script:"


@dataclass(frozen=True, slots=True)
class Script:
    """The text a call speaks, and its language."""

    text: str
    language: Language


class ScriptStore:
    """`sirene:voice:script:<task_id>` → `{"text", "language"}` with a TTL."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def put(self, task_id: str, script: Script, *, ttl_s: int) -> None:
        value = json.dumps({"text": script.text, "language": script.language.value})
        await self._redis.set(f"{SCRIPT_PREFIX}{task_id}", value, ex=max(ttl_s, 1))

    async def get(self, task_id: str) -> Script | None:
        raw = await self._redis.get(f"{SCRIPT_PREFIX}{task_id}")
        if raw is None:
            return None
        value = json.loads(raw)
        return Script(text=str(value["text"]), language=Language(value["language"]))

    async def drop(self, task_id: str) -> None:
        await self._redis.delete(f"{SCRIPT_PREFIX}{task_id}")
