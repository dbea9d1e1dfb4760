"""/bss-api/v1/promotion: create, list, show, assign/unassign, exhaust; bad input is a 4xx TMF
error and changes nothing; an order with a code shows the discount (priceAlteration) or the note."""

from __future__ import annotations

from sqlalchemy import text

PROMO = "/bss-api/v1/promotion"
GOOD = {
    "code": "SUMMER25",
    "name": "Summer",
    "discountType": "percent",
    "discountValue": "25",
    "periods": 3,
    "codeKind": "multi_use",
    "maxUses": 100,
}


async def _count(runtime) -> list[int]:
    async with runtime.engine.connect() as conn:
        return [
            (await conn.execute(text(f"SELECT count(*) FROM {t}"))).scalar_one()
            for t in ("catalog.promotion", "catalog.promotion_eligibility", "audit.domain_event")
        ]


async def _customer(api) -> str:
    r = await api.post(
        "/tmf-api/customerManagement/v4/customer",
        json={
            "name": "Ada Tan",
            "contactMedium": [
                {"mediumType": "email", "characteristic": {"emailAddress": "ada.promo@example.sg"}}
            ],
        },
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def test_create_show_list_assign_unassign_exhaust(api, runtime):
    r = await api.post(PROMO, json=GOOD)
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["code"], body["state"], body["uses"], body["audience"]) == (
        "SUMMER25",
        "active",
        0,
        "public",
    )
    assert r.headers["Location"].endswith("/SUMMER25")
    assert (await api.get(f"{PROMO}/summer25")).json()["discountValue"] == "25.00"
    listed = await api.get(PROMO, params={"state": "active"})
    assert [p["code"] for p in listed.json()] == ["SUMMER25"] and listed.headers["X-Total-Count"] == "1"

    customer = await _customer(api)
    r = await api.post(PROMO, json={**GOOD, "code": "VIP10", "eligibleCustomerIds": []})
    assert r.json()["audience"] == "targeted" and r.json()["eligibleCustomerIds"] == []
    r = await api.post(f"{PROMO}/VIP10/assign", json={"customerId": customer})
    assert r.status_code == 200 and r.json()["eligibleCustomerIds"] == [customer]
    r = await api.delete(f"{PROMO}/VIP10/assign/{customer}")
    assert r.status_code == 200 and r.json()["eligibleCustomerIds"] == []

    r = await api.post(f"{PROMO}/SUMMER25/exhaust")
    assert (r.status_code, r.json()["state"]) == (200, "exhausted")
    r = await api.post(f"{PROMO}/SUMMER25/exhaust")
    assert (r.status_code, r.json()["reason"]) == (422, "catalog.promotion.exhaust.not_active")


BAD = [
    ("post", PROMO, {**GOOD, "discountType": "free"}, 400, None),
    ("post", PROMO, {**GOOD, "discountValue": "150"}, 400, "catalog.promotion.invalid_discount_value"),
    ("post", PROMO, {**GOOD, "discountValue": "-1"}, 400, None),
    ("post", PROMO, {**GOOD, "periods": 0}, 400, None),
    ("post", PROMO, {**GOOD, "codeKind": "twice"}, 400, None),
    ("post", PROMO, {**GOOD, "code": "bad code!"}, 400, None),
    ("post", PROMO, {**GOOD, "surprise": 1}, 400, None),
    (
        "post",
        PROMO,
        {**GOOD, "codeKind": "single_use_shared", "maxUses": 5},
        400,
        "catalog.promotion.invalid_max_uses",
    ),
    (
        "post",
        PROMO,
        {**GOOD, "validFrom": "2027-01-02T00:00:00Z", "validTo": "2027-01-01T00:00:00Z"},
        400,
        "catalog.promotion.invalid_window",
    ),
    ("post", PROMO, {**GOOD, "code": "EXISTING"}, 409, "catalog.promotion.code_in_use"),
    (
        "post",
        PROMO,
        {**GOOD, "code": "NEWVIP", "eligibleCustomerIds": ["CUST-00000000"]},
        422,
        "catalog.promotion.customer_not_found",
    ),
    ("get", f"{PROMO}/NOSUCH", None, 404, "catalog.promotion.not_found"),
    ("get", PROMO + "?state=gone", None, 400, None),
    ("post", f"{PROMO}/NOSUCH/exhaust", None, 404, "catalog.promotion.not_found"),
    (
        "post",
        f"{PROMO}/EXISTING/assign",
        {"customerId": "CUST-00000000"},
        422,
        "catalog.promotion.not_targeted",
    ),
    ("post", f"{PROMO}/EXISTING/assign", {}, 400, None),
    ("delete", f"{PROMO}/EXISTING/assign/CUST-00000000", None, 422, "catalog.promotion.not_targeted"),
    ("delete", f"{PROMO}/TARGET/assign/CUST-00000000", None, 404, "catalog.promotion.not_assigned"),
]


async def test_bad_input_is_a_tmf_error_and_changes_nothing(api, runtime):
    await api.post(PROMO, json={**GOOD, "code": "EXISTING"})
    await api.post(PROMO, json={**GOOD, "code": "TARGET", "eligibleCustomerIds": []})
    before = await _count(runtime)
    for method, path, body, status, code in BAD:
        kwargs = {"json": body} if body is not None else {}
        r = await getattr(api, method)(path, **kwargs)
        assert r.status_code == status, (path, body, r.text)
        if code:
            assert r.json()["reason"] == code
        assert r.json()["reason"] and r.json()["message"]
    assert await _count(runtime) == before


async def test_an_order_shows_its_discount_or_why_the_code_did_not_apply(api, runtime):
    from core.context import RequestContext
    from core.db import transaction
    from domains.ordering import services as ordering
    from tests.api.order_flow import customer
    from tests.tmf_schema import assert_conforms

    assert (await api.post(PROMO, json=GOOD)).status_code == 201
    cust = await customer(runtime)
    ctx = RequestContext(actor="csr", channel="cli")
    async with transaction(runtime.db) as s:
        good = await ordering.create_order(
            s, ctx, customer_id=cust, offering_id="PLAN_S", promo_code="summer25"
        )
        bad = await ordering.create_order(s, ctx, customer_id=cust, offering_id="PLAN_S", promo_code="WINTER")
    body = (await api.get(f"/tmf-api/productOrderingManagement/v4/productOrder/{good.id}")).json()
    assert_conforms("TMF622", "ProductOrder", body)
    (alteration,) = body["orderTotalPrice"][0]["priceAlteration"]
    assert alteration["price"]["taxIncludedAmount"]["value"] == 7.5 and alteration["applicationDuration"] == 3
    assert body["orderTotalPrice"][0]["price"]["taxIncludedAmount"]["value"] == 10.0  # the snapshot price
    body = (await api.get(f"/tmf-api/productOrderingManagement/v4/productOrder/{bad.id}")).json()
    assert_conforms("TMF622", "ProductOrder", body)
    assert "priceAlteration" not in body["orderTotalPrice"][0]
    assert "WINTER" in body["note"][0]["text"] and "[unknown_code]" in body["note"][0]["text"]
