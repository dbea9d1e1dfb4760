"""The network adapter interfaces (one per element) and the errors a network call may raise.

Activities depend on these Protocols only; the simulators implement them now, real HLR/PCRF/OCS/
SM-DP+ clients can later. Every call takes the caller's `attempt` (1 on the first try) because a
network element's behaviour may depend on it (the `fail_first_attempt` fault does), and every
call is idempotent: a retry after a lost answer must not provision twice.
"""

from __future__ import annotations

from typing import Protocol

# Simulated time each task takes on the network, before `sim_latency_factor` (inventory §4.5).
TASK_DURATIONS: dict[str, float] = {
    "HLR_PROVISION": 0.5,
    "PCRF_POLICY_PUSH": 0.3,
    "OCS_BALANCE_INIT": 0.2,
    "ESIM_PROFILE_PREPARE": 0.4,
    "HLR_DEPROVISION": 0.4,
    "PCRF_POLICY_REMOVE": 0.2,
    "OCS_BALANCE_REMOVE": 0.2,
    "PCRF_BAR": 0.2,
    "PCRF_UNBAR": 0.2,
    # The number-portability clearinghouse asking the donor operator (simulators/clearinghouse.py).
    "NP_VALIDATE": 0.5,
}


class NetworkError(Exception):
    """A network element refused or failed the request."""

    retryable = True


class TransientNetworkError(NetworkError):
    """Worth another attempt (timeouts, busy elements, `fail_first_attempt`)."""


class PermanentNetworkError(NetworkError):
    """Retrying will not help (`fail_always`, an order the element does not know)."""

    retryable = False


class Hlr(Protocol):
    """Home Location Register: which IMSI a number belongs to, and whether it may attach."""

    async def provision_subscriber(self, msisdn: str, imsi: str, *, attempt: int) -> None: ...

    async def deprovision_subscriber(self, msisdn: str, *, attempt: int) -> None: ...


class Pcrf(Protocol):
    """Policy and charging rules: the plan's speed and service policy for a number."""

    async def push_policy(self, msisdn: str, offering_id: str, *, attempt: int) -> None: ...

    async def remove_policy(self, msisdn: str, *, attempt: int) -> None: ...

    async def bar(self, msisdn: str, *, attempt: int) -> None: ...

    async def unbar(self, msisdn: str, *, attempt: int) -> None: ...


class Ocs(Protocol):
    """Online charging system: the real-time balances the line consumes."""

    async def init_balance(
        self, msisdn: str, subscription_key: str, allowances: dict[str, int], *, attempt: int
    ) -> None: ...

    async def remove_balance(self, msisdn: str, *, attempt: int) -> None: ...


class SmdpPlus(Protocol):
    """GSMA SGP.22 SM-DP+, seen through its ES2+ operator interface."""

    async def download_order(self, iccid: str, *, attempt: int) -> None: ...

    async def confirm_order(self, iccid: str, matching_id: str, *, attempt: int) -> str:
        """Returns the activation code `LPA:1$<smdp host>$<matching id>`."""
        ...

    async def release_profile(self, iccid: str, *, attempt: int) -> None: ...

    async def cancel_order(self, iccid: str, *, attempt: int) -> None: ...
