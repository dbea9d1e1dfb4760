"""On the real saga (dev server): an order naming a held number takes it and completes the hold
(the number stays with the line, never released by the hold's timer); then the line's eSIM is
re-armed for a new device: a new activation code, the SM-DP+ order placed again, and the profile
downloads and installs again under the new code."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from sqlalchemy import text

from core.context import RequestContext
from core.db import transaction
from domains.inventory import services as inventory
from ops import inventory as ops
from ops.orders import device_event
from tests.saga_harness import Saga
from workflows.esim_rearm import EsimRearmWorkflow, rearm_workflow_id
from workflows.signup_hold import SignupHoldWorkflow

CTX = RequestContext(actor="portal", channel="portal", service_identity="test")
HISTORIES = Path(__file__).resolve().parent.parent / "replay" / "histories"


async def export(handle, workflow_type: str, case: str) -> None:
    if os.environ.get("BSS_EXPORT_HISTORIES") != "1":
        return
    (HISTORIES / workflow_type).mkdir(parents=True, exist_ok=True)
    (HISTORIES / workflow_type / f"{case}.json").write_text((await handle.fetch_history()).to_json())


async def scalar(saga: Saga, sql: str, **params):
    async with saga.runtime.engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar()


async def until(probe, done, tries: int = 300):
    value = None
    for _ in range(tries):
        try:
            value = await probe()
            if done(value):
                return value
        except Exception:  # not started yet
            pass
        await asyncio.sleep(0.05)
    raise AssertionError(f"condition never met; last {value}")


async def test_an_order_takes_a_held_number_and_its_esim_can_be_rearmed(saga: Saga):
    held = await ops.hold_number(saga.runtime, CTX, msisdn="90000654")
    hold = saga.client.get_workflow_handle_for(SignupHoldWorkflow.run, held.hold_ref)

    # Another order without a preference never gets the held number; this one names it.
    order = await saga.order(await saga.customer(), msisdn_preference="90000654")
    result = await saga.handle(order.id).result()

    assert result.state == "completed", result.reason
    assert result.msisdn == "90000654"
    status = await hold.result()  # completed by the order's reservation, not by its timer
    assert status.state == "completed" and status.taken_by
    assert await scalar(saga, "select status from inventory.msisdn where msisdn = '90000654'") == "assigned"
    # The hold's release, should it still run, leaves the order's number alone.
    async with transaction(saga.runtime.db) as s:
        assert not await inventory.release_hold(
            s, CTX, msisdn="90000654", hold_ref=held.hold_ref, reason="late timer"
        )
    assert await scalar(saga, "select status from inventory.msisdn where msisdn = '90000654'") == "assigned"
    await export(hold, "SignupHoldWorkflow", "completed_by_order")

    # The customer installs the profile, then moves to a new phone.
    iccid = await scalar(saga, "select iccid from inventory.esim_profile where assigned_msisdn = '90000654'")
    await until(
        lambda: scalar(saga, "select profile_state from inventory.esim_profile where iccid = :i", i=iccid),
        lambda v: v == "prepared",
    )
    old_code = await scalar(
        saga, "select activation_code from inventory.esim_profile where iccid = :i", i=iccid
    )
    for event in ("downloaded", "installed"):
        await saga.network.smdp.device_download(
            iccid
        ) if event == "downloaded" else await saga.network.smdp.device_install(iccid)
        await device_event(saga.runtime, CTX, iccid, event)
    await until(
        lambda: scalar(saga, "select profile_state from inventory.esim_profile where iccid = :i", i=iccid),
        lambda v: v == "installed",
    )

    profile = await ops.rearm_esim(saga.runtime, CTX, iccid)

    assert profile.profile_state == "prepared" and profile.activation_code != old_code
    rearm = saga.client.get_workflow_handle_for(EsimRearmWorkflow.run, rearm_workflow_id(iccid))
    await until(lambda: rearm.query(EsimRearmWorkflow.status), lambda s: s.state == "prepared")
    # The SM-DP+ now answers to the new matching id only.
    assert saga.network.smdp.orders[iccid].matching_id == profile.matching_id
    assert (await rearm.query(EsimRearmWorkflow.status)).activation_code == profile.activation_code
    await saga.network.smdp.device_download(iccid)
    await device_event(saga.runtime, CTX, iccid, "downloaded")
    await saga.network.smdp.device_install(iccid)
    await device_event(saga.runtime, CTX, iccid, "installed")
    final = await rearm.result()

    assert final.state == "installed"
    assert (
        await scalar(saga, "select profile_state from inventory.esim_profile where iccid = :i", i=iccid)
        == "installed"
    )
    assert (
        await scalar(
            saga,
            "select count(*) from audit.domain_event where event_type = 'inventory.esim.rearmed' and aggregate_id = :i",
            i=iccid,
        )
        == 1
    )
    await export(rearm, "EsimRearmWorkflow", "rearmed_and_installed")
