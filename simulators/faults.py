"""Fault injection for the simulated network: the operator's rules, cached for a second, and what
each fault does to a call.

The rules live in Postgres (`provisioning.fault_rule`) so a change made through the API reaches
every worker process; the one-second cache keeps a burst of provisioning calls from querying them
each time.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from core.db import SessionFactory
from simulators.base import TASK_DURATIONS, PermanentNetworkError, TransientNetworkError

SLOW_FACTOR = (2.0, 5.0)


class FaultSource(Protocol):
    async def for_task(self, task_type: str) -> list[Fault]: ...


@dataclass(frozen=True)
class Fault:
    rule_id: str
    task_type: str
    fault_type: str
    probability: float


class FaultRules:
    """The enabled fault rules, re-read from the database at most once per `ttl` seconds."""

    def __init__(
        self, db: SessionFactory, *, ttl: float = 1.0, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._db = db
        self._ttl = ttl
        self._monotonic = monotonic
        self._faults: list[Fault] = []
        self._loaded_at: float | None = None
        self._lock = asyncio.Lock()

    async def for_task(self, task_type: str) -> list[Fault]:
        return [f for f in await self._current() if f.task_type == task_type]

    def invalidate(self) -> None:
        self._loaded_at = None

    async def _current(self) -> list[Fault]:
        if self._fresh():
            return self._faults
        async with self._lock:
            if not self._fresh():  # another caller may have reloaded while this one waited
                self._faults = await self._load()
                self._loaded_at = self._monotonic()
        return self._faults

    def _fresh(self) -> bool:
        return self._loaded_at is not None and self._monotonic() - self._loaded_at < self._ttl

    async def _load(self) -> list[Fault]:
        from domains.provisioning.services import list_fault_rules

        async with self._db() as session:
            rules = await list_fault_rules(session)
        return [Fault(r.id, r.task_type, r.fault_type, r.probability) for r in rules if r.enabled]


class NoFaults:
    """A fault source with nothing enabled (unit tests, benchmarks of the happy path)."""

    async def for_task(self, task_type: str) -> list[Fault]:
        return []


class FixedFaults:
    """Faults given in code rather than read from the database (tests, scripted demos)."""

    def __init__(self, *faults: Fault) -> None:
        self.faults = list(faults)

    async def for_task(self, task_type: str) -> list[Fault]:
        return [f for f in self.faults if f.task_type == task_type]


async def perform(
    task_type: str,
    attempt: int,
    *,
    faults: FaultSource,
    latency_factor: float,
    rng: random.Random,
) -> None:
    """Spend the task's network time and apply whichever enabled faults fire on this call.

    Probability 1.0 always fires and 0.0 never does, whatever the random source.
    """
    delay = TASK_DURATIONS[task_type] * max(latency_factor, 0.0)
    fired = [f for f in await faults.for_task(task_type) if rng.random() < f.probability]
    for fault in fired:
        if fault.fault_type == "stuck":
            # The element never answers; the caller's deadline turns this into a stuck task.
            await asyncio.Future()
        if fault.fault_type == "slow":
            delay *= rng.uniform(*SLOW_FACTOR)
    if delay > 0:
        await asyncio.sleep(delay)
    for fault in fired:
        if fault.fault_type == "fail_always":
            raise PermanentNetworkError(f"{task_type} rejected by the network (fault {fault.rule_id}).")
        if fault.fault_type == "fail_first_attempt" and attempt <= 1:
            raise TransientNetworkError(
                f"{task_type} failed on attempt {attempt} (fault {fault.rule_id}); a retry may succeed."
            )


class SimulatedElement:
    def __init__(
        self, faults: FaultSource, *, latency_factor: float = 1.0, rng: random.Random | None = None
    ) -> None:
        self.faults = faults
        self.latency_factor = latency_factor
        self.rng = rng or random.Random()
        self.reset()

    def reset(self) -> None:
        """Forget everything the element was told (a fresh network)."""

    async def _perform(self, task_type: str, attempt: int) -> None:
        await perform(
            task_type, attempt, faults=self.faults, latency_factor=self.latency_factor, rng=self.rng
        )
