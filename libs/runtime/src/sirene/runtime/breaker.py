"""A circuit breaker per provider: stop calling a provider that is down, probe it now and then,
resume when it answers again.

States: *closed* (calls go through; `failure_threshold` transient failures in a row open it),
*open* (no calls for `open_s`; tasks are parked on a retry tier without spending an attempt),
*half-open* (after `open_s` one probe call at a time goes through: a success closes the circuit,
a failure opens it again for another `open_s`).

Contract: ask `allow()` before a call; report every call's result with `record(ok)`. State is
per worker process (each process finds out about an outage by itself within
`failure_threshold` calls), which needs no coordination and cannot wedge all workers at once.
`clock` is injectable for tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum

from .metric_defs import CIRCUIT_STATE, CIRCUIT_TRANSITIONS


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


_GAUGE_VALUE = {CircuitState.CLOSED: 0, CircuitState.HALF_OPEN: 1, CircuitState.OPEN: 2}


class CircuitBreaker:
    """See the module docstring."""

    def __init__(
        self,
        *,
        channel: str,
        provider: str,
        failure_threshold: int = 20,
        open_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1 or open_s <= 0:
            raise ValueError("failure_threshold must be >= 1 and open_s > 0")
        self.channel = channel
        self.provider = provider
        self.failure_threshold = failure_threshold
        self.open_s = open_s
        self._clock = clock
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False
        self._export()

    @property
    def state(self) -> CircuitState:
        if self._state is CircuitState.OPEN and self._clock() - self._opened_at >= self.open_s:
            self._move(CircuitState.HALF_OPEN)
        return self._state

    def retry_in(self) -> float:
        """Seconds until the circuit lets a probe through (0 when it is not open)."""
        if self.state is not CircuitState.OPEN:
            return 0.0
        return max(0.0, self.open_s - (self._clock() - self._opened_at))

    def allow(self) -> bool:
        """Whether a call may go out now. In half-open state only one probe at a time."""
        state = self.state
        if state is CircuitState.CLOSED:
            return True
        if state is CircuitState.HALF_OPEN and not self._probing:
            self._probing = True
            return True
        return False

    def record(self, ok: bool) -> None:
        """The result of a call that `allow()` let through (ok = the provider answered;
        a permanent refusal is an answer too, only transient failures count against it)."""
        if ok:
            self._failures = 0
            self._probing = False
            if self._state is not CircuitState.CLOSED:
                self._move(CircuitState.CLOSED)
            return
        self._failures += 1
        if self._state is CircuitState.HALF_OPEN or (
            self._state is CircuitState.CLOSED and self._failures >= self.failure_threshold
        ):
            self._probing = False
            self._opened_at = self._clock()
            self._move(CircuitState.OPEN)

    def _move(self, state: CircuitState) -> None:
        if state is self._state:
            return
        self._state = state
        CIRCUIT_TRANSITIONS.labels(self.channel, self.provider, state.value).inc()
        self._export()

    def _export(self) -> None:
        CIRCUIT_STATE.labels(self.channel, self.provider).set(_GAUGE_VALUE[self._state])


__all__ = ["CircuitBreaker", "CircuitState"]
