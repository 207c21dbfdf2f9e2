"""What each call must say, kept in Redis by task id until shortly after the task expires
(the TwiML webhook reads it while the call is up; nothing about a call is stored in MongoDB)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis

from sirene.schemas import DeliveryTask, Language

SCRIPT_PREFIX = "sirene:voice:script:"


@dataclass(frozen=True, slots=True)
class Script:
    """The text a call speaks, and its language."""

    text: str
    language: Language
    task: DeliveryTask | None = None
    """The whole task, so a busy or unanswered call can be tried again from its callback."""


class ScriptStore:
    """`sirene:voice:script:<task_id>` → `{"text", "language", "task"}` with a TTL."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    @staticmethod
    def _value(script: Script) -> str:
        return json.dumps(
            {
                "text": script.text,
                "language": script.language.value,
                "task": script.task.model_dump(mode="json") if script.task else None,
            }
        )

    async def put(self, task_id: str, script: Script, *, ttl_s: int) -> None:
        await self._redis.set(f"{SCRIPT_PREFIX}{task_id}", self._value(script), ex=max(ttl_s, 1))

    async def put_many(self, entries: Sequence[tuple[str, Script, int]]) -> None:
        """`put` for many `(task_id, script, ttl_s)` at once, in one round trip."""
        if not entries:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for task_id, script, ttl_s in entries:
                pipe.set(f"{SCRIPT_PREFIX}{task_id}", self._value(script), ex=max(ttl_s, 1))
            await pipe.execute()

    async def get(self, task_id: str) -> Script | None:
        raw = await self._redis.get(f"{SCRIPT_PREFIX}{task_id}")
        if raw is None:
            return None
        value = json.loads(raw)
        task = value.get("task")
        return Script(
            text=str(value["text"]),
            language=Language(value["language"]),
            task=DeliveryTask.model_validate(task) if task else None,
        )

    async def drop(self, task_id: str) -> None:
        await self._redis.delete(f"{SCRIPT_PREFIX}{task_id}")
