"""Inventory operations for every door (API, CLI through the API, portals, agent).

The order saga's activities call `domains.inventory.services` directly inside their own
transactions; these are the operator- and customer-facing reads and the bulk range add.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.context import RequestContext
from core.db import transaction
from core.errors import Conflict, InvalidInput, NotFound, PolicyViolation
from domains.inventory import services
from domains.inventory.models import EsimProfile, Msisdn
from domains.inventory.rules import (
    ESIM_STATES,
    MSISDN_STATUSES,
    SIGNUP_HOLD_HOURS,
    is_iccid,
    is_msisdn,
    signup_hold_ref,
)
from ops.runtime import Runtime

RESOURCE_TYPES = ("msisdn", "esim")


@dataclass(frozen=True)
class ResourcePage:
    total: int
    items: list[Msisdn | EsimProfile]


async def list_resources(
    rt: Runtime,
    *,
    types: tuple[str, ...] = RESOURCE_TYPES,
    status: str | None = None,
    prefix: str | None = None,
    offset: int = 0,
    limit: int = 100,
) -> ResourcePage:
    """Numbers first (in number order), then profiles (in ICCID order), paged as one list.

    `status` is the pool status of a number or the state of a profile; a type that has no such
    status contributes nothing.
    """
    items: list[Msisdn | EsimProfile] = []
    total = 0
    async with rt.db() as s:
        if "msisdn" in types and (status is None or status in MSISDN_STATUSES):
            n, numbers = await services.list_msisdns(
                s, status=status, prefix=prefix, offset=offset, limit=limit
            )
            total += n
            items.extend(numbers)
        if "esim" in types and (status is None or status in ESIM_STATES):
            # The profiles' slice starts where the numbers' part of the list ended.
            skipped = total if "msisdn" in types else 0
            n, profiles = await services.list_esims(
                s, state=status, prefix=prefix, offset=max(0, offset - skipped), limit=limit - len(items)
            )
            total += n
            items.extend(profiles)
    return ResourcePage(total=total, items=items)


async def get_resource(rt: Runtime, resource_id: str) -> Msisdn | EsimProfile:
    """A number or an eSIM profile, by MSISDN or ICCID."""
    async with rt.db() as s:
        if is_iccid(resource_id):
            found: Msisdn | EsimProfile | None = await s.get(EsimProfile, resource_id)
        elif is_msisdn(resource_id):
            found = await s.get(Msisdn, resource_id)
        else:
            found = None
    if found is None:
        raise NotFound(
            "resource.not_found",
            f"No number or eSIM profile {resource_id!r} in the inventory.",
            id=resource_id,
        )
    return found


async def get_esim(rt: Runtime, iccid: str) -> EsimProfile:
    async with rt.db() as s:
        return await services.get_esim(s, iccid)


async def add_msisdn_range(rt: Runtime, ctx: RequestContext, *, prefix: str, count: int) -> int:
    async with transaction(rt.db) as s:
        return await services.add_msisdn_range(s, ctx, prefix=prefix, count=count)


async def pool_counts(rt: Runtime) -> dict[str, dict[str, int]]:
    async with rt.db() as s:
        return await services.pool_counts(s)


async def release_expired_quarantine(rt: Runtime, ctx: RequestContext) -> int:
    """For a daily sweep (schedule or operator): quarantined numbers whose time is up go on sale."""
    async with transaction(rt.db) as s:
        return await services.release_expired_quarantine(s, ctx)


# ---------------------------------------------------------------- signup holds


@dataclass(frozen=True)
class HoldView:
    msisdn: str
    state: str  # held | completed | cancelled | expired | released
    hold_ref: str | None
    held_at: datetime | None
    expires_at: datetime | None


def _hold_view(row: Msisdn, state: str | None = None) -> HoldView:
    return HoldView(row.msisdn, state or row.status, row.reserved_for, row.reserved_at, row.reserved_until)


async def hold_number(
    rt: Runtime, ctx: RequestContext, *, msisdn: str | None = None, customer_id: str | None = None
) -> HoldView:
    """Hold a number (or a random available one) 24 h for a signup: `held` in the pool, and
    `signup-hold-<MSISDN>` releases it when the time is up unless an order took it. Temporal
    unreachable: the hold is undone and the answer is a 503 (nothing held)."""
    from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

    from core.clock import clock
    from ops.som import TEMPORAL_TIMEOUT, temporal_guard
    from workflows.common import CUSTOMER_ID, MSISDN, attributes
    from workflows.signup_hold import HoldInput, SignupHoldWorkflow

    if customer_id is not None:
        from domains.crm.models import Customer

        async with rt.db() as s:
            if await s.get(Customer, customer_id) is None:
                raise NotFound("msisdn.hold.customer_not_found", f"No customer {customer_id}.")
    now = clock.now()
    until = now + timedelta(hours=SIGNUP_HOLD_HOURS)
    async with transaction(rt.db) as s:
        row = await services.hold_msisdn(s, ctx, msisdn=msisdn, until=until, customer_id=customer_id)
        await services.check_low_watermark(
            s, ctx, resource="msisdn", threshold=rt.settings.low_watermark_msisdn
        )
        view = _hold_view(row)
    assert view.hold_ref is not None
    updates = [MSISDN.value_set(view.msisdn)]
    if customer_id is not None:
        updates.append(CUSTOMER_ID.value_set(customer_id))
    try:
        async with temporal_guard("number_hold"):
            client = await asyncio.wait_for(rt.temporal(), TEMPORAL_TIMEOUT)
            await client.start_workflow(
                SignupHoldWorkflow.run,
                HoldInput(view.msisdn, view.hold_ref, until.isoformat(), now.isoformat(), customer_id),
                id=view.hold_ref,
                task_queue=rt.settings.task_queue,
                # A run left from an earlier hold of this number must not release this one.
                id_conflict_policy=WorkflowIDConflictPolicy.TERMINATE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                search_attributes=attributes(*updates),
                rpc_timeout=timedelta(seconds=TEMPORAL_TIMEOUT),
            )
    except Exception:
        async with transaction(rt.db) as s:
            await services.release_hold(
                s, ctx, msisdn=view.msisdn, hold_ref=view.hold_ref, reason="its workflow could not start"
            )
        raise
    return view


async def get_hold(rt: Runtime, msisdn: str) -> HoldView:
    async with rt.db() as s:
        row = await services.hold_of(s, msisdn) if is_msisdn(msisdn) else None
    if row is None:
        raise NotFound("msisdn.hold.not_found", f"Number {msisdn} is not held.", msisdn=msisdn)
    return _hold_view(row)


async def cancel_hold(rt: Runtime, ctx: RequestContext, msisdn: str) -> HoldView:
    """Give a signup's held number back now. An order took it already: 409."""
    from temporalio.client import WorkflowUpdateFailedError
    from temporalio.service import RPCError, RPCStatusCode

    from ops.som import TEMPORAL_TIMEOUT, temporal_guard
    from workflows.signup_hold import HoldCancel, SignupHoldWorkflow

    held = await get_hold(rt, msisdn)
    ref = held.hold_ref or ""
    if ref != signup_hold_ref(msisdn):
        raise PolicyViolation(
            "msisdn.hold.not_a_signup_hold",
            f"Number {msisdn} is held by {ref}, not by a signup.",
            hold_ref=ref,
        )
    try:
        async with temporal_guard("number_hold"):
            client = await asyncio.wait_for(rt.temporal(), TEMPORAL_TIMEOUT)
            handle = client.get_workflow_handle_for(SignupHoldWorkflow.run, ref)
            status = await handle.execute_update(
                SignupHoldWorkflow.cancel,
                HoldCancel("cancelled by the channel", ctx),
                rpc_timeout=timedelta(seconds=4 * TEMPORAL_TIMEOUT),
            )
    except WorkflowUpdateFailedError as exc:
        cause = getattr(exc.cause, "type", None) or "msisdn.hold.ended"
        raise Conflict(
            cause, f"The hold of {msisdn} cannot be cancelled: {exc.cause}.", msisdn=msisdn
        ) from None
    except PolicyViolation as exc:
        if not exc.code.endswith("workflow_not_running"):
            raise
        status = None
    except RPCError as exc:  # pragma: no cover - mapped by temporal_guard
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        status = None
    if status is None:
        # The hold has no running workflow (it ended without releasing): release it here.
        async with transaction(rt.db) as s:
            await services.release_hold(
                s, ctx, msisdn=msisdn, hold_ref=ref, reason="cancelled by the channel"
            )
        return HoldView(msisdn, "cancelled", ref, held.held_at, held.expires_at)
    if status.state != "cancelled":
        raise Conflict("msisdn.hold.taken", f"An order took {msisdn} before the hold was cancelled.")
    return HoldView(msisdn, status.state, ref, held.held_at, held.expires_at)


