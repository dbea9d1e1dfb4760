import json, time
from core.clock import clock
from core.db import transaction
from domains.usage import services as S
from domains.usage.rules import mediate
from domains.usage.rating import rate_in_order
from api.routers.usage import _parse_bulk
from tests.usage_harness import active_line, usage_body
from core.context import RequestContext

async def test_prof(api, runtime):
    lines = [await active_line(runtime, "PLAN_L") for _ in range(50)]
    import gc
    for n in range(4):
        if n >= 2: gc.disable()
        events = [dict(usage_body(lines[i % 50][1], "data", 3, "KB"), id=f"e{n}-{i}") for i in range(20000)]
        body = json.dumps(events).encode()
        T = {}
        t0 = t = time.perf_counter()
        raws, bad = _parse_bulk(body, False); T["parse"] = time.perf_counter() - t; t = time.perf_counter()
        now = clock.now()
        med = [mediate(r, now) for r in raws]; T["mediate"] = time.perf_counter() - t; t = time.perf_counter()
        async with transaction(runtime.db) as s:
            lk = await S._lock_lines(s, {m.msisdn for m in med}); T["lock"] = time.perf_counter() - t; t = time.perf_counter()
            stored = await S._stored_ids(s, [m.id for m in med]); T["stored"] = time.perf_counter() - t; t = time.perf_counter()
            run = rate_in_order(med, lk, stored); T["rate"] = time.perf_counter() - t; t = time.perf_counter()
            ids = await S._event_ids(s, run.rated)
            rated = [S.RatedEvent(i, r, now) for i, r in zip(ids, run.rated)]
            n_ins = await S._insert_events(s, rated); T["insert"] = time.perf_counter() - t; t = time.perf_counter()
            await S._save_buckets(s, [b for l in lk.values() for b in l.buckets.values() if b.touched]); T["save"] = time.perf_counter() - t; t = time.perf_counter()
        T["commit"] = time.perf_counter() - t
        T["total"] = time.perf_counter() - t0
        print({k: round(v * 1000) for k, v in T.items()}); gc.enable()
