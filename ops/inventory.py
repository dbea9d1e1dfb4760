"""Inventory operations for every door (API, CLI through the API, portals, agent).

The order saga's activities call `domains.inventory.services` directly inside their own
transactions; these are the operator- and customer-facing reads and the bulk range add.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.context import RequestContext
from core.db import transaction
from core.errors import NotFound
from domains.inventory import services
from domains.inventory.models import EsimProfile, Msisdn
from domains.inventory.rules import ESIM_STATES, MSISDN_STATUSES, is_iccid, is_msisdn
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