# ---------------------------------------------------------------- eSIM re-download


async def rearm_esim(rt: Runtime, ctx: RequestContext, iccid: str) -> EsimProfile:
    """Re-arm a line's profile for a new device: a new matching id and activation code (the old code
    stops working), the profile back to `prepared`, and `esim-rearm-<ICCID>` places the new download
    order at the SM-DP+ and waits for the device. Asking again while nothing was downloaded keeps
    the new code and re-places the order (so a 503 can simply be retried)."""
    from ops.som import TEMPORAL_TIMEOUT, temporal_guard
    from workflows.common import MSISDN, SUBSCRIPTION_ID, attributes
    from workflows.esim_rearm import EsimRearmWorkflow, Rearm, RearmInput, rearm_workflow_id

    if not is_iccid(iccid):
        raise InvalidInput("esim.iccid.invalid", f"{iccid!r} is not an ICCID (89 and 17 digits).")
    async with transaction(rt.db) as s:
        if (await services.get_esim(s, iccid)).assigned_to_subscription_id is None:
            raise PolicyViolation(
                "esim.rearm.not_on_a_line",
                f"eSIM profile {iccid} belongs to no line; only a line's profile can be re-armed.",
                iccid=iccid,
            )
        profile = await services.rearm_esim(s, ctx, iccid=iccid)
    updates = [SUBSCRIPTION_ID.value_set(profile.assigned_to_subscription_id or "")]
    if profile.assigned_msisdn:
        updates.append(MSISDN.value_set(profile.assigned_msisdn))
    async with temporal_guard("esim_rearm"):
        client = await asyncio.wait_for(rt.temporal(), TEMPORAL_TIMEOUT)
        await client.start_workflow(
            EsimRearmWorkflow.run,
            RearmInput(iccid),
            id=rearm_workflow_id(iccid),
            task_queue=rt.settings.task_queue,
            start_signal="rearm",
            start_signal_args=[Rearm(profile.matching_id, ctx)],
            search_attributes=attributes(*updates),
            rpc_timeout=timedelta(seconds=TEMPORAL_TIMEOUT),
        )
    return profile
