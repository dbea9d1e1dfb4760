"""A simulated SM-DP+ (GSMA SGP.22), driven through ES2+ the way an operator's BSS drives a real one:
DownloadOrder reserves the profile, ConfirmOrder binds a matching id and yields the activation
code, ReleaseProfile makes it downloadable. The device side (download, install) happens later, on
the customer's phone; `device_download` / `device_install` play that part and notify the BSS.

The ESIM_PROFILE_PREPARE task's network time and faults apply once, in DownloadOrder: one task,
one fault decision, whatever the number of ES2+ calls it takes.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from simulators.base import PermanentNetworkError
from simulators.faults import FaultSource, SimulatedElement

# The device's notifications (SGP.22 ES2+ HandleDownloadProgressInfo), e.g. ("8910...", "installed").
Notify = Callable[[str, str], Awaitable[None]]

AFTER_CONFIRM = ("confirmed", "released", "downloaded", "installed")


@dataclass
class ProfileOrder:
    iccid: str
    state: str = "allocated"  # allocated -> confirmed -> released -> downloaded -> installed
    matching_id: str | None = None
    activation_code: str | None = None


class SimulatedSmdpPlus(SimulatedElement):
    def __init__(
        self,
        faults: FaultSource,
        *,
        host: str = "smdp.bss.local",
        latency_factor: float = 1.0,
        rng: random.Random | None = None,
        on_notification: Notify | None = None,
    ) -> None:
        self.host = host
        self.on_notification = on_notification
        super().__init__(faults, latency_factor=latency_factor, rng=rng)

    def reset(self) -> None:
        self.orders: dict[str, ProfileOrder] = {}

    async def download_order(self, iccid: str, *, attempt: int) -> None:
        await self._perform("ESIM_PROFILE_PREPARE", attempt)
        self.orders.setdefault(iccid, ProfileOrder(iccid))

    async def confirm_order(self, iccid: str, matching_id: str, *, attempt: int) -> str:
        """Binds the matching id (generated when empty) and returns `LPA:1$<host>$<matching id>`.
        Confirming again returns the same code; a different matching id is refused."""
        order = self._order(iccid, "ConfirmOrder")
        if order.state in AFTER_CONFIRM:
            if matching_id and matching_id != order.matching_id:
                raise PermanentNetworkError(f"Profile {iccid} is already confirmed with another matching id.")
            assert order.activation_code is not None
            return order.activation_code
        order.matching_id = matching_id or _matching_id()
        order.activation_code = f"LPA:1${self.host}${order.matching_id}"
        order.state = "confirmed"
        return order.activation_code

    async def release_profile(self, iccid: str, *, attempt: int) -> None:
        order = self._order(iccid, "ReleaseProfile")
        if order.state not in AFTER_CONFIRM:
            raise PermanentNetworkError(f"Profile {iccid} must be confirmed before it is released.")
        if order.state == "confirmed":
            order.state = "released"

    async def cancel_order(self, iccid: str, *, attempt: int) -> None:
        """Takes the profile back (ES2+ CancelOrder); cancelling an unknown order is a no-op."""
        self.orders.pop(iccid, None)

    async def device_download(self, iccid: str) -> None:
        await self._device_step(iccid, "released", "downloaded")

    async def device_install(self, iccid: str) -> None:
        await self._device_step(iccid, "downloaded", "installed")

    def state_of(self, iccid: str) -> str | None:
        order = self.orders.get(iccid)
        return order.state if order else None

    async def _device_step(self, iccid: str, required: str, reached: str) -> None:
        order = self._order(iccid, reached)
        if order.state == reached:
            return
        if order.state != required:
            raise PermanentNetworkError(f"Profile {iccid} is {order.state}; it cannot be {reached}.")
        order.state = reached
        if self.on_notification is not None:
            await self.on_notification(iccid, reached)

    def _order(self, iccid: str, operation: str) -> ProfileOrder:
        order = self.orders.get(iccid)
        if order is None:
            raise PermanentNetworkError(f"{operation}: no download order for profile {iccid}.")
        return order


def _matching_id() -> str:
    raw = secrets.token_hex(10).upper()
    return "-".join(raw[i : i + 5] for i in range(0, 20, 5))
