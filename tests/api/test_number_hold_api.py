"""Number holds and eSIM re-arm over HTTP: bad input is a 4xx TMF error and changes nothing; with
Temporal unreachable a hold is a 503 and leaves the number on sale. (The flows themselves:
tests/workflows/test_signup_hold.py and test_hold_order_rearm.py.)"""

from __future__ import annotations

from sqlalchemy import text

from tests.api.test_customer_api import assert_tmf_error

HOLD = "/bss-api/v1/number-hold"


async def snapshot(runtime) -> dict:
    async with runtime.engine.connect() as conn:
        return {
            "numbers": (
                await conn.execute(text("select status, count(*) from inventory.msisdn group by status"))
            ).all(),
            "profiles": (
                await conn.execute(
                    text(
                        "select profile_state, matching_id from inventory.esim_profile order by iccid limit 5"
                    )
                )
            ).all(),
            "events": (await conn.execute(text("select count(*) from audit.domain_event"))).scalar_one(),
        }


BAD = [
    ("POST", HOLD, {"msisdn": "abc"}, 400, "request.invalid"),
    ("POST", HOLD, {"msisdn": "90000001", "extra": 1}, 400, "request.invalid"),
    ("POST", HOLD, {"msisdn": 90000001}, 400, "request.invalid"),
    ("POST", HOLD, {"msisdn": "99999999"}, 404, "msisdn.hold.not_found"),
    ("POST", HOLD, {"msisdn": "90000001", "customerId": "CUST-00000000"}, 404, None),
    ("GET", f"{HOLD}/90000001", None, 404, "msisdn.hold.not_found"),
    ("DELETE", f"{HOLD}/90000001", None, 404, "msisdn.hold.not_found"),
    ("DELETE", f"{HOLD}/not-a-number", None, 400, None),
    ("POST", "/bss-api/v1/esim/123/rearm", None, 400, None),
    ("POST", "/bss-api/v1/esim/8910101000000000000/rearm", None, 422, "esim.rearm.not_on_a_line"),
    ("POST", "/bss-api/v1/esim/8999999999999999999/rearm", None, 404, "esim.not_found"),
]


async def test_bad_hold_and_rearm_requests_change_nothing(api, runtime):
    before = await snapshot(runtime)
    for method, path, body, status, reason in BAD:  # one database for all: none may change it
        r = await api.request(method, path, json=body)
        assert_tmf_error(r, status, reason)
        assert await snapshot(runtime) == before, (method, path, body)


async def test_a_number_already_reserved_cannot_be_held(api, runtime):
    async with runtime.engine.begin() as conn:
        await conn.execute(
            text(
                "update inventory.msisdn set status = 'reserved', reserved_for = 'SO-x' where msisdn = '90000002'"
            )
        )
    before = await snapshot(runtime)
    assert_tmf_error(await api.post(HOLD, json={"msisdn": "90000002"}), 422, "msisdn.hold.unavailable")
    assert await snapshot(runtime) == before


async def test_temporal_down_is_a_503_and_the_number_stays_on_sale(api, runtime):
    r = await api.post(HOLD, json={"msisdn": "90000003"})
    assert_tmf_error(r, 503)
    async with runtime.engine.connect() as conn:
        status = (
            await conn.execute(text("select status from inventory.msisdn where msisdn = '90000003'"))
        ).scalar_one()
    assert status == "available"
