from sqlalchemy import text


async def test_health_reports_database_up_and_temporal_down(api):
    r = await api.get("/health")
    body = r.json()
    assert body["database"] == "up"
    assert body["temporal"].startswith("down")
    assert r.status_code == 503


async def test_requests_without_a_token_get_a_tmf_401(api):
    r = await api.get(
        "/tmf-api/productCatalogManagement/v4/productOffering", headers={"Authorization": "Bearer wrong"}
    )
    assert r.status_code == 401
    assert r.json()["@type"] == "Error" and r.json()["reason"] == "auth.unauthorized"


async def test_each_test_gets_its_own_database(runtime):
    async with runtime.engine.connect() as conn:
        schemas = {
            r[0] for r in await conn.execute(text("select schema_name from information_schema.schemata"))
        }
    assert {"catalog", "crm", "inventory", "payment", "audit"} <= schemas
