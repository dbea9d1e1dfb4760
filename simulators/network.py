"""Simulated HLR, PCRF and OCS: they take the reference's time per task, obey the fault rules, and
remember what they were told, so a retried call is harmless and tests can see the network's view.

Each provisioning call has its undo, under its own task type (and fault rules): HLR_DEPROVISION,
PCRF_POLICY_REMOVE, OCS_BALANCE_REMOVE. A blocked line is barred at the PCRF (PCRF_BAR) and unbarred
(PCRF_UNBAR); `pcrf.barred` is the set of barred numbers. Every undo of something never done is a
no-op, so a compensation that runs twice, or for a step that never ran, is harmless.

`simulated_network(settings, db)` builds the four elements a worker needs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from core.db import SessionFactory
from core.settings import Settings
from simulators.faults import FaultRules, FaultSource, SimulatedElement
from simulators.smdp import SimulatedSmdpPlus


class SimulatedHlr(SimulatedElement):
    def reset(self) -> None:
        self.subscribers: dict[str, str] = {}  # msisdn -> imsi

    async def provision_subscriber(self, msisdn: str, imsi: str, *, attempt: int) -> None:
        await self._perform("HLR_PROVISION", attempt)
        self.subscribers[msisdn] = imsi

    async def deprovision_subscriber(self, msisdn: str, *, attempt: int = 1) -> None:
        await self._perform("HLR_DEPROVISION", attempt)
        self.subscribers.pop(msisdn, None)


class SimulatedPcrf(SimulatedElement):
    def reset(self) -> None:
        self.policies: dict[str, str] = {}  # msisdn -> offering id
        self.barred: set[str] = set()  # msisdns barred (blocked lines)

    async def push_policy(self, msisdn: str, offering_id: str, *, attempt: int) -> None:
        await self._perform("PCRF_POLICY_PUSH", attempt)
        self.policies[msisdn] = offering_id

    async def remove_policy(self, msisdn: str, *, attempt: int = 1) -> None:
        await self._perform("PCRF_POLICY_REMOVE", attempt)
        self.policies.pop(msisdn, None)
        self.barred.discard(msisdn)

    async def bar(self, msisdn: str, *, attempt: int = 1) -> None:
        """No data or calls for the number (a blocked line), whatever its policy says."""
        await self._perform("PCRF_BAR", attempt)
        self.barred.add(msisdn)

    async def unbar(self, msisdn: str, *, attempt: int = 1) -> None:
        await self._perform("PCRF_UNBAR", attempt)
        self.barred.discard(msisdn)


class SimulatedOcs(SimulatedElement):
    def reset(self) -> None:
        self.balances: dict[str, dict[str, int]] = {}  # subscription key -> allowances
        self.lines: dict[str, str] = {}  # msisdn -> subscription key

    async def init_balance(
        self, msisdn: str, subscription_key: str, allowances: dict[str, int], *, attempt: int
    ) -> None:
        await self._perform("OCS_BALANCE_INIT", attempt)
        self.balances[subscription_key] = dict(allowances)
        self.lines[msisdn] = subscription_key

    async def remove_balance(self, msisdn: str, *, attempt: int = 1) -> None:
        await self._perform("OCS_BALANCE_REMOVE", attempt)
        key = self.lines.pop(msisdn, None)
        if key is not None:
            self.balances.pop(key, None)


@dataclass
class SimulatedNetwork:
    hlr: SimulatedHlr
    pcrf: SimulatedPcrf
    ocs: SimulatedOcs
    smdp: SimulatedSmdpPlus
    faults: FaultSource = field(repr=False)


def simulated_network(
    settings: Settings,
    db: SessionFactory,
    *,
    faults: FaultSource | None = None,
    rng: random.Random | None = None,
) -> SimulatedNetwork:
    """The elements share one fault-rule cache, so one database read per second serves them all."""
    source = faults or FaultRules(db)
    factor, rng = settings.sim_latency_factor, rng or random.Random()
    return SimulatedNetwork(
        hlr=SimulatedHlr(source, latency_factor=factor, rng=rng),
        pcrf=SimulatedPcrf(source, latency_factor=factor, rng=rng),
        ocs=SimulatedOcs(source, latency_factor=factor, rng=rng),
        smdp=SimulatedSmdpPlus(source, host=settings.smdp_host, latency_factor=factor, rng=rng),
        faults=source,
    )
