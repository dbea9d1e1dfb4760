import json, time
from tests.usage_harness import active_line, usage_body

async def test_prof(api, runtime):
    lines = [await active_line(runtime, "PLAN_L") for _ in range(50)]
    for n in range(4):
        events = [dict(usage_body(lines[i % 50][1], "data", 3, "KB"), id=f"e{n}-{i}") for i in range(20000)]
        body = json.dumps(events).encode()
        t = time.perf_counter()
        r = await api.post("/tmf-api/usageManagement/v4/usage/bulk", content=body)
        print("bulk", r.status_code, r.json()["rated"], time.perf_counter() - t)
    t = time.perf_counter()
    r = await api.post("/tmf-api/usageManagement/v4/usage/bulk", content=body)
    print("resend", r.json()["duplicate"], time.perf_counter() - t)
    t = time.perf_counter()
    for i in range(300):
        r = await api.post("/tmf-api/usageManagement/v4/usage", json=dict(usage_body(lines[i % 50][1], "data", 3, "KB"), id=f"s-{i}"))
    print("single avg ms", (time.perf_counter() - t) / 300 * 1000)
