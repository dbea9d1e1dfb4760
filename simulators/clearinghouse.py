"""A simulated number-portability clearinghouse: it asks the donor operator whether a number may
port in, taking its time (NP_VALIDATE, times `sim_latency_factor`).

Its misbehaviour is switched with the same fault rules as the network's (`provisioning.fault_rule`,
`POST /bss-api/v1/provisioning/fault-injection {"taskType": "NP_VALIDATE", "faultType": …}`):
the network faults make it slow, flaky (`fail_first_attempt`), down (`fail_always`) or silent
(`stuck`); the refusals `wrong_account`, `number_locked` and `donor_refuses` make it answer no,
with that reason. Every answer is the same for a repeated question (idempotent by request id).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Protocol

from domains.provisioning.models import PORTING_FAULT_TYPES
from simulators.faults import FaultSource, SimulatedElement, perform

NP_VALIDATE = "NP_VALIDATE"


@dataclass(frozen=True)
class PortValidation:
    accepted: bool
    reason: str | None = None  # one of PORTING_FAULT_TYPES when refused
    reference: str = ""


class Clearinghouse(Protocol):
    """The number-portability clearinghouse, as our side of the port sees it."""

    async def validate_port_in(
        self, port_id: str, msisdn: str, donor_carrier: str, *, attempt: int
    ) -> PortValidation: ...


class SimulatedClearinghouse(SimulatedElement):
    def reset(self) -> None:
        self.answers: dict[str, PortValidation] = {}  # port id -> its answer

    async def validate_port_in(
        self, port_id: str, msisdn: str, donor_carrier: str, *, attempt: int
    ) -> PortValidation:
        if port_id in self.answers:
            return self.answers[port_id]
        refusals = [
            f.fault_type
            for f in await self.faults.for_task(NP_VALIDATE)
            if f.fault_type in PORTING_FAULT_TYPES and self.rng.random() < f.probability
        ]
        # Latency and the network faults (slow, stuck, fail_first_attempt, fail_always).
        await perform(
            NP_VALIDATE, attempt, faults=self.faults, latency_factor=self.latency_factor, rng=self.rng
        )
        answer = PortValidation(
            accepted=not refusals,
            reason=refusals[0] if refusals else None,
            reference=f"NPC-{port_id.removeprefix('PORT-')}",
        )
        self.answers[port_id] = answer
        return answer


def simulated_clearinghouse(
    settings, db, *, faults: FaultSource | None = None, rng: random.Random | None = None
) -> SimulatedClearinghouse:
    from simulators.faults import FaultRules

    return SimulatedClearinghouse(
        faults or FaultRules(db), latency_factor=settings.sim_latency_factor, rng=rng
    )
