import json, time
from sqlalchemy import text
from core.clock import clock
from core.db import transaction
from domains.usage import services as S
from domains.usage.rules import mediate
from domains.usage.rating import rate_in_order
from api.routers.usage import _parse_bulk
from tests.usage_harness import active_line, usage_body

async def test_prof(api, runtime):
    lines = [await active_line(runtime, "PLAN_L") for _ in range(50)]
    async with runtime.engine.begin() as c:
        pass
        await c.execute(text("ALTER TABLE usage.usage_event ALTER COLUMN seq SET CACHE 1000"))
    for n in range(3):
        events = [dict(usage_body(lines[i % 50][1], "data", 3, "KB"), id=f"e{n}-{i}") for i in range(20000)]
        raws, bad = _parse_bulk(json.dumps(events).encode(), False)
        now = clock.now()
        med = [mediate(r, now) for r in raws]
        async with transaction(runtime.db) as s:
            lk = await S._lock_lines(s, {m.msisdn for m in med})
            run = rate_in_order(med, lk, set())
            ids = await S._event_ids(s, run.rated)
            rated = [S.RatedEvent(i, r, now) for i, r in zip(ids, run.rated)]
            e = rated
            params = {
                "now": now, "ids": [x.id for x in e], "msisdns": [x.rated.event.msisdn for x in e],
                "subs": [x.rated.subscription_id for x in e], "kinds": [x.rated.event.usage_type for x in e],
                "qs": [x.rated.event.quantity for x in e], "oqs": [x.rated.event.original_quantity for x in e],
                "ous": [x.rated.event.original_unit for x in e], "roaming": [x.rated.event.roaming for x in e],
                "ats": [x.rated.event.usage_date for x in e], "allowances": [x.rated.allowance_type for x in e],
                "in_bundle": [x.rated.in_bundle for x in e],
            }
            sql = S._INSERT_EVENTS.text
            t = time.perf_counter()
            res = await s.execute(text("EXPLAIN (ANALYZE, BUFFERS) " + sql), params)
            plan = [r[0] for r in res]
            print("explain wall", round((time.perf_counter() - t) * 1000))
            print("\n".join(plan[-6:]))
