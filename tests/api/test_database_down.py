"""With the database unreachable the API answers 503 with a TMF error body, never a 500:
a client (or the chaos suite) retries a 503; a 500 says the request itself was wrong."""

from __future__ import annotations

import httpx

from api.app import create_app
from core.settings import Settings
from ops.runtime import Runtime
from stack.postgres import free_port
from tests.conftest import TEST_TOKEN


async def _client(tmp_path):
    settings = Settings(
        db_url=f"postgresql+asyncpg://postgres:x@127.0.0.1:{free_port()}/bss",
        data_dir=tmp_path,
        api_token=TEST_TOKEN,
        temporal_address="127.0.0.1:1",
    )
    runtime = Runtime.create(settings, pool_size=1)
    app = create_app(settings, runtime)
    return runtime, app


async def test_reads_and_writes_answer_503_while_the_database_is_down(tmp_path):
    runtime, app = await _client(tmp_path)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://bss.test") as c:
                auth = {"Authorization": f"Bearer {TEST_TOKEN}"}
                read = await c.get("/tmf-api/customerManagement/v4/customer/CUST-00000000", headers=auth)
                write = await c.post(
                    "/tmf-api/productOrderingManagement/v4/productOrder",
                    headers=auth,
                    json={
                        "productOrderItem": [
                            {"id": "1", "action": "add", "productOffering": {"id": "PLAN_S"}}
                        ],
                        "relatedParty": [{"id": "CUST-00000000", "role": "customer"}],
                    },
                )
                # A token that is not the development one must be looked up in the database.
                other = await c.get(
                    "/tmf-api/customerManagement/v4/customer",
                    headers={"Authorization": "Bearer bss_" + "x" * 43},
                )
    finally:
        await runtime.close()
    for answer in (read, write, other):
        assert answer.status_code == 503, answer.text
        assert answer.json()["@type"] == "Error"
        assert answer.json()["reason"].endswith(".unavailable")
