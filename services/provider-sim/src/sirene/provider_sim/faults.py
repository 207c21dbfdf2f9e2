"""Fault injection, controlled per test through `PUT /sim/faults` (and reset by `DELETE
/sim/faults` or `POST /sim/reset`): what real providers do to a sender on a bad day.

- `latency`: a delay distribution for every provider API request (fixed, uniform, exponential);
- `rate_limit`: requests per second per service (`sms`, `voice`, `push`) with a burst; over it
  Twilio answers 429 / error 20429, APNs and FCM 429;
- `outage_s` (+ `outage_services`): every request of those services answers 503 for that many
  seconds from now;
- `number_errors`: permanent errors for number patterns (regex): 21211 invalid and 21610
  unsubscribed are refused by the API; 30003/30005/30006 are accepted and then reported
  undelivered by the status callback;
- `callbacks`: status callbacks delayed by `delay_s` or dropped (`drop`);
- `call_sequences`: per number, the outcomes of its next calls in order (e.g. busy, then
  completed); afterwards the phone's behaviour applies again.

The *ledger* counts accepted hand-offs per task id (the `k` query parameter that Sirene's
callback URLs carry) and keeps acceptance times per service, so tests can check exactly-once
delivery and measure sustained rates at the provider's side."""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections import Counter, deque
from typing import Literal
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict, Field

from sirene.provider_sim.state import CallOutcome, PhoneBehaviour

Service = Literal["sms", "voice", "push", "email"]
SERVICES: tuple[Service, ...] = ("sms", "voice", "push", "email")

API_ERRORS: dict[int, tuple[int, str]] = {
    21211: (400, "The 'To' number is not a valid phone number."),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21614: (400, "'To' number is not a valid mobile number"),
}
DELIVERY_ERRORS = frozenset({30003, 30005, 30006, 30007, 30008})

MAX_LEDGER_TASKS = 2_000_000
MAX_TIMES = 200_000


class Latency(BaseModel):
    model_config = ConfigDict(extra="forbid")

    distribution: Literal["fixed", "uniform", "exponential"] = "uniform"
    min_ms: float = Field(default=0, ge=0, le=60_000)
    max_ms: float = Field(default=0, ge=0, le=60_000)
    mean_ms: float = Field(default=0, ge=0, le=60_000, description="fixed/exponential")

    def sample_s(self) -> float:
        if self.distribution == "fixed":
            return self.mean_ms / 1000
        if self.distribution == "exponential":
            value = random.expovariate(1 / self.mean_ms) if self.mean_ms > 0 else 0.0
            return min(self.min_ms + value, max(self.max_ms, self.min_ms + value)) / 1000
        return random.uniform(self.min_ms, max(self.min_ms, self.max_ms)) / 1000  # noqa: S311


class RateLimit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    per_s: float = Field(gt=0, le=100_000)
    burst: float = Field(default=1, ge=1, le=100_000)


def _both_twilio_services() -> list[Literal["sms", "voice", "email"]]:
    return ["sms", "voice"]


