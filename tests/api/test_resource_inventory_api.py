"""TMF639 resource inventory and the /bss-api inventory operations over HTTP (in-process app, real Postgres)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from core.context import RequestContext
from core.db import transaction
from domains.inventory import services as inv
from tests.conftest import token_headers
from tests.tmf_schema import assert_conforms

TMF = "/tmf-api/resourceInventoryManagement/v4/resource"
BSS = "/bss-api/v1/inventory"
CTX = RequestContext(actor="tester")
FIRST_ICCID = "8910101000000000000"


async def _state(runtime) -> dict[str, Any]:
    """Both pools and the audit log: what a refused request must leave untouched."""
    async with runtime.engine.connect() as conn:
        return {
            "msisdn": [
                tuple(r) for r in await conn.execute(text("SELECT * FROM inventory.msisdn ORDER BY 1"))
            ],
            "esim": [
                tuple(r) for r in await conn.execute(text("SELECT * FROM inventory.esim_profile ORDER BY 1"))
            ],
            "audit": (await conn.execute(text("SELECT count(*) FROM audit.domain_event"))).scalar_one(),
        }


def _error(r, status: int, reason: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["@type"] == "Error" and body["status"] == str(status)
    assert {"code", "reason", "message", "referenceError"} <= set(body)
    if reason:
        assert body["reason"] == reason
    return body


def _chars(resource: dict[str, Any]) -> dict[str, Any]:
    return {c["name"]: c["value"] for c in resource.get("resourceCharacteristic", [])}


async def _sell_a_line(runtime) -> tuple[str, str]:
    """Reserve, prepare, install and bind a number and a profile, as an order would."""
    async with transaction(runtime.db) as s:
        number = await inv.reserve_msisdn(s, CTX, reserved_for="SO-000001")
        profile = await inv.reserve_esim(s, CTX, reserved_for="SO-000001")
        await inv.mark_esim_prepared(s, CTX, iccid=profile.iccid)
        await inv.mark_esim_installed(s, CTX, iccid=profile.iccid)
        await inv.assign_msisdn(s, CTX, msisdn=number, subscription_id="SUB-000001")
        await inv.assign_esim(s, CTX, iccid=profile.iccid, msisdn=number, subscription_id="SUB-000001")
    return number, profile.iccid


# --- TMF639 list ------------------------------------------------------------------------------


async def test_the_list_holds_both_pools_numbers_first_with_tmf_counts(api):
    r = await api.get(TMF, params={"limit": 3})
    assert r.status_code == 200
    assert r.headers["X-Total-Count"] == "2000" and r.headers["X-Result-Count"] == "3"
    assert [x["id"] for x in r.json()] == ["90000000", "90000001", "90000002"]

    # A page that straddles the end of the numbers continues with the profiles.
    r = await api.get(TMF, params={"offset": 998, "limit": 4})
    assert [x["@type"] for x in r.json()] == ["MSISDN", "MSISDN", "EsimProfile", "EsimProfile"]
    assert [x["id"] for x in r.json()][2:] == [FIRST_ICCID, "8910101000000000001"]

    r = await api.get(TMF, params={"offset": 1999, "limit": 5})
    assert r.headers["X-Result-Count"] == "1" and r.json()[0]["id"] == "8910101000000000999"


@pytest.mark.parametrize(
    ("params", "total", "first"),
    [
        ({"@type": "MSISDN"}, 1000, "90000000"),
        ({"resourceType": "msisdn"}, 1000, "90000000"),
        ({"@type": "EsimProfile"}, 1000, FIRST_ICCID),
        ({"resourceType": "esim"}, 1000, FIRST_ICCID),
        ({"@type": "LogicalResource"}, 2000, "90000000"),
        ({"@type": "MSISDN", "resourceType": "esim"}, 0, None),
        ({"resourceType": "msisdn", "prefix": "9000012"}, 10, "90000120"),
        ({"resourceType": "esim", "prefix": "891010100000000009"}, 10, "8910101000000000090"),
        ({"status": "reserved"}, 2, "90000001"),
        ({"status": "assigned"}, 1, "90000000"),
        ({"resourceType": "esim", "status": "installed"}, 1, FIRST_ICCID),
        ({"resourceType": "msisdn", "status": "available"}, 998, "90000002"),
        ({"resourceType": "esim", "status": "reserved"}, 1, "8910101000000000001"),
    ],
)
async def test_list_filters_by_type_status_and_prefix(api, runtime, params, total, first):
    await _sell_a_line(runtime)
    async with transaction(runtime.db) as s:  # and a pending order holding 90000001 and profile …001
        await inv.reserve_msisdn(s, CTX, reserved_for="SO-000002")
        await inv.reserve_esim(s, CTX, reserved_for="SO-000002")
    r = await api.get(TMF, params=params)
    assert r.status_code == 200, r.text
    assert r.headers["X-Total-Count"] == str(total)
    ids = [x["id"] for x in r.json()]
    assert (ids[0] if ids else None) == first


async def test_fields_keeps_only_the_asked_attributes_plus_identity(api):
    r = await api.get(TMF, params={"resourceType": "msisdn", "limit": 2, "fields": "resourceStatus"})
    assert r.json()[0] == {
        "id": "90000000",
        "href": f"{TMF}/90000000",
        "@type": "MSISDN",
        "resourceStatus": "available",
    }
    r = await api.get(f"{TMF}/{FIRST_ICCID}", params={"fields": "usageState"})
    assert set(r.json()) == {"id", "href", "@type", "usageState"}


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"status": "sold"}, "status.invalid"),
        ({"resourceType": "msisdn", "status": "installed"}, "status.invalid"),
        ({"resourceType": "esim", "status": "quarantine"}, "status.invalid"),
        ({"@type": "Router"}, "@type.invalid"),
        ({"resourceType": "sim"}, "resourceType.invalid"),
        ({"prefix": "9x"}, "request.invalid"),
        ({"prefix": "9" * 20}, "request.invalid"),
        ({"limit": 0}, "request.invalid"),
        ({"offset": -1}, "request.invalid"),
    ],
)
async def test_bad_list_filters_are_a_400_not_an_empty_list(api, runtime, params, reason):
    before = await _state(runtime)
    _error(await api.get(TMF, params=params), 400, reason)
    assert await _state(runtime) == before


# --- TMF639 one resource ------------------------------------------------------------------------


async def test_a_free_number_conforms_to_tmf639(api):
    r = await api.get(f"{TMF}/90000042")
    assert r.status_code == 200
    body = r.json()
    assert_conforms("TMF639", "Resource", body)
    assert_conforms("TMF639", "LogicalResource", body)
    assert body["@type"] == "MSISDN" and body["@baseType"] == "LogicalResource"
    assert body["href"] == f"{TMF}/90000042" and body["value"] == "90000042"
    assert (body["resourceStatus"], body["operationalState"], body["usageState"]) == (
        "available",
        "enable",
        "idle",
    )
    assert _chars(body) == {"poolStatus": "available"}


async def test_a_sold_line_shows_its_number_and_profile_in_use(api, runtime):
    number, iccid = await _sell_a_line(runtime)
    msisdn = (await api.get(f"{TMF}/{number}")).json()
    assert_conforms("TMF639", "Resource", msisdn)
    assert (msisdn["resourceStatus"], msisdn["usageState"]) == ("reserved", "busy")
    assert _chars(msisdn) | {"reservedAt": None} == {
        "poolStatus": "assigned",
        "reservedFor": "SO-000001",
        "reservedAt": None,
        "subscriptionId": "SUB-000001",
    }

    esim = (await api.get(f"{TMF}/{iccid}")).json()
    assert_conforms("TMF639", "Resource", esim)
    assert_conforms("TMF639", "LogicalResource", esim)
    assert esim["@type"] == "EsimProfile" and esim["@baseType"] == "LogicalResource"
    assert (esim["resourceStatus"], esim["usageState"]) == ("reserved", "busy")
    assert "startOperatingDate" in esim
    chars = _chars(esim)
    assert chars["profileState"] == "installed" and chars["imsi"] == "525010000000000"
    assert chars["activationCode"] == f"LPA:1$smdp.bss.local${chars['matchingId']}"
    assert chars["msisdn"] == number and chars["subscriptionId"] == "SUB-000001"
    assert esim["resourceRelationship"] == [
        {
            "id": number,
            "href": f"{TMF}/{number}",
            "relationshipType": "assignedMsisdn",
            "@type": "ResourceRelationship",
        }
    ]


async def test_the_ki_never_leaves_the_hsm_only_its_reference(api):
    body = (await api.get(f"{TMF}/{FIRST_ICCID}")).json()
    assert _chars(body)["kiRef"].startswith("hsm://ref/")
    assert "ki" not in {k.lower() for k in body} and "ki" not in {c.lower() for c in _chars(body)}
    activation = (await api.get(f"{BSS}/esim/{FIRST_ICCID}/activation")).json()
    assert not any("ki" == k.lower() or "kiref" == k.lower() for k in activation)


@pytest.mark.parametrize(
    ("status", "tmf"),
    [
        ("quarantine", ("suspended", "disable", "locked")),
        ("ported_out", ("unknown", "disable", "shutdown")),
    ],
)
async def test_numbers_out_of_service_show_it_in_the_tmf_states(api, runtime, status, tmf):
    async with transaction(runtime.db) as s:
        if status == "quarantine":
            await inv.reserve_msisdn(s, CTX, reserved_for="SO-1", preferred="90000007")
            await inv.assign_msisdn(s, CTX, msisdn="90000007", subscription_id="SUB-1")
            await inv.quarantine_msisdn(s, CTX, msisdn="90000007")
        else:
            await inv.port_out_msisdn(s, CTX, msisdn="90000007")
    body = (await api.get(f"{TMF}/90000007")).json()
    assert_conforms("TMF639", "Resource", body)
    assert (body["resourceStatus"], body["operationalState"], body["administrativeState"]) == tmf
    assert _chars(body)["poolStatus"] == status


@pytest.mark.parametrize("resource_id", ["90009999", "8910101999999999999", "not-a-number", "1"])
async def test_an_unknown_resource_is_a_404(api, resource_id):
    _error(await api.get(f"{TMF}/{resource_id}"), 404, "resource.not_found")


# --- /bss-api inventory -------------------------------------------------------------------------


async def test_add_range_answers_201_with_what_was_new_and_audits_once(api, runtime):
    r = await api.post(f"{BSS}/msisdn/add-range", json={"prefix": "9100", "count": 10})
    assert r.status_code == 201
    assert r.json() == {"prefix": "9100", "count": 10, "added": 10, "skipped": 0}
    r = await api.post(
        f"{BSS}/msisdn/add-range",
        json={"prefix": "9100", "count": 10},
        headers=await token_headers(runtime, "ops-bob"),
    )
    assert r.json()["added"] == 0 and r.json()["skipped"] == 10
    listed = await api.get(TMF, params={"resourceType": "msisdn", "prefix": "9100", "status": "available"})
    assert listed.headers["X-Total-Count"] == "10"
    async with runtime.engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT actor, channel FROM audit.domain_event WHERE event_type = 'inventory.msisdn.range_added' ORDER BY id"
                )
            )
        ).all()
    assert [tuple(r) for r in rows] == [("default", "api"), ("ops-bob", "api")]


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        ({"prefix": "91", "count": 10}, 422, "msisdn.add_range.sane_prefix"),
        ({"prefix": "91000000", "count": 10}, 422, "msisdn.add_range.sane_prefix"),
        ({"prefix": "91ab", "count": 10}, 422, "msisdn.add_range.sane_prefix"),
        ({"prefix": "9100", "count": 0}, 422, "msisdn.add_range.sane_prefix"),
        ({"prefix": "9100", "count": 20000}, 422, "msisdn.add_range.sane_prefix"),
        ({"prefix": "9100", "count": 10**30}, 422, "msisdn.add_range.sane_prefix"),
        ({"prefix": 9100, "count": 10}, 400, "request.invalid"),
        ({"prefix": "9100", "count": "ten"}, 400, "request.invalid"),
        ({"prefix": "9100"}, 400, "request.invalid"),
        ({"prefix": "9100", "count": 10, "dryRun": True}, 400, "request.invalid"),
        ({"prefix": "9" * 5000, "count": 10}, 400, "request.invalid"),
    ],
)
async def test_a_bad_range_is_refused_and_changes_nothing(api, runtime, body, status, reason):
    before = await _state(runtime)
    _error(await api.post(f"{BSS}/msisdn/add-range", json=body), status, reason)
    assert await _state(runtime) == before


async def test_counts_show_both_pools_by_status(api, runtime):
    await _sell_a_line(runtime)
    r = await api.get(f"{BSS}/counts")
    assert r.status_code == 200
    assert r.json() == {
        "msisdn": {
            "available": 999,
            "held": 0,
            "reserved": 0,
            "assigned": 1,
            "quarantine": 0,
            "ported_out": 0,
        },
        "esim": {"available": 999, "reserved": 0, "prepared": 0, "downloaded": 0, "installed": 1},
    }


async def test_activation_gives_the_device_what_it_needs(api, runtime):
    number, iccid = await _sell_a_line(runtime)
    r = await api.get(f"{BSS}/esim/{iccid}/activation")
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"iccid", "imsi", "msisdn", "activationCode", "matchingId", "smdpServer", "state"}
    assert (body["iccid"], body["msisdn"], body["state"], body["smdpServer"]) == (
        iccid,
        number,
        "installed",
        "smdp.bss.local",
    )
    assert body["activationCode"] == f"LPA:1$smdp.bss.local${body['matchingId']}"


async def test_activation_of_an_unknown_profile_is_a_404(api):
    _error(await api.get(f"{BSS}/esim/8910101999999999999/activation"), 404, "esim.not_found")


async def test_inventory_needs_a_token(api):
    _error(await api.get(TMF, headers={"Authorization": "Bearer nope"}), 401, "auth.unauthorized")
    _error(
        await api.post(
            f"{BSS}/msisdn/add-range", json={"prefix": "9100", "count": 1}, headers={"Authorization": ""}
        ),
        401,
    )
