"""TMF620 catalogue API, VAS and catalogue administration over HTTP (in-process app, real Postgres)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from tests.conftest import token_headers
from tests.tmf_schema import assert_conforms

TMF = "/tmf-api/productCatalogManagement/v4"
VAS = "/bss-api/v1/catalog/vas"
ADMIN = "/bss-api/v1/admin/catalog"

NEW_PLAN: dict[str, Any] = {
    "id": "PLAN_XL",
    "name": "Extra Large",
    "description": "300 GB",
    "amount": "60.00",
    "allowances": {"data": 307200, "voice": -1, "sms": -1, "dataRoaming": 4096},
}


async def _state(runtime) -> dict[str, Any]:
    """Every catalogue row plus the audit log: what a refused request must leave untouched."""
    async with runtime.engine.connect() as conn:
        state: dict[str, Any] = {}
        for table in (
            "product_offering",
            "product_offering_price",
            "bundle_allowance",
            "product_to_service_mapping",
        ):
            state[table] = [
                tuple(r) for r in await conn.execute(text(f"SELECT * FROM catalog.{table} ORDER BY 1"))
            ]
        state["audit"] = (await conn.execute(text("SELECT count(*) FROM audit.domain_event"))).scalar_one()
    return state


def _error(r, status: int, reason: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["@type"] == "Error" and body["status"] == str(status)
    assert {"code", "reason", "message", "referenceError"} <= set(body)
    if reason:
        assert body["reason"] == reason
    return body


# --- productOffering -------------------------------------------------------------------------


async def test_offering_list_conforms_to_tmf620_and_shows_winning_price_and_allowances(api):
    r = await api.get(f"{TMF}/productOffering")
    assert r.status_code == 200
    assert r.headers["X-Total-Count"] == "3" and r.headers["X-Result-Count"] == "3"
    offerings = {o["id"]: o for o in r.json()}
    assert set(offerings) == {"PLAN_S", "PLAN_M", "PLAN_L"}
    for body in offerings.values():
        assert_conforms("TMF620", "ProductOffering", body)
        assert body["@type"] == "ProductOffering" and body["href"].endswith(f"/productOffering/{body['id']}")
    m = offerings["PLAN_M"]
    assert (m["name"], m["lifecycleStatus"], m["isBundle"], m["isSellable"]) == (
        "Standard",
        "Active",
        True,
        True,
    )
    assert m["activePrice"] == {"id": "PRICE_PLAN_M", "amount": "25.00", "currency": "SGD"}
    assert m["productSpecification"]["id"] == "SPEC_MOBILE_PREPAID"
    (price,) = m["productOfferingPrice"]
    assert price["id"] == "PRICE_PLAN_M" and price["price"]["taxIncludedAmount"] == {
        "unit": "SGD",
        "value": 25.0,
    }
    assert price["recurringChargePeriodLength"] == 30
    assert {a["allowanceType"]: a["quantity"] for a in m["bundledAllowance"]} == {
        "data": 30720,
        "voice": -1,
        "sms": -1,
        "data_roaming": 500,
    }
    data = next(c for c in m["prodSpecCharValueUse"] if c["name"] == "data")
    assert data["productSpecCharacteristicValue"][0] == {
        "isDefault": True,
        "value": 30720,
        "unitOfMeasure": "MB",
    }


async def test_offering_by_id_conforms_and_unknown_id_is_a_tmf_404(api):
    r = await api.get(f"{TMF}/productOffering/PLAN_L")
    assert r.status_code == 200
    assert_conforms("TMF620", "ProductOffering", r.json())
    assert r.json()["activePrice"]["amount"] == "45.00"
    _error(await api.get(f"{TMF}/productOffering/PLAN_NOPE"), 404, "catalog.offering.not_found")
    _error(await api.get(f"{TMF}/productOffering/{'P' * 65}"), 400, "request.invalid")


async def test_offering_list_filters_by_lifecycle_status_and_name(api):
    r = await api.get(f"{TMF}/productOffering", params={"name": "standard"})
    assert [o["id"] for o in r.json()] == ["PLAN_M"] and r.headers["X-Total-Count"] == "1"
    r = await api.get(f"{TMF}/productOffering", params={"lifecycleStatus": "Retired"})
    assert r.json() == [] and r.headers["X-Total-Count"] == "0"
    assert (await api.post(f"{ADMIN}/offering/PLAN_S/retire")).status_code == 200
    r = await api.get(f"{TMF}/productOffering", params={"lifecycleStatus": "Retired"})
    assert [o["id"] for o in r.json()] == ["PLAN_S"]
    r = await api.get(f"{TMF}/productOffering", params={"lifecycleStatus": "Active"})
    assert [o["id"] for o in r.json()] == ["PLAN_L", "PLAN_M"]
    _error(
        await api.get(f"{TMF}/productOffering", params={"lifecycleStatus": "Dead"}),
        400,
        "lifecycleStatus.invalid",
    )
    _error(await api.get(f"{TMF}/productOffering", params={"name": "n" * 201}), 400, "request.invalid")


async def test_offering_list_pages_with_counts_and_selects_fields(api):
    r = await api.get(f"{TMF}/productOffering", params={"offset": 1, "limit": 1})
    assert [o["id"] for o in r.json()] == ["PLAN_M"]
    assert (r.headers["X-Total-Count"], r.headers["X-Result-Count"]) == ("3", "1")
    r = await api.get(f"{TMF}/productOffering", params={"fields": "name,activePrice"})
    assert all(set(o) == {"id", "href", "@type", "name", "activePrice"} for o in r.json())
    r = await api.get(f"{TMF}/productOffering/PLAN_S", params={"fields": "lifecycleStatus"})
    assert r.json() == {
        "id": "PLAN_S",
        "href": f"{TMF}/productOffering/PLAN_S",
        "@type": "ProductOffering",
        "lifecycleStatus": "Active",
    }


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 1001}, {"limit": "ten"}, {"offset": -1}])
async def test_bad_paging_is_a_tmf_400(api, params):
    _error(await api.get(f"{TMF}/productOffering", params=params), 400, "request.invalid")


@pytest.mark.parametrize(
    "url",
    [
        f"{TMF}/productOffering/PLAN%00S",
        f"{TMF}/productOffering?name=Lite%00",
        f"{TMF}/productOfferingPrice?productOffering.id=%00",
        f"{TMF}/productOfferingPrice/PRICE%00",
        f"{TMF}/productSpecification/SPEC%00",
        f"{VAS}/VAS%00",
    ],
)
async def test_a_nul_byte_in_a_lookup_is_a_400_not_a_database_error(api, url):
    _error(await api.get(url), 400, "request.invalid")


# --- productOfferingPrice and productSpecification -------------------------------------------


async def test_price_rows_conform_to_tmf620_and_filter_by_offering(api):
    r = await api.get(f"{TMF}/productOfferingPrice")
    assert r.status_code == 200 and r.headers["X-Total-Count"] == "3"
    for body in r.json():
        assert_conforms("TMF620", "ProductOfferingPrice", body)
    r = await api.get(f"{TMF}/productOfferingPrice", params={"productOffering.id": "PLAN_S"})
    (price,) = r.json()
    assert price["id"] == "PRICE_PLAN_S" and price["price"] == {"unit": "SGD", "value": 10.0}
    assert price["productOffering"]["id"] == "PLAN_S" and price["priceType"] == "recurring"
    r = await api.get(f"{TMF}/productOfferingPrice/PRICE_PLAN_L")
    assert r.status_code == 200 and r.json()["price"]["value"] == 45.0
    assert_conforms("TMF620", "ProductOfferingPrice", r.json())
    _error(await api.get(f"{TMF}/productOfferingPrice/PRICE_NOPE"), 404, "catalog.price.not_found")


async def test_product_specifications_conform_to_tmf620(api):
    r = await api.get(f"{TMF}/productSpecification")
    assert r.status_code == 200 and r.headers["X-Total-Count"] == "1"
    (spec,) = r.json()
    assert_conforms("TMF620", "ProductSpecification", spec)
    assert spec["id"] == "SPEC_MOBILE_PREPAID" and spec["brand"] == "BSS-CLI"
    r = await api.get(f"{TMF}/productSpecification/SPEC_MOBILE_PREPAID", params={"fields": "name"})
    assert set(r.json()) == {"id", "href", "@type", "name"}
    _error(await api.get(f"{TMF}/productSpecification/SPEC_NOPE"), 404, "catalog.specification.not_found")


# --- VAS -------------------------------------------------------------------------------------


async def test_vas_list_and_one(api):
    r = await api.get(VAS)
    assert r.status_code == 200
    assert [v["id"] for v in r.json()] == [
        "VAS_DATA_1GB",
        "VAS_UNLIMITED_DAY",
        "VAS_ROAMING_1GB",
        "VAS_DATA_5GB",
    ]
    r = await api.get(f"{VAS}/VAS_UNLIMITED_DAY")
    assert r.json() == {
        "id": "VAS_UNLIMITED_DAY",
        "href": f"{VAS}/VAS_UNLIMITED_DAY",
        "@type": "VasOffering",
        "name": "Unlimited Data Day Pass",
        "lifecycleStatus": "Active",
        "price": {"amount": "5.00", "currency": "SGD"},
        "allowanceType": "data",
        "allowanceQuantity": -1,
        "unit": "mb",
        "expiryHours": 24,
    }
    _error(await api.get(f"{VAS}/VAS_NOPE"), 404, "catalog.vas.not_found")
    _error(await api.get(f"{VAS}/{'V' * 65}"), 400, "request.invalid")


# --- administration --------------------------------------------------------------------------


async def test_add_offering_answers_201_with_the_offering_and_audits_the_actor(api, runtime):
    r = await api.post(f"{ADMIN}/offering", json=NEW_PLAN, headers=await token_headers(runtime, "ops-alice"))
    assert r.status_code == 201, r.text
    body = r.json()
    assert_conforms("TMF620", "ProductOffering", body)
    assert r.headers["Location"] == f"{TMF}/productOffering/PLAN_XL"
    assert body["activePrice"] == {"id": "PRICE_PLAN_XL", "amount": "60.00", "currency": "SGD"}
    assert {a["allowanceType"]: a["quantity"] for a in body["bundledAllowance"]} == {
        "data": 307200,
        "voice": -1,
        "sms": -1,
        "data_roaming": 4096,
    }
    listed = await api.get(f"{TMF}/productOffering")
    assert listed.headers["X-Total-Count"] == "4"
    async with runtime.engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT event_type, actor, channel FROM audit.domain_event WHERE aggregate_id = 'PLAN_XL'"
                )
            )
        ).one()
    assert tuple(row) == ("catalog.offering.added", "ops-alice", "api")


@pytest.mark.parametrize(
    ("change", "status", "reason"),
    [
        ({"amount": "-5.00"}, 400, "request.invalid"),
        ({"amount": 0}, 400, "request.invalid"),
        ({"amount": "1.999"}, 400, "request.invalid"),
        ({"amount": "lots"}, 400, "request.invalid"),
        ({"name": "x" * 201}, 400, "request.invalid"),
        ({"name": "   "}, 400, "request.invalid"),
        ({"description": "d" * 1001}, 400, "request.invalid"),
        ({"name": "Lite\u0000"}, 400, "request.invalid"),
        ({"description": "nul \u0000 byte"}, 400, "request.invalid"),
        ({"id": "plan_lower"}, 400, "request.invalid"),
        ({"id": "P" * 49}, 400, "request.invalid"),
        ({"currency": "USD"}, 400, "request.invalid"),
        ({"priceTag": "typo"}, 400, "request.invalid"),
        ({"allowances": {"data": "lots"}}, 400, "request.invalid"),
        ({"allowances": {"data": -2}}, 400, "request.invalid"),
        ({"allowances": {"video": 10}}, 400, "request.invalid"),
        ({"allowances": {}}, 400, "catalog.offering.no_allowances"),
        ({"allowances": None}, 400, "request.invalid"),
        ({"validFrom": "2026-01-01T00:00:00"}, 400, "request.invalid"),
        (
            {"validFrom": "2026-02-01T00:00:00Z", "validTo": "2026-01-01T00:00:00Z"},
            400,
            "catalog.price.invalid_window",
        ),
        ({"id": "PLAN_M"}, 422, "catalog.offering.already_exists"),
        ({"priceId": "PRICE_PLAN_S"}, 422, "catalog.price.already_exists"),
    ],
)
async def test_add_offering_refuses_bad_input_and_writes_nothing(api, runtime, change, status, reason):
    before = await _state(runtime)
    r = await api.post(f"{ADMIN}/offering", json={**NEW_PLAN, **change})
    _error(r, status, reason)
    assert await _state(runtime) == before


async def test_admin_writes_refuse_garbage_bodies_and_anonymous_actors(api, runtime):
    # Catalogue changes are admin's; a channel acting for someone anonymous never gets that far.
    anonymous = await token_headers(runtime, "chat", "channel", actor="anonymous")
    before = await _state(runtime)
    r = await api.post(
        f"{ADMIN}/offering", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    _error(r, 400)
    _error(await api.post(f"{ADMIN}/offering", json=[NEW_PLAN]), 400)
    _error(await api.post(f"{ADMIN}/offering", json=NEW_PLAN, headers=anonymous), 403, "auth.role.forbidden")
    _error(await api.post(f"{ADMIN}/offering/PLAN_S/retire", headers=anonymous), 403, "auth.role.forbidden")
    assert await _state(runtime) == before


async def test_a_cheaper_price_window_wins_now_and_a_future_one_waits(api):
    promo = {"id": "PRICE_PLAN_M_CNY", "amount": "19.90", "validFrom": "2000-01-01T00:00:00Z"}
    r = await api.post(f"{ADMIN}/offering/PLAN_M/price", json=promo)
    assert r.status_code == 201, r.text
    assert_conforms("TMF620", "ProductOfferingPrice", r.json())
    assert r.json()["validFor"] == {"startDateTime": "2000-01-01T00:00:00Z"}
    later = {"id": "PRICE_PLAN_M_2099", "amount": "9.00", "validFrom": "2099-01-01T00:00:00Z"}
    assert (await api.post(f"{ADMIN}/offering/PLAN_M/price", json=later)).status_code == 201
    m = (await api.get(f"{TMF}/productOffering/PLAN_M")).json()
    assert m["activePrice"] == {"id": "PRICE_PLAN_M_CNY", "amount": "19.90", "currency": "SGD"}
    assert {p["id"] for p in m["productOfferingPrice"]} == {
        "PRICE_PLAN_M",
        "PRICE_PLAN_M_CNY",
        "PRICE_PLAN_M_2099",
    }


@pytest.mark.parametrize(
    ("path", "body", "status", "reason"),
    [
        ("PLAN_M/price", {"id": "PRICE_PLAN_M", "amount": "1.00"}, 422, "catalog.price.already_exists"),
        ("PLAN_M/price", {"id": "PRICE_X", "amount": "-1.00"}, 400, "request.invalid"),
        ("PLAN_M/price", {"id": "PRICE_X", "amount": 5, "extra": 1}, 400, "request.invalid"),
        ("PLAN_M/price", {"amount": "5.00"}, 400, "request.invalid"),
        ("PLAN_NOPE/price", {"id": "PRICE_X", "amount": "5.00"}, 404, "catalog.offering.not_found"),
        (f"{'P' * 65}/price", {"id": "PRICE_X", "amount": "5.00"}, 400, "request.invalid"),
        ("PLAN_NOPE/retire", None, 404, "catalog.offering.not_found"),
    ],
)
async def test_price_and_retire_refuse_bad_input_and_write_nothing(api, runtime, path, body, status, reason):
    before = await _state(runtime)
    _error(await api.post(f"{ADMIN}/offering/{path}", json=body), status, reason)
    assert await _state(runtime) == before


async def test_retire_stops_sales_and_a_second_retire_is_refused(api, runtime):
    r = await api.post(f"{ADMIN}/offering/PLAN_L/retire")
    assert r.status_code == 200 and r.json()["lifecycleStatus"] == "Retired"
    assert_conforms("TMF620", "ProductOffering", r.json())
    before = await _state(runtime)
    _error(
        await api.post(f"{ADMIN}/offering/PLAN_L/retire"),
        422,
        "catalog.offering.already_retired",
    )
    price = {"id": "PRICE_PLAN_L_LATE", "amount": "40.00"}
    _error(
        await api.post(f"{ADMIN}/offering/PLAN_L/price", json=price),
        422,
        "catalog.offering.already_retired",
    )
    assert await _state(runtime) == before