class NumberError(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pattern: str = Field(
        min_length=1, max_length=200, description="Regex on the E.164 number or e-mail address."
    )
    code: int = Field(
        description="21211, 21610, 21614 (refused) or 30003/30005/30006/... ; for e-mail an "
        "SMTP reply code such as 550."
    )
    services: list[Literal["sms", "voice", "email"]] = Field(default_factory=_both_twilio_services)


class Callbacks(BaseModel):
    model_config = ConfigDict(extra="forbid")

    delay_s: float = Field(default=0, ge=0, le=3600)
    drop: bool = False


class FaultConfig(BaseModel):
    """The faults in force (`PUT /sim/faults` replaces them all)."""

    model_config = ConfigDict(extra="forbid")

    latency: Latency | None = None
    rate_limit: dict[Service, RateLimit] = Field(default_factory=dict)
    outage_s: float = Field(default=0, ge=0, le=3600)
    outage_services: list[Service] = Field(default_factory=lambda: list(SERVICES))
    number_errors: list[NumberError] = Field(default_factory=list)
    callbacks: Callbacks = Field(default_factory=Callbacks)
    call_sequences: dict[str, list[CallOutcome]] = Field(default_factory=dict)


class Rejection(Exception):
    """A request refused by an injected fault."""

    def __init__(self, status: int, code: int, message: str, reason: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.reason = reason  # APNs/FCM reason word


class _Bucket:
    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self.tokens = limit.burst
        self.at = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.limit.burst, self.tokens + (now - self.at) * self.limit.per_s)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class Faults:
    """The fault state of one simulator; everything runs on its event loop."""

    def __init__(self) -> None:
        self.config = FaultConfig()
        self._outage_until = 0.0
        self._buckets: dict[str, _Bucket] = {}
        self._patterns: list[tuple[re.Pattern[str], NumberError]] = []
        self._sequences: dict[str, deque[CallOutcome]] = {}
        self.ledger: Counter[str] = Counter()
        self.times: dict[str, deque[float]] = {s: deque(maxlen=MAX_TIMES) for s in SERVICES}
        self.rejections: Counter[str] = Counter()

    def configure(self, config: FaultConfig) -> None:
        self.config = config
        self._outage_until = time.monotonic() + config.outage_s if config.outage_s else 0.0
        self._buckets = {name: _Bucket(limit) for name, limit in config.rate_limit.items()}
        self._patterns = [(re.compile(rule.pattern), rule) for rule in config.number_errors]
        self._sequences = {number: deque(seq) for number, seq in config.call_sequences.items()}

    def reset(self) -> None:
        self.configure(FaultConfig())
        self.ledger.clear()
        self.rejections.clear()
        for times in self.times.values():
            times.clear()

    def view(self) -> dict[str, object]:
        remaining = max(0.0, self._outage_until - time.monotonic())
        return {
            "config": self.config.model_dump(mode="json"),
            "outage_remaining_s": round(remaining, 3),
            "rejections": dict(self.rejections),
        }

    # --- requests ------------------------------------------------------------------------

    async def delay(self) -> None:
        """The injected latency of one provider request."""
        if self.config.latency is not None:
            seconds = self.config.latency.sample_s()
            if seconds > 0:
                await asyncio.sleep(seconds)

    def check(self, service: Service) -> None:
        """Raises `Rejection` when an outage or the rate limit refuses a request now."""
        if service in self.config.outage_services and time.monotonic() < self._outage_until:
            self.rejections[f"{service}.outage"] += 1
            raise Rejection(
                503, 503, "Service Unavailable (simulated outage)", "ServiceUnavailable"
            )
        bucket = self._buckets.get(service)
        if bucket is not None and not bucket.take():
            self.rejections[f"{service}.rate_limit"] += 1
            raise Rejection(429, 20429, "Too Many Requests", "TooManyRequests")

    def number_error(self, service: Literal["sms", "voice", "email"], number: str) -> int | None:
        """The error code injected for `number`, if a pattern matches."""
        for pattern, rule in self._patterns:
            if service in rule.services and pattern.search(number):
                return rule.code
        return None

    def refuse_number(self, service: Literal["sms", "voice"], number: str) -> None:
        """Raises `Rejection` for a number whose injected error the API refuses at once."""
        code = self.number_error(service, number)
        if code is not None and code in API_ERRORS:
            status, message = API_ERRORS[code]
            self.rejections[f"{service}.{code}"] += 1
            raise Rejection(status, code, message, "BadDeviceToken")

    def sms_behaviour(self, number: str, behaviour: PhoneBehaviour) -> PhoneBehaviour:
        """The phone's behaviour with an injected delivery error (30xxx) applied."""
        code = self.number_error("sms", number)
        if code is None or code not in DELIVERY_ERRORS:
            return behaviour
        return behaviour.model_copy(update={"sms_outcome": "undelivered", "sms_error_code": code})

    def call_behaviour(self, number: str, behaviour: PhoneBehaviour) -> PhoneBehaviour:
        """The behaviour of this call: the next outcome of the number's sequence, if any."""
        sequence = self._sequences.get(number)
        if not sequence:
            return behaviour
        return behaviour.model_copy(update={"call_outcome": sequence.popleft()})

    # --- callbacks -----------------------------------------------------------------------

    async def callback_allowed(self) -> bool:
        """Waits out the injected callback delay; False when callbacks are dropped."""
        if self.config.callbacks.drop:
            self.rejections["callbacks.dropped"] += 1
            return False
        if self.config.callbacks.delay_s:
            await asyncio.sleep(self.config.callbacks.delay_s)
        return True

    # --- ledger --------------------------------------------------------------------------

    def record(self, service: Service, callback_url: str | None) -> None:
        """Counts one accepted hand-off (by the task id in its callback URL, if any)."""
        self.times[service].append(time.time())
        task_id = task_id_of(callback_url)
        if task_id is not None and (task_id in self.ledger or len(self.ledger) < MAX_LEDGER_TASKS):
            self.ledger[task_id] += 1

    def record_email(self, task_id: str | None) -> None:
        """Counts one accepted e-mail (by its `X-Sirene-Task` header)."""
        self.times["email"].append(time.time())
        if task_id and (task_id in self.ledger or len(self.ledger) < MAX_LEDGER_TASKS):
            self.ledger[task_id] += 1

    def ledger_view(self, *, times: bool) -> dict[str, object]:
        duplicates = {k: n for k, n in self.ledger.items() if n > 1}
        view: dict[str, object] = {
            "tasks": len(self.ledger),
            "handoffs": sum(self.ledger.values()),
            "duplicated_tasks": len(duplicates),
            "duplicates_sample": dict(list(duplicates.items())[:20]),
            "accepted": {s: len(t) for s, t in self.times.items()},
        }
        if times:
            view["times"] = {s: list(t) for s, t in self.times.items()}
        return view

    def count_of(self, task_id: str) -> int:
        return self.ledger.get(task_id, 0)


def task_id_of(url: str | None) -> str | None:
    """The `k` (task id) query parameter of a callback URL."""
    if not url:
        return None
    values = parse_qs(urlsplit(url).query).get("k")
    return values[0] if values else None
